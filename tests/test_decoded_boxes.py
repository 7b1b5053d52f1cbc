"""Task `ssd` with `box_coding.type: decoded`: the graph `convert all --nms runtime` leaves behind
(outputs `boxes` [1, N, 4] already decoded, `scores` [1, N, C]) run through trt_infer.

1. Synthetic decoded outputs: planted boxes come back in image pixels (stretch and letterbox,
   y-first and x-first corners, normalised or in network pixels), per-class and class-agnostic
   NMS, background class, keypoints; precise spec and shape errors.
2. End to end: the TF OD API-like SavedModel detector of tests/test_field_failures.py (uint8 input,
   in-graph normalisation, tf.image.combined_non_max_suppression) through `convert all --nms
   runtime --spec`, then trt_infer's Pipeline on the ONNX Runtime backend on scikit-image photos,
   against what the original SavedModel returns through its own combined NMS.
"""
import copy
import os

import numpy as np
import pytest

from trt_infer.backends import TensorInfo
from trt_infer.geometry import ResizeTransform
from trt_infer.postprocess.ssd import SSDPostprocessor
from trt_infer.schema import SpecError
from trt_infer.spec import ModelSpec

NET_SIZE = 320
IMAGE_WIDTH, IMAGE_HEIGHT = 640, 480
# How a 640 x 480 image sits in the 320 x 320 network input, worked out by hand:
# stretch: x * 320 / 640, y * 320 / 480; letterbox: both * 0.5, then 40 rows of padding on top.
FITS = {"stretch": (0.5, 2.0 / 3.0, 0.0, 0.0), "letterbox": (0.5, 0.5, 0.0, 40.0)}

BASE = {
    "name": "decoded",
    "task": "ssd",
    "input": {"name": "image", "width": NET_SIZE, "height": NET_SIZE, "layout": "NHWC"},
    "outputs": {"boxes": "boxes", "scores": "scores"},
    "labels": ["cat", "dog", "bird"],
    "thresholds": {"score": 0.5, "nms_iou": 0.5, "max_detections": 20},
    "ssd": {"box_coding": {"type": "decoded", "order": "yx"}, "score_activation": "none",
            "nms": {"top_k": 100}},
}

# Planted objects in network-input pixels, x1, y1, x2, y2 (all inside the letterboxed image area).
PLANTED = np.array([[20, 60, 120, 200], [150, 80, 300, 230], [40, 190, 110, 270]], np.float32)
PLANTED_CLASSES = np.array([0, 1, 2], np.int32)
PLANTED_SCORES = np.array([0.95, 0.9, 0.8], np.float32)


def make_spec(resize="stretch", **ssd_changes):
    data = copy.deepcopy(BASE)
    data["input"]["resize"] = resize
    for key, value in ssd_changes.items():
        if isinstance(value, dict) and isinstance(data["ssd"].get(key), dict):
            data["ssd"][key].update(value)
        else:
            data["ssd"][key] = value
    return ModelSpec(data)


def to_image_pixels(boxes_net, resize):
    scale_x, scale_y, pad_x, pad_y = FITS[resize]
    return (np.asarray(boxes_net, np.float64) - [pad_x, pad_y, pad_x, pad_y]) / [scale_x, scale_y, scale_x, scale_y]


