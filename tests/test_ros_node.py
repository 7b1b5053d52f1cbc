"""trt_infer_node end to end over real DDS: the node, the image publishers and the listeners are
separate processes (rclpy + Fast DDS), the model is the real BlazeFace on ONNX Runtime.

One node process (vision_msgs Humble layout) serves most tests; the Foxy and Galactic layouts
get a node each. Images are sent by the replay tool (stamped, best effort by default) or, for
malformed messages, by tests/support/ros_probe.py; results are read by ros_probe.
"""
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("rclpy", reason="needs rclpy (the host .venv has the ROS 2 Kilted wheels)")
pytest.importorskip("onnxruntime", reason="the node runs BlazeFace on ONNX Runtime here")

from tests.support import ros_env
from tests.support.classifier import write_classifier
from tests.support.faces import independent_face_boxes, iou
from tests.support.models import sample_image_bgr, tflite_to_onnx
from tests.support.ros_node import (DETECTIONS, IMAGE, REPO_ROOT, environment, header_key, latched_labels, listen,
                                    replay, run_node, send_and_receive, send_and_receive_all, set_parameter,
                                    start_node, statistics, stop_node)

pytestmark = [pytest.mark.ros, pytest.mark.slow]

DETECTOR = "config/detector.yaml"
FLOOD_LATENCY_BOUND_MS = 500.0   # the newest-frame design keeps it near 2 x processing time
FLOOD_RSS_MARGIN_MB = 30.0


@pytest.fixture(scope="module")
def blazeface_onnx():
    # The plain tf2onnx export: ONNX Runtime runs it as is (the converter's repairs target TensorRT).
    return tflite_to_onnx("blazeface")


@pytest.fixture(scope="module")
def humble():
    return environment("humble")


@pytest.fixture(scope="module")
def node(humble, blazeface_onnx):
    # with a misspelt parameter, which must be reported once and change nothing else
    process = start_node(humble, DETECTOR, blazeface_onnx, "-p", "scor_threshold:=0.3")
    yield process
    stop_node(process)


def reference_face_box():
    """The face in `astronaut` by an independent detector (OpenCV's Haar cascade)."""
    faces = independent_face_boxes(sample_image_bgr("astronaut"))
    assert len(faces) == 1, faces
    return faces[0]


def box_of(detection, layout):
    """(x1, y1, x2, y2), class id, score of a Detection2D as ros_probe printed it, per layout."""
    bbox = detection["bbox"]
    center = bbox["center"]["position"] if layout == "humble" else bbox["center"]
    half_w, half_h = bbox["size_x"] / 2.0, bbox["size_y"] / 2.0
    result = detection["results"][0]
    hypothesis = result if layout == "foxy" else result["hypothesis"]
    class_id = hypothesis["id"] if layout == "foxy" else hypothesis["class_id"]
    box = (center["x"] - half_w, center["y"] - half_h, center["x"] + half_w, center["y"] + half_h)
    return box, class_id, hypothesis["score"]


def check_face(message, sent, layout):
    assert header_key(message["header"]) in sent, "the header is not one of the input images'"
    assert len(message["detections"]) == 1, message["detections"]
    detection = message["detections"][0]
    assert header_key(detection["header"]) == header_key(message["header"])
    box, class_id, score = box_of(detection, layout)
    assert class_id == "face" and score > 0.5
    overlap = iou(box, reference_face_box())
    assert overlap >= 0.5, "box {} vs the Haar cascade's {}: IoU {:.2f}".format(box, reference_face_box(), overlap)


def test_face_is_found_with_the_input_header_from_a_best_effort_camera(node, humble):
    sent, messages = send_and_receive(humble, "skimage:astronaut", "--reliability", "best_effort",
                                      "--frame-id", "test_camera")
    check_face(messages[0], sent, "humble")


def test_an_image_without_a_face_gives_an_empty_array(node, humble):
    sent, messages = send_and_receive(humble, "skimage:chelsea")
    assert header_key(messages[0]["header"]) in sent
    assert messages[0]["detections"] == []


def test_a_reliable_publisher_connects_too(node, humble):
    sent, messages = send_and_receive(humble, "skimage:astronaut", "--reliability", "reliable", "--encoding", "rgb8")
    check_face(messages[0], sent, "humble")


