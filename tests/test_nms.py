"""NMS against a plain greedy reference written here, and against OpenCV where semantics coincide.

The reference is the textbook greedy NMS: visit boxes by descending score (ties: lower index
first), keep a box unless a kept box of the same class (any class when class-agnostic) overlaps
it with IoU strictly above the threshold; IoU with an empty union is 0. It computes in double
precision, the implementation under test in float32: on grid coordinates both are exact, on
random ones an IoU would have to fall within ~1e-7 of the threshold to differ.
"""
import numpy as np
import pytest

from trt_infer import nms
from trt_infer.nms import hard_nms, iou_one_to_many, top_k_indices, weighted_nms


@pytest.fixture(autouse=True, params=["pairwise", "shrinking", "opencv"])
def greedy_variant(request, monkeypatch):
    """Every test runs on both numpy greedy loops (the IoU-matrix one and the shrinking-list one)
    and on OpenCV's NMSBoxes / NMSBoxesBatched where this OpenCV has them (hard_nms's first choice)."""
    if request.param == "opencv":
        if nms.opencv_nms_functions() is None:
            pytest.skip("this OpenCV has no cv2.dnn.NMSBoxesBatched (< 4.7): hard_nms runs numpy only")
    else:
        monkeypatch.setattr(nms, "_OPENCV", [None])
    if request.param == "shrinking":
        monkeypatch.setattr(nms, "PAIRWISE_LIMIT", 0)
    return request.param


def reference_iou(a, b):
    a = [float(v) for v in a]
    b = [float(v) for v in b]
    width = max(min(a[2], b[2]) - max(a[0], b[0]), 0)
    height = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    intersection = width * height
    area_a = max(a[2] - a[0], 0) * max(a[3] - a[1], 0)
    area_b = max(b[2] - b[0], 0) * max(b[3] - b[1], 0)
    union = area_a + area_b - intersection
    return intersection / union if union > 0 else 0.0


def reference_nms(boxes, scores, threshold, class_ids=None, max_output=None):
    threshold = float(np.float32(threshold))
    order = sorted(range(len(scores)), key=lambda index: (-float(scores[index]), index))
    kept = []
    for index in order:
        if max_output is not None and len(kept) == max_output:
            break
        suppressed = any(
            (class_ids is None or class_ids[index] == class_ids[other])
            and reference_iou(boxes[index], boxes[other]) > threshold
            for other in kept)
        if not suppressed:
            kept.append(index)
    return kept


def reference_weighted_nms(boxes, scores, threshold):
    """MediaPipe's WeightedNonMaxSuppression, loop for loop (class-agnostic)."""
    remaining = sorted(range(len(scores)), key=lambda index: (-float(scores[index]), index))
    kept, blended = [], []
    threshold = float(np.float32(threshold))
    while remaining:
        top = remaining[0]
        cluster = [top] + [other for other in remaining[1:] if reference_iou(boxes[top], boxes[other]) > threshold]
        total = sum(float(scores[member]) for member in cluster)
        blended.append([sum(float(scores[member]) * float(boxes[member][k]) for member in cluster) / total
                        for k in range(4)])
        kept.append(top)
        remaining = [other for other in remaining if other not in cluster]
    return kept, np.array(blended).reshape(-1, 4)


def random_boxes(rng, count, spread=1.0, size=(0.05, 0.4), grid=None):
    """x1, y1, x2, y2 float32 boxes; with grid, coordinates are multiples of 1/grid (exact ties)."""
    corner = rng.uniform(0, spread, (count, 2))
    extent = rng.uniform(size[0], size[1], (count, 2))
    boxes = np.column_stack([corner, corner + extent])
    if grid:
        boxes = np.round(boxes * grid) / grid
    return boxes.astype(np.float32)


def assert_same_as_reference(boxes, scores, threshold, class_ids=None, max_output=None):
    kept = hard_nms(boxes, scores, threshold, class_ids, max_output)
    assert kept.dtype.kind == "i"
    assert list(kept) == reference_nms(boxes, scores, threshold, class_ids, max_output)
    return kept


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_random_boxes_match_reference(seed, threshold):
    rng = np.random.RandomState(seed)
    boxes = random_boxes(rng, 120, spread=0.5, size=(0.1, 0.4))
    scores = rng.uniform(0, 1, 120).astype(np.float32)
    kept = assert_same_as_reference(boxes, scores, threshold)
    assert 0 < len(kept) < 120  # the case exercises suppression


