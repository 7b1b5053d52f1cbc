"""Model specs: one YAML file per model, validated into a `ModelSpec`.

The spec is the single description of a model that the pipeline, the ROS node, the demo, the
benchmark and the converter's metadata all read (see docs/internals.md for the layout). Every
section is checked with `trt_infer.schema`; the task's own section is checked with the `SCHEMA`
of its post-processing module (trt_infer.tasks), imported only when a spec of that task is loaded.
"""
import hashlib
import json
import os

import numpy as np

from trt_infer.geometry import RESIZE_MODES
from trt_infer.schema import Field, SpecError, validate
from trt_infer.tasks import get_task, task_names

LAYOUTS = ("NCHW", "NHWC")
COLOR_ORDERS = ("RGB", "BGR")
INPUT_DTYPES = ("float32", "float16")
TOP_LEVEL = "(top level)"


def _non_zero_items(values):
    return "std values must not be 0" if any(value == 0 for value in values) else None


def _channel_triple(default, doc, check=None):
    return Field(list, default=default, item=Field(float), length=3, check=check,
                 check_doc="no value may be 0" if check is not None else "", doc=doc)


INPUT_SCHEMA = {
    "name": Field(str, doc="input tensor name in the ONNX graph / engine"),
    "width": Field(int, minimum=1, doc="network input width in pixels"),
    "height": Field(int, minimum=1, doc="network input height in pixels"),
    "layout": Field(str, default="NCHW", choices=LAYOUTS, doc="tensor layout of the input"),
    "color_order": Field(str, default="RGB", choices=COLOR_ORDERS, doc="the network's channel order"),
    "scale": Field(float, default=1.0, doc="pixel values (0..255) are multiplied by this first"),
    "mean": _channel_triple([0.0, 0.0, 0.0],
                            doc="per-channel value subtracted after `scale`, in the network's channel order"),
    "std": _channel_triple([1.0, 1.0, 1.0], check=_non_zero_items, doc="per-channel divisor applied after `mean`"),
    "resize": Field(str, default="stretch", choices=RESIZE_MODES,
                    doc="stretch: resize to the input size; letterbox: keep the aspect ratio and pad"),
    "pad_value": Field(float, default=0.0, minimum=0, maximum=255,
                       doc="letterbox border pixel value, before normalisation"),
    "dtype": Field(str, default="float32", choices=INPUT_DTYPES, doc="element type of the input tensor"),
}

THRESHOLDS_SCHEMA = {
    "score": Field(float, default=0.5, minimum=0, maximum=1, doc="minimum score of a detection"),
    "nms_iou": Field(float, default=0.45, minimum=0, maximum=1,
                     doc="IoU above which NMS suppresses the lower-scoring box"),
    "max_detections": Field(int, default=100, minimum=1, maximum=10000, doc="most detections per frame"),
}


def _labels_problem(value):
    if isinstance(value, str):
        return None
    if isinstance(value, list) and all(isinstance(label, str) for label in value):
        return None
    return "expected a file name (relative to the spec file) or a list of strings"


_COLOUR = Field(list, item=Field(int, minimum=0, maximum=255), length=3)

# The keys every spec has; top_schema() adds `task` and one section per task of the table.
COMMON_SCHEMA = {
    "name": Field(str, doc="model name, used in logs and the node's diagnostics"),
    "description": Field(str, default="", doc="free text for people"),
    "input": Field(dict, schema=INPUT_SCHEMA, doc="the network input, see [input](#input)"),
    "outputs": Field(dict, doc="role -> output tensor name; roles depend on the task"),
    "labels": Field(object, default=None, nullable=True, check=_labels_problem,
                    check_doc="a file name or a list of strings",
                    doc="label file (one label per line, path relative to the spec file) or an inline list; "
                        "index = class id"),
    "palette": Field(list, default=None, nullable=True, item=_COLOUR,
                     doc="one [R, G, B] colour per class for colour masks and overlays; null: a built-in palette"),
    "thresholds": Field(dict, default={}, schema=THRESHOLDS_SCHEMA,
                        doc="detection thresholds, see [thresholds](#thresholds); the node's parameters "
                            "override them"),
}