@pytest.mark.parametrize("encoding", ["yuyv", "uyvy", "bayer_rggb8", "bayer_gbrg8", "rgb16", "mono16"])
def test_camera_encodings_give_the_face_and_an_overlay_with_the_input_header(node, humble, encoding):
    listeners = [listen(humble, DETECTIONS, "/detections", timeout=60),
                 listen(humble, IMAGE, "/overlay", timeout=60)]
    sent, (detections, overlays) = send_and_receive_all(humble, "skimage:astronaut", listeners,
                                                        "--encoding", encoding, "--frame-id", "test_camera")
    check_face(detections[0], sent, "humble")
    overlay = overlays[0]
    assert header_key(overlay["header"]) in sent, "the overlay's header is not one of the input images'"
    assert (overlay["encoding"], overlay["height"], overlay["width"]) == ("bgr8", 512, 512)


def test_labels_reach_a_late_subscriber(node, humble):
    # The node published LabelInfo once at start; a transient-local subscriber still gets it.
    assert latched_labels(humble) == ["face"]


BAD_FRAMES = [
    ({"encoding": "nv12", "height": 2, "width": 4, "step": 8, "data": [0] * 16}, "unsupported encoding 'nv12'"),
    ({"encoding": "rgb8", "height": 2, "width": 4, "step": 8, "data": [0] * 16}, "step 8 is less than"),
    ({"encoding": "bgr8", "height": 2, "width": 4, "step": 12, "data": [0] * 20}, "data has 20 bytes"),
    ({"encoding": "bgr8", "height": 0, "width": 0, "step": 0, "data": []}, "empty image"),
]


def test_bad_frames_are_logged_once_skipped_and_the_node_keeps_going(node, humble):
    publishers = [ros_env.start_module("tests.support.ros_probe", "publish", "sensor_msgs/msg/Image", "/image",
                                       json.dumps(fields), "--period", "0.05", "--duration", "60", env=humble)
                  for fields, _ in BAD_FRAMES]
    try:
        deadline = time.monotonic() + 30
        while not all(reason in node.output for _, reason in BAD_FRAMES) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)  # more bad frames keep arriving: they must not be logged again
    finally:
        for publisher in publishers:
            publisher.stop()
    for _, reason in BAD_FRAMES:
        assert node.output.count(reason) == 1, "expected {!r} logged once:\n{}".format(reason, node.output)
    sent, messages = send_and_receive(humble, "skimage:astronaut")
    check_face(messages[0], sent, "humble")
    assert node.returncode is None


def _rss_mb(pid):
    with open("/proc/{}/status".format(pid)) as handle:
        return int(re.search(r"VmRSS:\s+(\d+) kB", handle.read()).group(1)) / 1024.0


@pytest.fixture(scope="module")
def slow_node(tmp_path_factory):
    """A node whose model takes tens of milliseconds (3x3 convolutions at 192x192), in its own domain,
    so that a flood of camera images really outpaces it on any machine."""
    pytest.importorskip("onnx", reason="the slow model is built with onnx.helper")
    params_path, onnx_path = write_classifier(tmp_path_factory.mktemp("slow"), size=192, hidden_channels=64)
    env = environment("humble")
    process = start_node(env, params_path, onnx_path)
    yield process, env
    stop_node(process)


def test_flood_keeps_latency_bounded_and_memory_flat(slow_node):
    node, env = slow_node
    if not os.path.isdir("/proc/{}".format(node.pid)):
        pytest.skip("needs /proc to read the node's memory")
    replay(env, "skimage:astronaut", "--size", "640x480", "--rate", 30, "--count", 30, "--loop")
    before = _rss_mb(node.pid)
    flood_rate, seconds = 200, 4
    replay(env, "skimage:astronaut", "--size", "640x480", "--rate", flood_rate, "--count", flood_rate * seconds,
           "--loop")
    after = _rss_mb(node.pid)
    stats = statistics(env)
    print("flood at {} Hz for {} s: node processed at {:.1f} Hz, latency median {:.1f} ms p95 {:.1f} ms max {:.1f} "
          "ms, dropped {:.0f} of {:.0f} received, RSS {:.1f} -> {:.1f} MB".format(
              flood_rate, seconds, stats.get("rate_hz", 0), stats["latency_ms_median"], stats["latency_ms_p95"],
              stats["latency_ms_max"], stats["frames_dropped"], stats["frames_received"], before, after))
    assert stats["frames_dropped"] > 0, "the flood did not overload the node; raise flood_rate"
    assert stats["latency_ms_max"] < FLOOD_LATENCY_BOUND_MS, stats
    assert after - before < FLOOD_RSS_MARGIN_MB


