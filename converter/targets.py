"""TensorRT target profiles as data: what each deployment's ONNX parser and builder accept.

The facts come from onnx-tensorrt's operator support tables and importer sources per release
(summarised in the project's reference notes). `check` turns them into findings, the fix passes
read them to decide what to repair, and `all` reads the workspace default for its build step.
Stays light and Python 3.6 compatible: the `convert` parser imports it (its `--target` and `--nms`
choices), on the device too.
"""
import logging
import re

from converter.errors import UnknownTarget

logger = logging.getLogger(__name__)

# What `convert fix --nms` does with a graph's NMS: keep it, strip it for the runtime's NMS, or
# replace it by the target's plugin (Target.nms_plugin).
NMS_MODES = ("keep", "runtime", "plugin")

# ONNX dtype names as `onnx.TensorProto.DataType.Name` spells them.
OK, CAST_DOWN, REJECTED = "ok", "cast-down", "rejected"
_NUMPY_NAMES = {"FLOAT": "float32", "FLOAT16": "float16", "DOUBLE": "float64", "INT8": "int8", "UINT8": "uint8",
                "INT32": "int32", "INT64": "int64", "BOOL": "bool"}


class Target(object):
    """One deployment's rules. Attributes are plain data; see PROFILES for the values."""

    def __init__(self, name, description, tensorrt, sm, max_opset, min_opset, precisions,
                 no_int8_reason, default_workspace_mib, io_dtypes, cast_rejected_dtypes,
                 unsupported_ops, experimental_ops, initializer_inputs, resize_modes,
                 resize_rejected_coordinate_modes, reshape_allowzero_required,
                 static_shapes_required, plugins, nms_plugin, export_opset):
        self.name = name
        self.description = description
        self.tensorrt = tensorrt                    # (oldest, newest) "major.minor" covered
        self.sm = sm                                # compute capability, None when any GPU
        self.max_opset = max_opset
        self.min_opset = min_opset
        self.export_opset = export_opset            # what `export` asks the exporters for
        self.precisions = precisions
        self.no_int8_reason = no_int8_reason        # None where INT8 builds work
        self.default_workspace_mib = default_workspace_mib
        self.io_dtypes = io_dtypes                  # dtype name -> OK / CAST_DOWN / REJECTED
        self.cast_rejected_dtypes = cast_rejected_dtypes
        self.unsupported_ops = unsupported_ops      # op_type -> what to change in the model
        self.experimental_ops = experimental_ops    # op_type -> why it is fragile
        self.initializer_inputs = initializer_inputs  # op_type -> {input index: input name}
        self.resize_modes = resize_modes
        self.resize_rejected_coordinate_modes = resize_rejected_coordinate_modes
        self.reshape_allowzero_required = reshape_allowzero_required
        self.static_shapes_required = static_shapes_required
        self.plugins = plugins                      # plugin op_type -> note ("" when plain)
        self.nms_plugin = nms_plugin                # what `fix --nms efficient_nms` inserts here

    # Names the fix passes read (converter/fixes): numpy dtype names accepted as graph inputs
    # without a cast, and the two shape rules phrased the way the passes ask.
    @property
    def input_dtypes(self):
        return tuple(_NUMPY_NAMES[name] for name, rule in sorted(self.io_dtypes.items())
                     if rule == OK and name in _NUMPY_NAMES)

    @property
    def reshape_allowzero_fixed(self):
        return not self.reshape_allowzero_required

    @property
    def static_shapes(self):
        return self.static_shapes_required

    @property
    def supports_int8(self):
        return self.no_int8_reason is None

    def dtype_rule(self, dtype_name):
        """OK / CAST_DOWN / REJECTED for a graph input or output dtype; unknown dtypes are rejected."""
        return self.io_dtypes.get(dtype_name, REJECTED)

    def __repr__(self):
        return "Target({!r})".format(self.name)


# Advice for ops no fix pass rewrites: what to change where the model is written.
_ADVICE_NONZERO = "avoid boolean-mask indexing / tf.where with one argument (NonZero); use masks and arithmetic"
_ADVICE_SEQUENCE = ("avoid ops that build ONNX sequences (tensor repeat_interleave, torch.split with a "
                    "tensor, tf.unstack over a dynamic axis); use static splits")
