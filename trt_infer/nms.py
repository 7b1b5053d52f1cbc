"""Non-maximum suppression: greedy hard NMS and MediaPipe's weighted (blending) NMS, top-k.

Boxes are (N, 4) x1, y1, x2, y2. Conventions, shared with TF, OpenCV and MediaPipe:
- candidates are visited by descending score; equal scores keep their input order (stable);
- a box is suppressed when its IoU with a kept box is strictly greater than the threshold;
- IoU of boxes whose union has no area is 0, so zero-area boxes never suppress anything;
- per-class NMS (class_ids given) only lets boxes of the same class suppress each other.

The greedy loop runs once per kept box and compares it with all remaining candidates in one
vectorised step, so the cost is O(kept x candidates) array work with O(kept) Python iterations.
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


def _greedy(boxes, scores, iou_threshold, class_ids, max_output, clusters):
    """Kept indices (into boxes), best first; with clusters=True also each kept box's suppressed members."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    order = top_k_indices(scores, None)
    limit = len(order) if max_output is None else max_output
    areas = box_areas(boxes)
    # Compare in float32 like the IoUs, so an IoU that equals the threshold is never suppressed.
    iou_threshold = np.float32(iou_threshold)
    kept = []
    members = []
    remaining = order
    while remaining.size and len(kept) < limit:
        top, rest = remaining[0], remaining[1:]
        overlapping = iou_one_to_many(boxes[top], boxes[rest], areas[rest]) > iou_threshold
        if class_ids is not None:
            overlapping &= class_ids[rest] == class_ids[top]
        kept.append(top)
        if clusters:
            members.append(np.concatenate(([top], rest[overlapping])))
        remaining = rest[~overlapping]
    kept = np.array(kept, dtype=np.intp)
    return (kept, members) if clusters else kept


def hard_nms(boxes, scores, iou_threshold, class_ids=None, max_output=None):
    """Greedy NMS; returns indices into boxes of the kept boxes, best first.

    class_ids: per-box class, for per-class NMS; None for class-agnostic.
    max_output: stop after this many kept boxes.
    """
    class_ids = None if class_ids is None else np.asarray(class_ids)
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