def decoded_outputs(rng, order="yx", normalized=True, count=60):
    """(boxes (1, count, 4), scores (1, count, 3)): low-score clutter, the planted objects, and a
    lower-scoring shifted copy of each planted object (IoU ~0.8) that NMS must suppress."""
    corners = np.sort(rng.uniform(0, NET_SIZE, (count, 2, 2)), axis=1).reshape(count, 4)[:, [0, 2, 1, 3]]
    scores = rng.uniform(0, 0.3, (count, 3)).astype(np.float32)
    duplicates = PLANTED + [4, 4, 4, 4]
    rows = rng.choice(count, 2 * len(PLANTED), replace=False)
    corners[rows] = np.concatenate([PLANTED, duplicates])
    scores[rows, np.tile(PLANTED_CLASSES, 2)] = np.concatenate([PLANTED_SCORES, PLANTED_SCORES - 0.1])
    if normalized:
        corners = corners / NET_SIZE
    if order == "yx":
        corners = corners[:, [1, 0, 3, 2]]
    return {"boxes": corners[None].astype(np.float32), "scores": scores[None]}


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize("order, normalized", [("yx", True), ("xy", True), ("yx", False)])
def test_planted_boxes_come_back_in_image_pixels(resize, order, normalized):
    spec = make_spec(resize, box_coding={"order": order, "normalized": normalized})
    post = SSDPostprocessor(spec)
    outputs = decoded_outputs(np.random.RandomState(0), order, normalized)
    transform = ResizeTransform(IMAGE_WIDTH, IMAGE_HEIGHT, NET_SIZE, NET_SIZE, resize)
    detections = post(outputs, transform).detections
    np.testing.assert_array_equal(detections.class_ids, PLANTED_CLASSES)
    np.testing.assert_allclose(detections.scores, PLANTED_SCORES)
    np.testing.assert_allclose(detections.boxes, to_image_pixels(PLANTED, resize), atol=1e-2)
    assert detections.boxes.dtype == np.float32 and detections.keypoints is None

    spec.thresholds.update(score=0.85)  # read on every call
    assert list(post(outputs, transform).detections.class_ids) == [0, 1]


def overlapping_pair(second_class):
    """Two boxes with IoU 0.6 (scores 0.9 and 0.8) and a far box, normalised y-first corners."""
    boxes_xyxy = np.array([[0.1, 0.1, 0.5, 0.5], [0.15, 0.1, 0.55, 0.5], [0.7, 0.7, 0.9, 0.9]], np.float32)
    scores = np.zeros((3, 3), np.float32)
    scores[0, 0], scores[1, second_class], scores[2, 2] = 0.9, 0.8, 0.7
    return {"boxes": boxes_xyxy[None][:, :, [1, 0, 3, 2]], "scores": scores[None]}


@pytest.mark.parametrize("class_agnostic, second_class, kept", [
    (False, 1, [0, 1, 2]),   # different classes do not suppress each other
    (True, 1, [0, 2]),       # unless NMS is class-agnostic
    (False, 0, [0, 2]),      # same class: suppressed either way
    (True, 0, [0, 2]),
])
def test_per_class_and_class_agnostic_nms(class_agnostic, second_class, kept):
    post = SSDPostprocessor(make_spec(nms={"class_agnostic": class_agnostic}))
    detections = post(overlapping_pair(second_class), ResizeTransform(100, 100, NET_SIZE, NET_SIZE)).detections
    expected_scores = np.array([0.9, 0.8, 0.7], np.float32)[kept]
    np.testing.assert_allclose(detections.scores, expected_scores)


def test_background_column_and_sigmoid_logits_reuse_the_ssd_score_handling():
    spec = make_spec(score_activation="sigmoid", background_class=0)
    post = SSDPostprocessor(spec)
    logits = np.full((1, 3, 3), -8.0, np.float32)
    logits[0, 0, 0] = 8.0             # background only: never a detection
    logits[0, 1, 2] = np.log(4.0)     # sigmoid 0.8
    boxes = np.array([[[0.1, 0.1, 0.3, 0.3], [0.2, 0.4, 0.6, 0.8], [0.5, 0.5, 0.6, 0.6]]], np.float32)
    detections = post({"boxes": boxes, "scores": logits}, ResizeTransform(NET_SIZE, NET_SIZE, NET_SIZE, NET_SIZE))
    detections = detections.detections
    assert list(detections.class_ids) == [2]
    np.testing.assert_allclose(detections.scores, [0.8], rtol=1e-6)
    # y-first corners (0.2, 0.4, 0.6, 0.8) -> x1 = 0.4 * 320, y1 = 0.2 * 320, ...
    np.testing.assert_allclose(detections.boxes, [[128, 64, 256, 192]], atol=1e-3)


