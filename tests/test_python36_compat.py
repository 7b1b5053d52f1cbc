"""Static check that the code which runs on the Jetson Nano stays Python 3.6 compatible.

The runtime (trt_infer/) and the converter's on-device part (the CLI entry, `build`, INT8
calibration) run on JetPack 4's Python 3.6. vermin reads the syntax and the standard-library
usage and reports the minimum Python version each file needs. The same tests also run under
Python 3.6 itself (tools/test.sh), which catches what a static check cannot.
"""
import os
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NANO_PATHS = [
    "trt_infer",
    "converter/__init__.py",
    "converter/__main__.py",
    "converter/cli.py",
    "converter/build.py",
    "converter/calibration.py",
    "tests/support",
]


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
    paths = [path for path in NANO_PATHS if os.path.exists(os.path.join(REPO_ROOT, path))]
    assert "trt_infer" in paths
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
