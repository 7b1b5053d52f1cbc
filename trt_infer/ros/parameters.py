"""The node's parameters: one table read by the node, the launch-file test and the docs.

Each entry gives the name, the default (its Python type is the parameter's type), a description,
and a `schema.Field` holding the accepted values (kind, choices, numeric bounds). The threshold
parameters use the model spec's own Fields (spec.THRESHOLDS_SCHEMA), so the spec and the node
accept the same values. `runtime=True` parameters may be changed while the node runs
(`ros2 param set`); all others are read-only after start.

A default of FROM_SPEC means "the model spec's value": the node declares those parameters after
loading the spec, with the spec's value as the default, so a params file or `-p` overrides it.
No rclpy import here: the table is plain data that tests and the docs generator read.
"""
from trt_infer.schema import Field
from trt_infer.spec import THRESHOLDS_SCHEMA

FROM_SPEC = "(from the model spec)"

BACKENDS = ("auto", "tensorrt", "onnxruntime")
RELIABILITIES = ("best_effort", "reliable")
CLASS_ID_FORMATS = ("index", "label")
MASK_RESOLUTIONS = ("network", "image")


class Param(object):
    """One declared parameter: name, default, description, the Field of its accepted values."""

    def __init__(self, name, default, description, field=None, runtime=False, threshold_key=None):
        self.name = name
        self.default = default
        self.field = field if field is not None else Field(type(default))
        self.description = self.field.doc or description
        self.runtime = runtime
        self.threshold_key = threshold_key  # the spec's thresholds key this parameter overrides

    @property
    def kind(self):
        """bool, int, float or str."""
        return self.field.kind

    @property
    def choices(self):
        return self.field.choices

    def problem(self, value):
        """Why `value` is not acceptable for this parameter, or None when it is.

        The one check of every parameter value: at start, on `ros2 param set` and in the tests."""
        kind = self.kind
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            return "{} must be {}, got {!r}".format(self.name, kind.__name__, value)
        if self.choices is not None and value not in self.choices:
            return "{} must be one of {}, got {!r}".format(self.name, ", ".join(self.choices), value)
        outside = self.field.bounds_problem(value) if kind in (int, float) else None
        if outside:
            return "{} {}, got {!r}".format(self.name, outside, value)
        return None

    def allowed(self):
        """The accepted values in words, for descriptors, errors and docs."""
        if self.choices is not None:
            return "one of: " + ", ".join(self.choices)
        if self.field.minimum is not None and self.field.maximum is not None:
            return "{:g} .. {:g}".format(self.field.minimum, self.field.maximum)
        return self.field.bounds()


def _threshold(name, key, description):
    """A parameter overriding the spec's `thresholds.<key>`: its kind, bounds (and doc, where the
    spec's Field has one) are the spec's."""
    return Param(name, FROM_SPEC, description, field=THRESHOLDS_SCHEMA[key], runtime=True, threshold_key=key)


PARAMETERS = (
    Param("model_spec", "", "Model spec YAML (task, input, outputs, labels, thresholds). Required."),
    Param("engine_path", "", "TensorRT engine file; used by backend tensorrt (and auto when TensorRT "
          "imports). Checked against its .json sidecar."),
    Param("onnx_path", "", "ONNX model; used by backend onnxruntime, by auto when no engine is usable, "
          "and as the source when build_if_missing builds an engine."),
    Param("backend", "auto", "Inference backend; auto = the engine when TensorRT imports, else ONNX Runtime.",
          Field(str, choices=BACKENDS)),
    Param("build_if_missing", False, "Build the engine from onnx_path on start when no matching engine "
          "exists (takes minutes on a Nano); never rebuilds a matching one."),
    Param("cache_dir", "", "Folder for engines built by build_if_missing; empty = next to onnx_path."),
    _threshold("score_threshold", "score", "Minimum detection score."),
    _threshold("nms_iou_threshold", "nms_iou", "IoU above which overlapping boxes are suppressed."),
    _threshold("max_detections", "max_detections", "Most detections published per frame."),
    Param("input_reliability", "best_effort", "Reliability of the image subscription; best_effort "
          "connects to every camera, reliable only to reliable publishers.", Field(str, choices=RELIABILITIES)),
    Param("input_depth", 1, "History depth of the image subscription; 1 keeps only the newest frame.",
          Field(int, minimum=1, maximum=100)),
    Param("compressed_input", False, "Subscribe to image/compressed (sensor_msgs/CompressedImage, "
          "decoded with OpenCV) instead of image."),
    Param("class_id_format", "index", "Detection class_id: the class index as decimal text, or the label.",
          Field(str, choices=CLASS_ID_FORMATS), runtime=True),
    Param("mask_resolution", "network", "segmentation/mask size: the network's output (cheap) or the "
          "received image's (nearest-neighbour, letterbox undone).", Field(str, choices=MASK_RESOLUTIONS),
          runtime=True),
    Param("publish_overlay", True, "Publish the overlay image (drawn only while it has subscribers).",
          runtime=True),
    Param("statistics_period", 1.0, "Seconds between statistics / diagnostics messages.",
          Field(float, minimum=0.1, maximum=60.0)),
)

BY_NAME = dict((param.name, param) for param in PARAMETERS)
# parameter name -> key in the spec's thresholds (and in Pipeline.set_thresholds)
THRESHOLD_PARAMETERS = dict((param.name, param.threshold_key) for param in PARAMETERS if param.threshold_key)


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