def test_flipped_corners_are_put_in_order():
    post = SSDPostprocessor(make_spec())
    boxes = np.array([[[0.6, 0.5, 0.2, 0.1]]], np.float32)  # y1 > y2 and x1 > x2
    scores = np.array([[[0.9, 0.0, 0.0]]], np.float32)
    detections = post({"boxes": boxes, "scores": scores}, ResizeTransform(NET_SIZE, NET_SIZE, NET_SIZE, NET_SIZE))
    np.testing.assert_allclose(detections.detections.boxes, [[32, 64, 160, 192]], atol=1e-3)


def test_keypoints_after_decoded_corners_in_network_pixels():
    spec = make_spec("letterbox", box_coding={"order": "xy", "normalized": False}, num_keypoints=2)
    post = SSDPostprocessor(spec)
    row = [20, 60, 120, 200, 50, 100, 90, 150]  # box, then keypoints (x, y), (x, y) in network pixels
    outputs = {"boxes": np.array([[row]], np.float32), "scores": np.array([[[0.0, 0.9, 0.0]]], np.float32)}
    detections = post(outputs, ResizeTransform(IMAGE_WIDTH, IMAGE_HEIGHT, NET_SIZE, NET_SIZE, "letterbox"))
    detections = detections.detections
    np.testing.assert_allclose(detections.boxes, to_image_pixels([row[:4]], "letterbox"), atol=1e-2)
    np.testing.assert_allclose(detections.keypoints, [[[100, 120], [180, 220]]], atol=1e-2)


@pytest.mark.parametrize("change, path, words", [
    (lambda ssd: ssd["box_coding"].update(type="centre_size"), "ssd.anchors",
     ["missing", "required unless", "'decoded'"]),
    (lambda ssd: ssd.update(anchors={"num_layers": 1, "strides": [32]}), "ssd.anchors",
     ["'decoded'", "remove ssd.anchors"]),
    (lambda ssd: ssd["box_coding"].update(scales=[10, 10, 5, 5]), "ssd.box_coding.scales",
     ["decoded boxes", "remove it"]),
    (lambda ssd: ssd.update(anchors={"num_layers": 1, "strides": [32]},
                            box_coding={"type": "centre_size", "normalized": False}), "ssd.box_coding.normalized",
     ["always normalised", "type: decoded"]),
])
def test_spec_errors_name_the_key_and_the_fix(change, path, words):
    data = copy.deepcopy(BASE)
    change(data["ssd"])
    with pytest.raises(SpecError) as error:
        SSDPostprocessor(ModelSpec(data))
    assert error.value.path == path
    for word in words:
        assert word in str(error.value)


def test_unknown_box_coding_type_is_rejected_when_the_spec_loads():
    data = copy.deepcopy(BASE)
    data["ssd"]["box_coding"]["type"] = "corners"
    with pytest.raises(SpecError) as error:
        ModelSpec(data)
    assert error.value.path == "ssd.box_coding.type" and "'decoded'" in str(error.value)


def test_output_shapes_that_cannot_be_decoded_boxes_are_clear_errors():
    post = SSDPostprocessor(make_spec())
    transform = ResizeTransform(NET_SIZE, NET_SIZE, NET_SIZE, NET_SIZE)
    boxes, scores = np.zeros((1, 50, 4), np.float32), np.zeros((1, 50, 3), np.float32)
    with pytest.raises(ValueError, match=r"'boxes' \(1, 50, 4\) and 'scores' \(1, 60, 3\) have different numbers "
                                         r"of boxes"):
        post({"boxes": boxes, "scores": np.zeros((1, 60, 3), np.float32)}, transform)
    with pytest.raises(ValueError, match="'boxes' has 3 values per box"):
        post({"boxes": np.zeros((1, 50, 3), np.float32), "scores": scores}, transform)
    with pytest.raises(ValueError, match=r"'boxes' has shape \(2, 50, 4\); expected \(1, boxes, values\)"):
        post({"boxes": np.zeros((2, 50, 4), np.float32), "scores": scores}, transform)
    infos = {"boxes": TensorInfo("boxes", (1, 50, 4), np.float32), "scores": TensorInfo("scores", (1, 40, 3),
                                                                                        np.float32)}
    with pytest.raises(ValueError, match="different numbers of boxes"):
        post.check_outputs(infos)
    post.check_outputs(dict(infos, scores=TensorInfo("scores", (1, -1, 3), np.float32)))  # open dims: no verdict


