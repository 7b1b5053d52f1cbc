"""trt_infer: TensorRT / ONNX Runtime inference pipeline for ROS 2 robots (Jetson Nano first).

Importing this package needs only numpy (OpenCV and YAML when a pipeline is built); heavy
dependencies (tensorrt, pycuda, onnxruntime, rclpy) are imported by the modules that use them.
"""

__version__ = "0.1.0"