def top_schema():
    """The top-level Fields for the tasks of the table now: the common keys, `task`, one section per task."""
    names = task_names()
    schema = {}
    for key, field in COMMON_SCHEMA.items():
        schema[key] = field
        if key == "name":
            schema["task"] = Field(str, choices=names, doc="which post-processing runs (see the task sections below)")
    for name in names:
        # validated against the task's own SCHEMA once `task` says which section applies
        schema[name] = Field(dict, default=None, nullable=True, doc="settings of task `{}`".format(name))
    return schema


class InputSpec(object):
    """The network input: tensor name, size, layout, colour order, normalisation, resize, dtype."""

    def __init__(self, fields):
        self.name = fields["name"]
        self.width = fields["width"]
        self.height = fields["height"]
        self.layout = fields["layout"]
        self.color_order = fields["color_order"]
        self.scale = fields["scale"]
        self.mean = tuple(fields["mean"])
        self.std = tuple(fields["std"])
        self.resize = fields["resize"]
        self.pad_value = fields["pad_value"]
        self.dtype = fields["dtype"]

    @property
    def shape(self):
        """The batch-1 tensor shape this input expects."""
        if self.layout == "NCHW":
            return (1, 3, self.height, self.width)
        return (1, self.height, self.width, 3)

    @property
    def numpy_dtype(self):
        return np.dtype(self.dtype)

    def describe(self):
        """'128x128 NHWC float32', used in mismatch messages."""
        return "{}x{} {} {}".format(self.width, self.height, self.layout, self.dtype)


class Thresholds(object):
    """Score / NMS IoU / max-detections thresholds, changeable at run time and always valid.

    Read them as attributes (`thresholds.score`) or keys (`thresholds["score"]`); change them with
    `update(score=...)`, which validates the new values and changes nothing if any is invalid.
    """

    def __init__(self, values=None):
        self._values = validate(values or {}, THRESHOLDS_SCHEMA, "thresholds")

    def update(self, **changes):
        changes = {key: value for key, value in changes.items() if value is not None}
        merged = dict(self._values)
        merged.update(changes)
        self._values = validate(merged, THRESHOLDS_SCHEMA, "thresholds")

    def __getattr__(self, key):
        values = self.__dict__.get("_values", {})
        if key in values:
            return values[key]
        raise AttributeError("thresholds have no {!r}; known: {}".format(key, ", ".join(sorted(values))))

    def __getitem__(self, key):
        return self._values[key]

    def get(self, key, default=None):
        return self._values.get(key, default)

    def as_dict(self):
        return dict(self._values)

    def __repr__(self):
        return "Thresholds({})".format(", ".join("{}={!r}".format(k, v) for k, v in sorted(self._values.items())))


class ModelSpec(object):
    """A validated model spec.

    Attributes: name, task, description, input (InputSpec), outputs (role -> tensor name),
    labels (list of str), palette ((C, 3) uint8 array or None), thresholds (Thresholds),
    section (the task's validated settings, a read-only trt_infer.schema.Section read by
    attribute: `spec.section.nms.top_k`), path (the YAML file or None) and digest (sha256 of the
    normalised spec, stored in the engine sidecar).
    """

    def __init__(self, data, path=None):
        """`data`: the parsed YAML mapping; label files are resolved relative to `path`'s folder."""
        try:
            schema = top_schema()
            if not isinstance(data, dict):
                raise SpecError(TOP_LEVEL, "got {!r}; expected a mapping with keys {}".format(
                    data, ", ".join(sorted(schema))))
            fields = dict(validate(data, schema, ""))
            task = get_task(fields["task"])
            fields["outputs"] = _validate_outputs(fields["outputs"], task.name, task.outputs)
            for other in task_names():
                if other != task.name and fields[other] is not None:
                    raise SpecError(other, "section for task {!r}, but this spec's task is {!r}; remove it "
                                           "or change `task`".format(other, task.name))
            fields[task.name] = validate(fields[task.name], task.schema, task.name)
            labels = _load_labels(fields["labels"], path)
        except SpecError as error:
            raise _with_source(error, path)
        self.path = path
        self.name = fields["name"]
        self.task = task.name
        self.description = fields["description"]
        self.input = InputSpec(fields["input"])
        self.outputs = fields["outputs"]
        self.labels = labels
        self.palette = None if fields["palette"] is None else np.array(fields["palette"], dtype=np.uint8).reshape(-1, 3)
        self.thresholds = Thresholds(fields["thresholds"])
        self.section = fields[task.name]
        # only this spec's own task section: a task added to the table must not change other specs' digests
        normalised = dict((key, value) for key, value in fields.items()
                          if key not in task_names() or key == task.name)
        normalised["labels"] = labels
        normalised.pop("description")
        self.digest = hashlib.sha256(json.dumps(normalised, sort_keys=True, default=str).encode("utf-8")).hexdigest()

    def label(self, class_id):
        """The label of a class index, or the index as text when there is no such label."""
        if 0 <= class_id < len(self.labels) and self.labels[class_id]:
            return self.labels[class_id]
        return str(class_id)

    def __repr__(self):
        return "ModelSpec({!r}, task={!r}, input={})".format(self.name, self.task, self.input.describe())