def test_threshold_changes_take_effect_and_bad_values_are_refused(node, humble):
    accepted, reason = set_parameter(humble, "score_threshold", 1.5)
    assert not accepted and "score_threshold" in reason and "1.0" in reason  # rclpy's range check or ours
    accepted, reason = set_parameter(humble, "model_spec", "other.yaml")
    assert not accepted and "read-only" in reason
    accepted, reason = set_parameter(humble, "score_threshold", "abc")
    assert not accepted and "score_threshold must be float, got 'abc'" in reason, reason
    accepted, reason = set_parameter(humble, "max_detections", 2.5)
    assert not accepted and "max_detections must be int, got 2.5" in reason, reason
    assert set_parameter(humble, "score_threshold", 0.99) == (True, "")
    try:
        sent, messages = send_and_receive(humble, "skimage:astronaut")
        assert header_key(messages[0]["header"]) in sent
        assert messages[0]["detections"] == [], "a 0.92 face passed score_threshold 0.99"
    finally:
        assert set_parameter(humble, "score_threshold", 0.5) == (True, "")


@pytest.mark.parametrize("layout", ["foxy", "galactic"])
def test_older_vision_msgs_layouts_are_filled(layout, blazeface_onnx):
    env = environment(layout)
    process = start_node(env, DETECTOR, blazeface_onnx)
    try:
        assert "vision_msgs layout: " + layout in process.output
        sent, messages = send_and_receive(env, "skimage:astronaut")
        check_face(messages[0], sent, layout)
    finally:
        stop_node(process)


@pytest.mark.parametrize("override, words", [
    ("onnx_path:=missing/model.onnx", ["missing/model.onnx", "convert"]),
    ("model_spec:=config/models/nothing.yaml", ["nothing.yaml", "cannot read the model spec"]),
    ("score_threshold:=1.5", ["score_threshold", "1.0"]),
    ("backend:=cuda", ["backend", "auto, tensorrt, onnxruntime"]),
])
def test_start_up_errors_name_the_problem_and_exit_non_zero(humble, blazeface_onnx, override, words):
    result = subprocess.run([sys.executable, "-m", "trt_infer.ros.node", "--ros-args", "--params-file",
                             DETECTOR, "-p", "onnx_path:=" + blazeface_onnx, "-p", override],
                            env=humble, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=60)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout
    for word in words:
        assert word in result.stdout, result.stdout


def test_a_misspelt_parameter_is_reported_once_with_the_right_name(node):
    assert node.output.count("scor_threshold (did you mean score_threshold?) is not a parameter of the node") == 1


def _one_fatal_line(result, words):
    """The node did not start and said why in one line holding `words`, without a traceback."""
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout
    fatal = [line for line in result.stdout.splitlines() if "[FATAL]" in line]
    assert len(fatal) == 1, result.stdout
    for word in words:
        assert word in fatal[0], result.stdout


@pytest.mark.parametrize("args, words", [
    (["--params-file", "config/missing.yaml"], ["--params-file config/missing.yaml: no such file"]),
    (["--params-file", DETECTOR, "-p", "onnx_path:="], ["-p onnx_path:=", "-p \"onnx_path:=''\""]),
    (["--params-file", DETECTOR, "-p", "score_threshold:=abc"], ["score_threshold must be float, got 'abc'"]),
], ids=["missing params file", "empty value", "value of another type than the params file's"])
def test_command_line_mistakes_are_one_line_naming_the_argument(humble, args, words):
    _one_fatal_line(run_node(humble, *args), words)


