"""One face over the two TensorRT Python API generations.

TensorRT 8.2 (JetPack 4, the Jetson Nano) addresses engine I/O by binding index
(`num_bindings`, `get_binding_*`, `set_binding_shape`, `execute_async_v2(bindings)`);
TensorRT >= 8.5 and 10 address it by tensor name (`num_io_tensors`, `get_tensor_*`,
`set_input_shape`, `set_tensor_address` + `execute_async_v3`). The builder differs too
(workspace, explicit-batch flag, progress monitor). Every branch here is chosen by what the
objects have (hasattr), never by version strings, so TensorRT-RTX and future releases take the
path their API supports.
"""
import importlib
import os

import numpy as np

from trt_infer.errors import MissingDependencyError

MODULE_ENV = "TRT_INFER_TENSORRT_MODULE"
DEFAULT_MODULE = "tensorrt"

# TensorRT DataType name -> numpy dtype. INT64 exists from TensorRT 9, UINT8 from 8.5.
_NUMPY_DTYPES = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "BOOL": np.bool_,
}


def import_tensorrt(module_name=None):
    """The TensorRT module: `module_name`, else $TRT_INFER_TENSORRT_MODULE, else `tensorrt`.

    The override lets the host run the builder through TensorRT-RTX (`tensorrt_rtx_bindings`),
    which has TensorRT 10's API. An already imported module object is returned as it is.
    """
    if module_name is not None and not isinstance(module_name, str):
        return module_name
    name = module_name or os.environ.get(MODULE_ENV) or DEFAULT_MODULE
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise MissingDependencyError(
            "cannot import the TensorRT Python module {!r} ({}). On a Jetson it comes with JetPack "
            "(apt package python3-libnvinfer); elsewhere install TensorRT's Python wheel, or set {} "
            "to another TensorRT-API module such as tensorrt_rtx_bindings.".format(name, error, MODULE_ENV))


def trt_version(trt):
    return str(getattr(trt, "__version__", "unknown"))


class EngineTensor(object):
    """One engine I/O tensor as both API generations see it."""

    def __init__(self, name, index, is_input, shape, dtype):
        self.name = name
        self.index = index          # binding index (8.2) / io-tensor index (>= 8.5)
        self.is_input = is_input
        self.shape = shape          # tuple; -1 marks a dynamic dimension
        self.dtype = dtype          # numpy dtype of the host buffer

    @property
    def is_dynamic(self):
        return any(dim < 0 for dim in self.shape)

    def __repr__(self):
        return "EngineTensor({!r}, {}, {}, {}, {})".format(
            self.name, self.index, "input" if self.is_input else "output", self.shape, np.dtype(self.dtype).name)


def uses_tensor_api(engine):
    """True for TensorRT >= 8.5 (I/O by tensor name), False for the 8.x binding API."""
    return hasattr(engine, "num_io_tensors")


def numpy_dtype(trt_dtype):
    """numpy dtype of a TensorRT DataType (by member name, so any generation's enum works)."""
    name = getattr(trt_dtype, "name", str(trt_dtype).split(".")[-1])
    if name not in _NUMPY_DTYPES:
        raise TypeError("TensorRT data type {} has no numpy equivalent supported by trt_infer "
                        "(supported: {})".format(name, ", ".join(sorted(_NUMPY_DTYPES))))
    return np.dtype(_NUMPY_DTYPES[name])


def host_dtype_for(requested, engine_dtype):
    """dtype the caller's data is converted to before the copy into an engine buffer.

    TensorRT 8.x turns INT64 graph I/O into INT32 bindings: int64 arrays are narrowed (values
    outside int32 would be clamped by the parser anyway); everything else must match exactly.
    """
    requested, engine_dtype = np.dtype(requested), np.dtype(engine_dtype)
    if requested == engine_dtype or (requested == np.int64 and engine_dtype == np.int32):
        return engine_dtype
    return None


def _dims(shape):
    return tuple(int(dim) for dim in shape)


def num_profiles(engine):
    """Number of optimization profiles in an engine (1 for a static one)."""
    return max(1, int(getattr(engine, "num_optimization_profiles", 1)))


def num_bindings(engine):
    """Length of the bindings list execute_async_v2 reads (every profile's bindings), None on the tensor API."""
    return None if uses_tensor_api(engine) else int(engine.num_bindings)


def io_tensors(engine, profile=0):
    """[EngineTensor] of an engine's inputs and outputs, in the engine's order, for optimization `profile`."""
    found = []
    if uses_tensor_api(engine):
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            is_input = engine.get_tensor_mode(name).name == "INPUT"
            found.append(EngineTensor(name, index, is_input, _dims(engine.get_tensor_shape(name)),
                                    numpy_dtype(engine.get_tensor_dtype(name))))
    else:
        # 8.x repeats the bindings once per optimization profile: binding k * n + i is tensor i of profile
        # k, named "<name> [profile k]" for k > 0 (NVIDIA/TensorRT include/NvInferRuntime.h, release/8.2:
        # getBindingName), so the names come from profile 0's block and the indices from profile k's.
        per_profile = engine.num_bindings // num_profiles(engine)
        for position in range(per_profile):
            index = profile * per_profile + position
            found.append(EngineTensor(engine.get_binding_name(position), index, bool(engine.binding_is_input(index)),
                                    _dims(engine.get_binding_shape(index)),
                                    numpy_dtype(engine.get_binding_dtype(index))))
    return found


