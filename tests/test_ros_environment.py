"""The ROS 2 test environment: real rclpy over Fast DDS between processes, vision_msgs in three layouts."""
import json
import os
import time

import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels (rclpy, Fast DDS) of the host .venv")

from tests.support import ros_env
from tests.support.ros_probe import RECEIVED

PROCESS_TIMEOUT_S = 15.0
SEARCH_PATHS = ("AMENT_PREFIX_PATH", "PYTHONPATH", "LD_LIBRARY_PATH")


def _round_trip(layout, message_type, fields, qos="reliable"):
    """Publish `fields` from one process, receive them in another; return what the receiver decoded."""
    env = ros_env.ros_environment(layout)
    topic = "/trt_infer_test/" + message_type.split("/")[-1].lower()
    receive = ("receive", message_type, topic, "--timeout", PROCESS_TIMEOUT_S, "--qos", qos)
    publish = ("publish", message_type, topic, json.dumps(fields), "--duration", PROCESS_TIMEOUT_S + 5, "--qos", qos)
    with ros_env.start_module("tests.support.ros_probe", *receive, env=env) as listener, \
            ros_env.start_module("tests.support.ros_probe", *publish, env=env) as talker:
        deadline = time.monotonic() + PROCESS_TIMEOUT_S + 5
        while listener.returncode is None and talker.returncode is None and time.monotonic() < deadline:
            time.sleep(0.05)  # a publisher that fails (e.g. a field this layout lacks) ends the wait at once
        assert talker.returncode is None, "publisher exited early:\n" + talker.output
        status = listener.wait(timeout=5)
        assert status == 0, "receiver exited with %d:\n%s\npublisher:\n%s" % (status, listener.output, talker.output)
    assert talker.returncode == 0, "publisher did not stop cleanly on SIGINT (%d):\n%s" % (
        talker.returncode, talker.output)
    lines = [line[len(RECEIVED):] for line in listener.output.splitlines() if line.startswith(RECEIVED)]
    assert lines, listener.output
    return json.loads(lines[0])


def _assert_contains(received, sent, where="message"):
    """Every field that was sent arrived with the same value (unsent fields keep their defaults)."""
    if isinstance(sent, dict):
        for name, value in sent.items():
            assert name in received, "%s lost field %r: %r" % (where, name, received)
            _assert_contains(received[name], value, where + "." + name)
    elif isinstance(sent, list):
        assert len(received) == len(sent), "%s: %d items sent, %d received" % (where, len(sent), len(received))
        for index, (got, want) in enumerate(zip(received, sent)):
            _assert_contains(got, want, "%s[%d]" % (where, index))
    else:
        assert received == sent, "%s: sent %r, received %r" % (where, sent, received)


@pytest.mark.ros
@pytest.mark.slow
def test_image_travels_between_processes_over_dds():  # best effort, keep last 1: a camera's QoS
    height, width = 3, 5
    data = [(row * 37 + column * 11 + channel * 101) % 256
            for row in range(height) for column in range(width) for channel in range(3)]
    image = {
        "header": {"stamp": {"sec": 1700000123, "nanosec": 456789}, "frame_id": "camera_optical"},
        "height": height, "width": width, "encoding": "rgb8", "is_bigendian": 0, "step": width * 3,
        "data": data,
    }
    received = _round_trip(None, "sensor_msgs/msg/Image", image, qos="sensor_data")
    _assert_contains(received, image)
    assert received == image  # nothing else was on the message


