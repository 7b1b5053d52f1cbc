"""The ONNX Runtime backend on small real ONNX models built here with onnx.helper."""
import os

import numpy as np
import pytest

from trt_infer.backends import TensorInfo, backend_kind_for, load_backend

onnx = pytest.importorskip("onnx", reason="the test models are built with onnx.helper")
pytest.importorskip("onnxruntime", reason="needs ONNX Runtime (absent from the Python 3.6 environment)")

from onnx import TensorProto, helper  # noqa: E402


def save_model(path, nodes, inputs, outputs, initializers=()):
    """Write a small ONNX model (opset 13); inputs/outputs are (name, elem_type, shape) triples."""
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info(name, kind, shape) for name, kind, shape in inputs],
        [helper.make_tensor_value_info(name, kind, shape) for name, kind, shape in outputs],
        initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def scaled_model(path, shape=(1, 3, 4, 4)):
    """y = 2 * x + 1, plus the index of each row's maximum as int64 (an output of another dtype)."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    nodes = [helper.make_node("Mul", ["x", "two"], ["doubled"]),
             helper.make_node("Add", ["doubled", "one"], ["y"]),
             helper.make_node("ArgMax", ["x"], ["best"], axis=-1, keepdims=0)]
    best_shape = list(shape[:-1])
    return save_model(path, nodes, [("x", TensorProto.FLOAT, list(shape))],
                      [("y", TensorProto.FLOAT, list(shape)), ("best", TensorProto.INT64, best_shape)], [two, one])


def test_names_shapes_dtypes_and_inference_through_the_input_buffer(tmp_path):
    with load_backend(scaled_model(tmp_path / "scaled.onnx")) as backend:
        assert backend.inputs == [TensorInfo("x", (1, 3, 4, 4), np.float32)]
        assert [(info.name, info.dtype) for info in backend.outputs] == [("y", np.float32), ("best", np.int64)]
        assert backend.providers == ["CPUExecutionProvider"]
        buffer = backend.input_buffer("x")
        assert buffer is backend.input_buffer("x") and buffer.shape == (1, 3, 4, 4)
        buffer[...] = np.arange(48, dtype=np.float32).reshape(1, 3, 4, 4)[:, :, :, ::-1]
        outputs = backend.infer()
        np.testing.assert_array_equal(outputs["y"], 2 * buffer + 1)
        np.testing.assert_array_equal(outputs["best"], np.zeros((1, 3, 4)))
        explicit = np.ones((1, 3, 4, 4), np.float64)
        np.testing.assert_array_equal(backend.infer({"x": explicit})["y"], np.full((1, 3, 4, 4), 3.0))
    with pytest.raises(RuntimeError):
        backend.infer()


def test_open_batch_defaults_to_one_and_other_open_dimensions_need_input_shapes(tmp_path):
    batch_open = load_backend(scaled_model(tmp_path / "batch.onnx", ("N", 3, 4, 4)))
    assert batch_open.inputs[0].shape == (-1, 3, 4, 4) and not batch_open.inputs[0].is_static
    assert batch_open.input_buffer("x").shape == (1, 3, 4, 4)
    path = scaled_model(tmp_path / "open.onnx", ("N", 3, "H", "W"))
    with pytest.raises(ValueError) as error:
        load_backend(path).input_buffer("x")
    assert "input_shapes" in str(error.value) and "(-1, 3, -1, -1)" in str(error.value)
    sized = load_backend(path, input_shapes={"x": (1, 3, 8, 6)})
    assert sized.input_buffer("x").shape == (1, 3, 8, 6)
    np.testing.assert_array_equal(sized.infer()["y"], np.ones((1, 3, 8, 6)))
    with pytest.raises(ValueError) as error:
        load_backend(path, input_shapes={"x": (1, 4, 8, 6)})
    assert "(1, 4, 8, 6)" in str(error.value)


def test_unknown_names_are_errors_that_list_the_real_ones(tmp_path):
    backend = load_backend(scaled_model(tmp_path / "scaled.onnx"))
    with pytest.raises(KeyError) as error:
        backend.input_buffer("image")
    assert "'image'" in str(error.value) and "'x'" in str(error.value)
    with pytest.raises(KeyError):
        backend.infer({"image": np.zeros((1, 3, 4, 4), np.float32)})


def test_missing_corrupt_and_unnamed_files_are_clear_errors(tmp_path):
    missing = os.path.join(str(tmp_path), "absent.onnx")
    with pytest.raises(FileNotFoundError) as error:
        load_backend(missing)
    assert missing in str(error.value)
    good = scaled_model(tmp_path / "scaled.onnx")
    truncated = tmp_path / "truncated.onnx"
    with open(good, "rb") as handle:
        truncated.write_bytes(handle.read()[:60])
    with pytest.raises(ValueError) as error:
        load_backend(str(truncated))
    assert str(truncated) in str(error.value) and "convert all" in str(error.value)
    with pytest.raises(ValueError) as error:
        load_backend(os.path.join(str(tmp_path), "model.pb"))
    assert ".onnx" in str(error.value) and ".engine" in str(error.value)


def test_kind_is_chosen_from_the_suffix_or_given():
    assert backend_kind_for("a/model.ONNX") == "onnxruntime"
    assert backend_kind_for("model.plan") == backend_kind_for("model.engine") == "tensorrt"
    assert backend_kind_for("model.bin", kind="onnxruntime") == "onnxruntime"
    with pytest.raises(ValueError):
        backend_kind_for("model.onnx", kind="openvino")


def test_asking_for_an_absent_execution_provider_names_the_available_ones(tmp_path):
    import onnxruntime

    path = scaled_model(tmp_path / "scaled.onnx")
    absent = "NoSuchExecutionProvider"
    with pytest.raises(ValueError) as error:
        load_backend(path, providers=[absent, "CPUExecutionProvider"])
    assert absent in str(error.value)
    for provider in onnxruntime.get_available_providers():
        assert provider in str(error.value)
