"""`convert` as a hostile user drives it: corrupt, truncated and empty model files, outputs that are
links to the inputs, -o pointing at the wrong kind of path, files of another format, graphs with
TensorFlow ops left in them, dynamic inputs. Every case: one line on stderr naming the file and the
fix, no traceback, the documented exit status, and nothing written over an input.

Through converter.cli.main (the real CLI) on real files; `-q` leaves only the error line on stderr.
"""
import hashlib
import os
import re
import subprocess
import sys

import pytest

from converter import cli
from converter.cli import EXIT_ERROR, EXIT_FAILED, EXIT_OK, main

onnx = pytest.importorskip("onnx", reason="the converter's host tools need onnx (absent in the Python 3.6 venv)")
pytest.importorskip("onnxruntime", reason="verify runs ONNX Runtime")
from onnx import TensorProto, helper  # noqa: E402

from tests.test_cli import flatten_model  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REREAD = "copy the complete file again or export it again"


def digest(path):
    with open(str(path), "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def error_line(capsys, command):
    """The one line `convert COMMAND -q` printed: its error, with no traceback and nothing else."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convert {}: error: ".format(command)), err
    return lines[0]


def relu_model(path, shape=(1, 3, 4, 4), name="image"):
    graph = helper.make_graph([helper.make_node("Relu", [name], ["y"], name="relu")], "g",
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return str(path)


# --- corrupt, truncated, empty .onnx: every command that reads one --------------------------------

def _text(path):
    path.write_bytes(b"hello")


def _truncated(path):
    flatten_model(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _empty(path):
    path.write_bytes(b"")


BROKEN = {"text": (_text, "is not an ONNX model"), "truncated": (_truncated, "is truncated"),
          "empty": (_empty, "is empty (0 bytes)")}


def _command_line(command, bad, tmp_path):
    good = flatten_model(tmp_path / "good.onnx", opset=13)
    out = str(tmp_path / "out")
    return {
        "check": ["check", bad, "--target", "jetson-nano"],
        "inspect": ["inspect", bad, "--target", "jetson-nano"],
        "fix": ["fix", bad, "--target", "jetson-nano", "-o", os.path.join(out, "fixed.onnx")],
        "export": ["export", bad, "--target", "jetson-nano", "-o", os.path.join(out, "exported.onnx")],
        "verify-reference": ["verify", bad, good],
        "verify-fixed": ["verify", good, bad],
        "all": ["all", bad, "--target", "jetson-nano", "-o", out],
        "build": ["build", bad, "-o", os.path.join(out, "model.engine")],
    }[command], out


@pytest.mark.parametrize("kind", sorted(BROKEN))
@pytest.mark.parametrize("command", ["check", "inspect", "fix", "export", "verify-reference", "verify-fixed", "all",
                                     "build"])
def test_a_broken_onnx_file_is_one_line_and_exit_2_for_every_command(tmp_path, capsys, command, kind):
    make, what = BROKEN[kind]
    bad = tmp_path / "bad.onnx"
    make(bad)
    argv, out = _command_line(command, str(bad), tmp_path)
    assert main(argv + ["-q"]) == EXIT_ERROR
    line = error_line(capsys, argv[0])
    assert "{} {}".format(bad, what) in line and REREAD in line
    assert not os.path.exists(out), "wrote {} from a broken input".format(os.listdir(out))


def test_python_m_converter_check_on_a_text_file(tmp_path):
    """The issue's reproduction, as a user types it: `printf hello > bad.onnx; python -m converter check bad.onnx`."""
    (tmp_path / "bad.onnx").write_bytes(b"hello")
    completed = subprocess.run([sys.executable, "-m", "converter", "check", "bad.onnx"], cwd=str(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                               env=dict(os.environ, PYTHONPATH=REPO_ROOT))
    assert completed.returncode == 2 and completed.stdout == "", completed.stderr
    assert completed.stderr.splitlines()[-1] == (
        "convert check: error: bad.onnx is not an ONNX model (byte 2 of 5 starts no ModelProto field); "
        "copy the complete file again or export it again (convert export)")
    assert "Traceback" not in completed.stderr


# --- nothing a command writes replaces an input, through a link either ----------------------------

def _link(kind, target, link):
    if kind == "symlink":
        os.symlink(os.path.basename(str(target)), str(link))
    else:
        os.link(str(target), str(link))
    return str(link)


LINKS = {"symlink": "through a symlink", "hard link": "a hard link"}


@pytest.mark.parametrize("kind", sorted(LINKS))
@pytest.mark.parametrize("command", ["fix", "export"])
def test_an_output_linked_to_the_input_is_refused(tmp_path, capsys, command, kind):
    source = flatten_model(tmp_path / "in.onnx")
    before = digest(source)
    current = _link(kind, source, tmp_path / "current.onnx")
    assert main([command, source, "--target", "jetson-nano", "-o", current, "-q"]) == EXIT_ERROR
    line = error_line(capsys, command)
    assert line.endswith("-o/--output {} is the input {} (the same file, {}); write to another path: inputs are "
                         "never overwritten".format(current, source, LINKS[kind]))
    assert digest(source) == before


def test_fix_default_output_linked_to_the_input_is_refused(tmp_path, capsys):
    source = flatten_model(tmp_path / "in.onnx")
    before = digest(source)
    _link("hard link", source, tmp_path / "in.fixed.onnx")
    assert main(["fix", source, "--target", "jetson-nano", "-q"]) == EXIT_ERROR
    line = error_line(capsys, "fix")
    assert "the default output (choose one with -o) {}".format(tmp_path / "in.fixed.onnx") in line
    assert "is the input {}".format(source) in line and digest(source) == before


@pytest.mark.parametrize("kind", sorted(LINKS))
def test_all_refuses_an_output_folder_whose_files_are_the_inputs(tmp_path, capsys, kind):
    (tmp_path / "src").mkdir()
    (tmp_path / "out").mkdir()
    source = flatten_model(tmp_path / "src" / "net.onnx")
    before = digest(source)
    if kind == "symlink":
        os.symlink(source, str(tmp_path / "out" / "net.onnx"))
    else:
        os.link(source, str(tmp_path / "out" / "net.onnx"))
    assert main(["all", source, "--target", "jetson-nano", "-o", str(tmp_path / "out"), "-q"]) == EXIT_ERROR
    line = error_line(capsys, "all")
    assert "the output {} is the input {}".format(tmp_path / "out" / "net.onnx", source) in line
    assert digest(source) == before and sorted(os.listdir(str(tmp_path / "out"))) == ["net.onnx"]


def test_all_refuses_an_output_that_is_its_inputs_npz(tmp_path, capsys):
    source = flatten_model(tmp_path / "net.onnx")
    out = tmp_path / "out"
    out.mkdir()
    inputs = tmp_path / "inputs.npz"
    inputs.write_bytes(b"saved inputs")
    os.link(str(inputs), str(out / "net.fixed.onnx"))
    assert main(["all", source, "--target", "jetson-nano", "-o", str(out), "--inputs", str(inputs), "-q"]) \
        == EXIT_ERROR
    assert "is the input {} (the same file, a hard link)".format(inputs) in error_line(capsys, "all")
    assert inputs.read_bytes() == b"saved inputs" and sorted(os.listdir(str(out))) == ["net.fixed.onnx"]


@pytest.mark.parametrize("option, linked", [("-o", "engine"), ("--timing-cache", "cache")])
def test_build_refuses_writing_over_its_onnx_through_a_hard_link(tmp_path, capsys, option, linked):
    source = flatten_model(tmp_path / "model.onnx")
    before = digest(source)
    written = _link("hard link", source, tmp_path / "model.{}".format(linked))
    argv = ["build", source, "-q"] + ([option, written] if option == "-o" else
                                      ["-o", str(tmp_path / "m.engine"), option, written])
    assert main(argv) == EXIT_ERROR
    line = error_line(capsys, "build")
    assert "{} {} is the input {} (the same file, a hard link)".format(
        "-o/--output" if option == "-o" else option, written, source) in line
    assert digest(source) == before


# --- -o naming the wrong kind of path ---------------------------------------------------------------

def test_all_with_a_file_as_output_folder_says_to_pass_a_folder(tmp_path, capsys):
    source = flatten_model(tmp_path / "net.onnx")
    (tmp_path / "out").write_text(u"a file")
    assert main(["all", source, "--target", "jetson-nano", "-o", str(tmp_path / "out"), "-q"]) == EXIT_ERROR
    line = error_line(capsys, "all")
    assert "File exists" not in line
    assert line.endswith("-o/--output-dir {} is a file, not a folder; pass a folder to write into (it is created if "
                         "missing), e.g. {}_converted".format(tmp_path / "out", tmp_path / "out"))


@pytest.mark.parametrize("command", ["fix", "export"])
def test_an_output_under_a_file_or_that_is_a_folder_says_what_to_pass(tmp_path, capsys, command):
    source = flatten_model(tmp_path / "net.onnx")
    (tmp_path / "notes").write_text(u"a file")
    under = str(tmp_path / "notes" / "net.onnx")
    assert main([command, source, "--target", "jetson-nano", "-o", under, "-q"]) == EXIT_ERROR
    line = error_line(capsys, command)
    assert "File exists" not in line and "Not a directory" not in line
    assert line.endswith("-o/--output {}: {} is a file, so no folder can be made there; choose a path in a "
                         "folder".format(under, tmp_path / "notes"))
    (tmp_path / "folder").mkdir()
    assert main([command, source, "--target", "jetson-nano", "-o", str(tmp_path / "folder"), "-q"]) == EXIT_ERROR
    assert error_line(capsys, command).endswith("-o/--output {} is a folder; pass the file to write, e.g. {}".format(
        tmp_path / "folder", tmp_path / "folder" / "model.onnx"))


# --- a file that is not the format its name says ----------------------------------------------------

@pytest.mark.parametrize("command", ["export", "all", "verify"])
def test_a_text_file_named_tflite_is_not_a_tflite_flatbuffer(tmp_path, capsys, command):
    fake = tmp_path / "model.tflite"
    fake.write_text(u"this is a README, not a model\n")
    argv = {"export": ["export", str(fake), "-o", str(tmp_path / "m.onnx")],
            "all": ["all", str(fake), "-o", str(tmp_path / "out")],
            "verify": ["verify", str(fake), flatten_model(tmp_path / "good.onnx")]}[command]
    assert main(argv + ["--target", "jetson-nano", "-q"] if command != "verify" else argv + ["-q"]) == EXIT_ERROR
    line = error_line(capsys, command)
    assert "unpack_from" not in line
    assert "{} is not a TFLite flatbuffer (bytes 4-8 are b' is ', a .tflite file has b'TFL3'); pass the .tflite " \
           "model itself".format(fake) in line
    assert not os.path.exists(str(tmp_path / "m.onnx")) and not os.path.exists(str(tmp_path / "out"))


@pytest.mark.parametrize("name, expected", [
    ("model.keras", "is not a Keras 3 .keras file (not a complete zip archive); copy it again, or save the model "
                    "again with model.save('model.keras')"),
    ("model.h5", "is not a Keras HDF5 model (not a complete HDF5 file); copy it again, or save the model again "
                 "with model.save('model.h5')"),
    ("model.pt", "is not a TorchScript file (not a complete zip archive); copy it again, or save the model again "
                 "with torch.jit.save(torch.jit.script(model), 'model.pt')"),
])
def test_a_text_file_named_like_a_keras_or_torchscript_model_says_so(tmp_path, capsys, name, expected):
    fake = tmp_path / name
    fake.write_text(u"<html>404 not found</html>\n")
    argv = ["export", str(fake), "-o", str(tmp_path / "m.onnx"), "--input-shape", "1,3,8,8", "-q"]
    assert main(argv) == EXIT_ERROR
    line = error_line(capsys, "export")
    assert line.endswith("{} {}".format(fake, expected)) and "File not found" not in line
    if name == "model.keras":
        assert main(["verify", str(fake), flatten_model(tmp_path / "good.onnx"), "-q"]) == EXIT_ERROR
        assert error_line(capsys, "verify").endswith("{} {}".format(fake, expected))
    assert not os.path.exists(str(tmp_path / "m.onnx"))


# --- TensorFlow ops that tf2onnx left in the graph --------------------------------------------------

def tf_ops_model(path):
    """What tf2onnx writes for Keras 3's XLA-compiled grouped Conv2D and exact GELU: the TF ops as they
    were, with TensorFlow's own attributes (a serialized function, not UTF-8 text)."""
    call = helper.make_node("StatefulPartitionedCall", ["x"], ["conv"], name="model/conv2d/StatefulPartitionedCall",
                            f=b"\x0a\x82\x01binary function", _XlaMustCompile=1)
    erfc = helper.make_node("Erfc", ["conv"], ["y"], name="model/activation/Gelu/Erfc")
    graph = helper.make_graph([call, erfc], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return str(path)


def test_fix_refuses_tensorflow_ops_by_name_instead_of_a_codec_error(tmp_path, capsys):
    source = tf_ops_model(tmp_path / "convnext.onnx")
    assert main(["fix", source, "--target", "trt10", "-o", str(tmp_path / "fixed.onnx"), "-q"]) == EXIT_ERROR
    line = error_line(capsys, "fix")
    assert "utf-8" not in line and not os.path.exists(str(tmp_path / "fixed.onnx"))
    assert "{}: tf2onnx left TensorFlow ops that are not ONNX".format(source) in line
    assert "Erfc x1 (model/activation/Gelu/Erfc)" in line
    assert "StatefulPartitionedCall x1 (model/conv2d/StatefulPartitionedCall): a TensorFlow function" in line
    assert "KERAS_BACKEND=torch" in line


def test_only_default_domain_ops_unknown_to_onnx_count_as_left_by_tf2onnx(tmp_path):
    from converter.model_files import tf_ops_left

    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("TFL_Convolution2DTransposeBias", ["a"], ["b"], name="tfl"),   # `fix` repairs it
             helper.make_node("EfficientNMS_TRT", ["b"], ["c"], name="nms"),                 # a TensorRT plugin
             helper.make_node("Custom", ["c"], ["d"], name="custom", domain="com.example"),
             helper.make_node("Erfc", ["d"], ["e"], name="erfc"),
             helper.make_node("If", ["cond"], ["y"], name="if",
                              then_branch=helper.make_graph([helper.make_node("BiasAdd", ["e"], ["t"], name="inner")],
                                                            "then", [], [helper.make_tensor_value_info(
                                                                "t", TensorProto.FLOAT, None)]),
                              else_branch=helper.make_graph([helper.make_node("Identity", ["e"], ["f"])], "else", [],
                                                            [helper.make_tensor_value_info(
                                                                "f", TensorProto.FLOAT, None)]))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert tf_ops_left(model) == {"Erfc": ["erfc"], "BiasAdd": ["inner"]}


def grouped_conv_keras(path):
    """Keras 3, TensorFlow backend: a grouped Conv2D (which Keras compiles with XLA, as in ConvNeXt's
    depthwise convolutions) and the exact GELU: tf2onnx leaves StatefulPartitionedCall and Erfc."""
    keras = pytest.importorskip("keras")
    if keras.config.backend() != "tensorflow":
        pytest.skip("the case is Keras 3 on its TensorFlow backend")
    inputs = keras.Input((16, 16, 4))
    x = keras.layers.Conv2D(4, 3, padding="same", groups=4)(inputs)
    x = keras.layers.Activation("gelu")(x)
    keras.Model(inputs, x).save(str(path))
    return str(path)


@pytest.mark.slow
def test_export_names_the_tensorflow_ops_tf2onnx_left_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("tf2onnx")
    source = grouped_conv_keras(tmp_path / "grouped.keras")
    output = str(tmp_path / "grouped.onnx")
    assert main(["export", source, "--target", "trt10", "-o", output, "-q"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [line for line in err.splitlines() if line.startswith("convert export: error: ")]
    assert "{}: tf2onnx left TensorFlow ops that are not ONNX".format(source) in line
    assert re.search(r"StatefulPartitionedCall x1 \([^)]*conv2d[^)]*StatefulPartitionedCall\): a TensorFlow "
                     r"function tf2onnx could not inline", line), line
    assert re.search(r"Erfc x1 \([^)]*Gelu/Erfc\): from the exact GELU", line), line
    assert sorted(os.listdir(str(tmp_path))) == ["grouped.keras"]
    # The workaround it names, run as given: Keras's PyTorch backend exports ONNX ops that check accepts.
    pytest.importorskip("torch")
    script = re.search(r'KERAS_BACKEND=torch python -c "([^"]+)", then `convert export (\S+)`', line)
    assert script and "load_model('{}')".format(source) in script.group(1) and "shape=(1, 16, 16, 4)" in line, line
    completed = subprocess.run([sys.executable, "-c", script.group(1)], cwd=str(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, universal_newlines=True,
                               env=dict(os.environ, KERAS_BACKEND="torch"))
    assert completed.returncode == 0, completed.stdout
    assert main(["export", script.group(2), "--target", "trt10", "-o", output, "-q"]) == EXIT_OK
    assert main(["check", output, "--target", "trt10", "-q"]) == EXIT_OK


# --- the dynamic-input error gives the option to pass -----------------------------------------------

def test_a_dynamic_input_error_gives_the_exact_input_shape_option(tmp_path, capsys):
    source = relu_model(tmp_path / "dyn.onnx", shape=("N", 3, "H", "W"))
    fixed = str(tmp_path / "dyn.fixed.onnx")
    assert main(["fix", source, "--target", "jetson-nano", "-o", fixed, "-q"]) == EXIT_ERROR
    line = error_line(capsys, "fix")
    match = re.search(r"pass --input-shape image:1,3,H,W with the size the model runs at \(e\.g\. --input-shape "
                      r"(image:1,3,320,320)\)", line)
    assert match, line
    assert main(["fix", source, "--target", "jetson-nano", "-o", fixed, "-q", "--input-shape", match.group(1)]) == 0
    assert main(["check", fixed, "--target", "jetson-nano", "-q"]) == EXIT_OK


# --- exit statuses: 0 ok, 1 check / verify / a step failed, 2 bad input or usage, per command ------

def custom_op_model(path):
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return str(path)


def _exit_cases(tmp_path):
    """{command: {status: argv}}: one run of each outcome the command has."""
    passing = flatten_model(tmp_path / "pass.onnx", opset=13)
    failing = flatten_model(tmp_path / "fail.onnx")                 # opset 15, no allowzero: fails on the Nano
    other = flatten_model(tmp_path / "other.onnx", opset=13, scale=1.5)
    unknown = custom_op_model(tmp_path / "custom.onnx")              # check fails after fix; verify cannot run it
    missing = str(tmp_path / "missing.onnx")
    return {
        "check": {EXIT_OK: ["check", passing], EXIT_FAILED: ["check", failing], EXIT_ERROR: ["check", missing]},
        "inspect": {EXIT_OK: ["inspect", passing], EXIT_FAILED: ["inspect", failing],
                    EXIT_ERROR: ["inspect", missing]},
        "verify": {EXIT_OK: ["verify", passing, passing], EXIT_FAILED: ["verify", passing, other],
                   EXIT_ERROR: ["verify", passing, missing]},
        "fix": {EXIT_OK: ["fix", failing, "-o", str(tmp_path / "fixed.onnx")],
                EXIT_ERROR: ["fix", failing, "-o", failing]},
        "export": {EXIT_OK: ["export", passing, "-o", str(tmp_path / "exported.onnx")],
                   EXIT_ERROR: ["export", missing, "-o", str(tmp_path / "exported2.onnx")]},
        "all": {EXIT_OK: ["all", passing, "-o", str(tmp_path / "all_ok")],
                EXIT_FAILED: ["all", unknown, "-o", str(tmp_path / "all_failed")],
                EXIT_ERROR: ["all", missing, "-o", str(tmp_path / "all_error")]},
        "build": {EXIT_ERROR: ["build", missing]},
    }


def _uses_target(argv):
    return argv[0] in ("check", "inspect", "fix", "export", "all")


def test_every_command_exits_0_ok_1_failed_2_bad_input(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)            # `all` skips its build step on a host
    monkeypatch.delenv("TRT_INFER_TENSORRT_MODULE", raising=False)
    cases = _exit_cases(tmp_path)
    assert sorted(cases) == sorted(command.name for command in cli.COMMANDS)
    for command, outcomes in sorted(cases.items()):
        for status, argv in sorted(outcomes.items()):
            argv = argv + (["--target", "jetson-nano"] if _uses_target(argv) else []) + ["-q"]
            assert main(argv) == status, (argv, capsys.readouterr())
            captured = capsys.readouterr()
            assert "Traceback" not in captured.err
            if status == EXIT_ERROR:
                assert len(captured.err.splitlines()) == 1 and "error: " in captured.err, captured.err


def test_build_exits_1_when_tensorrt_rejects_the_graph(tmp_path, capsys):
    pytest.importorskip("tensorrt_rtx_bindings", reason="needs TensorRT-RTX to build on a host")
    source = custom_op_model(tmp_path / "odd.onnx")
    assert main(["build", source, "--trt-module", "tensorrt_rtx_bindings", "-q"]) == EXIT_FAILED
    assert "TensorRT's ONNX parser rejected the model" in capsys.readouterr().err
    assert main(["build", relu_model(tmp_path / "ok.onnx"), "--trt-module", "tensorrt_rtx_bindings", "-q",
                 "--precision", "fp32"]) == EXIT_OK


def test_the_exit_statuses_are_a_table_in_the_converting_doc():
    with open(os.path.join(REPO_ROOT, "docs", "converting.md")) as handle:
        text = handle.read()
    section = text[text.index("## Exit status"):]
    section = section[:section.index("\n## ", 1)]
    rows = dict((int(match.group(1)), match.group(2)) for match in re.finditer(r"^\| `(\d)` \| (.*) \|$", section,
                                                                             re.MULTILINE))
    assert sorted(rows) == [EXIT_OK, EXIT_FAILED, EXIT_ERROR]
    for command in cli.COMMANDS:
        assert "`{}`".format(command.name) in section, command.name
