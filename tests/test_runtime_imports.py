"""The runtime stands on its own: no `trt_infer` module imports the converter or the host tools.

The device has neither the converter's host tools (onnx, onnx-graphsurgeon, tf2onnx, TensorFlow,
torch) nor any need for the converter itself. Every module of `trt_infer` is imported in a fresh
interpreter where those are unimportable; a module may fail only with an ImportError for
something else this interpreter lacks (rclpy under Python 3.6, pycuda without a GPU). A static
scan makes the same rule hold for imports inside functions, which importing does not run.
"""
import ast
import json
import os
import re

from tests.support.blocked_imports import NOT_FOR_THE_RUNTIME, REPO_ROOT, run_blocked

IMPORT_EVERY_MODULE = """
import importlib, json, pkgutil, traceback
import trt_infer

results = {}

def failed(name):
    error = sys.exc_info()[1]
    results[name] = {"type": type(error).__name__, "import_error": isinstance(error, ImportError),
                     "name": getattr(error, "name", None), "text": traceback.format_exc()}

def walk_failed(name):
    failed(name)

for info in pkgutil.walk_packages(trt_infer.__path__, "trt_infer.", onerror=walk_failed):
    if info.name in results:
        continue
    try:
        importlib.import_module(info.name)
        results[info.name] = None
    except Exception:
        failed(info.name)
print(json.dumps(results))
"""

# Device-side modules that need nothing beyond numpy: these must import everywhere.
DEVICE_MODULES = ("trt_infer.engine", "trt_infer.engine.gpu", "trt_infer.engine.cache", "trt_infer.engine.build",
                  "trt_infer.engine.calibration", "trt_infer.backends.tensorrt_api",
                  "trt_infer.backends.tensorrt_backend", "trt_infer.errors", "trt_infer.cli_logging")


def names_a_blocked_module(text):
    return [name for name in NOT_FOR_THE_RUNTIME if re.search(r"(?<![\w.]){}(?![\w])".format(re.escape(name)), text)]


def test_every_runtime_module_imports_without_the_converter_and_the_host_tools():
    completed = run_blocked(IMPORT_EVERY_MODULE, NOT_FOR_THE_RUNTIME)
    assert completed.returncode == 0, completed.stderr
    results = json.loads(completed.stdout.splitlines()[-1])
    assert len(results) > 30 and set(DEVICE_MODULES) <= set(results)
    for module in DEVICE_MODULES:
        assert results[module] is None, results[module]["text"]
    for module, error in sorted(results.items()):
        if error is None:
            continue
        assert error["import_error"], "{} failed with {}, not an ImportError:\n{}".format(
            module, error["type"], error["text"])
        missing = (error["name"] or "").partition(".")[0]
        assert missing and missing not in NOT_FOR_THE_RUNTIME, error["text"]
        assert not names_a_blocked_module(error["text"]), "{} needs {}:\n{}".format(
            module, names_a_blocked_module(error["text"]), error["text"])


def test_the_probe_notices_a_module_that_needs_a_blocked_one():
    """The same probe, run on a package that imports onnx, reports it (so the test above can fail)."""
    completed = run_blocked("try:\n    import converter.fixes.graph_tools\nexcept ImportError as error:\n"
                            "    print(error.name)\n", ["onnx"])
    assert completed.stdout.strip() == "onnx" and names_a_blocked_module("import of onnx halted") == ["onnx"]


def _imported_names(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and _text(node.args[0])):
            yield node.lineno, _text(node.args[0])


def _text(node):
    """The string a literal node holds (ast.Str on Python 3.6/3.7, ast.Constant later), else None."""
    value = getattr(node, "value", getattr(node, "s", None))
    return value if isinstance(value, str) else None


def imports_of(package, folder):
    """'file:line: module' for every import of `package` (a top-level name) in the files under `folder`."""
    found = []
    for root, _, files in os.walk(folder):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            with open(path) as handle:
                tree = ast.parse(handle.read(), path)
            found.extend("{}:{}: {}".format(os.path.relpath(path, REPO_ROOT), line, module)
                         for line, module in _imported_names(tree) if module.partition(".")[0] == package)
    return found


def converter_imports(folder):
    return imports_of("converter", folder)


def test_no_runtime_file_imports_the_converter_even_inside_a_function():
    assert converter_imports(os.path.join(REPO_ROOT, "trt_infer")) == []


# rclpy lives in the ROS adapter; the node benchmark drives the node over DDS and is the one exception
ROS_ADAPTER = (os.path.join("trt_infer", "ros") + os.sep, os.path.join("trt_infer", "bench", "node.py"))


def test_only_the_ros_adapter_imports_rclpy():
    found = imports_of("rclpy", os.path.join(REPO_ROOT, "trt_infer"))
    assert found, "the scan found no rclpy import at all: it cannot be looking"
    outside = [entry for entry in found if not entry.startswith(ROS_ADAPTER)]
    assert outside == [], "rclpy imported outside trt_infer/ros/: {}".format(outside)


def test_the_static_scan_finds_every_spelling(tmp_path):
    (tmp_path / "module.py").write_text(
        u"import converter\nfrom converter.fixes import run_fixes\n\ndef later():\n    import converter.cli\n"
        u"    importlib.import_module('converter.targets')\nfrom trt_infer import converters_are_fine\n")
    assert [entry.split(": ")[1] for entry in converter_imports(str(tmp_path))] == [
        "converter", "converter.fixes", "converter.cli", "converter.targets"]
