"""What a pipeline returns for one image: detections in the received image's pixels, masks, timings."""
import numpy as np


class Detections(object):
    """Detections of one image, boxes as x1, y1, x2, y2 in the pixels of the received image."""

    def __init__(self, boxes, scores, class_ids, keypoints=None):
        self.boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        self.class_ids = np.asarray(class_ids, dtype=np.int32).reshape(-1)
        self.keypoints = None if keypoints is None else np.asarray(keypoints, dtype=np.float32)
        if not len(self.boxes) == len(self.scores) == len(self.class_ids):
            raise ValueError("Detections: {} boxes, {} scores and {} class ids differ in length".format(
                len(self.boxes), len(self.scores), len(self.class_ids)))

    @classmethod
    def empty(cls):
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    def __len__(self):
        return len(self.scores)

    def __repr__(self):
        return "Detections({} boxes)".format(len(self))


class Result(object):
    """Everything one pipeline call produced.

    detections: Detections (empty for tasks without boxes).
    mask: uint8 class-id mask at the network's resolution, or None.
    image_mask: uint8 class-id mask at the received image's resolution (letterbox undone), or None;
        may be given as a zero-argument function, then computed on first access only (a consumer
        that wants the network-resolution mask never pays the resize).
    classes: list of (class_id, score) best first, for classification, or None.
    timings: stage name -> seconds ("preprocess", "inference", "postprocess", "total").
    """

    def __init__(self, detections=None, mask=None, image_mask=None, classes=None, timings=None):
        self.detections = detections if detections is not None else Detections.empty()
        self.mask = mask
        self._image_mask = image_mask
        self.classes = classes
        self.timings = timings if timings is not None else {}

    @property
    def image_mask(self):
        if callable(self._image_mask):
            self._image_mask = self._image_mask()
        return self._image_mask