# 2. End to end with the real TF detector ----------------------------------------------------------

# Mirrors the SavedModel's tf.image.combined_non_max_suppression(boxes[:, :, None, :], scores,
# max_output_size_per_class=10, max_total_size=10, iou_threshold=0.5, score_threshold=0.3):
# per-class hard NMS (the classes do not suppress each other), at most 10 in total, best first.
# TF also caps each class at 10, which the total of 10 already implies. Its boxes are y-first
# and its scores already sigmoids. top_k: 64 boxes x 3 classes, so no candidate is cut before NMS.
TF_MATCHING_SSD = {"box_coding": {"type": "decoded", "order": "yx", "normalized": True},
                   "score_activation": "none", "background_class": None,
                   "nms": {"method": "hard", "class_agnostic": False, "top_k": 192}}
TF_THRESHOLDS = {"score": 0.3, "nms_iou": 0.5, "max_detections": 10}
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")


def detector_spec(folder, normalise):
    """The spec for the detector: the graph normalises itself, or the runtime does it (mean/std 127.5)."""
    yaml = pytest.importorskip("yaml")
    from tests.test_field_failures import DETECTOR_CLASSES, DETECTOR_INPUT

    _, height, width, _ = DETECTOR_INPUT
    data = {"name": "field_detector", "task": "ssd",
            "input": {"name": "image", "width": width, "height": height, "layout": "NHWC", "color_order": "RGB",
                      "resize": "stretch"},
            "outputs": {"boxes": "boxes", "scores": "scores"},
            "labels": ["class{}".format(index) for index in range(DETECTOR_CLASSES)],
            "thresholds": TF_THRESHOLDS, "ssd": TF_MATCHING_SSD}
    if normalise:
        data["input"].update(mean=[127.5] * 3, std=[127.5] * 3)
    path = os.path.join(str(folder), "detector_{}.yaml".format("runtime_norm" if normalise else "graph_norm"))
    with open(path, "w") as handle:
        yaml.safe_dump(data, handle)
    return path


@pytest.fixture(scope="module")
def converted_detector(tmp_path_factory):
    """(SavedModel path, {"graph_norm": (spec, fixed ONNX), "runtime_norm": (spec, fixed ONNX)})."""
    for module in ("onnx", "onnxruntime", "tensorflow", "tf2onnx"):
        pytest.importorskip(module, reason="the end-to-end test needs {} (TF SavedModel -> ONNX -> ONNX "
                                           "Runtime)".format(module))
    from tests.test_field_failures import build_detector, cached, run_convert

    out = tmp_path_factory.mktemp("decoded-detector")
    source = cached(build_detector, "")
    stem = os.path.basename(source)
    graph_norm = detector_spec(out, normalise=False)
    status = run_convert("all", source, "--target", "jetson-nano", "--nms", "runtime", "--spec", graph_norm,
                         "-o", out)
    assert status == 0
    # The same model with the runtime normalising: fix strips the graph's (x - 127.5) / 127.5 too, and
    # verify feeds the stripped graph the spec's normalisation of the pixels the reference gets.
    runtime_norm = detector_spec(out, normalise=True)
    stripped_dir = out / "runtime_norm"
    assert run_convert("all", source, "--target", "jetson-nano", "--nms", "runtime", "--spec", runtime_norm,
                       "-o", stripped_dir) == 0
    return source, {"graph_norm": (graph_norm, str(out / (stem + ".fixed.onnx"))),
                    "runtime_norm": (runtime_norm, str(stripped_dir / (stem + ".fixed.onnx")))}


@pytest.mark.slow
def test_verify_without_the_spec_normalisation_catches_the_stripped_pre_processing(converted_detector):
    """The stripped graph really expects normalised input: fed raw pixels, verify must fail."""
    from tests.test_field_failures import run_convert

    source, graphs = converted_detector
    spec_path, stripped = graphs["runtime_norm"]
    exported = os.path.join(os.path.dirname(os.path.dirname(stripped)), os.path.basename(source) + ".onnx")
    assert run_convert("verify", exported, stripped, "--spec", spec_path) == 0
    assert run_convert("verify", exported, stripped) != 0