_UNSUPPORTED_TRT82 = {
    "NonZero": _ADVICE_NONZERO,
    "Mod": "replace x % y with x - floor(x / y) * y",
    "OneHot": "compare against a constant arange (Equal) instead of one_hot",
    "IsInf": "compare against +/-inf constants with Equal, or drop the check",
    "Xor": "use (a Or b) And Not(a And b)",
    "Shrink": "express it with Abs/Sub/Where",
    "RoiAlign": "crop on the host or implement it as a plugin",
    "Hardmax": "use ArgMax followed by a comparison with a constant arange",
    "Compress": "use Gather with static indices or masking arithmetic",
    "Unique": "remove it from the exported graph (do it in post-processing)",
    "ConvInteger": "export the float model (TensorRT quantizes through calibration or Q/DQ)",
    "MatMulInteger": "export the float model (TensorRT quantizes through calibration or Q/DQ)",
    "MaxUnpool": "use Resize (nearest) or ConvTranspose instead",
    "GridSample": ("TensorRT 8.2 cannot sample grids (imported from 8.5): warp in pre-processing with "
                   "OpenCV, or target trt8.6/trt10"),
}
for _op in ("SequenceAt", "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert",
            "SequenceLength", "SequenceMap", "SplitToSequence", "ConcatFromSequence"):
    _UNSUPPORTED_TRT82[_op] = _ADVICE_SEQUENCE
for _op in ("QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearSigmoid",
            "QLinearLeakyRelu", "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearConcat"):
    _UNSUPPORTED_TRT82[_op] = ("export the float model; quantized TFLite/ONNX ops are not imported "
                               "(TensorRT quantizes through calibration or QuantizeLinear/DequantizeLinear)")

# What TensorRT's ONNX importer added after 8.2, per onnx/onnx-tensorrt docs/operators.md at the GA tags
# release/8.5-GA, 8.6-GA and 10.0-GA. The trt8.6 profile covers 8.5 too: an op only 8.6 imports stays a finding.
_ADDED_BY_TRT85 = ("NonZero", "RoiAlign", "GridSample", "Shrink", "Xor")
_ADDED_BY_TRT86 = ("IsInf", "Mod", "OneHot")
_ADDED_BY_TRT10 = ("Hardmax",)
_ONLY_FROM_TRT86 = " (TensorRT 8.6 imports it, 8.5 does not: this profile covers both)"
_UNSUPPORTED_TRT86 = dict((op, why + (_ONLY_FROM_TRT86 if op in _ADDED_BY_TRT86 else ""))
                          for op, why in _UNSUPPORTED_TRT82.items() if op not in _ADDED_BY_TRT85)
_UNSUPPORTED_TRT10 = dict((op, why) for op, why in _UNSUPPORTED_TRT82.items()
                          if op not in _ADDED_BY_TRT85 + _ADDED_BY_TRT86 + _ADDED_BY_TRT10)

_CONSTANT_INPUTS_TRT82 = {
    "Conv": {1: "weights", 2: "bias"},
    "ConvTranspose": {1: "weights", 2: "bias"},
    "Resize": {2: "scales"},
    "TopK": {1: "K"},
    "Slice": {3: "axes"},
    "Squeeze": {1: "axes"},
    "Unsqueeze": {1: "axes"},
    "Clip": {1: "min", 2: "max"},
    "CumSum": {1: "axis"},
}
_REDUCE_OPS = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")
_CONSTANT_INPUTS_TRT10 = dict((op, {1: "axes"}) for op in _REDUCE_OPS)
_CONSTANT_INPUTS_TRT10.update({"Resize": {2: "scales"}, "TopK": {1: "K"}})

_DTYPES_TRT82 = {"FLOAT": OK, "FLOAT16": OK, "INT8": OK, "BOOL": OK, "INT32": OK,
                 "INT64": CAST_DOWN, "DOUBLE": CAST_DOWN, "UINT8": REJECTED}
_DTYPES_TRT86 = dict(_DTYPES_TRT82, UINT8=OK)
_DTYPES_TRT10 = dict(_DTYPES_TRT86, INT64=OK, BFLOAT16=OK)

_NMS_PLUGINS = {
    "EfficientNMS_TRT": "",
    "BatchedNMS_TRT": "",
    "BatchedNMSDynamic_TRT": "",
}