def test_a_model_spec_that_is_not_utf8_is_one_line_naming_the_file(humble, blazeface_onnx, tmp_path):
    with open(os.path.join(REPO_ROOT, "config", "models", "blazeface.yaml"), "rb") as handle:
        text = handle.read().decode("utf-8")
    spec = tmp_path / "blazeface_latin1.yaml"
    spec.write_bytes(text.replace("MediaPipe BlazeFace", u"MediaPipe BlazeFace (r\u00e9sum\u00e9)").encode("latin-1"))
    result = run_node(humble, "--params-file", DETECTOR, "-p", "model_spec:=" + str(spec),
                      "-p", "onnx_path:=" + blazeface_onnx)
    _one_fatal_line(result, [str(spec), "must be UTF-8", "iconv -f latin1"])


def test_backend_tensorrt_without_tensorrt_names_the_engine_and_onnx_runtime(humble, blazeface_onnx):
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT imports here")
    result = run_node(humble, "--params-file", DETECTOR, "-p", "onnx_path:=" + blazeface_onnx,
                      "-p", "backend:=tensorrt")
    _one_fatal_line(result, ["TensorRT does not import here", "engine of " + blazeface_onnx, "-p backend:=onnxruntime"])


def _bad_compressed_frames():
    import cv2

    from tests.support.models import sample_image_bgr

    image = cv2.resize(sample_image_bgr("astronaut"), (64, 64))
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    png16 = cv2.imencode(".png", image.astype("uint16") * 256)[1].tobytes()
    return [(jpeg[:300] + bytes(60) + jpeg[360:], "is corrupt (decoder: Corrupt JPEG data"), (png16, "is 16-bit")]


def test_each_cause_of_bad_compressed_frames_is_logged_once_and_the_decoder_stays_quiet(blazeface_onnx):
    env = environment("humble")
    process = start_node(env, DETECTOR, blazeface_onnx, "-p", "compressed_input:=true")
    frames = _bad_compressed_frames()
    try:
        for data, reason in frames:  # one cause after the other: the second must not be hidden by the first
            publisher = ros_env.start_module("tests.support.ros_probe", "publish", "sensor_msgs/msg/CompressedImage",
                                             "/image/compressed", json.dumps({"format": "jpeg", "data": list(data)}),
                                             "--period", "0.05", "--duration", "60", env=env)
            try:
                deadline = time.monotonic() + 30
                while reason not in process.output and time.monotonic() < deadline:
                    time.sleep(0.2)
                time.sleep(1.0)  # more of the same: not logged again
            finally:
                publisher.stop()
    finally:
        stop_node(process)
    output = process.output
    for _, reason in frames:
        assert output.count(reason) == 1, "expected {!r} logged once:\n{}".format(reason, output)
    assert output.count("Corrupt JPEG data") == 1, output  # libjpeg's own stderr line per frame is gone


def _signal_while_frames_flow(env, onnx, signals, gap):
    process = start_node(env, DETECTOR, onnx)
    sender = ros_env.start_module("trt_infer.ros.replay", "skimage:astronaut", "--loop", "--rate", 30,
                                  "--count", 100000, env=env)
    try:
        for _ in range(10):  # until frames flow through the node
            if statistics(env).get("frames_processed", 0) > 0:
                break
        time.sleep(0.5)
        for number in signals:
            process.popen.send_signal(number)
            time.sleep(gap)
        status = process.popen.wait(30)
    finally:
        sender.stop()
        process.stop()
    return status, process.output


@pytest.mark.parametrize("signals, gap", [
    ([signal.SIGTERM], 0), ([signal.SIGINT], 0), ([signal.SIGTERM, signal.SIGINT], 0.05),
    ([signal.SIGINT, signal.SIGINT], 0.1), ([signal.SIGINT, signal.SIGTERM], 0.0),
], ids=["SIGTERM", "SIGINT", "SIGTERM then SIGINT", "Ctrl-C twice", "SIGINT then SIGTERM at once"])
def test_signals_while_frames_flow_exit_0_quietly(humble, blazeface_onnx, signals, gap):
    # 50 of 50 such runs passed outside pytest; a few here
    status, output = _signal_while_frames_flow(humble, blazeface_onnx, signals, gap)
    assert status == 0, output
    for words in ("Traceback", "frame skipped", "context is invalid"):
        assert words not in output, output
