"""The TF1 OD API ssd_mobilenet_v2_coco fixture (real exporter, random weights) end to end on the runtime:
its exported raw heads (ONNX Runtime) through the runtime's SSD post-processing (anchors, box decoding,
sigmoid, NMS) with a written spec give TensorFlow 1.15's own post-NMS detections on astronaut.

The graph's input is the exporter's uint8 `image_tensor:0`, so its own resize and normalisation run
inside it; the test feeds the image as TensorFlow was fed and compares what follows the heads.
"""
import os

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the exported heads run in ONNX Runtime")
pytest.importorskip("yaml", reason="model specs are YAML")
pytest.importorskip("skimage", reason="the reference image is scikit-image's astronaut")

from tests.support import detectors
from tests.support.models import REPO_ROOT, sample_image_bgr
from trt_infer.geometry import ResizeTransform
from trt_infer.spec import load_spec
from trt_infer.tasks import get_task

pytestmark = pytest.mark.slow  # the first run exports the fixture with tf2onnx (about 20 s)

SPEC = os.path.join(REPO_ROOT, "tests", "fixtures", "specs", "tf1_ssd_mobilenet_v2_coco.yaml")
TIED = 1e-4   # detections whose scores are this close may swap places (or cross the top-100 boundary)


@pytest.fixture(scope="module")
def detections():
    import onnxruntime

    spec = load_spec(SPEC)
    session = onnxruntime.InferenceSession(detectors.tf1_ssd_export(), providers=["CPUExecutionProvider"])
    astronaut = np.ascontiguousarray(sample_image_bgr("astronaut")[:, :, ::-1])
    names = [output.name for output in session.get_outputs()]
    heads = dict(zip(names, session.run(None, {spec.input.name: astronaut[None]})))
    post = get_task("ssd").build_postprocessor(spec)
    assert len(post.anchors) == 1917
    return post(heads, ResizeTransform(512, 512, spec.input.width, spec.input.height)).detections


def untied(scores):
    """Indices of the scores with no other score within TIED; the last one is left out too, since a
    101st candidate just below it, unseen here, may have taken its place."""
    scores = np.asarray(scores, dtype=np.float64)
    gaps = np.abs(scores[:, None] - scores[None, :]) + np.eye(len(scores))
    return [index for index in range(len(scores) - 1) if gaps[index].min() > TIED]


def test_detections_equal_tensorflow_post_nms(detections):
    reference = detectors.reference("tf1_ssd_mobilenet_v2_coco")
    count = int(reference["num_detections"][0])
    tf_boxes = reference["detection_boxes"][0, :count][:, [1, 0, 3, 2]] * 512   # normalised yx -> xy pixels
    tf_scores = reference["detection_scores"][0, :count]
    tf_classes = reference["detection_classes"][0, :count].astype(int)         # 1..3, background is 0
    assert len(detections) == count == 100
    compared = 0
    for index in untied(tf_scores):
        same = np.flatnonzero((detections.class_ids == tf_classes[index])
                              & (np.abs(detections.boxes - tf_boxes[index]).max(axis=1) <= 1.0))
        assert len(same) == 1, "TensorFlow's detection {} ({} {:.6f} {}) has {} matches".format(
            index, tf_classes[index], tf_scores[index], tf_boxes[index], len(same))
        assert abs(detections.scores[same[0]] - tf_scores[index]) <= 1e-3
        compared += 1
    assert compared >= 80, compared   # 86 of 100 are untied: random weights, but scores depend on the image


def test_detections_come_in_tensorflow_order(detections):
    reference = detectors.reference("tf1_ssd_mobilenet_v2_coco")
    np.testing.assert_allclose(detections.scores, reference["detection_scores"][0], atol=1e-3)
    assert detections.class_ids.tolist() == reference["detection_classes"][0].astype(int).tolist()
