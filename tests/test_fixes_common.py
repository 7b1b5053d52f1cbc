"""run_fixes itself, and the helpers the other tests/test_fixes_*.py modules share."""
import hashlib
import inspect
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the fix passes need onnx (host side)")
pytest.importorskip("onnx_graphsurgeon", reason="the fix passes need onnx-graphsurgeon (host side)")
ort = pytest.importorskip("onnxruntime", reason="numerics are compared in ONNX Runtime")

from converter.fixes import FixError, PASS_NAMES, run_fixes  # noqa: E402
from converter.targets import get_target  # noqa: E402
from tests.support.models import CACHE_DIR  # noqa: E402


# ---- helpers shared by the fix tests -------------------------------------------------------------

def cached_onnx(build):
    """The ONNX model `build()` returns (a real exporter run), cached by the builder's source code."""
    key = hashlib.sha256(inspect.getsource(build).encode("utf-8")).hexdigest()[:16]
    path = os.path.join(CACHE_DIR, "fixes-{}-{}.onnx".format(build.__name__, key))
    if not os.path.isfile(path):
        os.makedirs(CACHE_DIR, exist_ok=True)
        partial = path + ".partial"
        onnx.save(build(), partial)
        os.replace(partial, path)
    return onnx.load(path)


def run_ort(model, feeds):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def random_feeds(model, seed=0, low=0.0, high=1.0):
    """Random inputs for every graph input (uint8 inputs get 0..255), by the model's declared shapes."""
    rng = np.random.RandomState(seed)
    initializers = {init.name for init in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        shape = [dim.dim_value if dim.dim_value > 0 else 1 for dim in tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)
        if dtype == np.uint8:
            feeds[value.name] = rng.randint(0, 256, size=shape).astype(np.uint8)
        elif np.issubdtype(dtype, np.integer):
            feeds[value.name] = rng.randint(0, 4, size=shape).astype(dtype)
        else:
            feeds[value.name] = rng.uniform(low, high, size=shape).astype(dtype)
    return feeds


def input_dtypes(model):
    return {value.name: onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
            for value in model.graph.input}


def assert_same_outputs(before, after, feeds, atol=1e-5, rtol=1e-4):
    """The fixed graph computes what the original did: same output names and values."""
    fixed_dtypes = input_dtypes(after)
    expected = run_ort(before, feeds)
    got = run_ort(after, {name: value.astype(fixed_dtypes[name]) for name, value in feeds.items()})
    assert sorted(got) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=atol, rtol=rtol, err_msg=name)


def op_types(model):
    return sorted(node.op_type for node in model.graph.node)


def tensorrt_parse_errors(model):
    """Errors of the real TensorRT-RTX ONNX parser (TensorRT 10 API) on `model`; [] when it parses."""
    trt = pytest.importorskip("tensorrt_rtx_bindings", reason="TensorRT-RTX confirms that fixed graphs parse")
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if parser.parse(model.SerializeToString()):
        return []
    return [str(parser.get_error(index)) for index in range(parser.num_errors)] or ["parse failed"]


def node_names(model):
    return {node.name for node in model.graph.node}


# ---- tests of run_fixes -------------------------------------------------------------------------

def _tiny_uint8_model():
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Cast", ["image"], ["image_f"], name="to_float", to=TensorProto.FLOAT),
             helper.make_node("Relu", ["image_f"], ["out"], name="relu")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_input_model_is_left_untouched():
    model = _tiny_uint8_model()
    original = model.SerializeToString()
    fixed, reports = run_fixes(model, get_target("jetson-nano"))
    assert model.SerializeToString() == original
    assert [report.pass_name for report in reports] == ["inputs_to_float"]
    assert input_dtypes(fixed)["image"] == np.float32


def test_a_second_run_changes_nothing():
    fixed, _ = run_fixes(_tiny_uint8_model(), get_target("jetson-nano"))
    again, reports = run_fixes(fixed, get_target("jetson-nano"))
    assert reports == []
    assert op_types(again) == op_types(fixed)


def test_unknown_pass_name_is_refused_with_the_known_names():
    with pytest.raises(ValueError) as error:
        run_fixes(_tiny_uint8_model(), get_target("jetson-nano"), passes=["hard_swish"])
    assert "hard_swish" in str(error.value) and "hardswish" in str(error.value)


def test_passes_that_never_settle_are_an_error(monkeypatch):
    import converter.fixes as fixes
    from converter.fixes import FixReport

    def fix_flip(graph, target, context):
        node = graph.nodes[-1]
        node.op = "Sigmoid" if node.op == "Relu" else "Relu"
        return [FixReport("flip", [node.name], "flip")]

    monkeypatch.setattr(fixes, "PASSES", (("flip", "unused"),))
    monkeypatch.setattr(fixes, "PASS_NAMES", ("flip",))
    monkeypatch.setattr(fixes, "_load_pass", lambda name, module: fix_flip)
    with pytest.raises(FixError) as error:
        run_fixes(_tiny_uint8_model(), get_target("jetson-nano"))
    assert "did not settle" in str(error.value) and "flip" in str(error.value)


def test_pass_names_are_the_ones_check_refers_to():
    assert set(PASS_NAMES) >= {"inputs_to_float", "int64_inputs", "fold_constants", "static_shapes",
                               "convert_opset", "reshape_allowzero", "hardswish", "reduce_axes", "resize_scales",
                               "resize_mode", "tflite_custom_ops", "strip_preprocessing", "strip_nms",
                               "insert_nms_plugin"}
