"""ros2 launch trt_infer nano.launch.py [model_config:=...] [engine_path:=...] [onnx_path:=...]
    [camera_topic:=/camera/image_raw] [namespace:=...] [params_file:=...]

Starts trt_infer_node with the model config (config/detector.yaml by default, or
config/segmenter.yaml) and then the deployment settings of params_file (config/nano.yaml by
default), so the Nano's backend/QoS/cache choices win over a model config's. engine_path and
onnx_path override the configs only when given. The node subscribes to `image` and
`image/compressed`, remapped to camera_topic and camera_topic/compressed.
Thin on purpose: every parameter lives in the YAML files, which the tests also use.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "trt_infer"
PARAMS_FILE = "nano.yaml"
MODEL_CONFIG = "detector.yaml"


def _node(context):
    def argument(name):
        return LaunchConfiguration(name).perform(context)

    overrides = {"engine_path": argument("engine_path"), "onnx_path": argument("onnx_path")}
    camera = argument("camera_topic")
    return [Node(
        package=PACKAGE,
        executable="trt_infer_node",
        name="trt_infer",
        namespace=argument("namespace"),
        parameters=[argument("model_config"), argument("params_file"),
                    {name: value for name, value in overrides.items() if value}],
        remappings=[("image", camera), ("image/compressed", camera + "/compressed")],
        output="screen",
        emulate_tty=True,
    )]


def generate_launch_description():
    config = os.path.join(get_package_share_directory(PACKAGE), "config")
    return LaunchDescription([
        DeclareLaunchArgument("model_config", default_value=os.path.join(config, MODEL_CONFIG),
                              description="node parameters of the model (config/detector.yaml, config/segmenter.yaml)"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(config, PARAMS_FILE),
                              description="deployment parameters (backend, engine cache, QoS, outputs)"),
        DeclareLaunchArgument("engine_path", default_value="", description="TensorRT engine; empty = from the configs"),
        DeclareLaunchArgument("onnx_path", default_value="", description="ONNX model; empty = from the configs"),
        DeclareLaunchArgument("camera_topic", default_value="/camera/image_raw", description="sensor_msgs/Image input"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and its topics"),
        OpaqueFunction(function=_node),
    ])
