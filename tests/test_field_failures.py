"""The failures users hit in the field, reproduced with the real exporters, end to end through `convert`.

1. Keras U-Net (Conv2DTranspose(512, 3, strides=2, padding="same"), sigmoid) exported with tf2onnx's
   default opset: Reshape without allowzero at opset 15 on TensorRT 8.2.
2. A TF SavedModel detector like the TF OD API's: uint8 input, in-graph pre-processing,
   tf.image.combined_non_max_suppression.
3. PyTorch through torch's current default exporter (dynamo, opset > 13): HardSwish, interpolate
   sizes computed from the input shape, and GridSample, which TensorRT 8.2 cannot import.
4. MediaPipe BlazeFace and selfie segmentation (TFLite) through `all --target jetson-nano`.
Models are built once and cached on disk (keyed by this file's builder source and the library
versions); `convert` runs in-process through converter.cli.main.
"""
import hashlib
import inspect
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnx", reason="the converter's host tools need onnx (absent in the Python 3.6 venv)")
pytest.importorskip("onnxruntime", reason="verify runs ONNX Runtime")

from converter.cli import main
from tests.support.models import CACHE_DIR, mediapipe_model

pytestmark = pytest.mark.slow

UNET_INPUT = (1, 32, 32, 3)
DETECTOR_INPUT = (1, 64, 64, 3)
DETECTOR_CLASSES = 3
TORCH_INPUT = (1, 3, 32, 32)


def cached(builder, suffix):
    """Build `builder(path)` once per source version of the builder; returns the cached path."""
    import onnx

    key = hashlib.sha256((inspect.getsource(builder) + onnx.__version__).encode()).hexdigest()[:12]
    path = os.path.join(CACHE_DIR, "field", "{}-{}{}".format(builder.__name__, key, suffix))
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = path + ".partial" + suffix
        shutil.rmtree(partial, ignore_errors=True)
        builder(partial)
        os.replace(partial, path)
    return path


def build_unet(path):
    """A small Keras U-Net: few filters except the one Conv2DTranspose(512, 3, strides=2) layer."""
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers
    image = keras.Input(UNET_INPUT[1:], name="image")
    down = layers.Conv2D(4, 3, padding="same", activation="relu")(image)
    bottom = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(down)
    up = layers.Conv2DTranspose(512, 3, strides=2, padding="same")(bottom)
    merged = layers.Concatenate()([up, down])
    mask = layers.Conv2D(1, 1, activation="sigmoid", name="mask")(merged)
    keras.Model(image, mask).save(path)


def build_unet_saved_model(path):
    import keras

    keras.models.load_model(cached(build_unet, ".keras"), compile=False).export(path, verbose=False)


def build_unet_tf2onnx_default(path):
    """What a user gets from `python -m tf2onnx.convert --saved-model` without --opset."""
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", cached(build_unet_saved_model, ""),
                    "--output", path], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def build_detector(path):
    """A TF OD API-like detector SavedModel: uint8 image, (x - 127.5) / 127.5 in the graph, SSD box
    decoding against constant anchors, tf.image.combined_non_max_suppression."""
    import tensorflow as tf

    side = 8
    centres = (np.arange(side) + 0.5) / side
    ys, xs = np.meshgrid(centres, centres, indexing="ij")
    anchors = np.stack([ys.ravel(), xs.ravel(), np.full(side * side, 0.2), np.full(side * side, 0.2)], 1)
    rng = np.random.RandomState(0)

    class Detector(tf.Module):
        def __init__(self):
            super().__init__()
            self.backbone = tf.Variable(rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32))
            self.head = tf.Variable(rng.normal(0, 0.3, (1, 1, 8, 4 + DETECTOR_CLASSES)).astype(np.float32))
            self.anchors = tf.constant(anchors.astype(np.float32))

        @tf.function(input_signature=[tf.TensorSpec(DETECTOR_INPUT, tf.uint8)])
        def decode(self, image):
            x = (tf.cast(image, tf.float32) - 127.5) / 127.5
            x = tf.nn.relu(tf.nn.conv2d(x, self.backbone, strides=8, padding="SAME"))
            x = tf.reshape(tf.nn.conv2d(x, self.head, 1, "SAME"), [1, side * side, 4 + DETECTOR_CLASSES])
            codes, logits = x[..., :4], x[..., 4:]
            a = self.anchors
            cy, cx = codes[..., 0] / 10 * a[:, 2] + a[:, 0], codes[..., 1] / 10 * a[:, 3] + a[:, 1]
            h, w = tf.exp(codes[..., 2] / 5) * a[:, 2], tf.exp(codes[..., 3] / 5) * a[:, 3]
            boxes = tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], -1)
            return boxes, tf.sigmoid(logits)

        @tf.function(input_signature=[tf.TensorSpec(DETECTOR_INPUT, tf.uint8, name="image")])
        def serve(self, image):
            boxes, scores = self.decode(image)
            found = tf.image.combined_non_max_suppression(boxes[:, :, None, :], scores, 10, 10,
                                                          iou_threshold=0.5, score_threshold=0.3)
            return {"detection_boxes": found.nmsed_boxes, "detection_scores": found.nmsed_scores,
                    "detection_classes": found.nmsed_classes, "num_detections": found.valid_detections}

    detector = Detector()
    tf.saved_model.save(detector, path, signatures={"serving_default": detector.serve})


