"""The `convert` command line: sub-commands, exit statuses, JSON, messages, never overwriting inputs;
the command registry, the uniform missing-dependency message and logging to stderr with -v/-q."""
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from converter import cli
from converter.cli import main
from tests.support.blocked_imports import HOST_ONLY, run_blocked

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
    assert capsys.readouterr().err == ("convert check: error: onnx is not installed here; `convert check` runs on "
                                       "the host PC: pip install -r tools/requirements-host.txt\n")


# --- the registry: commands as data -----------------------------------------------------------

def test_every_command_is_declared_once_with_where_it_runs():
    names = [command.name for command in cli.COMMANDS]
    assert names == ["export", "fix", "check", "verify", "build", "all", "inspect"]
    for command in cli.COMMANDS:
        assert command.where in cli.PLACES, command
        for reference in (command.arguments, command.runs):
            module, _, function = reference.partition(":")
            assert callable(getattr(importlib.import_module(module), function, None)), reference
    build = cli.COMMANDS_BY_NAME["build"]
    assert (build.where, build.runs, build.arguments) == (cli.DEVICE, "trt_infer.engine.build:run",
                                                          "trt_infer.engine.build:add_arguments")
    assert [command.name for command in cli.COMMANDS if command.where == cli.DEVICE] == ["build"]


def test_convert_build_has_exactly_the_runtime_build_commands_options():
    import argparse

    from trt_infer.engine import build

    def options(parser):
        return sorted((tuple(action.option_strings), action.dest, action.default, action.choices)
                      for action in parser._actions if not isinstance(action, argparse._HelpAction))

    subparsers = next(action for action in cli.build_parser()._actions if action.dest == "command").choices
    assert options(subparsers["build"]) == options(build.build_parser())


def test_missing_modules_make_one_message_naming_them_and_where_the_command_runs():
    fix, build = cli.COMMANDS_BY_NAME["fix"], cli.COMMANDS_BY_NAME["build"]
    assert cli.missing_message(fix, ["onnx", "onnx_graphsurgeon"]) == (
        "onnx, onnx_graphsurgeon are not installed here; `convert fix` runs on the host PC: "
        "pip install -r tools/requirements-host.txt")
    assert cli.missing_message(build, ["numpy"]).startswith(
        "numpy is not installed here; `convert build` runs on the device that will run the engine")


def test_convert_fix_without_onnx_answers_with_the_uniform_message(tmp_path):
    code = "from converter.cli import main\nsys.exit(main(['fix', {!r}]))\n".format(str(tmp_path / "model.onnx"))
    completed = run_blocked(code, ["onnx"])
    assert completed.returncode == 2, completed.stderr
    missing = "onnx is" if importlib.util.find_spec("onnx_graphsurgeon") else "onnx, onnx_graphsurgeon are"
    assert completed.stderr == ("convert fix: error: {} not installed here; `convert fix` runs on the host PC: "
                                "pip install -r tools/requirements-host.txt\n".format(missing))
    completed = run_blocked(code, ["onnx", "onnx_graphsurgeon"])
    assert completed.returncode == 2 and completed.stderr.startswith(
        "convert fix: error: onnx, onnx_graphsurgeon are not installed here; `convert fix` runs on the host PC")


def test_a_module_only_some_inputs_need_gets_the_same_message(tmp_path, monkeypatch, capsys):
    def needs_tf2onnx(args):
        import tf2onnx  # noqa: F401

    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    monkeypatch.setattr(cli, "missing_modules", lambda command: [])
    monkeypatch.setattr(cli.Command, "run", lambda self, args: needs_tf2onnx(args))
    assert main(["export", "saved_model", "-o", str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err == ("convert export: error: tf2onnx is not installed here; `convert export` runs "
                                       "on the host PC: pip install -r tools/requirements-host.txt\n")


PARSER_PROBE = """
from converter.cli import build_parser
build_parser()
heavy = ("tensorrt", "tensorrt_rtx_bindings", "pycuda", "onnxruntime", "cv2", "yaml") + {host_only!r}
print(",".join(sorted(name for name in heavy if sys.modules.get(name) is not None)))
print(",".join(build_parser()._subparsers._group_actions[0].choices["fix"]._option_string_actions["--nms"].choices))
"""


def test_building_the_parser_imports_nothing_heavy_and_its_choices_do_not_depend_on_imports():
    for blocked in ([], list(HOST_ONLY) + ["onnxruntime"]):
        completed = run_blocked(PARSER_PROBE.format(host_only=HOST_ONLY), blocked)
        assert completed.returncode == 0, completed.stderr
        heavy, nms = completed.stdout.splitlines()
        assert heavy == "" and nms == "keep,runtime,plugin", blocked


def test_convert_build_help_and_run_on_a_device_without_the_host_tools(tmp_path):
    """The device, with TensorRT and numpy only: no onnx, onnx-graphsurgeon, tf2onnx, TensorFlow, torch,
    ONNX Runtime, OpenCV, YAML or pycuda (the .venv36 run of this test is the Nano's Python 3.6)."""
    blocked = list(HOST_ONLY) + ["onnxruntime", "cv2", "yaml", "pycuda"]
    completed = run_blocked("import runpy\nsys.argv = ['convert', 'build', '--help']\n"
                            "runpy.run_module('converter', run_name='__main__')\n", blocked)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: convert build") and "--precision {fp32,fp16,int8}" in completed.stdout
    assert "--verbose" in completed.stdout and "--quiet" in completed.stdout
    missing = str(tmp_path / "missing.onnx")
    completed = run_blocked("from converter.cli import main\nsys.exit(main(['build', {!r}]))\n".format(missing),
                            blocked)
    assert (completed.returncode, completed.stderr) == (2, "convert build: error: ONNX file not found: {}\n".format(
        missing))


# --- logging: records to stderr, results to stdout --------------------------------------------

@host_tools
def test_messages_go_to_stderr_at_the_level_asked_for(tmp_path, capsys):
    source = flatten_model(tmp_path / "a.onnx")
    assert main(["fix", source, "--target", "jetson-nano"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "convert_opset: opset 15 -> 13" in captured.err
    assert "wrote {}".format(tmp_path / "a.fixed.onnx") in captured.err
    assert "warning" not in captured.err.lower() and "note:" not in captured.err
    assert main(["fix", source, "--target", "jetson-nano", "-q", "-o", str(tmp_path / "b.onnx")]) == 0
    assert capsys.readouterr().err == ""
    assert main(["fix", source, "--target", "jetson-nano", "-v", "-o", str(tmp_path / "c.onnx")]) == 0
    assert "onnx.version_converter stopped" in capsys.readouterr().err          # debugging detail
    assert main(["check", source, "-q", "--json"]) == 1            # results stay on stdout under -q
    captured = capsys.readouterr()
    assert json.loads(captured.out)["target"] == "jetson-nano" and captured.err == ""


@host_tools
def test_verbose_and_quiet_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["check", flatten_model(tmp_path / "a.onnx"), "-v", "-q"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


@host_tools
def test_fix_logs_each_change_once_through_logging(tmp_path, caplog):
    source = flatten_model(tmp_path / "a.onnx")
    assert main(["fix", source, "--target", "jetson-nano"]) == 0
    changes = [record for record in caplog.records if record.name == "converter.fixes"]
    assert changes and all(record.levelno == logging.INFO for record in changes)
    texts = [record.getMessage() for record in changes]
    assert len(texts) == len(set(texts)) and any(text.startswith("convert_opset: ") for text in texts)
