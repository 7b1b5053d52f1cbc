"""SSD post-processing: raw regressors + class scores -> decoded, suppressed detections.

Steps per frame, all vectorised numpy:
1. select (anchor, class) candidates whose score reaches thresholds.score: for a sigmoid the
   raw logits are compared with logit(threshold), so no exp runs over the whole score tensor;
   the background class never becomes a candidate;
2. keep the nms.top_k best candidates, decode only their boxes (and keypoints);
3. hard or weighted NMS, per class or class-agnostic, stopping at thresholds.max_detections;
4. map boxes and keypoints back to the received image's pixels (boxes clipped to it).
Thresholds are read from spec.thresholds on every call, so run-time changes apply at once.
"""
import math

import numpy as np

from trt_infer.anchors import ANCHOR_SCHEMA, generate_anchors
from trt_infer.box_coding import BOX_CODING_SCHEMA, BoxDecoder
from trt_infer.nms import hard_nms, top_k_indices, weighted_nms
from trt_infer.result import Detections
from trt_infer.schema import Field

SCORE_ACTIVATIONS = ("sigmoid", "softmax", "none")
NMS_METHODS = ("hard", "weighted")


def _non_negative(value):
    return None if value >= 0 else "must be >= 0"


NMS_SCHEMA = {
    "method": Field(str, default="hard", choices=NMS_METHODS,
                    doc="hard: drop overlapping boxes; weighted: blend them by score (MediaPipe)"),
    "class_agnostic": Field(bool, default=False, doc="let boxes of different classes suppress each other"),
    "top_k": Field(int, default=400, check=lambda k: None if k >= 1 else "must be >= 1",
                   doc="best candidates kept before NMS"),
}

SCHEMA = {
    "anchors": Field(dict, schema=ANCHOR_SCHEMA),
    "box_coding": Field(dict, default={}, schema=BOX_CODING_SCHEMA),
    "score_activation": Field(str, default="sigmoid", choices=SCORE_ACTIVATIONS),
    "score_clip": Field(float, default=None, nullable=True,
                        check=lambda c: None if c > 0 else "must be > 0",
                        doc="raw scores clipped to +-score_clip before the activation (MediaPipe: 100)"),
    "background_class": Field(int, default=None, nullable=True, check=_non_negative,
                              doc="score column that is never a detection (TF OD API, pytorch-ssd: 0)"),
    "num_keypoints": Field(int, default=0, check=_non_negative),
    "nms": Field(dict, default={}, schema=NMS_SCHEMA),
}


def sigmoid(values):
    return 1.0 / (1.0 + np.exp(-values))


def _logit(probability):
    if probability <= 0.0:
        return -np.inf
    if probability >= 1.0:
        return np.inf
    return math.log(probability / (1.0 - probability))


