"""trt_infer_node: camera images in, vision_msgs detections or classes / masks / overlay / statistics out.

    ros2 run trt_infer trt_infer_node --ros-args --params-file config/detector.yaml
    python -m trt_infer.ros.node --ros-args --params-file config/detector.yaml

Subscribes to `image` (or `image/compressed`) and runs the pipeline on stage threads
(trt_infer/ros/stages.py), so callbacks stay short: with CPU pre-processing, frame N's inference
(which releases the GIL) overlaps frame N+1's image view + pre-processing and frame N-1's
post-processing + publishing; with GPU pre-processing, whose kernels queue on the backend's
stream, one thread runs a frame's steps in turn. A one-slot mailbox before each stage keeps only
the newest frame, so latency does not grow when the camera is faster than the model; results
are published in input order and every output carries the input image's header.
Parameters: trt_infer/ros/parameters.py. The node's decisions are plain functions without rclpy:
trt_infer/ros/config.py (parameter values), trt_infer/ros/plan.py (backend, topics); the runtime's
log records reach rclpy through trt_infer/ros/log_forwarding.py. Works with rclpy of Foxy and later.
"""
import importlib
import json
import logging
import signal
import sys
import time

import rclpy
from rclpy.node import Node

from trt_infer.errors import SpecError, StartupError, TrtInferError
from trt_infer.paths import resolve_path
from trt_infer.ros import config as node_config
from trt_infer.ros import parameters as params_table
from trt_infer.ros.arguments import argument_problem, command_line_parameters, rcl_error_line
from trt_infer.ros.image_msgs import ImageError, compressed_view, fill_image, message_image, skip_cause
from trt_infer.ros.log_forwarding import forward_logging, stop_forwarding
from trt_infer.ros.plan import choose_backend, publisher_plan, without_tensorrt
from trt_infer.ros.qos import image_qos, latched_qos, result_qos
from trt_infer.ros.stages import BufferPool, StageChain
from trt_infer.ros.stats import FrameStats, diagnostic_status
from trt_infer.tasks import get_task

NODE_NAME = "trt_infer"
# named, not __name__: run as `python -m trt_infer.ros.node` this module is __main__, outside trt_infer.*
_LOG = logging.getLogger("trt_infer.ros.node")
# the pipeline's colour-order argument for each accepted encoding (alpha is dropped, mono replicated)
COLOR_ORDER = {"rgb8": "RGB", "rgba8": "RGB", "bgr8": "BGR", "bgra8": "BGR", "mono8": "BGR"}
QOS = {"result": result_qos, "latched": latched_qos}


def _descriptor(param, ParameterDescriptor, ParameterType, FloatingPointRange, IntegerRange):
    types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
             float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}
    descriptor = ParameterDescriptor(name=param.name, type=types[param.kind], description=param.description,
                                     additional_constraints=param.allowed(), read_only=not param.runtime)
    low, high = param.field.minimum, param.field.maximum
    if low is not None and high is not None and param.kind is float:
        descriptor.floating_point_range = [FloatingPointRange(from_value=low, to_value=high, step=0.0)]
    elif low is not None and high is not None:
        descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
    if hasattr(descriptor, "dynamic_typing"):
        # Galactic and later would refuse another type themselves, naming type codes ("expected '3'
        # got '2'"); the node checks every value (config.runtime_changes) in the table's words.
        descriptor.dynamic_typing = True
    return descriptor


def open_backend(config, spec):
    """The backend that plan.choose_backend picks for the parameters in `config` (a NodeConfig)."""
    from trt_infer.backends import load_backend

    choice = choose_backend(config, _tensorrt_importable)
    if choice.kind == "tensorrt" and _tensorrt_import_problem() is not None:
        raise StartupError(without_tensorrt(choice, config.onnx_path, _tensorrt_import_problem()))
    try:
        if choice.kind == "onnxruntime":
            return load_backend(choice.model, "onnxruntime")
        engine = _engine_from_cache(choice, config, spec) if choice.from_cache else choice.model
        # the backend checks the engine's sidecar against the running TensorRT and GPU before loading it
        return load_backend(engine, "tensorrt", spec=spec)
    except TrtInferError as error:
        raise StartupError("cannot load the model: {}".format(error))


