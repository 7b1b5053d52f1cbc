"""trt_infer_node for segmentation and classification, end to end over real DDS.

The node, the image publisher (the replay tool) and the listeners (tests/support/ros_probe.py) are
separate processes (rclpy + Fast DDS, vision_msgs Humble layout). Segmentation runs MediaPipe's
selfie model as `convert all --target jetson-nano` leaves it, on ONNX Runtime; classification a
small real ONNX graph (mean colour -> softmax) built here with onnx.helper. One node process per
configuration, module-scoped.

The first tests check the filling of each layout's classification message with stand-in classes
(`Fake...`); over DDS the real Classification (3.x/4.x) and Classification2D (2.x) of the built
fixtures are used.
"""
import math
import types

import numpy as np
import pytest

from tests.support.classifier import write_classifier
from tests.support.models import converted_for_target, sample_image_bgr
from tests.support.ros_node import (IMAGE, environment, header_key, latched_labels, listen, send_and_receive,
                                    send_and_receive_all, set_parameter, start_node, statistics, stop_node)
from tests.test_segmentation import person_mask_checks
from trt_infer.ros.vision_msgs_compat import VisionMessages

SEGMENTER = "config/segmenter.yaml"
PALETTE = {"background": (0, 0, 0), "person": (255, 64, 160)}  # rgb, config/models/selfie_segmentation.yaml
RED, BLUE = (0, 0, 255), (255, 0, 0)  # BGR
COLOUR_NAMES = ["red", "green", "blue"]
# 512 x 512 images go best effort; on a loaded 2-core machine many are lost, so listeners wait longer
IMAGE_TIMEOUT = 60


# -- classification messages of each vision_msgs layout (stand-in classes) -------------------------
class FakeClassification(object):
    """vision_msgs/Classification (3.x, 4.x): header + ObjectHypothesis[] results."""

    def __init__(self):
        self.header, self.results = None, []


class FakeClassification2D(FakeClassification):
    """vision_msgs/Classification2D (2.x): as Classification, plus source_img."""

    def __init__(self):
        super(FakeClassification2D, self).__init__()
        self.source_img = None


def fake_vision_msgs(layout):
    """The message classes VisionMessages reads, as a full vision_msgs of `layout` defines them."""
    point = types.SimpleNamespace
    if layout == "foxy":
        return types.SimpleNamespace(
            ObjectHypothesis=lambda: types.SimpleNamespace(id="", score=0.0),
            ObjectHypothesisWithPose=lambda: types.SimpleNamespace(id="", score=0.0),
            BoundingBox2D=lambda: types.SimpleNamespace(center=point(x=0.0, y=0.0)),
            Classification2D=FakeClassification2D)
    hypothesis = lambda: types.SimpleNamespace(class_id="", score=0.0)  # noqa: E731
    return types.SimpleNamespace(
        ObjectHypothesis=hypothesis,
        ObjectHypothesisWithPose=lambda: types.SimpleNamespace(hypothesis=hypothesis()),
        BoundingBox2D=lambda: types.SimpleNamespace(
            center=point(position=point(x=0.0, y=0.0)) if layout == "humble" else point(x=0.0, y=0.0)),
        Classification=FakeClassification)


@pytest.mark.parametrize("layout, message_type, id_field", [
    ("foxy", FakeClassification2D, "id"), ("galactic", FakeClassification, "class_id"),
    ("humble", FakeClassification, "class_id")])
def test_classification_uses_the_layouts_classification_message(layout, message_type, id_field):
    vision = VisionMessages(fake_vision_msgs(layout))
    assert vision.layout == layout and vision.classification_type is message_type
    header = object()
    message = vision.classification(header, [("blue", 0.75), ("red", 0.25)])
    assert type(message) is message_type and message.header is header
    assert [(getattr(result, id_field), result.score) for result in message.results] == [("blue", 0.75),
                                                                                          ("red", 0.25)]


# -- the node over DDS -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ros_and_onnxruntime():
    pytest.importorskip("rclpy", reason="needs rclpy (the host .venv has the ROS 2 Kilted wheels)")
    pytest.importorskip("onnxruntime", reason="the node runs the models on ONNX Runtime here")