TORCH_MODULE_SOURCE = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """HardSwish, an upsample to the input's own size, and a GridSample warp."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.head = nn.Conv2d(8, 2, 1)
        self.register_buffer("theta", torch.tensor([[[0.9, 0.1, 0.0], [-0.1, 0.9, 0.0]]]))

    def forward(self, x):
        y = F.hardswish(self.down(x))
        y = F.interpolate(y, size=(x.shape[2], x.shape[3]), mode="bilinear", align_corners=False)
        y = self.head(y)
        grid = F.affine_grid(self.theta.expand(x.shape[0], 2, 3), list(y.shape), align_corners=False)
        return F.grid_sample(y, grid, align_corners=False)


def make():
    torch.manual_seed(0)
    return Net().eval(), torch.rand({shape})
'''.replace("{shape}", ", ".join(str(dim) for dim in TORCH_INPUT))


def build_torch_module(path):
    with open(path, "w") as handle:
        handle.write(TORCH_MODULE_SOURCE)


def build_torch_default_export(path):
    """torch.onnx.export with its defaults (torch 2.13: the dynamo exporter), dynamic batch and size."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("field_torch_net", cached(build_torch_module, ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net, example = module.make()
    batch = torch.export.Dim("batch")
    torch.onnx.export(net, (example,), path, input_names=["image"], dynamic_shapes={"x": {0: batch}},
                      external_data=False)


def run_convert(*argv):
    return main([str(arg) for arg in argv])


def load(path):
    import onnx

    return onnx.load(path)


def check_report(path, target="jetson-nano"):
    from converter.check import check_model

    return check_model(load(path), target)


def ort_run(path, feeds):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    return dict(zip([output.name for output in session.get_outputs()], session.run(None, feeds)))


# 1. Keras U-Net -------------------------------------------------------------------------------------

def test_unet_tf2onnx_default_opset_reports_reshape_allowzero(capsys):
    exported = cached(build_unet_tf2onnx_default, ".onnx")
    assert run_convert("check", exported, "--target", "jetson-nano") == 1
    printed = capsys.readouterr().out
    assert "reshape_allowzero" in printed and "Reshape" in printed and "max_opset" in printed
    rules = check_report(exported).rules()
    assert rules["reshape_allowzero"] >= 1


@pytest.fixture(scope="module")
def unet_all(tmp_path_factory):
    out = tmp_path_factory.mktemp("unet")
    source = cached(build_unet, ".keras")
    status = run_convert("all", source, "--target", "jetson-nano", "-o", out)
    return source, out, status


def test_unet_all_for_jetson_nano_passes_check_and_matches_keras(unet_all, capsys):
    source, out, status = unet_all
    stem = os.path.splitext(os.path.basename(source))[0]
    fixed = str(out / (stem + ".fixed.onnx"))
    assert status == 0 and os.path.isfile(fixed) and os.path.isfile(str(out / (stem + ".onnx")))
    report = check_report(fixed)
    assert report.passed, report.findings
    assert max(entry.version for entry in load(fixed).opset_import if entry.domain in ("", "ai.onnx")) <= 13

    # The Keras model's own prediction is the reference, through the CLI and directly.
    assert run_convert("verify", source, fixed) == 0
    assert "PASS" in capsys.readouterr().out
    import keras

    image = np.random.RandomState(1).uniform(0, 1, UNET_INPUT).astype(np.float32)
    expected = np.asarray(keras.models.load_model(source, compile=False)(image))
    actual = list(ort_run(fixed, {"image": image}).values())[0]
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=1e-4)


# 2. TF OD API-like detector -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detector_runtime_nms(tmp_path_factory):
    out = tmp_path_factory.mktemp("detector-runtime")
    source = cached(build_detector, "")
    status = run_convert("all", source, "--target", "jetson-nano", "--nms", "runtime", "-o", out)
    stem = os.path.basename(source)
    return source, out, stem, status


def test_detector_export_shows_the_field_failure():
    from converter.check import check_model  # noqa: F401

    source = cached(build_detector, "")
    report = None
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        exported = os.path.join(folder, "detector.onnx")
        assert run_convert("export", source, "-o", exported, "--target", "jetson-nano") == 0
        report = check_report(exported)
    rules = dict((finding.rule, finding) for finding in report.findings)
    assert rules["io_dtype"].fix == "inputs_to_float"
    assert rules["experimental_op"].op == "NonMaxSuppression" and rules["experimental_op"].fix == "strip_nms"


