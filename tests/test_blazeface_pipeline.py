"""BlazeFace end to end: MediaPipe's real model (TFLite -> ONNX by tf2onnx), the Pipeline with the
ONNX Runtime backend, checked against an independent detector: OpenCV's bundled frontal-face
Haar cascade (Viola-Jones), which shares nothing with the network.
"""
import importlib.util
import os

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the end-to-end test runs the model with ONNX Runtime")
if importlib.util.find_spec("tf2onnx") is None:  # not imported here: it pulls in TensorFlow
    pytest.skip("the MediaPipe TFLite model is converted with tf2onnx", allow_module_level=True)
pytest.importorskip("yaml", reason="model specs are YAML")
pytest.importorskip("skimage", reason="test images come from scikit-image")

from tests.support.faces import independent_face_boxes, iou
from tests.support.models import REPO_ROOT, sample_image_bgr, tflite_to_onnx
from trt_infer.backends import load_backend
from trt_infer.pipeline import Pipeline
from trt_infer.spec import ModelSpec, load_spec

pytestmark = pytest.mark.slow  # first run converts the model (about 10 s), later runs use the cache

SPEC_PATH = os.path.join(REPO_ROOT, "config", "models", "blazeface.yaml")
@pytest.fixture(scope="module")
def backend():
    with load_backend(tflite_to_onnx("blazeface")) as loaded:
        yield loaded


def spec_with_resize(resize):
    """The shipped spec (letterbox, as MediaPipe runs it) or its variant with another resize mode."""
    import yaml

    with open(SPEC_PATH) as handle:
        data = yaml.safe_load(handle)
    data["input"]["resize"] = resize
    return ModelSpec(data, path=SPEC_PATH)


def test_shipped_spec_letterboxes_like_mediapipe():
    assert load_spec(SPEC_PATH).input.resize == "letterbox"


@pytest.fixture(scope="module")
def pipelines(backend):
    return {resize: Pipeline(spec_with_resize(resize), backend) for resize in ("letterbox", "stretch")}


def test_astronaut_has_one_face_where_the_haar_cascade_finds_it(pipelines):
    image = sample_image_bgr("astronaut")
    result = pipelines["letterbox"](image)
    detections = result.detections
    assert len(detections) == 1, detections.boxes
    face = detections.boxes[0].tolist()
    haar = independent_face_boxes(image)
    assert len(haar) == 1, "the Haar cascade should find exactly one face on astronaut: {}".format(haar)
    assert iou(face, haar[0]) >= 0.5, (face, haar[0])
    assert detections.class_ids.tolist() == [0] and pipelines["letterbox"].spec.labels[0] == "face"
    assert detections.scores[0] > 0.75
    assert set(result.timings) >= {"preprocess", "inference", "postprocess", "total"}


def test_keypoints_are_eyes_nose_and_mouth_inside_the_face(pipelines):
    detections = pipelines["letterbox"](sample_image_bgr("astronaut")).detections
    x1, y1, x2, y2 = detections.boxes[0]
    points = detections.keypoints[0]
    assert points.shape == (6, 2)
    right_eye, left_eye, nose, mouth = points[:4]  # MediaPipe's keypoint order; ears follow
    for point in (right_eye, left_eye, nose, mouth):
        assert x1 <= point[0] <= x2 and y1 <= point[1] <= y2, (point, detections.boxes[0])
    assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]  # eyes above nose above mouth


def test_a_cat_is_not_a_face(pipelines):
    for pipeline in pipelines.values():
        assert len(pipeline(sample_image_bgr("chelsea")).detections) == 0


def test_letterbox_and_stretch_variants_agree_on_the_square_image(pipelines):
    image = sample_image_bgr("astronaut")  # 512 x 512: both modes fill the input without padding
    letterbox = pipelines["letterbox"](image).detections.boxes
    stretch = pipelines["stretch"](image).detections.boxes
    assert letterbox.shape == stretch.shape == (1, 4)
    np.testing.assert_allclose(letterbox, stretch, atol=1.0)


@pytest.mark.parametrize("columns", [slice(0, 384), slice(96, 480)], ids=["left", "right"])
def test_non_square_crops_find_the_same_face(pipelines, columns):
    # On a 512 x 384 crop, letterbox pads the sides; undoing it must put the face where it is in
    # the full image (shifted by the crop). Stretch squeezes the face horizontally instead, and
    # BlazeFace's boxes are square in the network's input, so only its centre must agree.
    image = np.ascontiguousarray(sample_image_bgr("astronaut")[:, columns])
    full = pipelines["letterbox"](sample_image_bgr("astronaut")).detections.boxes[0]
    shift = np.float32([columns.start, 0, columns.start, 0])
    letterbox = pipelines["letterbox"](image).detections
    stretch = pipelines["stretch"](image).detections
    assert len(letterbox) == len(stretch) == 1
    np.testing.assert_allclose(letterbox.boxes[0] + shift, full, atol=3.0)
    centre = lambda box: np.float32([box[0] + box[2], box[1] + box[3]]) / 2  # noqa: E731
    np.testing.assert_allclose(centre(stretch.boxes[0]), centre(letterbox.boxes[0]), atol=4.0)
