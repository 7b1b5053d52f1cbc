"""tflite_custom_ops and hardswish on MediaPipe's TFLite models as tf2onnx converts them."""
import numpy as np
import pytest

from tests.test_fixes_common import (assert_same_outputs, cached_onnx, op_types, random_feeds, run_ort,
                                     tensorrt_parse_errors)

onnx = pytest.importorskip("onnx")
from converter.fixes import run_fixes  # noqa: E402
from converter.fixes.tflite_custom_ops import OP  # noqa: E402
from converter.targets import get_target  # noqa: E402
from tests.support.models import sample_image_bgr, tflite_to_onnx  # noqa: E402

NANO = get_target("jetson-nano")
SELFIE_PASSES = ["hardswish", "tflite_custom_ops"]


@pytest.fixture(scope="module")
def selfie_onnx():
    return onnx.load(tflite_to_onnx("selfie_segmentation"))


@pytest.fixture(scope="module")
def selfie_fixed(selfie_onnx):
    return run_fixes(selfie_onnx, NANO, passes=SELFIE_PASSES)


def _mediapipe_same_output(size, kernel, stride):
    """Output size of MediaPipe's kernel with SAME padding (its Prepare(), transpose_conv_bias.cc)."""
    return stride * (size - 1) + kernel - max(0, kernel - (size - 1) % stride - 1)


