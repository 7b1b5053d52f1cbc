"""trt_infer_node: camera images in, vision_msgs detections or classes / masks / overlay / statistics out.

    ros2 run trt_infer trt_infer_node --ros-args --params-file config/detector.yaml
    python -m trt_infer.ros.node --ros-args --params-file config/detector.yaml

Subscribes to `image` (or `image/compressed`), keeps only the newest frame in a one-slot mailbox
and runs the pipeline on a worker thread, so callbacks stay short and latency does not grow when
the camera is faster than the model. Every output carries the input image's header.
Parameters: trt_infer/ros/parameters.py. Works with rclpy of Foxy and later.
"""
import json
import os
import sys
import threading
import time

import rclpy
from rclpy.node import Node

from trt_infer.errors import StartupError
from trt_infer.ros import parameters as params_table
from trt_infer.ros.image_msgs import ImageError, compressed_view, fill_image, image_view
from trt_infer.ros.mailbox import LatestMailbox
from trt_infer.ros.qos import image_qos, latched_qos, result_qos
from trt_infer.ros.stats import FrameStats, diagnostic_status

NODE_NAME = "trt_infer"
DETECTION_TASKS = ("ssd", "efficient_nms", "batched_nms")
# the pipeline's colour-order argument for each accepted encoding (alpha is dropped, mono replicated)
COLOR_ORDER = {"rgb8": "RGB", "rgba8": "RGB", "bgr8": "BGR", "bgra8": "BGR", "mono8": "BGR"}


def _descriptor(param, ParameterDescriptor, ParameterType, FloatingPointRange, IntegerRange):
    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    descriptor = ParameterDescriptor(name=param.name, type=types[param.kind], description=param.description,
                                     additional_constraints=param.allowed(), read_only=not param.runtime)
    if param.low is not None and param.kind is float:
        descriptor.floating_point_range = [FloatingPointRange(from_value=param.low, to_value=param.high, step=0.0)]
    elif param.low is not None:
        descriptor.integer_range = [IntegerRange(from_value=param.low, to_value=param.high, step=1)]
    return descriptor


def resolve_path(path):
    """`path` with ~ expanded; a relative path that does not exist from the working directory is
    looked up in the installed package's share folder (so config/models/x.yaml works after install)."""
    path = os.path.expanduser(path)
    if not path or os.path.isabs(path) or os.path.exists(path):
        return path
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = os.path.join(get_package_share_directory("trt_infer"), path)
    except (ImportError, LookupError, OSError, ValueError):  # not installed as a ROS package (PackageNotFoundError is a KeyError)
        return path
    return installed if os.path.exists(installed) else path


def open_backend(settings, spec, log):
    """The backend the parameters ask for; StartupError naming the file and the fix otherwise."""
    from trt_infer.backends import load_backend

    kind, engine, onnx = settings["backend"], settings["engine_path"], settings["onnx_path"]
    if kind == "auto":
        kind = "tensorrt" if (engine or settings["build_if_missing"]) and _tensorrt_importable() else "onnxruntime"
        if kind == "onnxruntime" and engine:
            log("backend auto: TensorRT does not import here, so {} is not used; running {} on ONNX Runtime".format(
                engine, onnx or "(no onnx_path)"))
    if kind == "onnxruntime":
        if not onnx:
            raise StartupError("backend {} needs onnx_path (an .onnx file from `convert all`); set it in the "
                               "params file or with -p onnx_path:=model.onnx".format(settings["backend"]))
        return load_backend(onnx, "onnxruntime")
    if not engine or not os.path.isfile(engine):
        engine = _engine_from_cache(settings, spec, engine, log)
    # the backend checks the engine's sidecar against the running TensorRT and GPU before loading it
    return load_backend(engine, "tensorrt", spec=spec)


def _engine_from_cache(settings, spec, engine, log):
    from trt_infer.engine.cache import cached_engine

    if not settings["onnx_path"]:
        raise StartupError("engine_path {!r} does not exist and no onnx_path is set to build it from; build the "
                           "engine with `convert build model.onnx -o {}` or set onnx_path and "
                           "build_if_missing: true".format(engine, engine or "model.engine"))
    cache_dir = settings["cache_dir"] or os.path.dirname(os.path.abspath(settings["onnx_path"]))
    return cached_engine(settings["onnx_path"], cache_dir, build_if_missing=settings["build_if_missing"],
                         spec=spec)