HEADER = {"stamp": {"sec": 42, "nanosec": 5000}, "frame_id": "camera_optical"}
BOX_SIZE = {"size_x": 40.5, "size_y": 30.25}
POSE = {"pose": {"position": {"x": 1.5, "y": -2.0, "z": 0.25}}}
DETECTIONS = {
    "foxy": {  # vision_msgs 2.x
        "results": [{"id": "17", "score": 0.875, "pose": POSE}],
        "bbox": dict(center={"x": 120.5, "y": 64.25, "theta": 0.5}, **BOX_SIZE),
        "is_tracking": True, "tracking_id": "track-3",
    },
    "galactic": {  # vision_msgs 3.x
        "results": [{"hypothesis": {"class_id": "17", "score": 0.875}, "pose": POSE}],
        "bbox": dict(center={"x": 120.5, "y": 64.25, "theta": 0.5}, **BOX_SIZE),
        "id": "det-3",
    },
    "humble": {  # vision_msgs 4.x
        "results": [{"hypothesis": {"class_id": "17", "score": 0.875}, "pose": POSE}],
        "bbox": dict(center={"position": {"x": 120.5, "y": 64.25}, "theta": 0.5}, **BOX_SIZE),
        "id": "det-3",
    },
}


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize("layout", ros_env.LAYOUTS)
def test_detection2darray_in_each_layout_travels_between_processes(layout):
    detection = dict(header=HEADER, **DETECTIONS[layout])
    sent = {"header": HEADER, "detections": [detection, {"header": HEADER}]}
    received = _round_trip(layout, "vision_msgs/msg/Detection2DArray", sent)
    _assert_contains(received, sent)

    first = received["detections"][0]
    hypothesis, center = first["results"][0], first["bbox"]["center"]
    if layout == "foxy":
        assert set(hypothesis) == {"id", "score", "pose"}
        assert hypothesis["id"] == "17"
        assert set(first) == {"header", "results", "bbox", "source_img", "is_tracking", "tracking_id"}
        assert first["source_img"]["data"] == [] and first["tracking_id"] == "track-3"
    else:
        assert set(hypothesis) == {"hypothesis", "pose"}
        assert hypothesis["hypothesis"]["class_id"] == "17"
        assert set(first) == {"header", "results", "bbox", "id"}
    if layout == "humble":
        assert set(center) == {"position", "theta"}
        assert center["position"]["x"] == 120.5
    else:  # geometry_msgs/Pose2D
        assert set(center) == {"x", "y", "theta"}
        assert center["x"] == 120.5


@pytest.mark.ros
@pytest.mark.slow
def test_label_info_of_the_humble_layout_travels_between_processes():
    labels = {"header": HEADER, "threshold": 0.5,
              "class_map": [{"class_id": 0, "class_name": "face"}, {"class_id": 7, "class_name": "cat"}]}
    assert _round_trip("humble", "vision_msgs/msg/LabelInfo", labels) == labels


@pytest.mark.ros
@pytest.mark.parametrize("layout", ["foxy", "galactic"])
def test_older_layouts_have_no_label_info(layout):
    publish = ("publish", "vision_msgs/msg/LabelInfo", "/labels", "{}")
    with ros_env.start_module("tests.support.ros_probe", *publish, env=ros_env.ros_environment(layout)) as probe:
        status = probe.wait(PROCESS_TIMEOUT_S)
    assert status != 0 and "vision_msgs.msg has no LabelInfo" in probe.output, probe.output


@pytest.mark.ros
def test_each_environment_selects_one_layout_and_its_own_domain(monkeypatch):
    environments = [ros_env.ros_environment(layout) for layout in ros_env.LAYOUTS]
    domains = [int(env["ROS_DOMAIN_ID"]) for env in environments]
    assert len(set(domains)) == len(domains) and all(1 <= domain <= 101 for domain in domains)
    layouts_root = os.path.join(ros_env.VENV, "vision_msgs")
    for layout, env in zip(ros_env.LAYOUTS, environments):
        for variable in SEARCH_PATHS:
            selected = {path.split(os.sep)[len(layouts_root.split(os.sep))]
                        for path in env[variable].split(os.pathsep) if path.startswith(layouts_root + os.sep)}
            assert selected == {layout}, (variable, env[variable])
        assert env["AMENT_PREFIX_PATH"].split(os.pathsep)[:2] == [ros_env.layout_prefix(layout), ros_env.VENV]
        assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
        assert env["RMW_IMPLEMENTATION"] == "rmw_fastrtps_cpp"
        assert env[ros_env.LAYOUT_VARIABLE] == layout
    # A layout chosen on top of an environment that already selected another replaces it.
    for variable in SEARCH_PATHS:
        monkeypatch.setenv(variable, environments[0][variable])
    switched = ros_env.ros_environment("humble")
    for variable in SEARCH_PATHS:
        assert os.sep + "foxy" + os.sep not in switched[variable], (variable, switched[variable])


def test_unknown_layout_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown vision_msgs layout 'iron'.*foxy, galactic, humble"):
        ros_env.ros_environment("iron")


@pytest.mark.ros
def test_probe_names_the_path_of_an_unknown_field():
    from tests.support.ros_probe import fill_message, message_class

    image_class = message_class("sensor_msgs/Image")
    with pytest.raises(ValueError,
                       match=r"Image\.header\.stamp \(Time\) has no field 'secs'; its fields: sec, nanosec"):
        fill_message(image_class(), {"header": {"stamp": {"secs": 1}}})
