"""Non-maximum suppression: greedy hard NMS and MediaPipe's weighted (blending) NMS, top-k.

Boxes are (N, 4) x1, y1, x2, y2. Conventions, shared with TF, OpenCV and MediaPipe:
- candidates are visited by descending score; equal scores keep their input order (stable);
- a box is suppressed when its IoU with a kept box is strictly greater than the threshold;
- IoU of boxes whose union has no area is 0, so zero-area boxes never suppress anything;
- per-class NMS (class_ids given) only lets boxes of the same class suppress each other.

The greedy loop runs once per kept box, never once per candidate: up to PAIRWISE_LIMIT
candidates it works from the pairwise IoU matrix (one vectorised step, then three small array
operations per kept box); beyond, it compares each kept box with the remaining candidates in
one vectorised step and drops the ones it suppresses. Both are O(kept) Python iterations.

`hard_nms` hands the work to OpenCV's cv2.dnn.NMSBoxes / NMSBoxesBatched (>= 4.7) where this
OpenCV has them and their semantics coincide with the above: every box of positive width and
height, no coordinate below -1 (NMSBoxesBatched separates the classes by offsetting each box by
class x (largest coordinate + 1)), every score above 0 (its score threshold cannot be negative).
For tens of candidates numpy's per-call overhead costs several times OpenCV's loop; elsewhere
(OpenCV < 4.7, e.g. JetPack 4's Python 3.6) the numpy loop runs. OpenCV computes the IoU in
double precision, the numpy loop in float32: like the tests' double-precision reference, they
could differ only for an IoU within ~1e-7 of the threshold.
"""
import numpy as np


def top_k_indices(scores, k=None):
    """Indices of the k highest scores (all when k is None), best first; equal scores in index order."""
    scores = np.asarray(scores)
    candidates = np.arange(scores.size)
    if k is not None and k < scores.size:
        if k <= 0:
            return candidates[:0]
        kth_largest = np.partition(scores, scores.size - k)[scores.size - k]
        candidates = np.flatnonzero(scores >= kth_largest)  # ties at the cut are trimmed below
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    return order if k is None else order[:k]


def iou_one_to_many(box, boxes, areas=None):
    """IoU of one x1, y1, x2, y2 box with each row of `boxes`; 0 where the union is empty."""
    width = np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0])
    height = np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1])
    intersection = np.maximum(width, 0) * np.maximum(height, 0)
    if areas is None:
        areas = box_areas(boxes)
    union = areas + _area(box) - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = intersection / union
    iou[~(union > 0)] = 0
    return iou


def box_areas(boxes):
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)


def _area(box):
    return max(box[2] - box[0], 0) * max(box[3] - box[1], 0)


# Up to this many candidates the pairwise IoU matrix is cheaper than shrinking the candidate
# list once per kept box (which costs ~20 small numpy calls per kept box).
PAIRWISE_LIMIT = 512


def _greedy(boxes, scores, iou_threshold, class_ids, max_output, clusters):
    """Kept indices (into boxes), best first; with clusters=True also each kept box's suppressed members."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    order = top_k_indices(scores)
    limit = len(order) if max_output is None else max_output
    # Compare in float32 like the IoUs, so an IoU that equals the threshold is never suppressed.
    iou_threshold = np.float32(iou_threshold)
    sorted_classes = None if class_ids is None else np.asarray(class_ids)[order]
    greedy = _greedy_pairwise if len(order) <= PAIRWISE_LIMIT else _greedy_shrinking
    kept, members = greedy(boxes[order], sorted_classes, iou_threshold, limit, clusters)
    kept = order[np.array(kept, dtype=np.intp)]
    if clusters:
        return kept, [order[group] for group in members]
    return kept


def _greedy_pairwise(boxes, class_ids, iou_threshold, limit, clusters):
    """Greedy NMS over score-sorted boxes from their IoU matrix; positions into the sorted boxes."""
    x1, y1, x2, y2 = boxes.T
    width = np.minimum(x2[:, None], x2[None, :]) - np.maximum(x1[:, None], x1[None, :])
    height = np.minimum(y2[:, None], y2[None, :]) - np.maximum(y1[:, None], y1[None, :])
    intersection = np.maximum(width, 0) * np.maximum(height, 0)
    areas = box_areas(boxes)
    union = areas[:, None] + areas[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        overlapping = intersection / union > iou_threshold  # an empty union gives NaN: False
    if class_ids is not None:
        overlapping &= class_ids[:, None] == class_ids[None, :]
    apart = ~overlapping
    alive = np.ones(len(boxes), dtype=bool)
    kept, members = [], []
    while len(kept) < limit:
        top = int(alive.argmax())  # the best box not yet suppressed
        if not alive[top]:
            break
        kept.append(top)
        if clusters:
            others = np.flatnonzero(alive & overlapping[top])
            members.append(np.concatenate(([top], others[others != top])))
        alive &= apart[top]
        alive[top] = False
    return kept, members


def _greedy_shrinking(boxes, class_ids, iou_threshold, limit, clusters):
    """Greedy NMS over score-sorted boxes, dropping suppressed boxes from the candidates as it goes."""
    areas = box_areas(boxes)
    remaining = np.arange(len(boxes))
    kept, members = [], []
    while remaining.size and len(kept) < limit:
        top, rest = remaining[0], remaining[1:]
        overlapping = iou_one_to_many(boxes[top], boxes[rest], areas[rest]) > iou_threshold
        if class_ids is not None:
            overlapping &= class_ids[rest] == class_ids[top]
        kept.append(top)
        if clusters:
            members.append(np.concatenate(([top], rest[overlapping])))
        remaining = rest[~overlapping]
    return kept, members


_OPENCV = []  # [(NMSBoxes, NMSBoxesBatched) or None], looked up once


def opencv_nms_functions():
    """cv2.dnn's (NMSBoxes, NMSBoxesBatched) where this OpenCV has both, else None."""
    if not _OPENCV:
        try:
            import cv2

            _OPENCV.append((cv2.dnn.NMSBoxes, cv2.dnn.NMSBoxesBatched))
        except (ImportError, AttributeError):
            _OPENCV.append(None)
    return _OPENCV[0]