def profile_shapes(engine, tensor, profile=0):
    """(min, opt, max) shapes of a dynamic input in an optimization profile (tensor from io_tensors(engine, profile)
    or from profile 0)."""
    if uses_tensor_api(engine):
        shapes = engine.get_tensor_profile_shape(tensor.name, profile)
    else:
        shapes = engine.get_profile_shape(profile, tensor.index)
    return tuple(_dims(shape) for shape in shapes)


def choose_profile(engine, shapes):
    """The first optimization profile whose min..max covers every shape in `shapes` ({input name: shape} of
    dynamic inputs), or None when none does."""
    for profile in range(num_profiles(engine)):
        tensors = dict((tensor.name, tensor) for tensor in io_tensors(engine, profile))
        if all(_covers(profile_shapes(engine, tensors[name], profile), shape) for name, shape in shapes.items()):
            return profile
    return None


def _covers(profile, shape):
    low, _, high = profile
    return len(shape) == len(low) and all(lo <= dim <= hi for dim, lo, hi in zip(_dims(shape), low, high))


def select_profile(context, profile, stream_handle):
    """Make `profile` the context's optimization profile: the first context of an engine gets 0 implicitly,
    any other has none until told (NvInferRuntime.h, release/8.2: createExecutionContext)."""
    if hasattr(context, "set_optimization_profile_async"):
        context.set_optimization_profile_async(profile, stream_handle)   # raises when TensorRT refuses
    elif profile:
        context.active_optimization_profile = profile


def set_input_shape(context, tensor, shape):
    shape = _dims(shape)
    if hasattr(context, "set_input_shape"):
        ok = context.set_input_shape(tensor.name, shape)
    else:
        ok = context.set_binding_shape(tensor.index, shape)
    if ok is False:
        raise ValueError("TensorRT refused shape {} for input {!r}: outside the engine's optimization "
                         "profile; rebuild with a profile that covers it (convert build --profile)".format(
                             shape, tensor.name))


def context_shape(context, tensor):
    """Shape of a tensor in an execution context once its input shapes are set."""
    if hasattr(context, "get_tensor_shape"):
        return _dims(context.get_tensor_shape(tensor.name))
    return _dims(context.get_binding_shape(tensor.index))


def execute_async(context, tensors, device_ptrs, stream_handle, bindings_count=None):
    """Enqueue one inference on `stream_handle`; device_ptrs maps tensor name -> device pointer.

    bindings_count: num_bindings(engine) on 8.x, where the list must cover every profile's bindings
    (execute_async_v2 hands the list's memory to enqueueV2 as it is: pyCore.cpp, release/8.2)."""
    if hasattr(context, "execute_async_v3"):
        for tensor in tensors:
            context.set_tensor_address(tensor.name, int(device_ptrs[tensor.name]))
        ok = context.execute_async_v3(stream_handle)
    else:
        bindings = [0] * max([bindings_count or 0, len(tensors)] + [tensor.index + 1 for tensor in tensors])
        for tensor in tensors:
            bindings[tensor.index] = int(device_ptrs[tensor.name])
        ok = context.execute_async_v2(bindings, stream_handle)
    if ok is False:
        raise RuntimeError("TensorRT failed to enqueue the inference (see the TensorRT log above)")


# --- builder side ---------------------------------------------------------------------------

def network_flags(trt, builder):
    """EXPLICIT_BATCH where implicit batch still exists (TensorRT < 10), else 0."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    if flag is None or not hasattr(builder, "max_batch_size"):
        return 0
    return 1 << int(flag)


def set_workspace(trt, config, nbytes):
    """Workspace limit: memory pools (8.4+) or max_workspace_size (8.2)."""
    if hasattr(config, "set_memory_pool_limit") and hasattr(trt, "MemoryPoolType"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(nbytes))
    else:
        config.max_workspace_size = int(nbytes)


def builder_flag(trt, name):
    """trt.BuilderFlag.<name>, or None where this TensorRT has no such flag (TensorRT-RTX)."""
    return getattr(trt.BuilderFlag, name, None)


def platform_has(builder, capability):
    """True/False for platform_has_fast_fp16/int8; None where the builder cannot tell."""
    value = getattr(builder, "platform_has_" + capability, None)
    return None if value is None else bool(value)


def has_progress_monitor(trt, config):
    return hasattr(trt, "IProgressMonitor") and hasattr(config, "progress_monitor")


def parser_errors(parser):
    """[dict(desc, node, node_name, op, code)] of an ONNX parser's errors, with what the version reports."""
    errors = []
    for index in range(parser.num_errors):
        error = parser.get_error(index)
        entry = {"desc": error.desc(), "node": None, "node_name": None, "op": None, "code": None}
        for key, method in (("node", "node"), ("node_name", "node_name"), ("op", "node_operator"),
                            ("code", "code")):
            if hasattr(error, method):
                entry[key] = getattr(error, method)()
        if entry["code"] is not None:
            entry["code"] = getattr(entry["code"], "name", str(entry["code"]))
        errors.append(entry)
    return errors
