"""`export` of TF1 frozen GraphDefs (.pb): given tensors, or the OD API's found by name, through tf2onnx;
and the real TF1 OD API `ssd_mobilenet_v2_coco` fixture, whose raw heads must equal TensorFlow 1.15's."""
import importlib.util
import logging
import os

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the converter's host tools need onnx (absent in the Python 3.6 venv)")
pytest.importorskip("onnxruntime", reason="exports are checked in ONNX Runtime")

from converter.export import ExportError, check_source, detect_format, export  # noqa: E402
from converter.targets import get_target  # noqa: E402
from tests.support import detectors  # noqa: E402
from trt_infer.errors import ModelLoadError  # noqa: E402

NANO = get_target("jetson-nano")
needs_tf2onnx = pytest.mark.skipif(importlib.util.find_spec("tf2onnx") is None,
                                   reason="frozen graphs are read with TensorFlow and converted with tf2onnx")


def node(name, op, inputs=()):
    from tensorflow.core.framework import node_def_pb2

    made = node_def_pb2.NodeDef(name=name, op=op)
    made.input.extend(inputs)
    return made


def graph_def(nodes):
    from tensorflow.core.framework import graph_pb2

    made = graph_pb2.GraphDef()
    made.node.extend(nodes)
    return made


# The tail of an OD API SSD graph, as export_inference_graph.py names it (only the structure matters here).
OD_API_SSD_NODES = [
    ("image_tensor", "Placeholder", ()), ("concat", "ConcatV2", ("BoxPredictor_0/Reshape",)),
    ("Squeeze", "Squeeze", ("concat",)), ("Postprocessor/raw_box_encodings", "Identity", ("Squeeze",)),
    ("concat_1", "ConcatV2", ("BoxPredictor_0/Reshape_1", "BoxPredictor_1/Reshape_1", "concat_1/axis")),
    ("Postprocessor/scale_logits", "RealDiv", ("concat_1", "Postprocessor/scale_logits/y")),
    ("Postprocessor/convert_scores", "Sigmoid", ("Postprocessor/scale_logits",)),
]


def write_graph(path, nodes):
    path.write_bytes(graph_def([node(*row) for row in nodes]).SerializeToString())
    return str(path)


def test_pb_files_are_frozen_graphs_and_a_saved_model_graph_says_pass_the_folder(tmp_path):
    (tmp_path / "frozen_inference_graph.pb").write_bytes(b"x")
    assert detect_format(str(tmp_path / "frozen_inference_graph.pb")) == "graphdef"
    (tmp_path / "saved_model.pb").write_bytes(b"x")
    with pytest.raises(ExportError, match="graph of a SavedModel; pass its folder {}".format(tmp_path)):
        detect_format(str(tmp_path / "saved_model.pb"))


def test_empty_frozen_graph_is_refused_before_tensorflow_starts(tmp_path):
    (tmp_path / "empty.pb").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty.pb is empty \\(0 bytes\\), not a frozen TensorFlow graph"):
        check_source(str(tmp_path / "empty.pb"))


def test_graph_tensors_are_only_for_frozen_graphs(tmp_path):
    from tests.test_export import tiny_onnx

    with pytest.raises(ExportError, match="--graph-inputs/--graph-outputs name tensors of a frozen GraphDef"):
        export(tiny_onnx(tmp_path / "m.onnx"), str(tmp_path / "out.onnx"), NANO, graph_outputs=["y:0"])


@needs_tf2onnx
def test_od_api_ssd_tensors_are_found_by_name(tmp_path, caplog):
    from converter.od_api import graph_def_tensors

    path = write_graph(tmp_path / "frozen_inference_graph.pb", OD_API_SSD_NODES)
    with caplog.at_level(logging.INFO, logger="converter.od_api"):
        found = graph_def_tensors(path)
    assert found == (["image_tensor:0"], ["Postprocessor/raw_box_encodings:0", "concat_1:0"])
    assert "a TF Object Detection API SSD graph; input image_tensor:0" in caplog.text
    # one side given, the other found; names without ":0" mean output 0
    assert graph_def_tensors(path, outputs=["concat"]) == (["image_tensor:0"], ["concat:0"])
    assert graph_def_tensors(path, inputs=["Preprocessor/sub"]) == (
        ["Preprocessor/sub:0"], ["Postprocessor/raw_box_encodings:0", "concat_1:0"])


@needs_tf2onnx
def test_other_frozen_graphs_need_their_tensors_named(tmp_path):
    from converter.od_api import graph_def_tensors

    path = write_graph(tmp_path / "net.pb", [("pixels", "Placeholder", ()), ("logits", "Identity", ("pixels",))])
    with pytest.raises(ExportError, match="give them with --graph-inputs and --graph-outputs .*placeholders: pixels"):
        graph_def_tensors(path)
    # an SSD-named graph whose score sigmoid does not lead to a concatenation is not guessed at
    broken = [row for row in OD_API_SSD_NODES if row[0] != "concat_1"]
    with pytest.raises(ExportError, match="not a TF Object Detection API SSD graph"):
        graph_def_tensors(write_graph(tmp_path / "broken.pb", broken))
    (tmp_path / "garbage.pb").write_bytes(b"\xff\xff\xff\xff")
    with pytest.raises(ExportError, match="is not a frozen TensorFlow GraphDef"):
        graph_def_tensors(str(tmp_path / "garbage.pb"))


