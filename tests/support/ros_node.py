"""trt_infer_node as a separate process, and the DDS helpers the node tests share.

    env = environment("humble")                 # skips the test when that layout is not built
    node = start_node(env, "config/segmenter.yaml", onnx_path, "-p", "mask_resolution:=network")
    sent, messages = send_and_receive(env, "skimage:astronaut", topic="/segmentation/mask",
                                      message_type="sensor_msgs/msg/Image")
    stop_node(node)                              # SIGINT: must exit 0 without a traceback

Images are sent by the replay tool (stamped, best effort by default); results are read by
tests/support/ros_probe.py, which prints every message as JSON.
"""
import json
import os
import re
import subprocess
import sys
import time

from tests.support import ros_env
from tests.support.ros_probe import RECEIVED

REPO_ROOT = ros_env.REPO_ROOT
DETECTIONS = "vision_msgs/msg/Detection2DArray"
IMAGE = "sensor_msgs/msg/Image"
STARTED = "subscribed to"


LARGE_IMAGES_PROFILE = os.path.join(REPO_ROOT, "config", "fastdds_large_images.xml")


def environment(layout):
    """ros_env.ros_environment(layout) with the Fast DDS profile the docs recommend for camera images,
    or a skip when tools/build_vision_msgs.sh has not built the layout. With Fast DDS's defaults a
    900 KiB image goes by fragmented UDP and best-effort frames get lost on a busy 2-core machine:
    these tests are about the node, not about that."""
    import pytest

    try:
        env = ros_env.ros_environment(layout)
    except RuntimeError as error:
        pytest.skip(str(error))
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = LARGE_IMAGES_PROFILE
    return env


def start_node(env, params_file, onnx_path, *extra):
    """The node on ONNX Runtime with `params_file` and `-p` overrides, once it has subscribed."""
    process = ros_env.start_module(
        "trt_infer.ros.node", "--ros-args", "--params-file", params_file,
        "-p", "onnx_path:=" + onnx_path, "-p", "backend:=onnxruntime", "-p", "statistics_period:=0.5", *extra, env=env)
    deadline = time.monotonic() + 30
    while STARTED not in process.output:
        if process.returncode is not None or time.monotonic() > deadline:
            process.stop()
            raise AssertionError("the node did not start:\n" + process.output)
        time.sleep(0.1)
    return process


def run_node(env, *ros_args):
    """The node run to its end with `--ros-args ros_args...` (it is expected not to start):
    a CompletedProcess with stdout and stderr together."""
    return subprocess.run([sys.executable, "-m", "trt_infer.ros.node", "--ros-args"] + [str(a) for a in ros_args],
                          env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60)


def stop_node(process):
    status = process.stop()
    assert status == 0, "the node exited with {} on SIGINT:\n{}".format(status, process.output)
    assert "Traceback" not in process.output, process.output


def listen(env, message_type, topic, count=1, timeout=20):
    return ros_env.start_module("tests.support.ros_probe", "receive", message_type, topic, "--count", count,
                                "--timeout", timeout, env=env)


def received(listener, timeout=30):
    """The messages a listener printed (dicts), once it has exited successfully."""
    status = listener.wait(timeout)
    lines = listener.output.splitlines()
    messages = [json.loads(line[len(RECEIVED):]) for line in lines if line.startswith(RECEIVED)]
    # its own words only: a received image would fill the screen
    assert status == 0, "{} messages received, then:\n{}".format(
        len(messages), "\n".join(line for line in lines if not line.startswith(RECEIVED)))
    return messages


def stamps(output):
    """(sec, nanosec, frame_id) of every image the replay tool reported with --print-stamps."""
    return [(int(sec), int(nanosec), frame_id) for sec, nanosec, frame_id in
            re.findall(r"^stamp (\d+) (\d+) (\S+)$", output, re.M)]


def replay(env, *args):
    """Run the replay tool to the end; the (sec, nanosec, frame_id) of every image it sent."""
    result = subprocess.run([sys.executable, "-m", "trt_infer.ros.replay", "--print-stamps"] + [str(a) for a in args],
                            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            universal_newlines=True, timeout=120)
    assert result.returncode == 0, result.stdout
    return stamps(result.stdout)


def send_and_receive(env, source, *replay_args, **listen_args):
    """Replay `source` in a loop at 5 Hz until the listener has its messages: processes start and
    discover each other at their own pace, so nothing is assumed about who is ready first.
    listen_args: message_type, topic (default: detections), count, timeout (seconds)."""
    listener = listen(env, listen_args.pop("message_type", DETECTIONS), listen_args.pop("topic", "/detections"),
                      **listen_args)
    sent, (messages,) = send_and_receive_all(env, source, [listener], *replay_args)
    return sent, messages


def send_and_receive_all(env, source, listeners, *replay_args):
    """Replay `source` in a loop at 5 Hz until every started listener has its messages;
    (sent stamps, [messages of each listener])."""
    sender = ros_env.start_module("trt_infer.ros.replay", source, "--print-stamps", "--loop", "--rate", 5,
                                  "--count", 600, *replay_args, env=env)  # stopped as soon as all have theirs
    try:
        messages = [received(listener, timeout=120) for listener in listeners]
    finally:
        sender.stop()
    return stamps(sender.output), messages


def header_key(header):
    return header["stamp"]["sec"], header["stamp"]["nanosec"], header["frame_id"]


def statistics(env):
    """The values of the node's next statistics message, as floats by key."""
    status = received(listen(env, "diagnostic_msgs/msg/DiagnosticStatus", "/statistics"))[0]
    return {value["key"]: float(value["value"]) for value in status["values"]}


_SET_PARAMETER = """
import sys, rclpy
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
rclpy.init()
node = rclpy.create_node("set_parameter")
client = node.create_client(SetParameters, "/trt_infer/set_parameters")
assert client.wait_for_service(timeout_sec=10), "no parameter service"
future = client.call_async(SetParameters.Request(parameters=[Parameter({!r}, value={!r}).to_parameter_msg()]))
rclpy.spin_until_future_complete(node, future, timeout_sec=10)
result = future.result().results[0]
print("RESULT", result.successful, result.reason)
"""


def set_parameter(env, name, value):
    """Set a parameter of the running node through its service: (accepted, reason)."""
    result = subprocess.run([sys.executable, "-c", _SET_PARAMETER.format(name, value)], env=env, cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    found = re.search(r"^RESULT (True|False) ?(.*)$", result.stdout, re.M)
    assert found, result.stdout
    return found.group(1) == "True", found.group(2)


_LATCHED_LABELS = """
import json
import rclpy
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from vision_msgs.msg import LabelInfo
rclpy.init()
node = rclpy.create_node("late_listener")
got = []
qos = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
node.create_subscription(LabelInfo, "/label_info", got.append, qos)
for _ in range(200):
    if got:
        break
    rclpy.spin_once(node, timeout_sec=0.1)
print("LABELS", json.dumps([entry.class_name for entry in got[0].class_map] if got else None))
"""


def latched_labels(env):
    """The class names of the node's LabelInfo, as a subscriber that starts late gets them (or None)."""
    result = subprocess.run([sys.executable, "-c", _LATCHED_LABELS], env=env, cwd=REPO_ROOT,
                            timeout=60, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    found = re.search(r"^LABELS (.*)$", result.stdout, re.M)
    assert found, result.stdout
    return json.loads(found.group(1))