def _custom_op_model(in_hw, kernel, stride, in_channels=3, out_channels=2, seed=0):
    """A graph holding only MediaPipe's op as tf2onnx leaves it (NHWC in and out, OHWI weights)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(seed)
    weights = rng.normal(size=(out_channels, kernel, kernel, in_channels)).astype(np.float32)
    bias = rng.normal(size=(out_channels,)).astype(np.float32)
    out_hw = [_mediapipe_same_output(size, kernel, stride) for size in in_hw]
    node = helper.make_node(OP, ["x", "w", "b"], ["y"], name="up")
    graph = helper.make_graph(
        [node], "custom", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1] + list(in_hw) + [in_channels])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1] + out_hw + [out_channels])],
        initializer=[numpy_helper.from_array(weights, "w"), numpy_helper.from_array(bias, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), weights, bias


def _tf_transpose_conv(x_nhwc, weights_ohwi, bias, stride, out_hw):
    """TensorFlow's own transposed convolution (SAME padding), the op MediaPipe's kernel copies."""
    tf = pytest.importorskip("tensorflow")
    filters = weights_ohwi.transpose(1, 2, 0, 3)  # TF wants [kh, kw, out, in]
    shape = [x_nhwc.shape[0], out_hw[0], out_hw[1], weights_ohwi.shape[0]]
    y = tf.nn.conv2d_transpose(x_nhwc, filters, output_shape=shape, strides=stride, padding="SAME")
    return y.numpy() + bias


@pytest.mark.parametrize("in_hw,kernel,stride", [((8, 8), 2, 2), ((7, 9), 3, 2), ((6, 6), 4, 2), ((5, 5), 3, 3)])
def test_custom_transpose_conv_matches_tensorflow(in_hw, kernel, stride):
    model, weights, bias = _custom_op_model(in_hw, kernel, stride)
    fixed, reports = run_fixes(model, NANO, passes=["tflite_custom_ops"])
    assert [report.nodes for report in reports] == [["up"]]
    assert OP not in op_types(fixed) and "ConvTranspose" in op_types(fixed)
    onnx.checker.check_model(fixed, full_check=True)
    x = np.random.RandomState(1).normal(size=(1,) + in_hw + (3,)).astype(np.float32)
    got = run_ort(fixed, {"x": x})["y"]
    expected = _tf_transpose_conv(x, weights, bias, stride, [_mediapipe_same_output(size, kernel, stride)
                                                             for size in in_hw])
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_ambiguous_custom_op_shapes_are_an_error_not_a_guess():
    from converter.fixes import FixError
    from converter.fixes.tflite_custom_ops import recover_options

    # 1x1 input to 3x3 output with a 3x3 kernel: VALID with any stride, or SAME with stride 3.
    with pytest.raises(FixError) as error:
        recover_options(type("N", (), {"name": "up", "op": OP})(), (1, 1), (3, 3), (3, 3))
    assert "up" in str(error.value) and "settings" in str(error.value)


def test_selfie_segmentation_becomes_standard_opset13(selfie_onnx, selfie_fixed):
    fixed, reports = selfie_fixed
    by_pass = {report.pass_name: report.nodes for report in reports}
    hardswish_nodes = [node.name for node in selfie_onnx.graph.node if node.op_type == "HardSwish"]
    assert len(hardswish_nodes) == 11 and sorted(by_pass["hardswish"]) == sorted(hardswish_nodes)
    assert by_pass["tflite_custom_ops"] == ["segment"]
    assert "HardSwish" not in op_types(fixed) and OP not in op_types(fixed)
    assert [entry.version for entry in fixed.opset_import if entry.domain in ("", "ai.onnx")] == [13]
    onnx.checker.check_model(fixed, full_check=True)
    assert tensorrt_parse_errors(fixed) == []


def _selfie_input(name):
    import cv2

    rgb = cv2.resize(sample_image_bgr(name), (256, 256), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    return (rgb.astype(np.float32) / 255.0)[None]


def test_selfie_mask_finds_the_astronaut_not_the_background(selfie_fixed):
    mask = run_ort(selfie_fixed[0], {"input_1": _selfie_input("astronaut")})["activation_10"][0, :, :, 0]
    face = mask[15:65, 90:135]          # her face and hair, in the 256x256 input
    flag = mask[0:100, 0:25]            # the flag on the left
    rocket = mask[0:110, 200:240]       # the model shuttle on the right
    assert face.mean() > 0.9
    assert flag.mean() < 0.1 and rocket.mean() < 0.1


def test_selfie_upsampling_equals_tensorflow_on_the_real_activations(selfie_onnx, selfie_fixed):
    """The replaced op, fed the network's real activations for a photo, gives TF's transposed conv."""
    import onnx_graphsurgeon as gs
    from onnx import numpy_helper

    fixed = selfie_fixed[0]
    conv = next(node for node in fixed.graph.node if node.op_type == "ConvTranspose")
    custom = next(node for node in selfie_onnx.graph.node if node.op_type == OP)
    graph = gs.import_onnx(fixed)
    tensors = graph.tensors()
    graph.outputs = [tensors[conv.input[0]].to_variable(dtype=np.float32),
                     tensors["segment"].to_variable(dtype=np.float32)]
    outputs = run_ort(gs.export_onnx(graph.cleanup()), {"input_1": _selfie_input("astronaut")})
    activations_nchw, segment = outputs[conv.input[0]], outputs["segment"]
    initializers = {init.name: numpy_helper.to_array(init) for init in selfie_onnx.graph.initializer}
    expected = _tf_transpose_conv(activations_nchw.transpose(0, 2, 3, 1), initializers[custom.input[1]],
                                  initializers[custom.input[2]], 2, segment.shape[1:3])
    np.testing.assert_allclose(segment, expected, atol=1e-4, rtol=1e-4)


def test_selfie_fixed_graph_equals_tflite_on_a_photo(selfie_fixed):
    """TFLite's interpreter runs MediaPipe's op through its XNNPACK delegate: the whole fixed graph
    gives the original model's mask on a real image."""
    tf = pytest.importorskip("tensorflow")
    from tests.support.models import mediapipe_model

    interpreter = tf.lite.Interpreter(model_path=mediapipe_model("selfie_segmentation"))
    interpreter.allocate_tensors()
    image = _selfie_input("astronaut")
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image)
    interpreter.invoke()
    expected = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    got = run_ort(selfie_fixed[0], {"input_1": image})["activation_10"]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_blazeface_needs_neither_pass():
    model = onnx.load(tflite_to_onnx("blazeface"))
    fixed, reports = run_fixes(model, NANO, passes=SELFIE_PASSES)
    assert reports == []
    assert op_types(fixed) == op_types(model)


def _torch_hardswish_opset14():
    torch = pytest.importorskip("torch")
    import io

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return torch.nn.functional.hardswish(self.conv(x))

    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.onnx.export(Net().eval(), torch.zeros(1, 3, 16, 16), buffer, opset_version=14, dynamo=False,
                      input_names=["x"], output_names=["y"])
    return onnx.load_from_string(buffer.getvalue())


def test_hardswish_from_torch_keeps_its_numerics():
    model = cached_onnx(_torch_hardswish_opset14)
    assert "HardSwish" in op_types(model)
    fixed, reports = run_fixes(model, NANO, passes=["hardswish", "convert_opset"])
    assert [report.pass_name for report in reports] == ["hardswish", "convert_opset"]
    assert "HardSwish" not in op_types(fixed)
    onnx.checker.check_model(fixed, full_check=True)
    assert_same_outputs(model, fixed, random_feeds(model, low=-6.0, high=6.0))


def test_hardswish_is_left_where_the_target_has_it():
    model = cached_onnx(_torch_hardswish_opset14)
    fixed, reports = run_fixes(model, get_target("trt10"), passes=["hardswish"])
    assert reports == [] and "HardSwish" in op_types(fixed)
