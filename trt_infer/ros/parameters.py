"""The node's parameters: one table read by the node, the launch-file test and the docs.

Each entry gives the name, the default (its Python type is the parameter's type), a description,
and the accepted values (choices or a numeric range). `runtime=True` parameters may be changed
while the node runs (`ros2 param set`); all others are read-only after start.

A default of FROM_SPEC means "the model spec's value": the node declares those parameters after
loading the spec, with the spec's value as the default, so a params file or `-p` overrides it.
No rclpy import here: the table is plain data that tests and the docs generator read.
"""

FROM_SPEC = "(from the model spec)"

BACKENDS = ("auto", "tensorrt", "onnxruntime")
RELIABILITIES = ("best_effort", "reliable")
CLASS_ID_FORMATS = ("index", "label")
MASK_RESOLUTIONS = ("network", "image")


class Param(object):
    """One declared parameter; `kind` is bool, int, float or str."""

    def __init__(self, name, default, description, kind=None, choices=None, low=None, high=None,
                 runtime=False):
        self.name = name
        self.default = default
        self.kind = kind if kind is not None else type(default)
        self.description = description
        self.choices = choices
        self.low = low
        self.high = high
        self.runtime = runtime

    def problem(self, value):
        """Why `value` is not acceptable for this parameter, or None when it is."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            return "{} must be {}, got {!r}".format(self.name, self.kind.__name__, value)
        if self.choices is not None and value not in self.choices:
            return "{} must be one of {}, got {!r}".format(self.name, ", ".join(self.choices), value)
        if self.low is not None and value < self.low or self.high is not None and value > self.high:
            return "{} must be between {} and {}, got {!r}".format(self.name, self.low, self.high, value)
        return None

    def allowed(self):
        """The accepted values in words, for descriptors and docs."""
        if self.choices is not None:
            return "one of: " + ", ".join(self.choices)
        if self.low is not None:
            return "{} .. {}".format(self.low, self.high)
        return ""


PARAMETERS = (
    Param("model_spec", "", "Model spec YAML (task, input, outputs, labels, thresholds). Required."),
    Param("engine_path", "", "TensorRT engine file; used by backend tensorrt (and auto when TensorRT "
          "imports). Checked against its .json sidecar."),
    Param("onnx_path", "", "ONNX model; used by backend onnxruntime, by auto when no engine is usable, "
          "and as the source when build_if_missing builds an engine."),
    Param("backend", "auto", "Inference backend; auto = the engine when TensorRT imports, else ONNX Runtime.",
          choices=BACKENDS),
    Param("build_if_missing", False, "Build the engine from onnx_path on start when no matching engine "
          "exists (takes minutes on a Nano); never rebuilds a matching one."),
    Param("cache_dir", "", "Folder for engines built by build_if_missing; empty = next to onnx_path."),
    Param("score_threshold", FROM_SPEC, "Minimum detection score.", kind=float, low=0.0, high=1.0,
          runtime=True),
    Param("nms_iou_threshold", FROM_SPEC, "IoU above which overlapping boxes are suppressed.", kind=float,
          low=0.0, high=1.0, runtime=True),
    Param("max_detections", FROM_SPEC, "Most detections published per frame.", kind=int, low=1, high=10000,
          runtime=True),
    Param("input_reliability", "best_effort", "Reliability of the image subscription; best_effort "
          "connects to every camera, reliable only to reliable publishers.", choices=RELIABILITIES),
    Param("input_depth", 1, "History depth of the image subscription; 1 keeps only the newest frame.",
          low=1, high=100),
    Param("compressed_input", False, "Subscribe to image/compressed (sensor_msgs/CompressedImage, "
          "decoded with OpenCV) instead of image."),
    Param("class_id_format", "index", "Detection class_id: the class index as decimal text, or the label.",
          choices=CLASS_ID_FORMATS, runtime=True),
    Param("mask_resolution", "network", "segmentation/mask size: the network's output (cheap) or the "
          "received image's (nearest-neighbour, letterbox undone).", choices=MASK_RESOLUTIONS,
          runtime=True),
    Param("publish_overlay", True, "Publish the overlay image (drawn only while it has subscribers).",
          runtime=True),
    Param("statistics_period", 1.0, "Seconds between statistics / diagnostics messages.", low=0.1,
          high=60.0),
)

BY_NAME = dict((param.name, param) for param in PARAMETERS)
THRESHOLD_PARAMETERS = {"score_threshold": "score", "nms_iou_threshold": "nms_iou",
                        "max_detections": "max_detections"}


def declared_names():
    return [param.name for param in PARAMETERS]


def markdown_table():
    """The parameter reference as a Markdown table (used by the docs)."""
    rows = ["| parameter | type | default | allowed | changeable at run time | description |",
            "|---|---|---|---|---|---|"]
    for param in PARAMETERS:
        rows.append("| `{}` | {} | {} | {} | {} | {} |".format(
            param.name, param.kind.__name__, param.default if param.default != "" else "(empty)",
            param.allowed(), "yes" if param.runtime else "no", param.description))
    return "\n".join(rows)
