"""Centre-size box decoding: hand-computed cases per coding convention and encode/decode round trips."""
import math

import numpy as np
import pytest

from trt_infer.box_coding import BOX_CODING_SCHEMA, BoxDecoder, encode_boxes
from trt_infer.schema import SpecError, validate

TF = {"scales": [10.0, 10.0, 5.0, 5.0]}  # y first, exp sizes: the defaults
PYTORCH_SSD = {"variances": [0.1, 0.2], "order": "xy"}
MEDIAPIPE = {"scales": [128.0] * 4, "order": "xy", "size_decoding": "linear"}


def decoder(coding, anchors, keypoints=0):
    return BoxDecoder(validate(coding, BOX_CODING_SCHEMA, "ssd.box_coding"), np.array(anchors, np.float32), keypoints)


def test_tf_coding_by_hand():
    # anchor cy 0.5, cx 0.5, h 0.2, w 0.2; raw ty 1, tx 2, th 5 ln 2, tw 0
    # cy = 0.5 + 1/10 * 0.2 = 0.52, cx = 0.5 + 2/10 * 0.2 = 0.54, h = e^(ln 2) * 0.2 = 0.4, w = 0.2
    raw = np.array([[1.0, 2.0, 5 * math.log(2.0), 0.0]], np.float32)
    boxes = decoder(TF, [[0.5, 0.5, 0.2, 0.2]]).decode_boxes(raw, np.array([0]))
    np.testing.assert_allclose(boxes, [[0.44, 0.32, 0.64, 0.72]], atol=1e-6)


def test_pytorch_ssd_variances_by_hand():
    # x first: raw tx 1, ty -1, tw 0, th 5 ln 3; cx = 0.3 + 1 * 0.1 * 0.4, cy = 0.6 - 0.1 * 0.2, h = 3 * 0.2
    raw = np.array([[1.0, -1.0, 0.0, 5 * math.log(3.0)]], np.float32)
    boxes = decoder(PYTORCH_SSD, [[0.6, 0.3, 0.2, 0.4]]).decode_boxes(raw, np.array([0]))
    cx, cy, w, h = 0.34, 0.58, 0.4, 0.6
    np.testing.assert_allclose(boxes, [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]], atol=1e-6)


def test_variances_equal_reciprocal_scales():
    rng = np.random.RandomState(0)
    anchors = np.column_stack([rng.uniform(0, 1, (50, 2)), rng.uniform(0.05, 0.5, (50, 2))])
    raw = rng.normal(0, 1, (50, 4)).astype(np.float32)
    rows = np.arange(50)
    by_variance = decoder(PYTORCH_SSD, anchors).decode_boxes(raw, rows)
    by_scales = decoder({"scales": [10.0, 10.0, 5.0, 5.0], "order": "xy"}, anchors).decode_boxes(raw, rows)
    np.testing.assert_allclose(by_variance, by_scales, rtol=1e-6, atol=1e-7)


def test_mediapipe_linear_sizes_and_keypoints_by_hand():
    # fixed-size anchor at cy 0.25, cx 0.75; raw x 12.8, y -6.4, w 32, h 64 (pixels of a 128 input)
    # -> cx 0.85, cy 0.2, w 0.25, h 0.5; keypoints (0, 0) -> the anchor centre, (12.8, 12.8) -> +0.1
    raw = np.array([[12.8, -6.4, 32.0, 64.0, 0.0, 0.0, 12.8, 12.8]], np.float32)
    mediapipe = decoder(dict(MEDIAPIPE, keypoint_offset=4), [[0.25, 0.75, 1.0, 1.0]], keypoints=2)
    np.testing.assert_allclose(mediapipe.decode_boxes(raw, np.array([0])), [[0.725, -0.05, 0.975, 0.45]], atol=1e-6)
    np.testing.assert_allclose(mediapipe.decode_keypoints(raw, np.array([0])), [[[0.75, 0.25], [0.85, 0.35]]],
                               atol=1e-6)


def test_y_first_keypoints_are_returned_x_first():
    raw = np.array([[0, 0, 0, 0, 1.0, 2.0]], np.float32)  # keypoint y 1, x 2 (TF order)
    points = decoder(dict(TF, keypoint_offset=4), [[0.5, 0.5, 0.1, 0.2]], keypoints=1).decode_keypoints(
        raw, np.array([0]))
    np.testing.assert_allclose(points, [[[0.5 + 2 / 10.0 * 0.2, 0.5 + 1 / 10.0 * 0.1]]], atol=1e-6)


@pytest.mark.parametrize("coding", [TF, PYTORCH_SSD, MEDIAPIPE, dict(TF, box_offset=2)],
                         ids=["tf", "pytorch-ssd", "mediapipe", "offset"])
def test_encode_then_decode_round_trips(coding):
    rng = np.random.RandomState(1)
    count = 200
    anchors = np.column_stack([rng.uniform(0, 1, (count, 2)), rng.uniform(0.05, 0.5, (count, 2))])
    corners = np.sort(rng.uniform(-0.1, 1.1, (count, 2, 2)), axis=1)  # x1 < x2, y1 < y2
    boxes = np.column_stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]])
    raw = encode_boxes(boxes, anchors, validate(coding, BOX_CODING_SCHEMA, "b"))
    raw = np.column_stack([np.zeros((count, coding.get("box_offset", 0)), np.float32), raw])
    rows = rng.permutation(count)[:50]
    np.testing.assert_allclose(decoder(coding, anchors).decode_boxes(raw, rows), boxes[rows], atol=2e-6)


def test_scales_and_variances_together_is_an_error():
    with pytest.raises(SpecError, match="ssd.box_coding: give scales or variances, not both"):
        decoder({"scales": [1.0] * 4, "variances": [0.1, 0.2]}, [[0.5, 0.5, 1, 1]])


@pytest.mark.parametrize("coding, message", [
    ({"scales": [10.0, 10.0, 5.0]}, "ssd.box_coding.scales: got 3 values"),
    ({"scales": [10.0, 0.0, 5.0, 5.0]}, "all must be > 0"),
    ({"order": "cxcy"}, "allowed: 'yx', 'xy'"),
])
def test_bad_codings_name_the_key(coding, message):
    with pytest.raises(SpecError, match=message):
        decoder(coding, [[0.5, 0.5, 1, 1]])