def _engine_from_cache(choice, config, spec):
    from trt_infer.engine.cache import cached_engine

    return cached_engine(config.onnx_path, choice.cache_dir, build_if_missing=config.build_if_missing, spec=spec)


def _tensorrt_importable():
    return _tensorrt_import_problem() is None


def _tensorrt_import_problem():
    """None when TensorRT imports here, else the import error's own words."""
    from trt_infer.backends.tensorrt_api import import_tensorrt

    try:
        import_tensorrt()
        return None
    except ImportError as error:
        return str(error.__context__ or error)


class Frame(object):
    """One image on its way through the stages: the message, what each stage made of it."""

    __slots__ = ("msg", "view", "started", "image", "encoding", "buffer", "transform", "outputs", "timings")

    def __init__(self, msg, view):
        self.msg = msg
        self.view = view
        self.started = None
        self.image = self.encoding = self.buffer = self.transform = self.outputs = None
        self.timings = {}


class InferenceNode(Node):
    """Reads its parameters, loads the model and starts its topics and stage threads on construction
    (StartupError when it cannot); `close()` stops the stage threads and releases the backend.
    arguments: the command line rclpy.init was given (sys.argv by default), for its -p values."""

    def __init__(self, arguments=None, **kwargs):
        super(InferenceNode, self).__init__(NODE_NAME, **kwargs)
        self.backend = None
        self.chain = None
        self.stats = FrameStats()
        self._outputs = {}
        self._logged_causes = set()
        self._closing = False
        self._log_handler = forward_logging(self.get_logger())
        self._command_line = command_line_parameters(sys.argv if arguments is None else arguments, NODE_NAME)
        # name -> value of the params files' and -p values rclpy holds for this node (Foxy .. Kilted)
        self._overrides = dict((name, parameter.value) for name, parameter in
                               getattr(self, "_parameter_overrides", {}).items())
        try:
            unknown = node_config.unknown_parameters(list(self._overrides) + [name for name, _ in self._command_line])
            if unknown:
                _LOG.warning(unknown)
            values = self._declare(node_config.startup_names())
            for name in node_config.PATH_PARAMETERS:
                values[name] = resolve_path(values[name])
            self.spec = node_config.load_model_spec(values["model_spec"])
            values.update(self._declare(list(params_table.THRESHOLD_PARAMETERS),
                                        node_config.threshold_defaults(self.spec)))
            self.config = node_config.NodeConfig(values, self.spec)
            from trt_infer.backends.simulated import simulated_if_requested

            self.backend = simulated_if_requested(open_backend(self.config, self.spec))
            self.pipeline = self._pipeline()
            plan = publisher_plan(get_task(self.spec.task).publishes, self.config)
            self._create_publishers(plan)
            self._create_subscription(plan.subscription)
            self.add_on_set_parameters_callback(self._on_set_parameters)
            self.create_timer(self.config.statistics_period, self._publish_statistics)
            self.chain = self._stage_chain()
        except BaseException:
            self.close()
            raise
        _LOG.info("{} on {} ({}): subscribed to {}".format(
            self.spec.name, type(self.backend).__name__, self.backend.path, self.input_topic))

    # -- start-up -------------------------------------------------------------------------
    def _declare(self, names, defaults=None):
        """Declare the parameters `names` (with the table's descriptors) and return their values,
        checked against the table before rclpy sees them (StartupError in the table's words)."""
        from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType

        given = node_config.start_values(names, self._overrides, self._command_line)
        values = {}
        for name in names:
            param = params_table.BY_NAME[name]
            values[name] = node_config.check_value(name, given.get(name, (defaults or {}).get(name, param.default)))
            descriptor = _descriptor(param, ParameterDescriptor, ParameterType, FloatingPointRange, IntegerRange)
            try:
                # the checked value: rclpy would refuse an integer for a float parameter, for one
                self.declare_parameter(name, values[name], descriptor, ignore_override=True)
            except Exception as error:  # noqa: BLE001  rclpy's exception types differ between distros
                raise StartupError("parameter {}: {} (allowed: {})".format(
                    name, node_config.type_names(error), param.allowed() or param.kind.__name__))
        return values

    def _pipeline(self):
        from trt_infer.pipeline import Pipeline

        try:
            pipeline = Pipeline(self.spec, self.backend)
        except TrtInferError as error:
            raise StartupError("model {} does not match the spec {}: {}".format(
                self.backend.path, self.config.model_spec, error))
        pipeline.set_thresholds(**self.config.thresholds)
        return pipeline

    def _create_publishers(self, plan):
        from sensor_msgs.msg import Image

        self.Image = Image
        self.vision = self._vision_messages(required=plan.needs_vision_msgs)
        for publication in plan.publications:
            self._outputs[publication.role] = self.create_publisher(
                self._message_type(publication.message), publication.topic, QOS[publication.qos]())
        for counter in plan.counters:
            self.stats.count(counter, 0)
        self._publish_labels(plan)

    def _message_type(self, name):
        """The message class of a plan's "package/Type" name, from the installed vision_msgs layout."""
        package, type_name = name.split("/")
        if name == "vision_msgs/Classification":
            if self.vision.classification_type is None:
                raise StartupError("task classification: this vision_msgs has neither Classification (3.x and "
                                   "later) nor Classification2D (2.x); install ros-<distro>-vision-msgs")
            _LOG.info("classification published as vision_msgs/{}".format(self.vision.classification_type.__name__))
            return self.vision.classification_type
        if package == "vision_msgs":
            return getattr(self.vision.msg, type_name)
        return getattr(importlib.import_module(package + ".msg"), type_name)

    def _vision_messages(self, required):
        from trt_infer.ros.vision_msgs_compat import VisionMessages

        try:
            vision = VisionMessages()
        except ImportError as error:
            if required:
                raise StartupError("task {} publishes vision_msgs messages: {}".format(self.spec.task, error))
            return None
        _LOG.info("vision_msgs layout: {}".format(vision.layout))
        return vision

    def _publish_labels(self, plan):
        """The label table, latched: vision_msgs/LabelInfo where it exists, else a JSON list on `labels`."""
        from std_msgs.msg import Header

        info = None
        if self.vision is not None:
            info = self.vision.label_info(Header(frame_id=""), self.spec.labels, self.config.score_threshold)
        if info is None:
            publication = plan.labels_fallback
            info = self._message_type(publication.message)(data=json.dumps(self.spec.labels))
        else:
            publication = plan.labels
        self._outputs[publication.role] = self.create_publisher(type(info), publication.topic,
                                                                  QOS[publication.qos]())
        self._outputs[publication.role].publish(info)

    def _create_subscription(self, subscription):
        view = compressed_view if subscription.compressed else message_image
        self.input_topic = subscription.topic
        self.create_subscription(self._message_type(subscription.message), subscription.topic,
                                 lambda msg: self._receive(msg, view),
                                 image_qos(subscription.reliability, subscription.depth))

    # -- run time -------------------------------------------------------------------------
    def _receive(self, msg, view):
        self.stats.count("received")
        self.chain.put(Frame(msg, view))

    def _stage_chain(self):
        """The stage threads: view + pre-process / inference / post-process + publish on the CPU path;
        one stage doing all of it in turn when pre-processing runs on the GPU (its kernels and the
        inference then stay in stream order on one thread)."""
        if self.pipeline.processing == "gpu":
            self._buffers = None
            return StageChain([self._whole_frame], self._dropped, self._failed, name="trt_infer_worker")
        self._buffers = BufferPool(self.pipeline.new_input_buffer)
        # TensorRT's outputs are views of its buffers, which the next inference overwrites
        self._copy_outputs = self.backend.cuda_context is not None
        return StageChain([self._front, self._inference, self._back], self._dropped, self._failed,
                          name="trt_infer_stage")

    def _dropped(self, frame, stage):
        self._give_buffer(frame)
        self.stats.count("dropped")

    def _failed(self, error, frame, stage):
        self._give_buffer(frame)
        if self._shutting_down():
            return  # a publisher of a context a signal has just shut down
        self._log_once(skip_cause(error), "frame skipped: {}: {}".format(type(error).__name__, error))
        self.stats.count("skipped")

    def _give_buffer(self, frame):
        if frame.buffer is not None:
            self._buffers.give(frame.buffer)
            frame.buffer = None

    def _shutting_down(self):
        return self._closing or not self.context.ok()

    def _view(self, frame):
        """The frame's image and encoding, or None when it is skipped (logged once per cause)."""
        frame.started = time.monotonic()
        try:
            image, encoding = frame.view(frame.msg)
        except ImageError as error:
            self._log_once(skip_cause(error), str(error))
            self.stats.count("skipped")
            return None
        frame.image, frame.encoding = image, encoding
        return frame

    def _whole_frame(self, frame):
        if self._view(frame) is None:
            return None
        result = self.pipeline(frame.image, color_order=COLOR_ORDER[frame.encoding])
        self._publish_result(frame, result)
        return None

    def _front(self, frame):
        if self._view(frame) is None:
            return None
        start = time.perf_counter()
        frame.buffer = self._buffers.take(timeout=1.0)
        if frame.buffer is None:
            raise RuntimeError("no free input buffer within 1 s (is the inference stage stuck?)")
        frame.transform = self.pipeline.prepare(frame.image, COLOR_ORDER[frame.encoding], out=frame.buffer)
        frame.timings["preprocess"] = time.perf_counter() - start
        return frame

    def _inference(self, frame):
        start = time.perf_counter()
        outputs = self.pipeline.run(frame.buffer)
        if self._copy_outputs:
            outputs = dict((name, value.copy()) for name, value in outputs.items())
        frame.timings["inference"] = time.perf_counter() - start
        self._give_buffer(frame)
        frame.outputs = outputs
        return frame

    def _back(self, frame):
        start = time.perf_counter()
        result = self.pipeline.finish(frame.outputs, frame.transform)
        frame.outputs = None
        frame.timings["postprocess"] = time.perf_counter() - start
        frame.timings["total"] = sum(frame.timings.values())
        result.timings = frame.timings
        self._publish_result(frame, result)
        return None

    def _publish_result(self, frame, result):
        header = frame.msg.header
        if "detections" in self._outputs:
            self._publish_detections(header, result.detections)
        if "classification" in self._outputs:
            self._publish_classification(header, result.classes)
        if "mask" in self._outputs:
            self._publish_masks(header, result)
        if self.config.publish_overlay and self._outputs["overlay"].get_subscription_count() > 0:
            self._publish_overlay(header, frame.image, frame.encoding, result)
        now = time.monotonic()
        self.stats.processed(now, now - frame.started, self._latency(header), result.timings)

    def _latency(self, header):
        stamp = header.stamp
        if stamp.sec == 0 and stamp.nanosec == 0:
            return None  # an unstamped image: no latency to report
        now = self.get_clock().now().nanoseconds
        return (now - (stamp.sec * 1000000000 + stamp.nanosec)) / 1e9

    def _class_id(self, index):
        """A class index as vision_msgs carries it: decimal text, or the label (class_id_format)."""
        return self.spec.label(int(index)) if self.config.class_id_format == "label" else str(int(index))

    def _publish_detections(self, header, detections):
        class_ids = [self._class_id(index) for index in detections.class_ids]
        self._outputs["detections"].publish(self.vision.detection_array(header, detections.boxes, detections.scores,
                                                                      class_ids))

    def _publish_classification(self, header, classes):
        top = [(self._class_id(index), score) for index, score in classes]
        self._outputs["classification"].publish(self.vision.classification(header, top))

    def _publish_masks(self, header, result):
        mask = result.image_mask if self.config.mask_resolution == "image" else result.mask
        if mask is None:
            return
        self._outputs["mask"].publish(fill_image(self.Image(), mask, "mono8", header))
        if self._outputs["color"].get_subscription_count() > 0:
            from trt_infer.overlay import colour_mask

            colours = colour_mask(mask, self.spec.palette, color_order="RGB")
            self._outputs["color"].publish(fill_image(self.Image(), colours, "rgb8", header))
            self.stats.count("color_published")

    def _publish_overlay(self, header, image, encoding, result):
        from trt_infer.overlay import render
        from trt_infer.ros.image_msgs import to_bgr

        canvas = render(to_bgr(image, encoding), result, self.spec)
        self._outputs["overlay"].publish(fill_image(self.Image(), canvas, "bgr8", header))
        self.stats.count("overlay_published")

    def _log_once(self, cause, message):
        if cause not in self._logged_causes:
            self._logged_causes.add(cause)
            _LOG.warning(message + " (further frames like this are skipped silently; see the statistics topic "
                                   "for counts)")

    def _on_set_parameters(self, changed):
        from rcl_interfaces.msg import SetParametersResult

        updates, reason = node_config.runtime_changes(dict((parameter.name, parameter.value) for parameter in changed))
        if reason is not None:
            return SetParametersResult(successful=False, reason=reason)
        try:
            self.pipeline.set_thresholds(**node_config.threshold_values(updates))
        except SpecError as error:
            return SetParametersResult(successful=False, reason=str(error))
        self.config.update(updates)
        return SetParametersResult(successful=True)

    def _publish_statistics(self):
        if self._shutting_down():
            return
        try:
            self._send_statistics()
        except Exception:  # rclpy's RCLError: its module differs between distros
            if not self._shutting_down():
                raise  # a signal shut the context down between the check and the publish: nothing to report

    def _send_statistics(self):
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        status = diagnostic_status(self.stats.snapshot(), "{}: {}".format(self.get_fully_qualified_name(),
                                                                          self.spec.name),
                                   type(self.backend).__name__, DiagnosticStatus, KeyValue)
        self._outputs["statistics"].publish(status)
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self._outputs["diagnostics"].publish(array)

    # -- shutdown -------------------------------------------------------------------------
    def close(self):
        stop_forwarding(self._log_handler)
        self._closing = True
        if self.chain is not None:
            self.chain.close(timeout=5.0)
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


