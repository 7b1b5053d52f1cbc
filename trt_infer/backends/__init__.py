"""Inference backends: one interface over ONNX Runtime and TensorRT.

`load_backend(path)` picks the implementation from the file name (".onnx" -> ONNX Runtime,
".engine"/".plan" -> TensorRT) and imports it only then, so `import trt_infer.backends` needs
neither onnxruntime nor tensorrt.
"""
import collections
import os

import numpy as np

from trt_infer.errors import ModelLoadError, ModelNotFoundError, SettingError

BACKEND_KINDS = ("auto", "onnxruntime", "tensorrt")
ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan")

_TensorInfo = collections.namedtuple("TensorInfo", "name shape dtype")


class TensorInfo(_TensorInfo):
    """A named input or output: shape is a tuple of ints (-1 for a dimension not fixed by the model),
    dtype a numpy dtype."""

    __slots__ = ()

    def __new__(cls, name, shape, dtype):
        return super(TensorInfo, cls).__new__(cls, str(name), tuple(int(dim) for dim in shape), np.dtype(dtype))

    @property
    def is_static(self):
        return all(dim >= 0 for dim in self.shape)

    def describe(self):
        """"'input' (1, 3, 300, 300) float32", used in messages."""
        return "{!r} {} {}".format(self.name, self.shape, self.dtype.name)


class Backend(object):
    """Named inputs/outputs and `infer`.

    inputs, outputs: lists of TensorInfo.
    input_buffer(name): the host array the pre-processor writes into; `infer()` with no
    arguments runs on the buffers' contents.
    infer(inputs=None): name -> ndarray; outputs may be views of backend-owned buffers, valid
    until the next call.
    cuda_context: None for a backend whose buffers live in host memory only (ONNX Runtime). A
    backend whose I/O lives in CUDA device buffers (TensorRT) sets it to its CudaContext and adds
    `stream`, `device_input(name)`, `device_output(name)` and `infer(input_on_device=...,
    keep_on_device=...)`: the pipeline's GPU path (trt_infer.cuda) feeds it through those.
    """

    inputs = ()
    outputs = ()
    path = None
    cuda_context = None

    def input_buffer(self, name):
        raise NotImplementedError

    def infer(self, inputs=None):
        raise NotImplementedError

    def close(self):
        """Release the backend's resources; further calls are errors. Safe to call twice."""

    def input_info(self, name):
        return _find(self.inputs, name, "input", self)

    def output_info(self, name):
        return _find(self.outputs, name, "output", self)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return "{}({!r}, inputs=[{}], outputs=[{}])".format(
            type(self).__name__, self.path, ", ".join(info.describe() for info in self.inputs),
            ", ".join(info.describe() for info in self.outputs))


def _find(infos, name, what, backend):
    for info in infos:
        if info.name == name:
            return info
    raise KeyError("the model {} has no {} named {!r}; its {}s: {}".format(
        backend.path, what, name, what, ", ".join(repr(info.name) for info in infos)))


def backend_kind_for(path, kind="auto"):
    """'onnxruntime' or 'tensorrt' for `path`; a ValueError says which names and kinds are known."""
    if kind not in BACKEND_KINDS:
        raise SettingError("backend kind {!r}; allowed: {}".format(kind, ", ".join(BACKEND_KINDS)))
    if kind != "auto":
        return kind
    suffix = os.path.splitext(path)[1].lower()
    if suffix in ONNX_SUFFIXES:
        return "onnxruntime"
    if suffix in ENGINE_SUFFIXES:
        return "tensorrt"
    raise ModelLoadError("cannot tell the backend from the file name {!r}: expected {} (ONNX Runtime) or {} "
                     "(TensorRT engine), or pass kind= one of {}".format(
                         path, "/".join(ONNX_SUFFIXES), "/".join(ENGINE_SUFFIXES), ", ".join(BACKEND_KINDS[1:])))


def load_backend(path, kind="auto", **options):
    """Load a model file as a Backend.

    kind: "auto" (from the suffix), "onnxruntime" or "tensorrt". `options` go to the backend's
    constructor (e.g. providers=["CUDAExecutionProvider"] for ONNX Runtime).
    """
    kind = backend_kind_for(path, kind)
    if not os.path.isfile(path):
        raise ModelNotFoundError("model file not found: {} (convert the model first: `convert all`; "
                                "engines are built with `convert build`)".format(path))
    if kind == "onnxruntime":
        from trt_infer.backends.onnxruntime_backend import OnnxRuntimeBackend as backend_class
    else:
        from trt_infer.backends.tensorrt_backend import TensorRTBackend as backend_class
    try:
        return backend_class(path, **options)
    except EnvironmentError as error:  # the file exists but cannot be read (permissions, I/O)
        raise ModelLoadError("cannot read the model file {}: {}".format(path, error.strerror or error))