@pytest.mark.parametrize("seed", range(4))
def test_per_class_and_max_output_match_reference(seed):
    rng = np.random.RandomState(10 + seed)
    boxes = random_boxes(rng, 150, spread=0.5)
    scores = rng.uniform(0, 1, 150).astype(np.float32)
    class_ids = rng.randint(0, 4, 150)
    per_class = assert_same_as_reference(boxes, scores, 0.45, class_ids)
    agnostic = assert_same_as_reference(boxes, scores, 0.45)
    assert len(per_class) > len(agnostic)
    assert_same_as_reference(boxes, scores, 0.45, class_ids, max_output=7)


@pytest.mark.parametrize("seed", range(4))
def test_grid_boxes_with_tied_scores_and_exact_ious(seed):
    # Coordinates on a 1/8 grid and scores from 4 values: many equal scores and IoUs exactly at
    # the threshold (kept: suppression needs IoU strictly greater).
    rng = np.random.RandomState(20 + seed)
    boxes = random_boxes(rng, 100, spread=1.0, size=(0.125, 0.5), grid=8)
    scores = rng.choice(np.float32([0.2, 0.4, 0.6, 0.8]), 100)
    for threshold in (0.5, 0.25, 1.0 / 3):
        assert_same_as_reference(boxes, scores, threshold, rng.randint(0, 2, 100))
        assert_same_as_reference(boxes, scores, threshold)


def test_iou_exactly_at_threshold_is_kept():
    boxes = np.float32([[0, 0, 2, 1], [0, 0, 1, 1]])  # IoU 1/2
    assert list(hard_nms(boxes, np.float32([0.9, 0.8]), 0.5)) == [0, 1]
    assert list(hard_nms(boxes, np.float32([0.9, 0.8]), 0.49)) == [0]


def test_identical_boxes_keep_the_first_of_equal_scores():
    boxes = np.tile(np.float32([[0.1, 0.1, 0.5, 0.5]]), (5, 1))
    assert list(assert_same_as_reference(boxes, np.float32([0.5, 0.7, 0.7, 0.1, 0.7]), 0.5)) == [1]


def test_many_overlapping_boxes_collapse_to_one():
    rng = np.random.RandomState(3)
    jitter = rng.uniform(-0.005, 0.005, (300, 4)).astype(np.float32)
    boxes = np.float32([0.3, 0.3, 0.6, 0.6]) + jitter
    scores = rng.uniform(0.5, 1, 300).astype(np.float32)
    kept = assert_same_as_reference(boxes, scores, 0.5)
    assert list(kept) == [int(np.argmax(scores))]


def test_zero_area_boxes_never_suppress_and_are_never_suppressed_by_area_zero_union():
    boxes = np.float32([[0.2, 0.2, 0.2, 0.6], [0.2, 0.2, 0.2, 0.6], [0.1, 0.1, 0.4, 0.4], [0.5, 0.5, 0.5, 0.5]])
    scores = np.float32([0.9, 0.8, 0.7, 0.6])
    assert list(assert_same_as_reference(boxes, scores, 0.1)) == [0, 1, 2, 3]
    iou = iou_one_to_many(boxes[0], boxes)
    assert np.all(np.isfinite(iou)) and np.all(iou == 0)


def test_empty_input():
    empty = np.zeros((0, 4), np.float32)
    assert hard_nms(empty, np.zeros(0, np.float32), 0.5).shape == (0,)
    kept, blended, points = weighted_nms(empty, np.zeros(0, np.float32), 0.5)
    assert kept.shape == (0,) and blended.shape == (0, 4) and points is None


def test_top_k_is_stable_and_handles_ties_at_the_cut():
    scores = np.float32([0.1, 0.9, 0.5, 0.9, 0.5, 0.5, 0.2])
    reference = sorted(range(len(scores)), key=lambda index: (-scores[index], index))
    for k in range(len(scores) + 2):
        assert list(top_k_indices(scores, k)) == reference[:k]
    assert list(top_k_indices(scores)) == reference


