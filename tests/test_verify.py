"""`verify`: ONNX Runtime on reference and fixed graphs, input dtype mapping, per-output errors."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the converter's host tools need onnx (absent in the Python 3.6 venv)")
pytest.importorskip("onnxruntime", reason="verify runs ONNX Runtime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from converter.verify import compare, verify  # noqa: E402


def save(tmp_path, name, nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = str(tmp_path / (name + ".onnx"))
    onnx.save(model, path)
    return path


def value(name, dtype=TensorProto.FLOAT, shape=(1, 4, 4, 3)):
    return helper.make_tensor_value_info(name, dtype, list(shape))


def const(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)


def normalising_graph(tmp_path, name, input_dtype, offset=127.5, batch=1):
    """image -> (x - offset) / 127.5, with the Cast a uint8 input needs."""
    nodes, source = [], "image"
    if input_dtype == TensorProto.UINT8:
        nodes.append(helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT))
        source = "image_f"
    nodes += [helper.make_node("Sub", [source, "offset"], ["centred"]),
              helper.make_node("Div", ["centred", "scale"], ["normalised"])]
    return save(tmp_path, name, nodes, [value("image", input_dtype, (batch, 4, 4, 3))],
                [value("normalised", shape=(batch, 4, 4, 3))], [const("offset", offset), const("scale", 127.5)])


def test_identical_graphs_pass_with_zero_error(tmp_path):
    path = normalising_graph(tmp_path, "same", TensorProto.FLOAT)
    result = verify(path, path, runs=2)
    assert result.passed and result.outputs[0].max_abs == 0.0 and result.runs == 2


def test_uint8_input_is_fed_as_float32_with_the_same_values(tmp_path):
    original = normalising_graph(tmp_path, "original", TensorProto.UINT8)
    fixed = normalising_graph(tmp_path, "fixed", TensorProto.FLOAT)
    result = verify(original, fixed)
    assert result.passed and result.outputs[0].max_abs < 1e-6


def test_a_numeric_change_fails_past_the_tolerance_and_reports_its_size(tmp_path):
    original = normalising_graph(tmp_path, "original", TensorProto.FLOAT)
    shift = 0.5
    changed = normalising_graph(tmp_path, "changed", TensorProto.FLOAT, offset=127.5 - shift)
    result = verify(original, changed)
    row = result.outputs[0]
    assert not result.passed and not row.ok
    assert abs(row.max_abs - shift / 127.5) < 1e-6
    assert verify(original, changed, atol=0.01).passed


def relu_or_identity(tmp_path, op):
    return save(tmp_path, op, [helper.make_node(op, ["x"], ["y"])], [value("x", shape=(2, 3))],
                [value("y", shape=(2, 3))])


def test_given_npz_inputs_are_used(tmp_path):
    relu, identity = relu_or_identity(tmp_path, "Relu"), relu_or_identity(tmp_path, "Identity")
    assert verify(relu, identity).passed        # seeded random inputs are in [0, 1): both agree there
    negatives = str(tmp_path / "inputs.npz")
    np.savez(negatives, x=-np.ones((2, 3), np.float32))
    result = verify(relu, identity, inputs=negatives)
    assert not result.passed and result.outputs[0].max_abs == 1.0


def test_outputs_the_fixed_graph_exposes_from_inside_the_reference_are_compared(tmp_path):
    # The reference goes on past "decoded" (as a graph goes on into NMS); the fixed graph stops there.
    reference = save(tmp_path, "reference",
                     [helper.make_node("Mul", ["x", "two"], ["decoded"]),
                      helper.make_node("Relu", ["decoded"], ["final"])],
                     [value("x", shape=(2, 3))], [value("final", shape=(2, 3))], [const("two", 2.0)])
    stripped = save(tmp_path, "stripped", [helper.make_node("Mul", ["x", "two"], ["decoded"])],
                    [value("x", shape=(2, 3))], [value("decoded", shape=(2, 3))], [const("two", 2.0)])
    result = verify(reference, stripped)
    assert [row.name for row in result.outputs] == ["decoded"] and result.passed and not result.not_compared


def test_dynamic_reference_dimensions_take_the_fixed_graphs_sizes(tmp_path):
    original = normalising_graph(tmp_path, "dynamic", TensorProto.UINT8, batch="N")
    fixed = normalising_graph(tmp_path, "static", TensorProto.FLOAT, batch=1)
    result = verify(original, fixed)
    assert result.passed and result.outputs[0].shape == (1, 4, 4, 3)


def test_shape_mismatch_fails_with_a_note(tmp_path):
    a = save(tmp_path, "a", [helper.make_node("Identity", ["x"], ["y"])], [value("x", shape=(2, 3))],
             [value("y", shape=(2, 3))])
    b = save(tmp_path, "b", [helper.make_node("Flatten", ["x"], ["y"], axis=0)], [value("x", shape=(2, 3))],
             [value("y", shape=(1, 6))])
    result = verify(a, b)
    assert not result.passed and "shape" in result.outputs[0].note


def test_compare_follows_allclose():
    expected = np.array([1.0, 100.0])
    assert compare(expected, expected + [0.0005, 0.05], atol=1e-3, rtol=1e-3)[2]
    max_abs, max_rel, ok = compare(expected, expected + [0.0, 0.2], atol=1e-3, rtol=1e-3)
    assert not ok and abs(max_abs - 0.2) < 1e-12 and abs(max_rel - 0.002) < 1e-12