@needs_tf2onnx
@pytest.mark.slow
def test_frozen_graph_with_named_tensors_exports_and_computes_the_same(tmp_path):
    import tensorflow as tf

    from tests.test_export import run_onnx

    graph = tf.Graph()
    with graph.as_default():
        pixels = tf.compat.v1.placeholder(tf.float32, [1, 4], name="pixels")
        hidden = tf.nn.relu(pixels * 2.0 - 1.0, name="hidden")
        tf.identity(hidden + 3.0, name="logits")
    path = tmp_path / "net.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    output = export(str(path), str(tmp_path / "net.onnx"), NANO, graph_inputs=["pixels:0"],
                    graph_outputs=["hidden:0"])
    model = onnx.load(output)
    assert [value.name for value in model.graph.input] == ["pixels:0"]
    assert [value.name for value in model.graph.output] == ["hidden:0"]
    feed = np.array([[-1.0, 0.25, 0.5, 2.0]], np.float32)
    np.testing.assert_allclose(run_onnx(output, {"pixels:0": feed})[0], np.maximum(feed * 2 - 1, 0), atol=1e-6)


@needs_tf2onnx
@pytest.mark.slow
def test_tf1_od_api_ssd_heads_equal_tensorflow():
    import onnxruntime

    from tests.support.models import sample_image_bgr

    reference = detectors.reference("tf1_ssd_mobilenet_v2_coco")
    model = onnx.load(detectors.tf1_ssd_export())
    inputs = [(value.name, value.type.tensor_type.elem_type) for value in model.graph.input]
    assert inputs == [("image_tensor:0", onnx.TensorProto.UINT8)]
    outputs = [value.name for value in model.graph.output]
    assert outputs == ["Postprocessor/raw_box_encodings:0", "concat_1:0"]
    assert not [node.op_type for node in model.graph.node if node.op_type == "NonMaxSuppression"]
    session = onnxruntime.InferenceSession(detectors.tf1_ssd_export(), providers=["CPUExecutionProvider"])
    astronaut = np.ascontiguousarray(sample_image_bgr("astronaut")[:, :, ::-1])[None]
    boxes, logits = session.run(None, {"image_tensor:0": astronaut})
    assert boxes.shape == (1, 1917, 4) and logits.shape == (1, 1917, 4)
    # measured: 2.1e-4 and 5.0e-4 (logits up to 8.7) between TensorFlow 1.15 and ONNX Runtime
    np.testing.assert_allclose(boxes, reference["raw_box_encodings"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(logits, reference["raw_class_logits"], atol=1e-3, rtol=0)


def tf_legacy_resize(image, height, width):
    """tf.image.resize_bilinear(align_corners=False, half_pixel_centers=False), as the TF1 OD API's
    fixed_shape_resizer does: source pixel = destination pixel * scale, no half-pixel offset."""
    image = image.astype(np.float32)
    rows = np.arange(height) * (image.shape[0] / float(height))
    cols = np.arange(width) * (image.shape[1] / float(width))
    top, left = np.floor(rows).astype(int), np.floor(cols).astype(int)
    bottom, right = np.minimum(top + 1, image.shape[0] - 1), np.minimum(left + 1, image.shape[1] - 1)
    dy, dx = (rows - top)[:, None, None], (cols - left)[None, :, None]
    upper = image[top][:, left] * (1 - dx) + image[top][:, right] * dx
    lower = image[bottom][:, left] * (1 - dx) + image[bottom][:, right] * dx
    return upper * (1 - dy) + lower * dy


@needs_tf2onnx
@pytest.mark.slow
def test_tf1_ssd_cut_after_its_preprocessing_loop_passes_nano_rules_and_equals_tensorflow(tmp_path):
    """A spec whose input names the resized, normalised tensor makes `convert fix` cut the preprocessing
    Loop away (strip_preprocessing); the rest is TensorRT 8.2 clean and computes TensorFlow's heads when
    fed TensorFlow's own resize. (OpenCV's half-pixel bilinear resize, the runtime's, moves the class
    logits by about 2 on these random weights: reproducing TF through the runtime needs its resize.)"""
    import onnxruntime
    import yaml

    from converter.cli import main as convert
    from tests.support.models import REPO_ROOT, sample_image_bgr

    with open(os.path.join(REPO_ROOT, "tests", "fixtures", "specs", "tf1_ssd_mobilenet_v2_coco.yaml")) as handle:
        spec = yaml.safe_load(handle)
    # normalise, then map(resize): tf2onnx moved the NHWC -> NCHW transpose of the first Conv in front
    spec["input"].update(name="Preprocessor/map/TensorArrayStack/TensorArrayGatherV3:0", layout="NCHW")
    spec_path, fixed = str(tmp_path / "cut.yaml"), str(tmp_path / "cut.fixed.onnx")
    with open(spec_path, "w") as handle:
        yaml.safe_dump(spec, handle)
    assert convert(["fix", detectors.tf1_ssd_export(), "-o", fixed, "--spec", spec_path,
                    "--target", "jetson-nano"]) == 0
    assert convert(["check", fixed, "--target", "jetson-nano"]) == 0
    model = onnx.load(fixed)
    assert not [node.name for node in model.graph.node if node.op_type == "Loop"]
    assert [value.name for value in model.graph.input] == [spec["input"]["name"]]
    reference = detectors.reference("tf1_ssd_mobilenet_v2_coco")
    astronaut = sample_image_bgr("astronaut")[:, :, ::-1]
    network_input = ((tf_legacy_resize(astronaut, 300, 300) - 127.5) / 127.5).transpose(2, 0, 1)[None]
    session = onnxruntime.InferenceSession(fixed, providers=["CPUExecutionProvider"])
    boxes, logits = session.run(None, {spec["input"]["name"]: network_input.astype(np.float32)})
    np.testing.assert_allclose(boxes, reference["raw_box_encodings"], atol=1e-3, rtol=0)
    np.testing.assert_allclose(logits, reference["raw_class_logits"], atol=1e-3, rtol=0)
