"""Static check that the code which runs on the Jetson Nano stays Python 3.6 compatible.

The runtime (trt_infer/, all of it) and the converter modules that `convert build` imports on the
device run on JetPack 4's Python 3.6. Those converter modules are not listed by hand: they are
found by running `python -m converter build` in a fresh interpreter without the host tools and
reading which `converter` modules it loaded. vermin reads the syntax and the standard-library
usage and reports the minimum Python version each file needs. The same tests also run under
Python 3.6 itself (tools/test.sh), which catches what a static check cannot.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support.blocked_imports import HOST_ONLY, run_blocked

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIME_PATHS = ["trt_infer", "tests/support"]

# `python -m converter build` as on the device: parse, dispatch, fail on the missing ONNX file.
CONVERT_BUILD_MODULES = """
import importlib.util, json, os, runpy
sys.argv = ["convert", "build", os.path.join("no", "such", "model.onnx")]
try:
    runpy.run_module("converter", run_name="__main__", alter_sys=True)
except SystemExit as stop:
    code = stop.code
files = [module.__file__ for name, module in sys.modules.items()
         if module is not None and name.partition(".")[0] == "converter"]
files.append(importlib.util.find_spec("converter.__main__").origin)   # what runpy ran
print(json.dumps({"code": code, "files": sorted(set(os.path.relpath(path) for path in files))}))
"""


def convert_build_modules():
    """Repository-relative paths of the converter files `python -m converter build` runs."""
    completed = run_blocked(CONVERT_BUILD_MODULES, list(HOST_ONLY) + ["onnxruntime"])
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.splitlines()[-1])
    assert result["code"] == 2 and "ONNX file not found" in completed.stderr, completed.stderr
    return result["files"]


def test_convert_build_runs_only_light_converter_modules():
    files = convert_build_modules()
    assert {"converter/__init__.py", "converter/__main__.py", "converter/cli.py"} <= set(files)
    assert not [path for path in files if path.startswith(("converter/fixes", "converter/commands"))], files


def vermin_executable():
    candidate = os.path.join(os.path.dirname(sys.executable), "vermin")
    found = candidate if os.path.isfile(candidate) else shutil.which("vermin")
    if not found:
        pytest.skip("vermin is not installed in this environment (the host .venv has it)")
    return found


def run_vermin(paths):
    command = [vermin_executable(), "-t=3.6-", "--no-tips", "--violations", "--eval-annotations",
               "--no-parse-comments"] + paths
    return subprocess.run(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)


def test_nano_code_needs_at_most_python_3_6():
    vermin_executable()
    paths = RUNTIME_PATHS + convert_build_modules()
    assert all(os.path.exists(os.path.join(REPO_ROOT, path)) for path in paths), paths
    result = run_vermin(paths)
    assert result.returncode == 0, "Python 3.6 incompatibilities:\n" + result.stdout


@pytest.mark.parametrize("snippet, feature", [
    ("if (n := 3):\n    pass\n", "named expressions"),
    ("import dataclasses\n", "dataclasses"),
    ("def f(a, /, b):\n    return a\n", "positional-only"),
    ("def f(x: list[int]):\n    return x\n", "builtin generic"),
])
def test_the_check_rejects_constructs_newer_than_3_6(tmp_path, snippet, feature):
    source = tmp_path / "newer.py"
    source.write_text(snippet)
    result = run_vermin([str(source)])
    assert result.returncode != 0, "vermin accepted a construct needing Python > 3.6 ({})".format(feature)
