"""The node's command line as rcl reads it, checked before rclpy.init: a params file that is not
there, a -p without a value, the -p overrides, rcl's messages in one line. Runs under Python 3.6."""
import os

import pytest

from trt_infer.ros import arguments


def ros(*args):
    return ["trt_infer_node", "--ros-args"] + list(args)


def test_ros_arguments_are_read_between_ros_args_and_the_end_marker():
    args = ["prog", "-p", "not:=ros", "--ros-args", "-p", "a:=1", "--params-file", "x.yaml", "-r", "b:=c",
            "--", "-p", "outside:=1", "--ros-args", "--param", "d:=2", "--log-level"]
    assert arguments.ros_arguments(args) == [("-p", "a:=1"), ("--params-file", "x.yaml"), ("-r", "b:=c"),
                                             ("--param", "d:=2"), ("--log-level", None)]


def test_a_params_file_that_is_not_there_is_named_with_the_working_directory(tmp_path):
    missing = str(tmp_path / "absent.yaml")
    problem = arguments.argument_problem(ros("--params-file", missing))
    assert problem.startswith("--params-file {}: no such file".format(missing)) and os.getcwd() in problem
    present = tmp_path / "present.yaml"
    present.write_text(u"/**:\n  ros__parameters: {}\n")
    assert arguments.argument_problem(ros("--params-file", str(present), "-p", "a:=1")) is None
    assert arguments.argument_problem(["trt_infer_node", "--params-file", missing]) is None  # not a ROS argument


@pytest.mark.parametrize("args, words", [
    (("-p", "onnx_path:="), ["-p onnx_path:=: the value is empty", "-p \"onnx_path:=''\""]),
    (("-p", "trt_infer:onnx_path:="), ["-p \"onnx_path:=''\""]),
    (("-p", "score_threshold"), ["not NAME:=VALUE", "-p score_threshold:=0.6"]),
    (("--params-file",), ["--params-file needs a value"]),
])
def test_a_parameter_rcl_cannot_parse_is_one_line_with_the_fix(args, words):
    problem = arguments.argument_problem(ros(*args))
    for word in words:
        assert word in problem
    assert "\n" not in problem


def test_command_line_parameters_are_read_as_yaml_for_this_node_only():
    args = ros("-p", "score_threshold:=abc", "-p", "max_detections:=5", "-p", "trt_infer:backend:=onnxruntime",
               "-p", "other_node:backend:=tensorrt", "-p", "/trt_infer:input_depth:=2", "-p", "onnx_path:=''",
               "-p", "flag:=[1", "--params-file", "x.yaml")
    assert arguments.command_line_parameters(args, "trt_infer") == [
        ("score_threshold", "abc"), ("max_detections", 5), ("backend", "onnxruntime"), ("input_depth", 2),
        ("onnx_path", ""), ("flag", "[1")]


def test_rcl_messages_lose_their_source_locations():
    message = ("failed to initialize rcl: Couldn't parse params file: '--params-file bad.yaml'. Error: Error "
               "parsing a event near line 3, at /project/src/parse.c:776, at /project/src/rcl/arguments.c:415")
    assert arguments.rcl_error_line(message) == ("failed to initialize rcl: Couldn't parse params file: "
                                                 "'--params-file bad.yaml'. Error: Error parsing a event near line 3")