PROFILES = {
    "jetson-nano": Target(
        name="jetson-nano",
        description="Jetson Nano, JetPack 4.6.x: TensorRT 8.0/8.2, Maxwell SM 5.3, 4 GB shared memory",
        tensorrt=("8.0", "8.2"), sm="5.3", max_opset=13, min_opset=7, export_opset=13,
        precisions=("fp32", "fp16"),
        no_int8_reason="the Nano's Maxwell GPU (SM 5.3) has no INT8 support; build FP16 instead",
        default_workspace_mib=256,
        io_dtypes=_DTYPES_TRT82, cast_rejected_dtypes=("UINT8",),
        unsupported_ops=_UNSUPPORTED_TRT82,
        experimental_ops={"NonMaxSuppression": "imported through an experimental plugin with a fixed-size "
                                               "output and initializer thresholds"},
        initializer_inputs=_CONSTANT_INPUTS_TRT82,
        resize_modes=("nearest", "linear"), resize_rejected_coordinate_modes=("tf_crop_and_resize",),
        reshape_allowzero_required=True, static_shapes_required=True,
        plugins=_NMS_PLUGINS, nms_plugin="EfficientNMS_TRT"),
    "trt8.6": Target(
        name="trt8.6",
        description="JetPack 5.1 (Xavier / Orin): TensorRT 8.5/8.6",
        tensorrt=("8.5", "8.6"), sm=None, max_opset=17, min_opset=7, export_opset=17,
        precisions=("fp32", "fp16", "int8"), no_int8_reason=None, default_workspace_mib=1024,
        io_dtypes=_DTYPES_TRT86, cast_rejected_dtypes=(),
        unsupported_ops=_UNSUPPORTED_TRT86, experimental_ops={},
        initializer_inputs=_CONSTANT_INPUTS_TRT82,
        resize_modes=("nearest", "linear", "cubic"), resize_rejected_coordinate_modes=("tf_crop_and_resize",),
        reshape_allowzero_required=False, static_shapes_required=False,
        plugins=_NMS_PLUGINS, nms_plugin="EfficientNMS_TRT"),
    "trt10": Target(
        name="trt10",
        description="JetPack 6 (Orin) and desktop GPUs: TensorRT 10.x",
        tensorrt=("10.0", "10.99"), sm=None, max_opset=20, min_opset=9, export_opset=17,
        precisions=("fp32", "fp16", "int8"), no_int8_reason=None, default_workspace_mib=2048,
        io_dtypes=_DTYPES_TRT10, cast_rejected_dtypes=(),
        unsupported_ops=_UNSUPPORTED_TRT10, experimental_ops={},
        initializer_inputs=_CONSTANT_INPUTS_TRT10,
        resize_modes=("nearest", "linear", "cubic"), resize_rejected_coordinate_modes=("tf_crop_and_resize",),
        reshape_allowzero_required=False, static_shapes_required=False,
        plugins={"EfficientNMS_TRT": "deprecated since TensorRT 10.12",
                 "BatchedNMS_TRT": "deprecated since TensorRT 10.0, removed in 11",
                 "BatchedNMSDynamic_TRT": "deprecated since TensorRT 10.0, removed in 11"},
        nms_plugin="EfficientNMS_TRT"),
}

HOST_DEFAULT = "jetson-nano"


def get_target(name):
    """The profile called `name`; an UnknownTarget error lists the known names."""
    if isinstance(name, Target):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownTarget("unknown target {!r}; choose one of: {}".format(name, ", ".join(sorted(PROFILES))))


def target_for_tensorrt_version(version):
    """The profile whose TensorRT range covers `version` ("8.2.1.8", "10.3.0"), else the nearest older."""
    match = re.match(r"(\d+)\.(\d+)", str(version))
    if not match:
        raise UnknownTarget("cannot read a TensorRT version from {!r}".format(version))
    found = (int(match.group(1)), int(match.group(2)))
    best = None
    for target in sorted(PROFILES.values(), key=lambda t: _major_minor(t.tensorrt[0])):
        if _major_minor(target.tensorrt[0]) <= found:
            best = target
    if best is None:
        raise UnknownTarget("TensorRT {} is older than every profile ({})".format(
            version, ", ".join(sorted(PROFILES))))
    return best


def _major_minor(text):
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def installed_tensorrt_version():
    """The version of the `tensorrt` module, or None where it does not import (a host)."""
    try:
        import tensorrt
    except ImportError:
        return None
    return getattr(tensorrt, "__version__", None)


def default_target():
    """The detected TensorRT's profile on a device; jetson-nano on a host. Logs which and why."""
    version = installed_tensorrt_version()
    if version is not None:
        target = target_for_tensorrt_version(version)
        logger.info("target %s (detected TensorRT %s)", target.name, version)
        return target
    logger.info("no TensorRT installed here: using target %s (choose with --target %s)",
                HOST_DEFAULT, "|".join(sorted(PROFILES)))
    return PROFILES[HOST_DEFAULT]