def _stop_on_sigterm():
    """Foxy and Galactic's rclpy handles SIGINT only: SIGTERM (systemd, docker stop, launch) then
    stops the node like Ctrl-C instead of killing it before its cleanup. Later rclpy handles both."""
    try:
        importlib.import_module("rclpy.signals")  # Humble and later
    except ImportError:
        signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))


def _ignore_signals():
    """A second Ctrl-C or SIGTERM during the cleanup must not cut it short (the context stack,
    the stage threads): the cleanup is bounded (the threads are joined with a timeout)."""
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, signal.SIG_IGN)


def _spin(node):
    try:
        rclpy.spin(node)
    except Exception:  # rclpy's RCLError: its module differs between distros
        if node.context.ok():
            raise
        # a signal shut the context down while the executor was between two waits: a normal stop


def main(args=None):
    """Entry point of `trt_infer_node`; returns the exit status (0 on SIGINT and SIGTERM, 1 when it
    cannot start)."""
    arguments = sys.argv if args is None else args
    logger = rclpy.logging.get_logger(NODE_NAME)
    problem = argument_problem(arguments)
    if problem is not None:
        logger.fatal(problem)
        return 1
    try:
        rclpy.init(args=arguments)
    except Exception as error:  # noqa: BLE001  rclpy's RCLError: its module differs between distros
        logger.fatal("cannot start: {}".format(rcl_error_line(error)))
        return 1
    _stop_on_sigterm()
    node = None
    status = 0
    try:
        node = InferenceNode(arguments=arguments)
        _spin(node)
    except TrtInferError as error:  # StartupError and every other error the runtime raises on purpose
        logger.fatal(str(error))
        status = 1
    except (KeyboardInterrupt, _external_shutdown()):
        pass
    finally:
        _ignore_signals()
        if node is not None:
            node.close()
        shutdown_quietly()
    return status


if __name__ == "__main__":
    sys.exit(main())
