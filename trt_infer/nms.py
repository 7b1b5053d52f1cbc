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
