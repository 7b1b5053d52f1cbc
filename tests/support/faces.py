"""An independent answer to "where is the face?": OpenCV's bundled frontal-face Haar cascade.

Viola-Jones shares nothing with the networks under test (BlazeFace, selfie segmentation), so
agreeing with it is evidence, not a tautology. Used by the pipeline, segmentation and node tests.
"""


def independent_face_boxes(image_bgr, min_size=40):
    """Faces as [x1, y1, x2, y2] pixel boxes, largest first."""
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    gray = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_size, min_size))
    boxes = [[int(x), int(y), int(x + w), int(y + h)] for x, y, w, h in faces]
    return sorted(boxes, key=lambda box: (box[2] - box[0]) * (box[3] - box[1]), reverse=True)


def iou(first, second):
    """Intersection over union of two [x1, y1, x2, y2] boxes."""
    width = max(min(first[2], second[2]) - max(first[0], second[0]), 0)
    height = max(min(first[3], second[3]) - max(first[1], second[1]), 0)
    inter = width * height
    area = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return inter / float(area - inter)
