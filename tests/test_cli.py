"""The `convert` command line: sub-commands, exit statuses, JSON, messages, never overwriting inputs."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from converter.cli import main

try:
    import onnx
    import onnxruntime  # noqa: F401  (verify runs it)
    from onnx import TensorProto, helper, numpy_helper
except ImportError:   # the Python 3.6 venv (the device): only `convert build` runs there
    onnx = None

host_tools = pytest.mark.skipif(onnx is None, reason="the converter's host tools need onnx and onnxruntime")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flatten_model(path, opset=15, scale=1.0, batch=1):
    """x -> Reshape(1, -1) -> Mul(scale): at opset 15 the Reshape lacks allowzero (TensorRT 8.2 fails)."""
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["flat"], name="flatten"),
         helper.make_node("Mul", ["flat", "scale"], ["y"], name="scale")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 48 * batch])],
        initializer=[numpy_helper.from_array(np.array([1, -1], np.int64), "shape"),
                     numpy_helper.from_array(np.array(scale, np.float32), "scale")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
    return str(path)


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@host_tools
def test_check_exit_status_and_json(tmp_path, capsys):
    failing, passing = flatten_model(tmp_path / "a.onnx"), flatten_model(tmp_path / "b.onnx", opset=13)
    assert main(["check", failing, "--target", "jetson-nano", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["target"] == "jetson-nano" and not report["passed"]
    rules = dict((finding["rule"], finding) for finding in report["findings"])
    assert rules["reshape_allowzero"]["node"] == "flatten" and rules["reshape_allowzero"]["fix"] == "reshape_allowzero"
    assert rules["max_opset"]["fix"] == "convert_opset"
    assert main(["check", passing, "--target", "jetson-nano"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["check", failing, "--target", "trt10"]) == 0


@host_tools
def test_default_target_on_a_host_is_announced(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["check", flatten_model(tmp_path / "a.onnx")]) == 1
    captured = capsys.readouterr()
    assert "jetson-nano" in captured.err and "--target" in captured.err and "FAIL" in captured.out


@host_tools
def test_inspect_shows_interface_ops_and_check(tmp_path, capsys):
    path = flatten_model(tmp_path / "a.onnx")
    assert main(["inspect", path, "--target", "jetson-nano"]) == 1
    text = capsys.readouterr().out
    for expected in ("input", "x", "1x3x4x4", "output", "ai.onnx 15", "Reshape 1", "Mul 1", "reshape_allowzero"):
        assert expected in text
    assert main(["inspect", path, "--target", "trt10", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ops"] == {"Reshape": 1, "Mul": 1} and info["inputs"][0]["shape"] == "1x3x4x4"
    assert info["check"]["passed"]


@host_tools
def test_fix_writes_beside_the_input_and_never_overwrites_it(tmp_path, capsys):
    source = flatten_model(tmp_path / "a.onnx")
    before = digest(source)
    assert main(["fix", source, "--target", "jetson-nano", "-o", source]) == 2
    assert "is the input" in capsys.readouterr().err
    assert main(["fix", source, "--target", "jetson-nano"]) == 0
    fixed = str(tmp_path / "a.fixed.onnx")
    assert digest(source) == before and os.path.isfile(fixed)
    assert main(["check", fixed, "--target", "jetson-nano"]) == 0
    assert main(["verify", source, fixed]) == 0


@host_tools
def test_verify_fails_past_the_tolerance(tmp_path, capsys):
    reference, changed = flatten_model(tmp_path / "a.onnx"), flatten_model(tmp_path / "b.onnx", scale=1.01)
    assert main(["verify", reference, changed]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["verify", reference, changed, "--atol", "0.02", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["passed"]


@host_tools
def test_missing_files_and_bad_modules_are_clear_errors(tmp_path, capsys):
    assert main(["check", str(tmp_path / "nope.onnx"), "--target", "trt10"]) == 2
    assert "nope.onnx does not exist" in capsys.readouterr().err
    source = flatten_model(tmp_path / "a.onnx")
    assert main(["all", source, "--target", "trt10", "-o", str(tmp_path / "out"), "--trt-module", "no_such_trt"]) == 2
    assert "no_such_trt" in capsys.readouterr().err


@host_tools
def test_unknown_target_is_an_argument_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", flatten_model(tmp_path / "a.onnx"), "--target", "jetson-tx2"])
    assert exit_info.value.code == 2 and "jetson-nano" in capsys.readouterr().err


def test_build_subcommand_is_the_build_modules(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["build", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--precision" in text and "--workspace" in text


@host_tools
def test_all_on_a_host_skips_the_build_and_prints_one_summary(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.delenv("TRT_INFER_TENSORRT_MODULE", raising=False)
    source = flatten_model(tmp_path / "net.onnx", batch="N")
    out = tmp_path / "out"
    assert main(["all", source, "--target", "jetson-nano", "-o", str(out)]) == 0
    summary = capsys.readouterr()
    rows = dict((line.split()[0], line.split()[1]) for line in summary.out.splitlines()[2:] if line and line[0] != " ")
    assert rows == {"export": "ok", "fix": "ok", "check": "ok", "verify": "ok", "build": "skipped"}
    assert "no TensorRT installed here" in summary.out and "convert build net.fixed.onnx" in summary.out
    assert sorted(os.listdir(str(out))) == ["net.fixed.onnx", "net.onnx"]


@host_tools
def test_python_m_converter_all_contract_used_by_the_test_models(tmp_path):
    # tests/support/models.py:converted_for_target runs exactly this and reads <outdir>/<stem>.fixed.onnx.
    source = flatten_model(tmp_path / "net.onnx")
    out = tmp_path / "out"
    completed = subprocess.run([sys.executable, "-m", "converter", "all", source, "--target", "jetson-nano",
                                "-o", str(out)], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, env=dict(os.environ, TRT_INFER_TENSORRT_MODULE=""))
    assert completed.returncode == 0, completed.stderr
    assert os.path.isfile(str(out / "net.fixed.onnx"))
    assert "step" in completed.stdout and "verify" in completed.stdout


@pytest.mark.skipif(onnx is not None, reason="only where the host tools are missing, as on the device")
def test_host_commands_on_the_device_say_where_they_run(tmp_path, capsys):
    assert main(["check", str(tmp_path / "model.onnx"), "--target", "jetson-nano"]) == 2
    message = capsys.readouterr().err
    assert "runs on a host" in message and "only `convert build` runs on the device" in message
