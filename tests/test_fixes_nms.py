"""strip_nms, insert_nms_plugin and strip_preprocessing on a TF detector exported by tf2onnx: uint8
image input, in-graph normalisation, anchor decoding and tf.image.combined_non_max_suppression."""
import copy

import numpy as np
import pytest

from tests.test_fixes_common import cached_onnx, input_dtypes, op_types, random_feeds, run_ort, tensorrt_parse_errors

onnx = pytest.importorskip("onnx")
from converter.fixes import FixError, run_fixes  # noqa: E402
from converter.fixes.nms_plugin import OUTPUTS  # noqa: E402
from converter.targets import get_target  # noqa: E402

NANO = get_target("jetson-nano")
NUM_ANCHORS, NUM_CLASSES = 64, 3


def _detector_anchors():
    rng = np.random.RandomState(0)
    return np.concatenate([rng.uniform(0.2, 0.8, (NUM_ANCHORS, 2)), rng.uniform(0.1, 0.3, (NUM_ANCHORS, 2))],
                          axis=1).astype(np.float32)  # cy, cx, h, w


def _tf_detector():
    tf = pytest.importorskip("tensorflow")
    tf2onnx = pytest.importorskip("tf2onnx")
    rng = np.random.RandomState(1)
    anchors = _detector_anchors()
    kernel = rng.normal(scale=0.3, size=(3, 3, 3, (NUM_ANCHORS // 16) * (4 + NUM_CLASSES))).astype(np.float32)
    signature = (tf.TensorSpec((1, 32, 32, 3), tf.uint8, name="image"),)

    @tf.function(input_signature=signature)
    def detect(image):
        x = (tf.cast(image, tf.float32) - 127.5) * (1.0 / 127.5)
        features = tf.nn.conv2d(x, tf.constant(kernel), strides=8, padding="SAME")
        features = tf.reshape(features, [1, NUM_ANCHORS, 4 + NUM_CLASSES])
        deltas, logits = features[..., :4], features[..., 4:]
        cy = deltas[..., 0] / 10.0 * anchors[:, 2] + anchors[:, 0]
        cx = deltas[..., 1] / 10.0 * anchors[:, 3] + anchors[:, 1]
        h = tf.exp(deltas[..., 2] / 5.0) * anchors[:, 2]
        w = tf.exp(deltas[..., 3] / 5.0) * anchors[:, 3]
        boxes = tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)
        result = tf.image.combined_non_max_suppression(boxes[:, :, None, :], tf.sigmoid(logits), 10, 10, 0.5, 0.3)
        return {"detection_boxes": result.nmsed_boxes, "detection_scores": result.nmsed_scores,
                "detection_classes": result.nmsed_classes, "num_detections": result.valid_detections}

    model, _ = tf2onnx.convert.from_function(detect, input_signature=signature, opset=13)
    return model


@pytest.fixture(scope="module")
def detector():
    return cached_onnx(_tf_detector)


def _nms_inputs(model):
    """The original graph with the decoded boxes and the scores its NMS reads exposed as outputs."""
    import onnx_graphsurgeon as gs

    nms = next(node for node in model.graph.node if node.op_type == "NonMaxSuppression")
    graph = gs.import_onnx(model)
    tensors = graph.tensors()
    graph.outputs = [tensors[nms.input[0]].to_variable(dtype=np.float32),
                     tensors[nms.input[1]].to_variable(dtype=np.float32)]
    return gs.export_onnx(graph.cleanup()), nms.input[0], nms.input[1]


def test_strip_nms_cuts_at_the_decoded_boxes_and_scores(detector):
    nms_node = [node.name for node in detector.graph.node if node.op_type == "NonMaxSuppression"]
    fixed, reports = run_fixes(detector, NANO, nms="runtime")
    done = {report.pass_name: report.nodes for report in reports}
    assert done["strip_nms"] == nms_node and done["inputs_to_float"][0] == "image"
    assert [output.name for output in fixed.graph.output] == ["boxes", "scores"]
    for bad in ("NonMaxSuppression", "TopK", "ScatterND", "GatherND"):
        assert bad not in op_types(fixed)
    onnx.checker.check_model(fixed, full_check=True)

    feeds = random_feeds(detector)
    reference, boxes_name, scores_name = _nms_inputs(detector)
    expected = run_ort(reference, feeds)
    got = run_ort(fixed, {"image": feeds["image"].astype(np.float32)})
    assert got["boxes"].shape == (1, NUM_ANCHORS, 4) and got["scores"].shape == (1, NUM_ANCHORS, NUM_CLASSES)
    np.testing.assert_allclose(got["boxes"], expected[boxes_name], atol=1e-5)
    np.testing.assert_allclose(got["scores"], expected[scores_name].transpose(0, 2, 1), atol=1e-6)
    assert tensorrt_parse_errors(fixed) == []


def test_nms_is_kept_unless_asked(detector):
    fixed, reports = run_fixes(detector, NANO, passes=["strip_nms", "insert_nms_plugin"])
    assert reports == [] and "NonMaxSuppression" in op_types(fixed)


def test_a_graph_without_nms_has_nothing_to_strip():
    from tests.test_fixes_graph import _keras_unet

    model = cached_onnx(_keras_unet)
    fixed, reports = run_fixes(model, NANO, nms="runtime", passes=["strip_nms"])
    assert reports == [] and op_types(fixed) == op_types(model)


class _Spec(object):
    """What insert_nms_plugin reads of a trt_infer ModelSpec: thresholds and the task section."""

    def __init__(self, score, iou, keep, background_class=None):
        from trt_infer.spec import Thresholds

        self.thresholds = Thresholds({"score": score, "nms_iou": iou, "max_detections": keep})
        self.section = {"background_class": background_class}


def _plugin_node(model):
    return next(node for node in model.graph.node if node.op_type.endswith("NMS_TRT"))


def _attrs(node):
    return {attr.name: onnx.helper.get_attribute_value(attr) for attr in node.attribute}


def test_efficient_nms_plugin_is_appended_with_the_spec_thresholds(detector):
    fixed, reports = run_fixes(detector, NANO, spec=_Spec(0.3, 0.5, 20), nms="plugin")
    assert [report.pass_name for report in reports][-1] == "insert_nms_plugin"
    node = _plugin_node(fixed)
    attrs = _attrs(node)
    assert node.op_type == "EfficientNMS_TRT" and node.input[1] == "scores"
    assert attrs["max_output_boxes"] == 20 and attrs["background_class"] == -1
    assert attrs["score_threshold"] == pytest.approx(0.3) and attrs["iou_threshold"] == pytest.approx(0.5)
    assert attrs["score_activation"] == 0
    outputs = {output.name: output.type.tensor_type for output in fixed.graph.output}
    assert list(outputs) == list(OUTPUTS)
    assert [outputs[name].elem_type for name in OUTPUTS] == [onnx.TensorProto.INT32, onnx.TensorProto.FLOAT,
                                                              onnx.TensorProto.FLOAT, onnx.TensorProto.INT32]
    assert [[dim.dim_value for dim in outputs[name].shape.dim] for name in OUTPUTS] == [[1, 1], [1, 20, 4],
                                                                                         [1, 20], [1, 20]]
    # TensorRT-RTX imports everything up to the plugin and then looks it up in its registry,
    # which ships no NMS plugins: that lookup is the only error.
    errors = tensorrt_parse_errors(fixed)
    assert len(errors) == 1 and "EfficientNMS_TRT" in errors[0] and "Plugin not found" in errors[0]


def test_efficient_nms_fuses_the_anchor_decoder_with_the_graphs_own_numerics(detector):
    import onnx_graphsurgeon as gs

    fixed, _ = run_fixes(detector, NANO, nms="plugin")
    node = _plugin_node(fixed)
    assert _attrs(node)["box_coding"] == 1 and len(node.input) == 3
    initializers = {init.name: onnx.numpy_helper.to_array(init) for init in fixed.graph.initializer}
    anchors = initializers[node.input[2]]
    np.testing.assert_allclose(anchors[0], _detector_anchors(), atol=1e-6)

    # The plugin's decoder (TensorRT's BoxCenterSize::decode) on the deltas it is fed gives the
    # boxes the graph itself decodes (the runtime-NMS graph's `boxes` output).
    graph = gs.import_onnx(fixed)
    graph.outputs = [graph.tensors()[node.input[0]].to_variable(dtype=np.float32)]
    feeds = random_feeds(detector)
    deltas = run_ort(gs.export_onnx(graph.cleanup()), {"image": feeds["image"].astype(np.float32)})[node.input[0]]
    centre = deltas[..., :2] * anchors[..., 2:] + anchors[..., :2]
    size = anchors[..., 2:] * np.exp(deltas[..., 2:])
    decoded = np.concatenate([centre - size / 2, centre + size / 2], axis=-1)
    stripped, _ = run_fixes(detector, NANO, nms="runtime")
    expected = run_ort(stripped, {"image": feeds["image"].astype(np.float32)})["boxes"]
    np.testing.assert_allclose(decoded, expected, atol=1e-5)


def test_boxes_without_an_anchor_decoder_go_to_the_plugin_as_corners():
    from onnx import TensorProto, helper, numpy_helper

    constants = [numpy_helper.from_array(np.array([10], np.int64), "max_out"),
                 numpy_helper.from_array(np.array([0.5], np.float32), "iou"),
                 numpy_helper.from_array(np.array([0.1], np.float32), "score")]
    nodes = [helper.make_node("Sigmoid", ["logits"], ["probabilities"], name="activation"),
             helper.make_node("NonMaxSuppression", ["corners", "probabilities", "max_out", "iou", "score"],
                              ["selected"], name="nms")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("corners", TensorProto.FLOAT, [1, 8, 4]),
                                           helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2, 8])],
                              [helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])],
                              initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    fixed, reports = run_fixes(model, NANO, nms="plugin")
    assert {report.pass_name: report.nodes for report in reports}["strip_nms"] == ["nms"]
    node = _plugin_node(fixed)
    assert _attrs(node)["box_coding"] == 0 and len(node.input) == 2