def _tensorrt_importable():
    try:
        from trt_infer.backends.tensorrt_api import import_tensorrt
        import_tensorrt()
        return True
    except ImportError:
        return False


class InferenceNode(Node):
    """Call `start()` after construction; `close()` stops the worker and releases the backend."""

    def __init__(self, **kwargs):
        super(InferenceNode, self).__init__(NODE_NAME, **kwargs)
        self.pipeline = None
        self.backend = None
        self.mailbox = LatestMailbox()
        self.stats = FrameStats()
        self.worker = None
        self._logged_kinds = set()
        self._closing = False

    # -- start-up -------------------------------------------------------------------------
    def start(self):
        from trt_infer.pipeline import Pipeline
        from trt_infer.schema import SpecError
        from trt_infer.spec import load_spec

        self._declare([param for param in params_table.PARAMETERS if param.default != params_table.FROM_SPEC])
        settings = self._read([param.name for param in params_table.PARAMETERS
                               if param.default != params_table.FROM_SPEC])
        for name in ("model_spec", "engine_path", "onnx_path", "cache_dir"):
            settings[name] = resolve_path(settings[name])
        if not settings["model_spec"]:
            raise StartupError("parameter model_spec is not set: give the model spec YAML (config/models/*.yaml) "
                               "in the params file or with -p model_spec:=path")
        try:
            self.spec = load_spec(settings["model_spec"])
        except SpecError as error:
            raise StartupError("bad model spec: {}".format(error))
        thresholds = self.spec.thresholds
        self._declare([param for param in params_table.PARAMETERS if param.default == params_table.FROM_SPEC],
                      defaults={name: param.kind(thresholds[key]) for name, key in
                                params_table.THRESHOLD_PARAMETERS.items()
                                for param in [params_table.BY_NAME[name]]})
        settings.update(self._read(list(params_table.THRESHOLD_PARAMETERS)))
        self.settings = settings
        try:
            self.backend = open_backend(settings, self.spec, self.get_logger().info)
        except (IOError, OSError, ValueError, RuntimeError, ImportError) as error:
            raise StartupError("cannot load the model: {}".format(error))
        try:
            self.pipeline = Pipeline(self.spec, self.backend)
        except (ValueError, KeyError) as error:
            raise StartupError("model {} does not match the spec {}: {}".format(
                self.backend.path, settings["model_spec"], error))
        self.pipeline.set_thresholds(**self._threshold_values(settings))
        self._create_publishers()
        self._create_subscription()
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.create_timer(settings["statistics_period"], self._publish_statistics)
        self.worker = threading.Thread(target=self._work, name="trt_infer_worker")
        self.worker.daemon = True
        self.worker.start()
        self.get_logger().info("{} on {} ({}): subscribed to {}".format(
            self.spec.name, type(self.backend).__name__, self.backend.path, self.input_topic))

    def _declare(self, declared, defaults=None):
        from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

        for param in declared:
            default = (defaults or {}).get(param.name, param.default)
            descriptor = _descriptor(param, ParameterDescriptor, ParameterType, FloatingPointRange, IntegerRange)
            try:
                self.declare_parameter(param.name, default, descriptor)
            except Exception as error:  # rclpy's exception types differ between distros
                raise StartupError("parameter {}: {} (allowed: {})".format(
                    param.name, error, param.allowed() or param.kind.__name__))

    def _read(self, names):
        values = {}
        for name in names:
            value = self.get_parameter(name).value
            problem = params_table.BY_NAME[name].problem(value)
            if problem:
                raise StartupError("parameter " + problem)
            values[name] = value
        return values

    @staticmethod
    def _threshold_values(settings):
        return {key: settings[name] for name, key in params_table.THRESHOLD_PARAMETERS.items() if name in settings}

    def _create_publishers(self):
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from sensor_msgs.msg import Image

        self.Image = Image
        self.detections_pub = self.classification_pub = self.mask_pub = self.color_pub = None
        # segmentation needs vision_msgs only for LabelInfo; the other tasks publish vision_msgs results
        self.vision = self._vision_messages(required=self.spec.task != "segmentation")
        if self.spec.task in DETECTION_TASKS:
            self.detections_pub = self.create_publisher(self.vision.msg.Detection2DArray, "detections", result_qos())
        elif self.spec.task == "classification":
            if self.vision.classification_type is None:
                raise StartupError("task classification: this vision_msgs has neither Classification (3.x and "
                                   "later) nor Classification2D (2.x); install ros-<distro>-vision-msgs")
            self.classification_pub = self.create_publisher(self.vision.classification_type, "classification",
                                                            result_qos())
            self.get_logger().info("classification published as vision_msgs/{}".format(
                self.vision.classification_type.__name__))
        elif self.spec.task == "segmentation":
            self.mask_pub = self.create_publisher(Image, "segmentation/mask", result_qos())
            self.color_pub = self.create_publisher(Image, "segmentation/color", result_qos())
            self.stats.count("color_published", 0)
        self._publish_labels()
        self.overlay_pub = self.create_publisher(Image, "overlay", result_qos())
        self.stats.count("overlay_published", 0)
        self.statistics_pub = self.create_publisher(DiagnosticStatus, "statistics", result_qos())
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", result_qos())

    def _vision_messages(self, required):
        from trt_infer.ros.vision_msgs_compat import VisionMessages

        try:
            vision = VisionMessages()
        except ImportError as error:
            if required:
                raise StartupError("task {} publishes vision_msgs messages: {}".format(self.spec.task, error))
            return None
        self.get_logger().info("vision_msgs layout: {}".format(vision.layout))
        return vision

    def _publish_labels(self):
        """The label table, latched: vision_msgs/LabelInfo where it exists, else a JSON list on `labels`."""
        from std_msgs.msg import Header, String

        info = None
        if self.vision is not None:
            info = self.vision.label_info(Header(frame_id=""), self.spec.labels, self.settings["score_threshold"])
        if info is not None:
            self.create_publisher(type(info), "label_info", latched_qos()).publish(info)
        else:
            self.create_publisher(String, "labels", latched_qos()).publish(String(data=json.dumps(self.spec.labels)))

    def _create_subscription(self):
        depth, reliability = self.settings["input_depth"], self.settings["input_reliability"]
        if self.settings["compressed_input"]:
            from sensor_msgs.msg import CompressedImage

            self.input_topic, message_type, view = "image/compressed", CompressedImage, compressed_view
        else:
            self.input_topic, message_type, view = "image", self.Image, image_view
        self.create_subscription(message_type, self.input_topic, lambda msg: self._receive(msg, view),
                                 image_qos(reliability, depth))

    # -- run time -------------------------------------------------------------------------
    def _receive(self, msg, view):
        self.stats.count("received")
        if self.mailbox.put((msg, view)):
            self.stats.count("dropped")

    def _work(self):
        while not self.mailbox.closed:
            item = self.mailbox.take(timeout=0.2)
            if item is None:
                continue
            try:
                self._process(*item)
            except Exception as error:  # keep running: one bad frame must not stop the node
                if self._closing:
                    return
                self._log_once("error:" + type(error).__name__, "frame skipped: {}: {}".format(
                    type(error).__name__, error))
                self.stats.count("skipped")

    def _process(self, msg, view):
        started = time.monotonic()
        try:
            image, encoding = view(msg)
        except ImageError as error:
            self._log_once(error.kind, str(error))
            self.stats.count("skipped")
            return
        result = self.pipeline(image, color_order=COLOR_ORDER[encoding])
        header = msg.header
        if self.detections_pub is not None:
            self._publish_detections(header, result.detections)
        if self.classification_pub is not None:
            self._publish_classification(header, result.classes)
        if self.mask_pub is not None:
            self._publish_masks(header, result)
        if self.settings["publish_overlay"] and self.overlay_pub.get_subscription_count() > 0:
            self._publish_overlay(header, image, encoding, result)
        now = time.monotonic()
        self.stats.processed(now, now - started, self._latency(header), result.timings)

    def _latency(self, header):
        stamp = header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            return None  # an unstamped image: no latency to report
        now = self.get_clock().now().nanoseconds
        return (now - (stamp.sec * 1000000000 + stamp.nanosec)) / 1e9

    def _class_id(self, index):
        """A class index as vision_msgs carries it: decimal text, or the label (class_id_format)."""
        return self.spec.label(int(index)) if self.settings["class_id_format"] == "label" else str(int(index))

    def _publish_detections(self, header, detections):
        class_ids = [self._class_id(index) for index in detections.class_ids]
        self.detections_pub.publish(self.vision.detection_array(header, detections.boxes, detections.scores,
                                                                class_ids))

    def _publish_classification(self, header, classes):
        top = [(self._class_id(index), score) for index, score in classes]
        self.classification_pub.publish(self.vision.classification(header, top))

    def _publish_masks(self, header, result):
        mask = result.image_mask if self.settings["mask_resolution"] == "image" else result.mask
        if mask is None:
            return
        self.mask_pub.publish(fill_image(self.Image(), mask, "mono8", header))
        if self.color_pub.get_subscription_count() > 0:
            from trt_infer.overlay import colour_mask

            colours = colour_mask(mask, self.spec.palette, color_order="RGB")
            self.color_pub.publish(fill_image(self.Image(), colours, "rgb8", header))
            self.stats.count("color_published")

    def _publish_overlay(self, header, image, encoding, result):
        from trt_infer.overlay import render
        from trt_infer.ros.image_msgs import to_bgr

        canvas = render(to_bgr(image, encoding), result, self.spec)
        self.overlay_pub.publish(fill_image(self.Image(), canvas, "bgr8", header))
        self.stats.count("overlay_published")

    def _log_once(self, kind, message):
        if kind not in self._logged_kinds:
            self._logged_kinds.add(kind)
            self.get_logger().warning(message + " (further frames like this are skipped silently; see the "
                                                "statistics topic for counts)")

    def _on_set_parameters(self, changed):
        from rcl_interfaces.msg import SetParametersResult

        updates = {}
        for parameter in changed:
            param = params_table.BY_NAME.get(parameter.name)
            if param is None:
                continue  # use_sim_time and other parameters rclpy owns
            if not param.runtime:
                return SetParametersResult(successful=False, reason="{} is read-only at run time; set it in the "
                                                                    "params file and restart".format(param.name))
            problem = param.problem(parameter.value)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
            updates[param.name] = param.kind(parameter.value)
        try:
            self.pipeline.set_thresholds(**self._threshold_values(updates))
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        self.settings.update(updates)
        return SetParametersResult(successful=True)

    def _publish_statistics(self):
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        status = diagnostic_status(self.stats.snapshot(), "{}: {}".format(self.get_fully_qualified_name(),
                                                                          self.spec.name),
                                   type(self.backend).__name__, DiagnosticStatus, KeyValue)
        self.statistics_pub.publish(status)
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self.diagnostics_pub.publish(array)

    # -- shutdown -------------------------------------------------------------------------
    def close(self):
        self._closing = True
        self.mailbox.close()
        if self.worker is not None:
            self.worker.join(timeout=5.0)
        if self.backend is not None:
            self.backend.close()
            self.backend = None
        self.destroy_node()


def _external_shutdown():
    """The exception spin raises when the context is shut down by a signal (Humble+), if any."""
    try:
        from rclpy.executors import ExternalShutdownException
        return ExternalShutdownException
    except ImportError:  # Foxy / Galactic raise KeyboardInterrupt instead
        return KeyboardInterrupt


def shutdown_quietly():
    """Shut rclpy down unless a signal already did."""
    try:
        rclpy.try_shutdown()
    except AttributeError:  # Foxy has no try_shutdown
        if rclpy.ok():
            rclpy.shutdown()


def main(args=None):
    """Entry point of `trt_infer_node`; returns the exit status (0 on SIGINT, 1 when it cannot start)."""
    rclpy.init(args=args)
    node = None
    status = 0
    try:
        node = InferenceNode()
        node.start()
        rclpy.spin(node)
    except StartupError as error:
        rclpy.logging.get_logger(NODE_NAME).fatal(str(error))
        status = 1
    except (KeyboardInterrupt, _external_shutdown()):
        pass
    finally:
        if node is not None:
            node.close()
        shutdown_quietly()
    return status


if __name__ == "__main__":
    sys.exit(main())