def load_spec(path):
    """Read and validate a model spec YAML file; errors are SpecError naming the file and key path."""
    import yaml

    try:
        data = yaml.safe_load(_read_utf8(path, "model spec"))
    except (IOError, OSError) as error:
        raise SpecError(TOP_LEVEL, "cannot read the model spec: {}".format(error), source=path)
    except yaml.YAMLError as error:
        raise SpecError(TOP_LEVEL, "not valid YAML: {}".format(error), source=path)
    except ValueError as error:  # not UTF-8
        raise SpecError(TOP_LEVEL, str(error), source=path)
    return ModelSpec(data, path=path)


def _read_utf8(path, what):
    """The text of a UTF-8 file (a leading BOM dropped), whatever the locale (open() decodes with the
    locale's encoding on Python 3.6). ValueError saying what the file looks like and how to convert
    it when it is not UTF-8; IOError/OSError when it cannot be read."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            looks, source = "UTF-16 (it starts with a UTF-16 byte order mark)", "utf-16"
        elif b"\x00" in data[:4096]:
            raise ValueError("not a text file (it holds NUL bytes: binary, or UTF-16 without a byte order "
                             "mark); give the {} (UTF-8 text) here".format(what))
        else:
            looks, source = "not UTF-8 (byte 0x{:02x} at offset {}: Latin-1 or Windows-1252 text?)".format(
                data[error.start], error.start), "latin1"
        raise ValueError("the {} must be UTF-8 text but is {}; convert it: `iconv -f {} -t utf-8 {} > new{}`".format(
            what, looks, source, os.path.basename(path), os.path.splitext(path)[1]))


def _validate_outputs(outputs, task, roles):
    for role in sorted(outputs):
        if role not in roles:
            raise SpecError("outputs." + str(role), "unknown output role for task {!r}; roles: {}".format(
                task, ", ".join(roles)))
    for role in roles:
        if role not in outputs:
            raise SpecError("outputs." + role, "missing; task {!r} needs the tensor names of: {}".format(
                task, ", ".join(roles)))
        if not isinstance(outputs[role], str):
            raise SpecError("outputs." + role, "got {!r}; expected an output tensor name (a string)".format(
                outputs[role]))
    return dict(outputs)


def _load_labels(labels, spec_path):
    if labels is None:
        return []
    if isinstance(labels, list):
        return list(labels)
    base = os.path.dirname(os.path.abspath(spec_path)) if spec_path else os.getcwd()
    label_path = os.path.normpath(os.path.join(base, labels))
    try:
        lines = [line.strip() for line in _read_utf8(label_path, "labels file").splitlines()]
    except (IOError, OSError) as error:
        raise SpecError("labels", "cannot read labels file {}: {} (paths are relative to the spec file)".format(
            label_path, error.strerror or error))
    except ValueError as error:  # not UTF-8
        raise SpecError("labels", "labels file {}: {}".format(label_path, error))
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _with_source(error, source):
    """The same SpecError, now also naming the spec file."""
    if source is None or error.source is not None:
        return error
    message = str(error)
    prefix = "{}: ".format(error.path)
    if error.path and message.startswith(prefix):
        message = message[len(prefix):]
    return SpecError(error.path, message, source=source)