def test_batched_nms_plugin_where_the_target_asks(detector):
    target = copy.copy(NANO)
    target.nms_plugin = "BatchedNMS_TRT"
    fixed, _ = run_fixes(detector, target, spec=_Spec(0.3, 0.5, 20, background_class=0), nms="plugin")
    node = _plugin_node(fixed)
    attrs = _attrs(node)
    assert node.op_type == "BatchedNMS_TRT"
    assert attrs["numClasses"] == NUM_CLASSES and attrs["keepTopK"] == 20 and attrs["backgroundLabelId"] == 0
    classes = next(output for output in fixed.graph.output if output.name == "detection_classes")
    assert classes.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_plugin_without_boxes_and_scores_is_an_error_saying_what_it_needs():
    from tests.test_fixes_graph import _keras_unet

    with pytest.raises(FixError) as error:
        run_fixes(cached_onnx(_keras_unet), NANO, nms="plugin")
    assert "boxes" in str(error.value) and "scores" in str(error.value)


# ---- strip_preprocessing ----

def _spec_input(name, scale, mean, std):
    return type("Spec", (), {"input": type("Input", (), {"name": name, "scale": scale, "mean": mean, "std": std,
                                                         "shape": (1, 32, 32, 3)})()})()


def test_preprocessing_moves_to_the_runtime_when_the_spec_normalises(detector):
    spec = _spec_input("image", 1.0, [127.5] * 3, [127.5] * 3)
    fixed, reports = run_fixes(detector, NANO, spec=spec, nms="runtime")
    done = {report.pass_name: report.nodes for report in reports}
    arithmetic = [node.name for node in detector.graph.node if node.name in ("Cast", "sub", "mul")]
    assert sorted(done["strip_preprocessing"]) == sorted(arithmetic)
    assert "inputs_to_float" not in done  # the uint8 input went with the pre-processing
    assert [value.name for value in fixed.graph.input] == ["image"] and input_dtypes(fixed)["image"] == np.float32
    onnx.checker.check_model(fixed, full_check=True)

    feeds = random_feeds(detector)
    reference, boxes_name, _ = _nms_inputs(detector)
    expected = run_ort(reference, feeds)[boxes_name]
    normalised = (feeds["image"].astype(np.float32) - 127.5) / 127.5  # what the runtime now does
    np.testing.assert_allclose(run_ort(fixed, {"image": normalised})["boxes"], expected, atol=1e-5)