def tf_detections(found, width, height):
    """TF's NMS answer (nmsed_* or the serving signature's detection_*) as (boxes xyxy in image
    pixels, scores, classes); TF's boxes are y-first in 0..1 and map back by the stretch alone."""
    found = dict((key.replace("nmsed_", "detection_").replace("valid_detections", "num_detections"), value)
                 for key, value in (found.items() if isinstance(found, dict) else found._asdict().items()))
    count = int(found["num_detections"][0])
    boxes = np.asarray(found["detection_boxes"])[0, :count][:, [1, 0, 3, 2]] * [width, height, width, height]
    return boxes, np.asarray(found["detection_scores"])[0, :count], np.asarray(found["detection_classes"])[0, :count]


def network_pixels(pipeline):
    """The uint8 image the Pipeline fed the network (resized, RGB), recovered from its input buffer."""
    spec_input = pipeline.spec.input
    buffer = np.asarray(pipeline.input_buffer, np.float64)[0]
    pixels = (buffer * np.array(spec_input.std) + np.array(spec_input.mean)) / spec_input.scale
    assert np.abs(pixels - np.round(pixels)).max() < 1e-3  # the resize ran on uint8 pixels
    return np.round(pixels).astype(np.uint8)


def assert_same_detections(ours, theirs, where):
    boxes, scores, classes = theirs
    assert len(ours) == len(scores), where
    np.testing.assert_allclose(ours.scores, scores, rtol=1e-5, atol=1e-6, err_msg=where)
    np.testing.assert_array_equal(ours.class_ids, classes.astype(np.int32), err_msg=where)
    np.testing.assert_allclose(ours.boxes, boxes, atol=1e-2, err_msg=where)  # pixels


@pytest.mark.slow
@pytest.mark.parametrize("normalisation", ["graph_norm", "runtime_norm"])
def test_runtime_nms_graph_through_the_pipeline_matches_tf_combined_nms(converted_detector, normalisation):
    import tensorflow as tf

    from tests.support.models import sample_image_bgr
    from trt_infer.backends import load_backend
    from trt_infer.pipeline import Pipeline
    from trt_infer.spec import load_spec

    source, graphs = converted_detector
    spec_path, fixed = graphs[normalisation]
    detector = tf.saved_model.load(source)
    spec = load_spec(spec_path)
    suppressing = 0
    with load_backend(fixed, kind="onnxruntime") as backend:
        pipeline = Pipeline(spec, backend, processing="cpu")
        for name in PHOTOS:
            image = sample_image_bgr(name)
            height, width = image.shape[:2]
            pipeline.set_thresholds(**TF_THRESHOLDS)
            ours = pipeline(image).detections
            # TF gets exactly the network input the pipeline made, as uint8 pixels.
            pixels = tf.constant(network_pixels(pipeline)[None])
            served = detector.signatures["serving_default"](image=pixels)
            assert int(served["num_detections"][0]) > 0, name
            assert_same_detections(ours, tf_detections(served, width, height), name)

            # The SavedModel's boxes rarely overlap by IoU > 0.5, so also run TF's combined NMS on its
            # own decode output at an IoU where it does suppress, and check that it did.
            boxes, scores = detector.decode(pixels)
            suppressed, unsuppressed = [tf_detections(tf.image.combined_non_max_suppression(
                boxes[:, :, None, :], scores, 10, 10, iou_threshold=iou, score_threshold=0.3), width, height)
                for iou in (0.2, 1.0)]
            pipeline.set_thresholds(nms_iou=0.2)
            assert_same_detections(pipeline(image).detections, suppressed, name + " at IoU 0.2")
            same_boxes = suppressed[0].shape == unsuppressed[0].shape and np.allclose(suppressed[0], unsuppressed[0])
            suppressing += not same_boxes
    assert suppressing >= 3, "TF's NMS at IoU 0.2 suppressed boxes on only {} photos".format(suppressing)