@pytest.fixture(scope="module")
def humble(ros_and_onnxruntime):
    pytest.importorskip("skimage", reason="the test image is scikit-image's astronaut")
    return environment("humble")


@pytest.fixture(scope="module")
def selfie_onnx():
    pytest.importorskip("tf2onnx", reason="`convert all` converts the TFLite model with tf2onnx (cached)")
    return converted_for_target("selfie_segmentation")


@pytest.fixture(scope="module")
def segmenter(humble, selfie_onnx):
    """The node with config/segmenter.yaml as shipped: mask_resolution image."""
    process = start_node(humble, SEGMENTER, selfie_onnx)
    yield process
    stop_node(process)


def image_of(message, encoding, sent):
    """The pixels of a received sensor_msgs/Image (as ros_probe printed it), after checking that it
    is `encoding`, tightly packed and stamped with the header of one of the `sent` images."""
    assert header_key(message["header"]) in sent, "the header is not one of the input images'"
    assert message["encoding"] == encoding
    channels = 1 if encoding == "mono8" else 3
    assert message["step"] == message["width"] * channels
    pixels = np.array(message["data"], np.uint8).reshape(message["height"], message["width"], channels)
    return pixels[:, :, 0] if channels == 1 else pixels


def assert_person(mask, image_bgr):
    """The thresholds of tests/test_segmentation.py's selfie test: face and upper body covered,
    the top corners (flag, spacecraft) not."""
    coverage = person_mask_checks(mask, image_bgr)
    assert coverage["face"] >= 0.9, coverage
    assert coverage["upper body"] >= 0.8, coverage
    assert coverage["top right"] <= 0.1 and coverage["top left"] <= 0.1, coverage


def received_mask(env):
    """A segmentation/mask of `astronaut`, checked: mono8, the input's header, class ids 0 and 1 only."""
    sent, messages = send_and_receive(env, "skimage:astronaut", "--frame-id", "test_camera", message_type=IMAGE,
                                      topic="/segmentation/mask", timeout=IMAGE_TIMEOUT)
    mask = image_of(messages[0], "mono8", sent)
    assert set(np.unique(mask).tolist()) == {0, 1}, "class ids other than background 0 / person 1"
    return mask


def test_mask_at_image_resolution_is_class_ids_covering_the_person(segmenter, humble):
    astronaut = sample_image_bgr("astronaut")
    mask = received_mask(humble)
    assert mask.shape == astronaut.shape[:2]
    assert_person(mask, astronaut)


def test_mask_at_network_resolution(humble, selfie_onnx):
    import cv2

    env = environment("humble")  # a domain of its own: the module's segmenter publishes the same topics
    process = start_node(env, SEGMENTER, selfie_onnx, "-p", "mask_resolution:=network")
    try:
        mask = received_mask(env)
    finally:
        stop_node(process)
    assert mask.shape == (256, 256)  # the selfie model's output; astronaut is square, so no letterbox border
    assert_person(mask, cv2.resize(sample_image_bgr("astronaut"), (256, 256), interpolation=cv2.INTER_AREA))


def test_mask_resolution_changes_at_run_time(segmenter, humble):
    accepted, reason = set_parameter(humble, "mask_resolution", "full")
    assert not accepted and "network, image" in reason
    assert set_parameter(humble, "mask_resolution", "network") == (True, "")
    try:
        assert received_mask(humble).shape == (256, 256)
    finally:
        assert set_parameter(humble, "mask_resolution", "image") == (True, "")