def test_preprocessing_stays_when_the_spec_feeds_raw_pixels(detector):
    fixed, reports = run_fixes(detector, NANO, spec=_spec_input("image", 1.0, [0.0] * 3, [1.0] * 3),
                               passes=["strip_preprocessing"])
    assert reports == [] and op_types(fixed) == op_types(detector)


@pytest.mark.parametrize("keep", [20, 10000])
def test_batched_nms_outputs_and_keep_top_k_follow_the_plugins_source(detector, keep):
    # NVIDIA/TensorRT plugin/batchedNMSPlugin (release/8.2): BatchedNMS_TRT's num_detections has no
    # per-image dimension (getOutputDimensions gives nbDims 0), so [B]; its README: keepTopK <= topK.
    target = copy.copy(NANO)
    target.nms_plugin = "BatchedNMS_TRT"
    fixed, _ = run_fixes(detector, target, spec=_Spec(0.3, 0.5, keep), nms="plugin")
    attrs = _attrs(_plugin_node(fixed))
    assert attrs["keepTopK"] <= attrs["topK"] and attrs["keepTopK"] == min(keep, attrs["topK"])
    kept = attrs["keepTopK"]
    outputs = {output.name: output.type.tensor_type for output in fixed.graph.output}
    assert [[dim.dim_value for dim in outputs[name].shape.dim] for name in OUTPUTS] == [[1], [1, kept, 4],
                                                                                         [1, kept], [1, kept]]
