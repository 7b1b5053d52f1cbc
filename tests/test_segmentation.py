"""Segmentation post-processing maths, and MediaPipe's selfie model on scikit-image's astronaut."""
import cv2
import numpy as np
import pytest

from tests.support.faces import independent_face_boxes
from trt_infer.geometry import ResizeTransform
from trt_infer.postprocess.segmentation import SegmentationPostprocessor, mask_to_image
from trt_infer.spec import ModelSpec

RNG = np.random.RandomState(3)


def post_for(activation="argmax", layout="NCHW", threshold=0.5):
    spec = ModelSpec({"name": "seg", "task": "segmentation", "input": {"name": "x", "width": 32, "height": 24},
                      "outputs": {"logits": "out"},
                      "segmentation": {"activation": activation, "logits_layout": layout, "threshold": threshold}})
    return SegmentationPostprocessor(spec)


def test_argmax_follows_the_layout():
    logits = RNG.randn(1, 5, 24, 32).astype(np.float32)
    expected = np.zeros((24, 32), np.uint8)
    for best in range(1, 5):  # independent answer: running comparison, channel by channel
        expected[logits[0, best] > logits[0, expected.astype(int), np.arange(24)[:, None], np.arange(32)]] = best
    np.testing.assert_array_equal(post_for(layout="NCHW").network_mask(logits), expected)
    np.testing.assert_array_equal(post_for(layout="NHWC").network_mask(logits.transpose(0, 2, 3, 1)), expected)


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.9])
def test_sigmoid_threshold_on_logits_and_on_probabilities(threshold):
    logits = RNG.randn(1, 24, 32, 1).astype(np.float32) * 4
    probability = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    expected = (probability[0, :, :, 0] > threshold).astype(np.uint8)
    assert 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(post_for("sigmoid", "NHWC", threshold).network_mask(logits), expected)
    np.testing.assert_array_equal(post_for("probability", "NHWC", threshold).network_mask(probability), expected)
    np.testing.assert_array_equal(post_for("probability", "NCHW", threshold).network_mask(probability[..., 0]),
                                  expected)


def test_activation_and_channel_count_must_agree():
    with pytest.raises(ValueError) as error:
        post_for("argmax", "NHWC").network_mask(np.zeros((1, 24, 32, 1), np.float32))
    assert "activation: sigmoid" in str(error.value)
    with pytest.raises(ValueError) as error:
        post_for("probability", "NCHW").network_mask(np.zeros((1, 3, 24, 32), np.float32))
    assert "3 class channels" in str(error.value) and "argmax" in str(error.value)
    with pytest.raises(ValueError) as error:
        post_for().network_mask(np.zeros((2, 3, 24, 32), np.float32))
    assert "(2, 3, 24, 32)" in str(error.value)


@pytest.mark.parametrize("image_size, mode", [((90, 160), "letterbox"), ((160, 90), "letterbox"),
                                              ((90, 160), "stretch")])
def test_mask_to_image_undoes_the_fit(image_size, mode):
    height, width = image_size
    truth = np.zeros(image_size, np.uint8)
    truth[height // 4:height // 2, width // 5:width // 2] = 1
    truth[height // 2:, width // 2:] = 2
    transform = ResizeTransform(width, height, 64, 64, mode)
    x, y, valid_width, valid_height = transform.valid_region()
    network = np.full((64, 64), 9, np.uint8)  # 9 marks padding
    network[y:y + valid_height, x:x + valid_width] = cv2.resize(truth, (valid_width, valid_height),
                                                                interpolation=cv2.INTER_NEAREST)
    back = mask_to_image(network, transform)
    assert back.shape == image_size and not np.any(back == 9)
    assert np.mean(back == truth) > 0.97


def test_mask_to_image_scales_the_valid_region_to_a_smaller_output():
    transform = ResizeTransform(200, 100, 64, 64, "letterbox")  # content rows 16..48 of the input
    network = np.full((32, 32), 9, np.uint8)  # the model's output is half the input's size
    network[8:24] = 1
    back = mask_to_image(network, transform)
    assert back.shape == (100, 200) and np.all(back == 1)


def face_box(image_bgr):
    """The largest face found by an independent detector (OpenCV's Haar cascade): (x, y, w, h)."""
    faces = independent_face_boxes(image_bgr)
    assert len(faces) >= 1, "the face cascade found no face"
    x1, y1, x2, y2 = faces[0]
    return x1, y1, x2 - x1, y2 - y1


def person_mask_checks(mask, image_bgr):
    """Coverage of regions the mask must / must not cover, from an independent face detector.

    A person mask must cover most of the face box and of the upper body below it (1.5 face
    heights down, half a face width wider on each side), and little of the top corners away
    from the face (flag and spacecraft in `astronaut`). An empty mask fails the first two, a
    full one the corner checks, a mask shifted by a face width fails the face check.
    """
    height, width = mask.shape
    x, y, w, h = face_box(image_bgr)
    person = mask == 1
    body_top, body_bottom = y + h, min(height, int(y + 2.5 * h))
    body_left, body_right = max(0, int(x - 0.5 * w)), min(width, int(x + 1.5 * w))
    corner_width = (width - (x + w)) // 2
    return {
        "face": person[y:y + h, x:x + w].mean(),
        "upper body": person[body_top:body_bottom, body_left:body_right].mean(),
        "top right": person[:height // 3, width - corner_width:].mean(),
        "top left": person[:height // 3, :x // 2].mean(),
    }


@pytest.mark.slow
def test_selfie_segmentation_covers_the_astronaut():
    pytest.importorskip("onnxruntime", reason="runs the model with ONNX Runtime")
    pytest.importorskip("skimage", reason="the image is scikit-image's astronaut")
    pytest.importorskip("tf2onnx", reason="the TFLite model is converted with tf2onnx")
    import os

    from tests.support.models import converted_for_target, sample_image_bgr
    from trt_infer.backends import load_backend
    from trt_infer.pipeline import Pipeline
    from trt_infer.spec import load_spec

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = load_spec(os.path.join(root, "config", "models", "selfie_segmentation.yaml"))
    image = sample_image_bgr("astronaut")
    with load_backend(converted_for_target("selfie_segmentation")) as backend:
        result = Pipeline(spec, backend)(image)
    assert result.image_mask.shape == image.shape[:2]
    coverage = person_mask_checks(result.image_mask, image)
    assert coverage["face"] >= 0.9, coverage
    assert coverage["upper body"] >= 0.8, coverage
    assert coverage["top right"] <= 0.1 and coverage["top left"] <= 0.1, coverage
    # the same checks reject the masks a broken pipeline would give
    for wrong in (np.zeros_like(result.image_mask), np.ones_like(result.image_mask),
                  np.roll(result.image_mask, 200, axis=1)):
        bad = person_mask_checks(wrong, image)
        assert bad["face"] < 0.9 or bad["upper body"] < 0.8 or max(bad["top right"], bad["top left"]) > 0.1