def test_colour_mask_and_overlay_are_computed_only_while_subscribed(segmenter, humble):
    astronaut = sample_image_bgr("astronaut")
    before = statistics(humble)
    received_mask(humble)
    unwatched = statistics(humble)
    assert unwatched["frames_processed"] > before["frames_processed"]
    for key in ("frames_color_published", "frames_overlay_published"):
        assert unwatched[key] == before[key], "{} grew without subscribers".format(key)

    listeners = [listen(humble, IMAGE, topic, timeout=IMAGE_TIMEOUT) for topic in ("/segmentation/color", "/overlay")]
    sent, (colours, overlays) = send_and_receive_all(humble, "skimage:astronaut", listeners,
                                                     "--frame-id", "test_camera")
    colour = image_of(colours[0], "rgb8", sent)
    person = np.all(colour == PALETTE["person"], axis=2)
    assert np.all(person | np.all(colour == PALETTE["background"], axis=2)), "colours outside the palette"
    assert_person(person.astype(np.uint8), astronaut)

    overlay = image_of(overlays[0], "bgr8", sent)
    assert overlay.shape == astronaut.shape
    assert np.array_equal(overlay[~person], astronaut[~person]), "the background is not the camera image"
    assert np.mean(np.any(overlay[person] != astronaut[person], axis=1)) > 0.9, "the person is not tinted"

    watched = statistics(humble)
    assert watched["frames_color_published"] > unwatched["frames_color_published"]
    assert watched["frames_overlay_published"] > unwatched["frames_overlay_published"]


def test_segmentation_labels_reach_a_late_subscriber(segmenter, humble):
    assert latched_labels(humble) == ["background", "person"]


# -- classification ----------------------------------------------------------------------------------
def _image_folder(parent, name, bgr):
    import cv2

    folder = parent / name
    folder.mkdir()
    image = np.zeros((48, 64, 3), np.uint8)
    image[:] = bgr
    cv2.imwrite(str(folder / (name + ".png")), image)
    return str(folder)


@pytest.fixture(scope="module")
def classifier_files(ros_and_onnxruntime, tmp_path_factory):
    """(params file, ONNX model, {colour: folder with one image of that colour})."""
    folder = tmp_path_factory.mktemp("classifier")
    pytest.importorskip("onnx", reason="the model is built with onnx.helper")
    params_path, onnx_path = write_classifier(folder)
    folders = {"red": _image_folder(folder, "red", RED), "blue": _image_folder(folder, "blue", BLUE)}
    return params_path, onnx_path, folders


@pytest.fixture(scope="module")
def classifier(classifier_files):
    """(node process, its environment): a domain of its own, apart from the segmenter's statistics."""
    params_path, onnx_path, _ = classifier_files
    env = environment("humble")
    process = start_node(env, params_path, onnx_path)
    yield process, env
    stop_node(process)


def classification_message_type(layout):
    """The vision_msgs type of classification results: Classification2D in 2.x, Classification later."""
    return "Classification2D" if layout == "foxy" else "Classification"


def read_classes(message, layout):
    """[(class_id, score), ...] of a received classification message, per layout."""
    id_field = "id" if layout == "foxy" else "class_id"
    return [(result[id_field], result["score"]) for result in message["results"]]


def check_classification(process, env, layout, folder, colour):
    """Send the one-colour image in `folder`; the node must name `colour` first, with the scores of
    a softmax over the channel means (1, 0, 0): e / (e + 2), then 1 / (e + 2) twice."""
    message_type = classification_message_type(layout)
    assert "classification published as vision_msgs/" + message_type in process.output
    sent, messages = send_and_receive(env, folder, message_type="vision_msgs/msg/" + message_type,
                                      topic="/classification")
    message = messages[0]
    assert header_key(message["header"]) in sent
    classes = read_classes(message, layout)
    assert classes[0][0] == colour and sorted(class_id for class_id, _ in classes) == sorted(COLOUR_NAMES)
    np.testing.assert_allclose([score for _, score in classes], [math.e / (math.e + 2), 1 / (math.e + 2),
                                                                 1 / (math.e + 2)], rtol=1e-4)


@pytest.mark.parametrize("colour", ["red", "blue"])
def test_classification_names_the_dominant_colour(classifier, classifier_files, colour):
    process, env = classifier
    check_classification(process, env, "humble", classifier_files[2][colour], colour)


@pytest.mark.parametrize("layout", ["foxy", "galactic"])
def test_classification_in_older_vision_msgs_layouts(classifier_files, layout):
    env = environment(layout)
    params_path, onnx_path, folders = classifier_files
    process = start_node(env, params_path, onnx_path)
    try:
        check_classification(process, env, layout, folders["red"], "red")
    finally:
        stop_node(process)
