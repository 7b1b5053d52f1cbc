"""`export`: every source format through its real exporter, at the target's opset, never overwriting."""
import hashlib
import logging
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the converter's host tools need onnx (absent in the Python 3.6 venv)")
pytest.importorskip("onnxruntime", reason="exports are checked in ONNX Runtime")

from converter.export import ExportError, detect_format, export, parse_shapes  # noqa: E402
from converter.targets import get_target  # noqa: E402

NANO, TRT10 = get_target("jetson-nano"), get_target("trt10")

TORCH_ENTRY = '''
import torch


def make():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    return net.eval(), torch.rand(1, 3, 16, 16)


def not_a_pair():
    return 42
'''


def opset_of(path):
    return max(entry.version for entry in onnx.load(path).opset_import if entry.domain in ("", "ai.onnx"))


def run_onnx(path, feeds):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def tiny_onnx(path, batch="N"):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3, 4, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return str(path)


@pytest.fixture
def entry_point(tmp_path):
    path = tmp_path / "net.py"
    path.write_text(TORCH_ENTRY)
    return str(path)


def test_formats_are_detected_and_unknown_ones_explained(tmp_path, entry_point):
    assert detect_format(entry_point + ":make") == "torch"
    assert detect_format(tiny_onnx(tmp_path / "m.onnx")) == "onnx"
    for name, expected in (("m.tflite", "tflite"), ("m.keras", "keras"), ("m.h5", "keras"), ("m.pt", "torchscript")):
        (tmp_path / name).write_bytes(b"")
        assert detect_format(str(tmp_path / name)) == expected
    (tmp_path / "m.pb2").write_bytes(b"")
    with pytest.raises(ExportError, match="unknown model format"):
        detect_format(str(tmp_path / "m.pb2"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(ExportError, match="saved_model.pb"):
        detect_format(str(tmp_path / "folder"))
    with pytest.raises(ExportError, match="does not exist"):
        detect_format(str(tmp_path / "missing.onnx"))


def test_output_equal_to_input_is_refused_and_the_input_untouched(tmp_path):
    source = tiny_onnx(tmp_path / "m.onnx")
    before = digest(source)
    with pytest.raises(ExportError, match="is the input"):
        export(source, source, NANO)
    assert digest(source) == before


def test_onnx_pass_through_renames_inputs_and_sets_static_shapes(tmp_path, caplog):
    source = tiny_onnx(tmp_path / "m.onnx")
    before = digest(source)
    with caplog.at_level(logging.INFO, logger="converter.export"):
        output = export(source, str(tmp_path / "out" / "m.onnx"), NANO, input_names=["image"],
                        input_shapes={"image": [1, 3, 4, 4]})
    assert ("converter.export", logging.INFO, "export: {} (onnx) -> {} at opset 13".format(source, output)) \
        in caplog.record_tuples
    model = onnx.load(output)
    assert [value.name for value in model.graph.input] == ["image"]
    assert [dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 4, 4]
    assert model.graph.node[0].input[0] == "image"
    x = np.random.RandomState(0).uniform(-1, 1, (1, 3, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(run_onnx(output, {"image": x})[0], np.maximum(x, 0))
    assert digest(source) == before


def test_bad_names_and_shapes_are_explained(tmp_path):
    source = tiny_onnx(tmp_path / "m.onnx", batch=2)
    with pytest.raises(ExportError, match="2 names for 1 inputs"):
        export(source, str(tmp_path / "a.onnx"), NANO, input_names=["a", "b"])
    with pytest.raises(ExportError, match="not an input"):
        export(source, str(tmp_path / "b.onnx"), NANO, input_shapes={"image": [2, 3, 4, 4]})
    with pytest.raises(ExportError, match="conflicts"):
        export(source, str(tmp_path / "c.onnx"), NANO, input_shapes={None: [1, 3, 4, 4]})
    with pytest.raises(ExportError, match="3 dimensions"):
        export(source, str(tmp_path / "d.onnx"), NANO, input_shapes={"x": [2, 3, 4]})
    with pytest.raises(ExportError, match="above what jetson-nano accepts"):
        export(source, str(tmp_path / "e.onnx"), NANO, opset=17)


def test_parse_shapes():
    assert parse_shapes(["image:1,3,8,8", "2x4"]) == {"image": [1, 3, 8, 8], None: [2, 4]}
    with pytest.raises(ExportError, match="expected NAME"):
        parse_shapes(["image:1,a"])


def torch_reference(entry_point):
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("reference_net", entry_point)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net, example = module.make()
    with torch.no_grad():
        return example.numpy(), net(example).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("target,opset", [(NANO, 13), (TRT10, 18)])
def test_torch_entry_point_exports_at_the_targets_opset(tmp_path, entry_point, target, opset):
    pytest.importorskip("torch")
    output = export(entry_point + ":make", str(tmp_path / "net.onnx"), target, opset=opset if opset != 13 else None)
    assert opset_of(output) == opset
    assert sorted(os.listdir(str(tmp_path))) == ["net.onnx", "net.py"]   # no partial or external-data leftovers
    example, expected = torch_reference(entry_point)
    np.testing.assert_allclose(run_onnx(output, {"input": example})[0], expected, atol=1e-5)


@pytest.mark.slow
def test_torch_entry_point_errors(tmp_path, entry_point):
    pytest.importorskip("torch")
    with pytest.raises(ExportError, match="defines no 'missing'"):
        export(entry_point + ":missing", str(tmp_path / "a.onnx"), NANO)
    with pytest.raises(ExportError, match="expected \\(torch module, example input\\)"):
        export(entry_point + ":not_a_pair", str(tmp_path / "b.onnx"), NANO)
    with pytest.raises(ExportError, match="NCHW already"):
        export(entry_point + ":make", str(tmp_path / "c.onnx"), NANO, inputs_as_nchw=["input"])


@pytest.mark.slow
def test_torchscript_needs_and_uses_the_input_shape(tmp_path, entry_point):
    torch = pytest.importorskip("torch")
    import importlib.util

    spec = importlib.util.spec_from_file_location("scripted_net", entry_point)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net, example = module.make()
    scripted = str(tmp_path / "net.pt")
    torch.jit.trace(net, example).save(scripted)
    with pytest.raises(ExportError, match="--input-shape"):
        export(scripted, str(tmp_path / "a.onnx"), NANO)
    output = export(scripted, str(tmp_path / "b.onnx"), NANO, input_shapes={None: [1, 3, 16, 16]})
    assert opset_of(output) == 13
    with torch.no_grad():
        expected = net(example).numpy()
    np.testing.assert_allclose(run_onnx(output, {"input": example.numpy()})[0], expected, atol=1e-5)


@pytest.mark.slow
def test_keras_export_with_nchw_input_matches_keras(tmp_path):
    keras = pytest.importorskip("keras")
    from tests.test_field_failures import UNET_INPUT, build_unet, cached

    source = cached(build_unet, ".keras")
    output = export(source, str(tmp_path / "unet.onnx"), NANO, inputs_as_nchw=["image"])
    model = onnx.load(output)
    assert opset_of(output) == 13
    assert [dim.dim_value for dim in model.graph.input[0].type.tensor_type.shape.dim][1:] == [3, 32, 32]
    image = np.random.RandomState(3).uniform(0, 1, UNET_INPUT).astype(np.float32)
    expected = np.asarray(keras.models.load_model(source, compile=False)(image))
    actual = run_onnx(output, {"image": image.transpose(0, 3, 1, 2)})[0]
    np.testing.assert_allclose(actual, expected, atol=1e-4)


@pytest.mark.slow
def test_tflite_export_renames_the_input_and_matches_the_interpreter(tmp_path):
    from converter.verify import verify
    from tests.support.models import mediapipe_model

    source = mediapipe_model("blazeface")
    output = export(source, str(tmp_path / "face.onnx"), NANO, input_names=["image"])
    assert [value.name for value in onnx.load(output).graph.input] == ["image"] and opset_of(output) == 13
    result = verify(source, output)
    assert result.passed and sorted(row.name for row in result.outputs) == ["classificators", "regressors"]