# x1, y1, x2, y2 -> x, y, width, height as one product: exact (the factors are 0 and +-1)
_TO_XYWH = np.array([[1, 0, -1, 0], [0, 1, 0, -1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64)
# x + 1, y + 1, width, height all > 0: the boxes on which OpenCV's semantics coincide with ours
_GUARD_SHIFT = np.array([1, 1, 0, 0], dtype=np.float64)


def _opencv_hard_nms(boxes, scores, iou_threshold, class_ids, max_output):
    """hard_nms by OpenCV, or None where OpenCV is missing or its semantics differ for these boxes."""
    functions = opencv_nms_functions()
    if functions is None or (max_output is not None and max_output <= 0):
        return None
    boxes = np.asarray(boxes, dtype=np.float32)  # the numpy loop's values
    scores = np.asarray(scores, dtype=np.float32)
    if boxes.size == 0:
        return None
    xywh = boxes.reshape(-1, 4).astype(np.float64).dot(_TO_XYWH)
    # OpenCV counts two zero-area boxes as identical and keeps only scores above its threshold (>= 0)
    if not (np.minimum.reduce(xywh + _GUARD_SHIFT, axis=None) > 0 and np.minimum.reduce(scores) > 0):
        return None
    if class_ids is None:
        kept = functions[0](xywh, scores, 0.0, float(iou_threshold))
    else:
        kept = functions[1](xywh, scores, class_ids, 0.0, float(iou_threshold))
    if not len(kept):
        return np.zeros(0, dtype=np.intp)
    return np.asarray(kept).reshape(-1)[:max_output]


def hard_nms(boxes, scores, iou_threshold, class_ids=None, max_output=None):
    """Greedy NMS; returns indices into boxes of the kept boxes, best first.

    class_ids: per-box class, for per-class NMS; None for class-agnostic.
    max_output: stop after this many kept boxes.
    """
    class_ids = None if class_ids is None else np.asarray(class_ids)
    kept = _opencv_hard_nms(boxes, scores, iou_threshold, class_ids, max_output)
    if kept is not None:
        return kept
    return _greedy(boxes, scores, iou_threshold, class_ids, max_output, clusters=False)


def weighted_nms(boxes, scores, iou_threshold, class_ids=None, max_output=None, keypoints=None):
    """MediaPipe's weighted NMS: each kept box is the score-weighted mean of the boxes it suppresses.

    Clusters form exactly as in hard NMS (the best remaining box and every remaining box with
    IoU > threshold); the kept score is the best one's. Keypoints, if given ((N, K, 2)), are
    blended with the same weights.
    Returns (kept indices, blended boxes (k, 4) float32, blended keypoints (k, K, 2) or None).
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32)
    class_ids = None if class_ids is None else np.asarray(class_ids)
    kept, clusters = _greedy(boxes, scores, iou_threshold, class_ids, max_output, clusters=True)
    blended = np.empty((len(kept), 4), dtype=np.float32)
    blended_points = None if keypoints is None else np.empty((len(kept),) + keypoints.shape[1:], np.float32)
    for slot, members in enumerate(clusters):
        weights = scores[members]
        total = weights.sum()
        if not total > 0:  # all-zero scores: the plain mean
            weights, total = np.ones(len(members), np.float32), float(len(members))
        blended[slot] = weights.dot(boxes[members]) / total
        if blended_points is not None:
            blended_points[slot] = np.tensordot(weights, keypoints[members], axes=1) / total
    return kept, blended, blended_points
