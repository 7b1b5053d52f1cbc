"""SSD post-processing: raw regressors (or already-decoded boxes) + class scores -> suppressed detections.

Steps per frame, all vectorised numpy:
1. select (anchor, class) candidates whose score reaches thresholds.score: for a sigmoid the
   raw logits are compared with logit(threshold), so no exp runs over the whole score tensor;
   the background class never becomes a candidate;
2. keep the nms.top_k best candidates, decode only their boxes (and keypoints) against the anchors,
   or, with box_coding.type: decoded (a graph cut before its NMS), read their corners as they are;
3. hard or weighted NMS, per class or class-agnostic, stopping at thresholds.max_detections;
4. map boxes and keypoints back to the received image's pixels (boxes clipped to it).
Thresholds are read from spec.thresholds on every call, so run-time changes apply at once.
"""
import math

import numpy as np

from trt_infer.anchors import ANCHOR_SCHEMA, generate_anchors
from trt_infer.box_coding import BOX_CODING_SCHEMA, box_decoder
from trt_infer.nms import hard_nms, top_k_indices, weighted_nms
from trt_infer.errors import ModelMismatchError
from trt_infer.result import Detections, Result
from trt_infer.schema import Field, SpecError

SCORE_ACTIVATIONS = ("sigmoid", "softmax", "none")
NMS_METHODS = ("hard", "weighted")


NMS_SCHEMA = {
    "method": Field(str, default="hard", choices=NMS_METHODS,
                    doc="hard: drop overlapping boxes; weighted: blend them by score (MediaPipe)"),
    "class_agnostic": Field(bool, default=False, doc="let boxes of different classes suppress each other"),
    "top_k": Field(int, default=400, minimum=1,
                   doc="best candidates kept before NMS"),
}

SCHEMA = {
    # Required unless box_coding.type is decoded: checked by the post-processor (see _anchors).
    "anchors": Field(dict, default=None, nullable=True, schema=ANCHOR_SCHEMA,
                     doc="anchor (prior box) generator, see [ssd.anchors](#ssdanchors); required unless "
                         "box_coding.type is decoded"),
    "box_coding": Field(dict, default={}, schema=BOX_CODING_SCHEMA,
                        doc="how regressor values decode against the anchors, see [ssd.box_coding](#ssdbox_coding)"),
    "score_activation": Field(str, default="sigmoid", choices=SCORE_ACTIVATIONS,
                              doc="sigmoid (TF OD API, MediaPipe), softmax over the classes (pytorch-ssd), none "
                                  "(scores already probabilities)"),
    "score_clip": Field(float, default=None, nullable=True,
                        above=0,
                        doc="raw scores clipped to +-score_clip before the activation (MediaPipe: 100)"),
    "background_class": Field(int, default=None, nullable=True, minimum=0,
                              doc="score column that is never a detection (TF OD API, pytorch-ssd: 0)"),
    "num_keypoints": Field(int, default=0, minimum=0,
                           doc="keypoints (x, y pairs) per box in the regressor row (BlazeFace: 6)"),
    "nms": Field(dict, default={}, schema=NMS_SCHEMA, doc="non-maximum suppression, see [ssd.nms](#ssdnms)"),
}


def _anchors(spec, path="ssd.anchors"):
    """(N, 4) anchors of the spec, or None for decoded boxes; SpecError when the two disagree."""
    section = spec.section
    decoded = section.box_coding.type == "decoded"
    if decoded and section.anchors is not None:
        raise SpecError(path, "given, but ssd.box_coding.type is 'decoded': the model outputs finished boxes, "
                              "nothing is decoded against anchors; remove ssd.anchors", source=spec.path)
    if not decoded and section.anchors is None:
        raise SpecError(path, "missing; expected a mapping (the anchor generator), required unless "
                              "ssd.box_coding.type is 'decoded'", source=spec.path)
    return None if decoded else generate_anchors(section.anchors, spec.input.width, spec.input.height)


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
        section = spec.section
        self.thresholds = spec.thresholds
        self.boxes_name = spec.outputs["boxes"]
        self.scores_name = spec.outputs["scores"]
        self.anchors = _anchors(spec)
        self.decoder = box_decoder(section.box_coding, self.anchors, (spec.input.width, spec.input.height),
                                   section.num_keypoints)
        self.activation = section.score_activation
        self.score_clip = section.score_clip
        self.background_class = section.background_class
        self.weighted = section.nms.method == "weighted"
        self.class_agnostic = section.nms.class_agnostic
        self.top_k = section.nms.top_k

    def check_outputs(self, infos):
        """ValueError when the model's output shapes (name -> TensorInfo) cannot fit the spec."""
        self._layouts(dict((name, tuple(infos[name].shape)) for name in (self.boxes_name, self.scores_name)
                           if name in infos and infos[name].is_static))

    def _layouts(self, shapes):
        """{name: (rows, values)} for output shapes (name -> shape), batch dimension dropped; ValueError
        naming the output when a shape cannot fit the spec."""
        layouts = dict((name, self._rows_values(name, shape)) for name, shape in shapes.items())
        if len(set(rows for rows, _ in layouts.values())) > 1:
            raise ValueError("SSD outputs {} have different numbers of boxes; boxes and scores need one row per "
                             "box".format(" and ".join("{!r} {}".format(name, tuple(shapes[name]))
                                                        for name in sorted(shapes))))
        return layouts

    def _rows_values(self, name, shape):
        count = None if self.anchors is None else len(self.anchors)
        batched = len(shape) == 3 and shape[0] == 1
        if not (batched or len(shape) == 2) or 0 in shape or count not in (None, shape[-2]):
            if count is None:
                expected = "(1, boxes, values): decoded boxes (ssd.box_coding.type: decoded) and their scores"
            else:
                expected = "(1, {}, values) for the {} anchors the spec's ssd.anchors generate".format(count, count)
            raise ValueError("SSD output {!r} has shape {}; expected {}".format(name, tuple(shape), expected))
        values = shape[-1]
        if name == self.boxes_name and values < self.decoder.values_needed:
            raise ValueError("SSD output {!r} has {} values per {}; ssd.box_coding (box_offset {}) and "
                             "ssd.num_keypoints ({} at keypoint_offset {}) need {}".format(
                                 name, values, "box" if count is None else "anchor", self.decoder.box_offset,
                                 self.decoder.num_keypoints, self.decoder.keypoint_offset,
                                 self.decoder.values_needed))
        return shape[-2], values

    def _per_box(self, outputs):
        """The boxes and scores outputs as (boxes, values) arrays, batch dimension dropped."""
        names = (self.boxes_name, self.scores_name)
        for name in names:
            if name not in outputs:
                raise ModelMismatchError("SSD output {!r} (from the spec's outputs) is not among the model's outputs: "
                               "{}".format(name, ", ".join(sorted(outputs))))
        arrays = dict((name, np.asarray(outputs[name])) for name in names)
        layouts = self._layouts(dict((name, array.shape) for name, array in arrays.items()))
        return [arrays[name].reshape(layouts[name]) for name in names]

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
        raw_boxes, raw_scores = self._per_box(outputs)
        thresholds = self.thresholds
        rows, class_ids, scores = self._candidates(raw_scores, thresholds.score)
        if not rows.size:
            return Result(detections=Detections.empty())
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
        return Result(detections=detections)
