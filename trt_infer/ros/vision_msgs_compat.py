"""Fill vision_msgs detections for whichever vision_msgs layout is installed.

| layout   | vision_msgs | hypothesis fields             | bbox.center                 | Detection2D id    |
|----------|-------------|-------------------------------|-----------------------------|-------------------|
| foxy     | 2.x         | results[i].id, .score         | Pose2D x, y, theta          | tracking_id       |
| galactic | 3.x         | results[i].hypothesis.class_id| Pose2D x, y, theta          | id                |
| humble   | 4.x (+)     | results[i].hypothesis.class_id| vision_msgs/Pose2D position | id                |

The layout is detected from the message classes' fields (not the distro name), so a backport
or a source build of vision_msgs is handled by what it actually contains.

Classification results (header + top classes with scores) use `Classification` (3.x, 4.x) or
`Classification2D` (2.x), whichever this vision_msgs has.
"""
import importlib

LAYOUTS = ("foxy", "galactic", "humble")
CLASSIFICATION_TYPES = ("Classification", "Classification2D")  # 3.x and later, 2.x


def _load_messages():
    try:
        return importlib.import_module("vision_msgs.msg")
    except ImportError as error:
        raise ImportError("vision_msgs is not installed ({}); install ros-<distro>-vision-msgs".format(error))


def detect_layout(messages):
    """'foxy', 'galactic' or 'humble' from the fields of the vision_msgs message classes."""
    hypothesis = messages.ObjectHypothesisWithPose()
    if not hasattr(hypothesis, "hypothesis"):
        return "foxy"
    if hasattr(messages.BoundingBox2D().center, "position"):
        return "humble"
    return "galactic"


class VisionMessages(object):
    """Builds Detection2DArray (and LabelInfo where the layout has it) from numpy detections."""

    def __init__(self, messages=None):
        self.msg = messages if messages is not None else _load_messages()
        self.layout = detect_layout(self.msg)
        self.has_label_info = hasattr(self.msg, "LabelInfo")
        found = [getattr(self.msg, name) for name in CLASSIFICATION_TYPES if hasattr(self.msg, name)]
        self.classification_type = found[0] if found else None

    def detection_array(self, header, boxes, scores, class_ids):
        """A Detection2DArray: boxes (N, 4) xyxy pixels, scores (N,), class_ids (N,) strings."""
        array = self.msg.Detection2DArray()
        array.header = header
        array.detections = [self.detection(header, box, score, class_id)
                            for box, score, class_id in zip(boxes.tolist(), scores.tolist(), class_ids)]
        return array

    def detection(self, header, box, score, class_id):
        """One Detection2D: box x1, y1, x2, y2 in pixels, one hypothesis."""
        x1, y1, x2, y2 = box
        detection = self.msg.Detection2D()
        detection.header = header
        center = detection.bbox.center
        point = center.position if self.layout == "humble" else center
        point.x = (x1 + x2) / 2.0
        point.y = (y1 + y2) / 2.0
        detection.bbox.size_x = x2 - x1
        detection.bbox.size_y = y2 - y1
        detection.results = [self._hypothesis_with_pose(class_id, score)]
        return detection

    def classification(self, header, classes):
        """The top classes of one image, best first: `classes` is [(class_id string, score), ...]."""
        if self.classification_type is None:
            raise ImportError("this vision_msgs has neither Classification (3.x and later) nor Classification2D "
                              "(2.x); install the distribution's ros-<distro>-vision-msgs")
        message = self.classification_type()
        message.header = header
        message.results = [self._hypothesis(self.msg.ObjectHypothesis(), class_id, score)
                           for class_id, score in classes]
        return message

    def _hypothesis_with_pose(self, class_id, score):
        result = self.msg.ObjectHypothesisWithPose()
        # 2.x keeps id and score in ObjectHypothesisWithPose itself, later layouts in .hypothesis
        self._hypothesis(result if self.layout == "foxy" else result.hypothesis, class_id, score)
        return result

    def _hypothesis(self, hypothesis, class_id, score):
        setattr(hypothesis, "id" if self.layout == "foxy" else "class_id", class_id)
        hypothesis.score = float(score)
        return hypothesis

    def label_info(self, header, labels, threshold):
        """vision_msgs/LabelInfo (4.x) mapping class index -> label, or None without that message."""
        if not self.has_label_info:
            return None
        info = self.msg.LabelInfo()
        info.header = header
        classes = []
        for index, name in enumerate(labels):
            vision_class = self.msg.VisionClass()
            vision_class.class_id = index
            vision_class.class_name = name
            classes.append(vision_class)
        info.class_map = classes
        info.threshold = float(threshold)
        return info


def read_detection(detection, layout):
    """(x1, y1, x2, y2), class_id, score of a Detection2D: the inverse, for consumers and tests."""
    center = detection.bbox.center.position if layout == "humble" else detection.bbox.center
    half_w, half_h = detection.bbox.size_x / 2.0, detection.bbox.size_y / 2.0
    box = (center.x - half_w, center.y - half_h, center.x + half_w, center.y + half_h)
    result = detection.results[0]
    if layout == "foxy":
        return box, result.id, result.score
    return box, result.hypothesis.class_id, result.hypothesis.score