class SSDPostprocessor(object):
    """Built from a validated ModelSpec of task `ssd`; called as post(outputs, transform)."""

    def __init__(self, spec):
        section = spec.ssd
        self.thresholds = spec.thresholds
        self.boxes_name = spec.outputs["boxes"]
        self.scores_name = spec.outputs["scores"]
        self.anchors = generate_anchors(section["anchors"], spec.input.width, spec.input.height)
        self.decoder = BoxDecoder(section["box_coding"], self.anchors, section["num_keypoints"])
        self.activation = section["score_activation"]
        self.score_clip = section["score_clip"]
        self.background_class = section["background_class"]
        self.weighted = section["nms"]["method"] == "weighted"
        self.class_agnostic = section["nms"]["class_agnostic"]
        self.top_k = section["nms"]["top_k"]

    def check_outputs(self, infos):
        """ValueError when the model's output shapes (name -> TensorInfo) cannot fit the spec."""
        for name in (self.boxes_name, self.scores_name):
            info = infos.get(name)
            if info is not None and info.is_static:
                self._values_per_anchor(name, info.shape)

    def _values_per_anchor(self, name, shape):
        count = len(self.anchors)
        size = int(np.prod(shape))
        batched = len(shape) == 3 and shape[0] == 1
        if not (batched or len(shape) == 2) or size == 0 or size % count or shape[-2] != count:
            raise ValueError("SSD output {!r} has shape {}; expected (1, {}, values) for the {} anchors the "
                             "spec's ssd.anchors generate".format(name, tuple(shape), count, count))
        values = shape[-1]
        if name == self.boxes_name and values < self.decoder.values_needed:
            raise ValueError("SSD output {!r} has {} values per anchor; ssd.box_coding (box_offset {}) and "
                             "ssd.num_keypoints ({} at keypoint_offset {}) need {}".format(
                                 name, values, self.decoder.box_offset, self.decoder.num_keypoints,
                                 self.decoder.keypoint_offset, self.decoder.values_needed))
        return values

    def _per_anchor(self, outputs, name):
        """The output named `name` as (anchors, values), batch dimension dropped."""
        if name not in outputs:
            raise KeyError("SSD output {!r} (from the spec's outputs) is not among the model's outputs: {}".format(
                name, ", ".join(sorted(outputs))))
        array = np.asarray(outputs[name])
        return array.reshape(len(self.anchors), self._values_per_anchor(name, array.shape))

    def _candidates(self, raw_scores, threshold):
        """(anchor rows, class ids, scores) of every (anchor, class) pair at or above the threshold."""
        clip = self.score_clip
        if self.activation == "sigmoid":
            cutoff = _logit(threshold)
            if clip is not None:
                cutoff = min(max(cutoff, -clip), clip)
            passing = raw_scores >= cutoff
        else:
            scores = raw_scores.astype(np.float32)
            if clip is not None:
                np.clip(scores, -clip, clip, out=scores)
            if self.activation == "softmax":
                scores -= scores.max(axis=1, keepdims=True)
                np.exp(scores, out=scores)
                scores /= scores.sum(axis=1, keepdims=True)
            passing = scores >= threshold
        if self.background_class is not None and self.background_class < passing.shape[1]:
            passing[:, self.background_class] = False
        # flatnonzero + divmod: np.nonzero on a 2-D mask is ~20x slower for this shape.
        rows, class_ids = np.divmod(np.flatnonzero(passing), passing.shape[1])
        if self.activation == "sigmoid":
            values = raw_scores[rows, class_ids].astype(np.float32)
            if clip is not None:
                np.clip(values, -clip, clip, out=values)
            values = sigmoid(values)
        else:
            values = scores[rows, class_ids]
        return rows, class_ids.astype(np.int32), values

    def __call__(self, outputs, transform):
        raw_boxes = self._per_anchor(outputs, self.boxes_name)
        raw_scores = self._per_anchor(outputs, self.scores_name)
        thresholds = self.thresholds
        rows, class_ids, scores = self._candidates(raw_scores, thresholds.score)
        if not rows.size:
            return {"detections": Detections.empty()}
        best = top_k_indices(scores, self.top_k)
        rows, class_ids, scores = rows[best], class_ids[best], scores[best]
        boxes = self.decoder.decode_boxes(raw_boxes, rows)
        nms_classes = None if self.class_agnostic else class_ids
        if self.weighted:
            keypoints = self.decoder.decode_keypoints(raw_boxes, rows)
            kept, boxes, keypoints = weighted_nms(boxes, scores, thresholds.nms_iou, nms_classes,
                                                  thresholds.max_detections, keypoints)
        else:
            kept = hard_nms(boxes, scores, thresholds.nms_iou, nms_classes, thresholds.max_detections)
            boxes = boxes[kept]
            keypoints = self.decoder.decode_keypoints(raw_boxes, rows[kept])
        if keypoints is not None:
            keypoints = transform.points_to_image(keypoints)
        detections = Detections(transform.boxes_to_image(boxes), scores[kept], class_ids[kept], keypoints)
        return {"detections": detections}
