"""ONNX Runtime backend: CPU by default, CUDA / TensorRT execution providers when asked for and present."""
import numpy as np

from trt_infer.backends import Backend, TensorInfo
from trt_infer.errors import MissingDependencyError, ModelLoadError, SettingError

DEFAULT_PROVIDERS = ("CPUExecutionProvider",)

# ONNX Runtime's type strings -> numpy dtypes
_ORT_TYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int16)": np.int16,
    "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_,
}


class OnnxRuntimeBackend(Backend):
    """An onnxruntime.InferenceSession behind the Backend interface.

    providers: execution providers in order of preference, e.g. ["CUDAExecutionProvider",
      "CPUExecutionProvider"]; ones this onnxruntime build lacks are an error naming those it has.
    input_shapes: {input name: shape} for inputs whose shape the model leaves open (a dynamic
      batch dimension alone defaults to 1).
    threads: intra-op thread count (0: ONNX Runtime's default).
    """

    def __init__(self, path, providers=DEFAULT_PROVIDERS, input_shapes=None, threads=0):
        try:
            import onnxruntime
        except ImportError as error:
            raise MissingDependencyError("the ONNX Runtime backend needs onnxruntime ({}): pip install "
                                         "onnxruntime, or use a TensorRT engine".format(error))

        self.path = path
        available = onnxruntime.get_available_providers()
        missing = [name for name in providers if name not in available]
        if missing:
            raise SettingError("ONNX Runtime execution provider(s) {} not available in this onnxruntime build; "
                             "available: {}".format(", ".join(missing), ", ".join(available)))
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(path, sess_options=options, providers=list(providers))
        except Exception as error:  # noqa: BLE001  onnxruntime raises its own exception types, varying by version
            raise ModelLoadError("cannot load {} with ONNX Runtime: {} (a truncated or corrupt file, or an op "
                             "ONNX Runtime lacks: regenerate it with `convert all`)".format(path, _first_line(error)))
        self.providers = self._session.get_providers()
        self.inputs = [_tensor_info(arg) for arg in self._session.get_inputs()]
        self.outputs = [_tensor_info(arg) for arg in self._session.get_outputs()]
        self._output_names = [info.name for info in self.outputs]
        self._buffers = {}
        for info in self.inputs:
            shape = _concrete_shape(info, (input_shapes or {}).get(info.name), path)
            if shape is not None:
                self._buffers[info.name] = np.zeros(shape, dtype=info.dtype)

    def input_buffer(self, name):
        info = self.input_info(name)
        if name not in self._buffers:
            raise ValueError("input {} of {} has an open shape; pass input_shapes={{{!r}: (...)}} to "
                             "load_backend".format(info.describe(), self.path, name))
        return self._buffers[name]

    def infer(self, inputs=None):
        if self._session is None:
            raise RuntimeError("backend for {} is closed".format(self.path))
        feed = dict(self._buffers)
        if inputs:
            for name, value in inputs.items():
                info = self.input_info(name)
                feed[name] = np.asarray(value, dtype=info.dtype)
        missing = [info.name for info in self.inputs if info.name not in feed]
        if missing:
            raise ValueError("no data for input(s) {} of {}".format(", ".join(missing), self.path))
        values = self._session.run(self._output_names, feed)
        return dict(zip(self._output_names, values))

    def close(self):
        self._session = None
        self._buffers = {}


def _tensor_info(arg):
    if arg.type not in _ORT_TYPES:
        raise ValueError("tensor {!r} has type {}, which trt_infer does not handle".format(arg.name, arg.type))
    shape = [dim if isinstance(dim, int) and dim >= 0 else -1 for dim in arg.shape]
    return TensorInfo(arg.name, shape, _ORT_TYPES[arg.type])


def _concrete_shape(info, requested, path):
    """The buffer shape of an input: the model's, the requested one, or the model's with a batch of 1."""
    if requested is not None:
        requested = tuple(int(dim) for dim in requested)
        fits = len(requested) == len(info.shape) and all(
            want == dim or dim < 0 for want, dim in zip(requested, info.shape))
        if not fits or any(dim < 1 for dim in requested):
            raise ValueError("input_shapes[{!r}] = {} does not fit the input {} of {}".format(
                info.name, requested, info.describe(), path))
        return requested
    if info.is_static:
        return info.shape
    if info.shape and all(dim >= 0 for dim in info.shape[1:]):
        return (1,) + info.shape[1:]
    return None


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