def test_detector_runtime_nms_float_input_no_nms_decode_verified(detector_runtime_nms):
    source, out, stem, status = detector_runtime_nms
    fixed = str(out / (stem + ".fixed.onnx"))
    assert status == 0 and os.path.isfile(fixed)
    model = load(fixed)
    from onnx import TensorProto

    assert [value.type.tensor_type.elem_type for value in model.graph.input] == [TensorProto.FLOAT]
    ops = set(node.op_type for node in model.graph.node)
    assert not ops & {"NonMaxSuppression", "EfficientNMS_TRT", "Loop"}
    assert check_report(fixed).passed

    # Decode numerics against TensorFlow's own decode function on the same image.
    import tensorflow as tf

    image = np.random.RandomState(2).randint(0, 256, DETECTOR_INPUT).astype(np.uint8)
    detector = tf.saved_model.load(source)   # held: the restored function needs its variables alive
    boxes, scores = [np.asarray(value) for value in detector.decode(tf.constant(image))]
    outputs = list(ort_run(fixed, {model.graph.input[0].name: image.astype(np.float32)}).values())
    by_size = dict((value.size, value) for value in outputs)
    np.testing.assert_allclose(by_size[boxes.size].reshape(boxes.shape), boxes, atol=1e-4)
    np.testing.assert_allclose(by_size[scores.size].reshape(scores.shape), scores, atol=1e-4)


def test_detector_with_efficient_nms_plugin(detector_runtime_nms, tmp_path, capsys):
    _, out, stem, _ = detector_runtime_nms
    exported = str(out / (stem + ".onnx"))
    from converter.fixes import NMS_MODES

    plugin_mode = "efficient_nms" if "efficient_nms" in NMS_MODES else "plugin"
    status = run_convert("all", exported, "--target", "jetson-nano", "--nms", plugin_mode, "-o", tmp_path)
    summary = capsys.readouterr().out
    fixed, before_plugin = str(tmp_path / (stem + ".fixed.onnx")), str(tmp_path / (stem + ".noplugin.onnx"))
    assert status == 0, summary
    plugins = [node for node in load(fixed).graph.node if node.op_type == "EfficientNMS_TRT"]
    assert len(plugins) == 1
    assert not [node for node in load(before_plugin).graph.node if node.op_type in ("EfficientNMS_TRT",
                                                                                    "NonMaxSuppression")]
    assert check_report(fixed).passed
    verify_row = [line for line in summary.splitlines() if line.startswith("verify")][0]
    assert " ok " in verify_row


# 3. PyTorch, current default exporter ---------------------------------------------------------------

def test_torch_default_exporter_check_names_what_tensorrt_8_2_lacks():
    exported = cached(build_torch_default_export, ".onnx")
    findings = check_report(exported).findings
    fixes = set(finding.fix for finding in findings)
    assert {"convert_opset", "hardswish", "static_shapes"} <= fixes
    grid = [finding for finding in findings if finding.op == "GridSample"]
    assert grid and grid[0].fix is None and "OpenCV" in grid[0].advice


def test_torch_all_stops_at_fix_with_the_node_it_cannot_repair(tmp_path, capsys):
    exported = cached(build_torch_default_export, ".onnx")
    shape = "image:" + ",".join(str(dim) for dim in TORCH_INPUT)
    assert run_convert("all", exported, "--target", "jetson-nano", "--input-shape", shape, "-o", tmp_path) == 1
    captured = capsys.readouterr()
    assert "export" in captured.out and "GridSample" in captured.out + captured.err


def test_torch_fix_repairs_what_it_can_and_check_explains_the_rest(tmp_path):
    exported = cached(build_torch_default_export, ".onnx")
    fixed = str(tmp_path / "net.fixed.onnx")
    shape = "image:" + ",".join(str(dim) for dim in TORCH_INPUT)
    assert run_convert("fix", exported, "--target", "jetson-nano", "--input-shape", shape, "-o", fixed) == 0
    report = check_report(fixed)
    remaining = set((finding.rule, finding.op) for finding in report.errors)
    # GridSample has no opset-13 form, so the opset may have to stay where it is; all else is repaired.
    assert ("unsupported_op", "GridSample") in remaining, report.findings
    assert remaining <= {("unsupported_op", "GridSample"), ("max_opset", "opset")}, report.findings
    assert not [node for node in load(fixed).graph.node if node.op_type == "HardSwish"]
    assert run_convert("verify", exported, fixed) == 0


# 4. MediaPipe TFLite models -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["blazeface", "selfie_segmentation"])
def test_mediapipe_models_through_all_for_jetson_nano(name, tmp_path, capsys):
    source = mediapipe_model(name)
    assert run_convert("all", source, "--target", "jetson-nano", "-o", tmp_path) == 0
    summary = capsys.readouterr().out
    stem = os.path.splitext(os.path.basename(source))[0]
    fixed = str(tmp_path / (stem + ".fixed.onnx"))
    assert check_report(fixed).passed
    rows = dict((line.split()[0], line.split()[1]) for line in summary.splitlines()[2:] if line and line[0] != " ")
    assert rows["export"] == rows["fix"] == rows["check"] == rows["verify"] == "ok"
    assert rows["build"] == "skipped" or rows["build"] == "ok"
