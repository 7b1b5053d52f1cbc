"""The node's start-up decisions as plain functions: which backend to load, which topics to create.

    choice = choose_backend(config, tensorrt_importable)   # what to load and why (logged)
    plan = publisher_plan(get_task(spec.task).publishes, config)   # trt_infer.tasks

No rclpy here: message types and QoS profiles are named by strings that the node resolves, so
the decisions are testable without DDS (and under Python 3.6).
"""
import collections
import logging
import os

from trt_infer.errors import StartupError
from trt_infer.tasks import PUBLISHES

_LOG = logging.getLogger(__name__)


# kind: "onnxruntime" or "tensorrt"; model: the file to load, or None when from_cache: the engine of
# onnx_path comes from the engine cache in cache_dir (built there when build_if_missing);
# reason: why, in words (logged).
BackendChoice = collections.namedtuple("BackendChoice", "kind model from_cache cache_dir reason")
# role: what the node publishes on it; message: "package/Type" ("vision_msgs/Classification" is the
# installed layout's classification message); qos: "result" or "latched" (trt_infer.ros.qos).
Publication = collections.namedtuple("Publication", "role topic message qos")
# the image subscription; compressed: decode sensor_msgs/CompressedImage
Subscription = collections.namedtuple("Subscription", "topic message reliability depth compressed")


class PublisherPlan(object):
    """The node's topics.

    publications: Publication list, created in order; labels: the label table, latched, as
    vision_msgs/LabelInfo where the installed vision_msgs has it, else labels_fallback (a JSON list
    in std_msgs/String); counters: statistics counters reported from the start (as 0);
    needs_vision_msgs: whether a missing vision_msgs is a start-up error; subscription: the input.
    """

    def __init__(self, publications, counters, needs_vision_msgs, subscription):
        self.publications = publications
        self.labels = Publication("labels", "label_info", "vision_msgs/LabelInfo", "latched")
        self.labels_fallback = Publication("labels", "labels", "std_msgs/String", "latched")
        self.counters = counters
        self.needs_vision_msgs = needs_vision_msgs
        self.subscription = subscription

    def topics(self):
        return [publication.topic for publication in self.publications]


def publisher_plan(publishes, config):
    """The topics, message types and QoS the node creates for a task that publishes `publishes`
    ("detections", "classification" or "mask"), and its image subscription from `config`."""
    if publishes not in PUBLISHES:
        raise ValueError("publishes {!r}; expected one of {}".format(publishes, ", ".join(PUBLISHES)))
    results = {
        "detections": [Publication("detections", "detections", "vision_msgs/Detection2DArray", "result")],
        "classification": [Publication("classification", "classification", "vision_msgs/Classification",
                                       "result")],
        "mask": [Publication("mask", "segmentation/mask", "sensor_msgs/Image", "result"),
                 Publication("color", "segmentation/color", "sensor_msgs/Image", "result")],
    }[publishes]
    always = [Publication("overlay", "overlay", "sensor_msgs/Image", "result"),
              Publication("statistics", "statistics", "diagnostic_msgs/DiagnosticStatus", "result"),
              Publication("diagnostics", "/diagnostics", "diagnostic_msgs/DiagnosticArray", "result")]
    counters = (["color_published"] if publishes == "mask" else []) + ["overlay_published"]
    if config.compressed_input:
        subscription = Subscription("image/compressed", "sensor_msgs/CompressedImage", config.input_reliability,
                                    config.input_depth, True)
    else:
        subscription = Subscription("image", "sensor_msgs/Image", config.input_reliability, config.input_depth,
                                    False)
    # segmentation needs vision_msgs only for LabelInfo; the other tasks publish vision_msgs results
    return PublisherPlan(results + always, counters, publishes != "mask", subscription)


def choose_backend(config, tensorrt_importable):
    """What to load for `config`'s backend, engine_path, onnx_path, build_if_missing and cache_dir,
    and why (logged; a warning when backend auto cannot use the engine it was given).

    tensorrt_importable: a function telling whether TensorRT imports here, called only when
    backend auto depends on it. StartupError naming the parameter and the fix when the
    parameters leave nothing to load."""
    requested, engine, onnx = config.backend, config.engine_path, config.onnx_path
    kind, why, fell_back = requested, "backend " + requested, False
    if requested == "auto":
        wants_engine = bool(engine or config.build_if_missing)
        if wants_engine and tensorrt_importable():
            kind, why = "tensorrt", "backend auto: TensorRT imports here"
        elif wants_engine:
            kind, fell_back = "onnxruntime", True
            why = "backend auto: TensorRT does not import here, so {} is not used".format(
                engine or "the engine cache")
        else:
            kind, why = "onnxruntime", "backend auto: no engine_path and build_if_missing is false"
    if kind == "onnxruntime":
        choice = BackendChoice(kind, _onnx_model(requested, onnx), False, None,
                               "{}; running {} on ONNX Runtime".format(why, onnx))
    elif engine and os.path.isfile(engine):
        choice = BackendChoice(kind, engine, False, None, "{}; loading the engine {}".format(why, engine))
    elif not onnx:
        raise StartupError("engine_path {!r} does not exist and no onnx_path is set to build it from; build the "
                           "engine with `convert build model.onnx -o {}` or set onnx_path and "
                           "build_if_missing: true".format(engine, engine or "model.engine"))
    else:
        _existing_onnx(onnx)
        cache_dir = config.cache_dir or os.path.dirname(os.path.abspath(onnx))
        missing = "engine_path {} does not exist, so ".format(engine) if engine else ""
        choice = BackendChoice(kind, None, True, cache_dir, "{}; {}the engine of {} comes from the engine cache in "
                               "{}{}".format(why, missing, onnx, cache_dir,
                                             " (built there if missing)" if config.build_if_missing else ""))
    (_LOG.warning if fell_back else _LOG.info)(choice.reason)
    return choice


def without_tensorrt(choice, onnx_path, reason):
    """The start-up error when `choice` (kind tensorrt) meets a machine where TensorRT does not
    import (`reason`): names the engine, and ONNX Runtime for development."""
    engine = ("the engine of {} from the engine cache in {}".format(onnx_path, choice.cache_dir) if choice.from_cache
              else "the engine {}".format(choice.model))
    return ("backend tensorrt: TensorRT does not import here ({}), so {} cannot be loaded; for development run the "
            "ONNX model on ONNX Runtime with -p backend:=onnxruntime{}, or install TensorRT's Python module (on a "
            "Jetson: apt package python3-libnvinfer)".format(
                reason, engine, "" if onnx_path else " -p onnx_path:=model.onnx"))


def _onnx_model(requested, onnx):
    if not onnx:
        raise StartupError("backend {} needs onnx_path (an .onnx file from `convert all`); set it in the "
                           "params file or with -p onnx_path:=model.onnx".format(requested))
    return _existing_onnx(onnx)


def _existing_onnx(onnx):
    if not os.path.isfile(onnx):
        raise StartupError("parameter onnx_path: model file not found: {} (convert the model first: `convert "
                           "all`, or fix the path in the params file or with -p onnx_path:=model.onnx)".format(onnx))
    return onnx