@pytest.mark.parametrize("seed", range(4))
def test_weighted_nms_matches_mediapipe_reference(seed):
    rng = np.random.RandomState(30 + seed)
    centres = rng.uniform(0.2, 0.8, (5, 2))
    boxes = np.concatenate([np.concatenate([c - 0.1, c + 0.1]) + rng.normal(0, 0.02, (12, 4)) for c in centres])
    boxes = boxes.astype(np.float32)
    scores = rng.uniform(0.5, 1, len(boxes)).astype(np.float32)
    kept, blended, _ = weighted_nms(boxes, scores, 0.3)
    expected_kept, expected_boxes = reference_weighted_nms(boxes, scores, 0.3)
    assert list(kept) == expected_kept
    np.testing.assert_allclose(blended, expected_boxes, atol=1e-6)
    assert list(kept) == list(hard_nms(boxes, scores, 0.3))  # same clusters as hard NMS


def test_weighted_nms_blends_keypoints_with_the_box_weights():
    boxes = np.float32([[0, 0, 1, 1], [0.1, 0, 1.1, 1], [5, 5, 6, 6]])
    scores = np.float32([0.75, 0.25, 0.5])
    keypoints = np.float32([[[0, 0]], [[4, 8]], [[9, 9]]])
    kept, blended, points = weighted_nms(boxes, scores, 0.5, keypoints=keypoints)
    assert list(kept) == [0, 2]
    np.testing.assert_allclose(blended, [[0.025, 0, 1.025, 1], [5, 5, 6, 6]], atol=1e-6)
    np.testing.assert_allclose(points, [[[1, 2]], [[9, 9]]], atol=1e-6)


def cv2_dnn(name):
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2.dnn, name):
        pytest.skip("this OpenCV ({}) has no cv2.dnn.{}".format(cv2.__version__, name))
    return getattr(cv2.dnn, name)


def xywh(boxes):
    return np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).astype(np.float64)


# OpenCV counts two zero-area boxes as identical (IoU 1) and keeps scores strictly above its
# score threshold; with positive-area boxes and a score threshold below every score, its
# NMSBoxes / NMSBoxesBatched are the same greedy NMS as ours.
@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_opencv_nms_boxes(seed):
    nms_boxes = cv2_dnn("NMSBoxes")
    rng = np.random.RandomState(40 + seed)
    boxes = random_boxes(rng, 300, spread=0.7)
    scores = rng.uniform(0.01, 1, 300).astype(np.float32)
    expected = np.asarray(nms_boxes(xywh(boxes).tolist(), scores.tolist(), 0.0, 0.45)).reshape(-1)
    assert list(hard_nms(boxes, scores, 0.45)) == list(expected)


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_opencv_nms_boxes_batched(seed):
    nms_batched = cv2_dnn("NMSBoxesBatched")
    rng = np.random.RandomState(50 + seed)
    boxes = random_boxes(rng, 300, spread=0.7)
    scores = rng.uniform(0.01, 1, 300).astype(np.float32)
    class_ids = rng.randint(0, 5, 300)
    expected = np.asarray(nms_batched(xywh(boxes), scores, class_ids, 0.0, 0.45)).reshape(-1)
    assert list(hard_nms(boxes, scores, 0.45, class_ids)) == list(expected)


def test_opencv_runs_only_where_its_semantics_coincide(greedy_variant, monkeypatch):
    if greedy_variant != "opencv":
        pytest.skip("about the OpenCV variant")
    calls = []
    real = nms._opencv_hard_nms

    def spy(*args):
        kept = real(*args)
        calls.append(kept is not None)
        return kept

    monkeypatch.setattr(nms, "_opencv_hard_nms", spy)
    boxes = np.float32([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.5, 0.52], [0.6, 0.6, 0.9, 0.9]])
    scores = np.float32([0.5, 0.9, 0.3])
    cases = [
        (boxes, scores, None, True),
        (boxes, scores, [1, 1, 2], True),
        (np.vstack([boxes, [[0.3, 0.3, 0.3, 0.4]]]), np.append(scores, 0.2), None, False),  # a zero-area box
        (boxes, np.float32([0.5, -np.inf, 0.3]), None, False),  # OpenCV would drop scores <= 0
        (boxes, np.float32([0.5, 0.0, 0.3]), None, False),
        (boxes, np.float32([0.5, np.nan, 0.3]), None, False),
        (boxes - 2, scores, [1, 1, 2], False),  # below -1: NMSBoxesBatched's class offsets would overlap
    ]
    for case_boxes, case_scores, class_ids, by_opencv in cases:
        del calls[:]
        kept = hard_nms(case_boxes, case_scores, 0.5, class_ids)
        assert calls == [by_opencv]
        if np.all(np.isfinite(case_scores)):
            assert list(kept) == reference_nms(case_boxes, case_scores, 0.5, class_ids)
