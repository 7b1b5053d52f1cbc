"""Outputs of engines that already contain NMS: EfficientNMS_TRT and BatchedNMS_TRT.

Both plugins write num_detections int32 ([B, 1] from EfficientNMS_TRT and
BatchedNMSDynamic_TRT, [B] from BatchedNMS_TRT, whose plugin gives it no per-image dimension)
and fixed-size boxes [B, K, 4], scores [B, K] and classes [B, K] (int32 for EfficientNMS_TRT,
float32 for BatchedNMS_TRT); only the first num_detections rows are valid. The NMS ran inside the engine with the
thresholds it was built with; here thresholds.score and thresholds.max_detections are applied
again on every call, so raising them at run time takes effect (lowering them cannot bring back
boxes the engine already dropped, and nms_iou cannot change).
"""
import numpy as np

from trt_infer.errors import ModelMismatchError
from trt_infer.result import Detections, Result
from trt_infer.schema import Field

SCHEMA = {
    "box_order": Field(str, default="xyxy", choices=("xyxy", "yxyx"),
                       doc="coordinate order of the boxes output (TF OD API graphs: yxyx)"),
    "normalized": Field(bool, default=True,
                        doc="true: boxes in 0..1 of the network input; false: in network input pixels"),
    "class_offset": Field(int, default=0,
                          doc="added to the plugin's class ids to index the labels (1 when the background "
                              "column was removed before NMS but the labels keep it)"),
}


class FusedNMSPostprocessor(object):
    """Built from a ModelSpec of task efficient_nms or batched_nms; called as post(outputs, transform)."""

    def __init__(self, spec):
        section = spec.section
        self.task = spec.task
        self.thresholds = spec.thresholds
        self.names = dict((role, spec.outputs[role]) for role in ("num_detections", "boxes", "scores", "classes"))
        self.yx_first = section.box_order == "yxyx"
        self.normalized = section.normalized
        self.class_offset = section.class_offset
        self.net_size = np.array([spec.input.width, spec.input.height] * 2, dtype=np.float32)

    def _first_image(self, outputs, role, rows_per_image):
        name = self.names[role]
        if name not in outputs:
            raise ModelMismatchError("{} output {!r} (outputs.{} in the spec) is not among the model's "
                                     "outputs: {}".format(self.task, name, role, ", ".join(sorted(outputs))))
        array = np.asarray(outputs[name])
        if array.ndim == 0 or array.shape[0] != 1 or (rows_per_image and array.size % rows_per_image):
            raise ValueError("{} output {!r} (outputs.{}) has shape {}; expected batch 1 with {} per image".format(
                self.task, name, role, array.shape, "one value" if rows_per_image == 1 else
                "[max detections{}]".format(", 4" if role == "boxes" else "")))
        return array[0]

    def __call__(self, outputs, transform):
        count = int(np.asarray(self._first_image(outputs, "num_detections", 1)).reshape(-1)[0])
        boxes = self._first_image(outputs, "boxes", 0).reshape(-1, 4)
        scores = self._first_image(outputs, "scores", 0).reshape(-1)
        classes = self._first_image(outputs, "classes", 0).reshape(-1)
        if not 0 <= count <= min(len(boxes), len(scores), len(classes)):
            raise ValueError("{} output {!r} says {} detections, but the boxes/scores/classes outputs hold {}/{}/{}"
                             .format(self.task, self.names["num_detections"], count,
                                     len(boxes), len(scores), len(classes)))
        thresholds = self.thresholds
        scores = scores[:count].astype(np.float32)
        valid = np.flatnonzero(scores >= thresholds.score)[:thresholds.max_detections]
        boxes = boxes[valid].astype(np.float32)
        if self.yx_first:
            boxes = boxes[:, [1, 0, 3, 2]]
        if not self.normalized:
            boxes /= self.net_size
        # BatchedNMS_TRT's float class ids are exact small integers; round before the cast anyway.
        class_ids = np.rint(classes[valid]).astype(np.int32) + self.class_offset
        return Result(detections=Detections(transform.boxes_to_image(boxes), scores[valid], class_ids))
