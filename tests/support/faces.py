"""An independent answer to "where is the face?": a classical cascade detector.

Viola-Jones shares nothing with the networks under test (BlazeFace, selfie segmentation), so
agreeing with it is evidence, not a tautology. OpenCV's frontal-face Haar cascade where OpenCV 4
provides it; OpenCV 5 dropped CascadeClassifier, and there scikit-image's bundled LBP frontal-face
cascade answers instead. Used by the pipeline, segmentation and node tests.
"""


def independent_face_boxes(image_bgr, min_size=40):
    """Faces as [x1, y1, x2, y2] pixel boxes, largest first."""
    import cv2

    gray = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    if hasattr(cv2, "CascadeClassifier"):
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
    else:
        faces = _lbp_faces(gray, min_size)
    boxes = [[int(x), int(y), int(x + w), int(y + h)] for x, y, w, h in faces]
    return sorted(boxes, key=lambda box: (box[2] - box[0]) * (box[3] - box[1]), reverse=True)


def _lbp_faces(gray, min_size):
    """(x, y, w, h) faces from scikit-image's LBP cascade (for OpenCV builds without cascades)."""
    import pytest

    skimage_data = pytest.importorskip("skimage.data", reason="no face cascade: OpenCV >= 5 has none and "
                                                              "scikit-image is absent")
    import skimage.feature

    cascade = skimage.feature.Cascade(skimage_data.lbp_frontal_face_cascade_filename())
    found = cascade.detect_multi_scale(img=gray, scale_factor=1.2, step_ratio=1, min_size=(min_size, min_size),
                                       max_size=(gray.shape[0], gray.shape[1]))
    return [(face["c"], face["r"], face["width"], face["height"]) for face in found]


def iou(first, second):
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    width = max(min(first[2], second[2]) - max(first[0], second[0]), 0)
    height = max(min(first[3], second[3]) - max(first[1], second[1]), 0)
    inter = width * height
    area = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return inter / float(area - inter)
