"""TensorRT backend: one class over TensorRT 8.2 (Jetson Nano) and >= 8.5 / 10.

The engine's I/O buffers are allocated once at load: mapped pinned host memory on integrated
GPUs (Jetson: CPU and GPU share DRAM, so the pre-processor writes straight into memory the GPU
reads; outputs the CPU reads are copied once into cached memory after each call, see
cuda_buffers.HostDeviceBuffer's cpu_reads), pinned host memory plus async copies on one stream
on discrete GPUs. One CUDA context is
made at load and pushed/popped around every call, so any thread may call `infer`; calls are
serialised because they share the buffers. API differences live in tensorrt_api.
"""
import os
import threading

import numpy as np

from trt_infer.backends import Backend, TensorInfo
from trt_infer.backends import tensorrt_api
from trt_infer.engine import cache
from trt_infer.errors import EngineLoadError


def _load_cuda():
    from trt_infer.backends import cuda_buffers
    return cuda_buffers


class TensorRTBackend(Backend):
    """Backend over a serialized TensorRT engine (.engine / .plan).

    spec: optional ModelSpec; its input size is used for a dynamic input (else the profile's opt
    shape). trt_module: TensorRT module name override (see tensorrt_api.import_tensorrt).
    cuda: the CUDA layer providing CudaContext (default trt_infer.backends.cuda_buffers, pycuda).
    device_index: the CUDA device. check_sidecar: compare the engine's sidecar with this TensorRT
    and GPU first (a missing sidecar is logged as a warning).
    """

    def __init__(self, path, spec=None, trt_module=None, cuda=None, device_index=0, check_sidecar=True):
        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        self._context = None
        self._trt_objects = []
        self._buffers = {}
        self._stream = None
        trt = tensorrt_api.import_tensorrt(trt_module)
        cuda = cuda if cuda is not None else _load_cuda()
        if not os.path.isfile(self.path):
            raise EngineLoadError("engine file not found: {}; build it with `{}`".format(
                self.path, cache.rebuild_command(self.path)))
        self._context = cuda.CudaContext(device_index)
        # a backend nobody closed still releases TensorRT's objects before the context goes (atexit)
        self._context.close_first(self.close)
        try:
            data, sidecar = self._read_engine(trt, check_sidecar)
            with self._context.activate():
                self._load(trt, data, sidecar, spec)
        except BaseException:
            self.close()
            raise

    def _read_engine(self, trt, check_sidecar):
        # the GPU as the sidecar records it (trt_infer.engine.gpu.gpu_identity reads the same driver fields)
        self.gpu = {"name": self._context.name,
                    "compute_capability": "{}.{}".format(*self._context.compute_capability)}
        sidecar = None
        if check_sidecar:
            sidecar = cache.check_engine(self.path, tensorrt_api.trt_version(trt), self.gpu)
        with open(self.path, "rb") as handle:
            data = handle.read()
        expected = (sidecar or {}).get("engine_bytes")
        # Old TensorRT releases may crash on a truncated plan instead of returning None: check first.
        if not data or (expected is not None and expected != len(data)):
            raise self._load_error(len(data), sidecar, "truncated: its sidecar records {} bytes".format(expected)
                                   if expected is not None else "empty")
        return data, sidecar

    def _load_error(self, size, sidecar, reason):
        return EngineLoadError(
            "{}: cannot load this TensorRT engine ({} bytes; {}). The file is truncated or corrupt, or was "
            "built by another TensorRT version; rebuild it on this device with:\n  {}".format(
                self.path, size, reason, cache.rebuild_command(self.path, sidecar)))

    def _load(self, trt, data, sidecar, spec):
        logger = trt.Logger(trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(logger, "")
        runtime = trt.Runtime(logger)
        self._trt_objects.append(runtime)
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise self._load_error(len(data), sidecar, "TensorRT's deserializer returned nothing; its log above "
                                                       "says why")
        self._trt_objects.append(engine)
        context = engine.create_execution_context()
        if context is None:
            raise EngineLoadError("{}: TensorRT could not create an execution context (out of GPU memory?)".format(
                self.path))
        self._trt_objects.append(context)
        self._exec_context = context
        self._stream = self._context.stream()
        self._num_bindings = tensorrt_api.num_bindings(engine)
        profile = self._profile(engine, spec)
        tensorrt_api.select_profile(context, profile, self._stream.handle)
        self._tensors = tensorrt_api.io_tensors(engine, profile)
        for tensor in self._tensors:
            if tensor.is_input and tensor.is_dynamic:
                tensorrt_api.set_input_shape(context, tensor, self._dynamic_shape(engine, tensor, spec, profile))
        for tensor in self._tensors:
            shape = tensorrt_api.context_shape(context, tensor)
            if any(dim < 0 for dim in shape):
                raise EngineLoadError("{}: output {!r} has a data-dependent shape {}; trt_infer needs fixed-size "
                                      "outputs (use EfficientNMS_TRT or runtime NMS instead of TensorRT's NMS "
                                      "layer)".format(self.path, tensor.name, shape))
            self._buffers[tensor.name] = self._context.buffer(shape, tensor.dtype, cpu_reads=not tensor.is_input)
        self.inputs = [self._info(tensor) for tensor in self._tensors if tensor.is_input]
        self.outputs = [self._info(tensor) for tensor in self._tensors if not tensor.is_input]
        self._device_ptrs = dict((name, buffer.device_ptr) for name, buffer in self._buffers.items())
        self.mapped = self._context.mapped

    def _info(self, tensor):
        host = self._buffers[tensor.name].host
        return TensorInfo(tensor.name, host.shape, host.dtype)

    def _profile(self, engine, spec):
        """The optimization profile for the spec's input shape (engines built elsewhere may have several);
        0 without a spec or when none covers it (setting the shape then says so)."""
        if spec is None or tensorrt_api.num_profiles(engine) == 1:
            return 0
        dynamic = [tensor.name for tensor in tensorrt_api.io_tensors(engine) if tensor.is_input and tensor.is_dynamic]
        if spec.input.name not in dynamic:
            return 0
        chosen = tensorrt_api.choose_profile(engine, {spec.input.name: spec.input.shape})
        return 0 if chosen is None else chosen

    def _dynamic_shape(self, engine, tensor, spec, profile):
        if spec is not None and spec.input.name == tensor.name:
            return spec.input.shape
        return tensorrt_api.profile_shapes(engine, tensor, profile)[1]

    @property
    def cuda_context(self):
        """The CudaContext holding the engine and its buffers (None once closed); GPU pre- and
        post-processing run in it."""
        return self._context

    @property
    def stream(self):
        """The Stream inference runs on: work queued on it before `infer` needs no synchronisation."""
        return self._stream

    def input_buffer(self, name):
        self._check_open()
        return self._buffers[self.input_info(name).name].host

    def device_input(self, name):
        """The HostDeviceBuffer of input `name`, for a GPU pre-processor to write on `stream`
        before `infer(input_on_device=True)`."""
        self._check_open()
        return self._buffers[self.input_info(name).name]

    def device_output(self, name):
        """The HostDeviceBuffer of output `name`, valid after `infer` until the next call."""
        self._check_open()
        return self._buffers[self.output_info(name).name]

    def infer(self, inputs=None, input_on_device=False, keep_on_device=()):
        """Run the engine; name -> host array of every output (views of the buffers).

        input_on_device: the inputs' device memory already holds this frame (a GPU pre-processor
        wrote it on `stream`), so the host buffers are not uploaded over it; `inputs` must be None.
        keep_on_device: names of outputs read in place on the GPU (segmentation logits): they are
        not downloaded and are returned as their HostDeviceBuffer.
        """
        with self._lock:
            self._check_open()
            if input_on_device and inputs:
                raise ValueError("infer(input_on_device=True) runs on what is already in the device buffers; "
                                 "pass inputs=None, or input_on_device=False to upload {}".format(sorted(inputs)))
            kept = set(self.output_info(name).name for name in keep_on_device)
            for name, array in (inputs or {}).items():
                self._copy_input(name, array)
            with self._context.activate():
                if not input_on_device:
                    for info in self.inputs:
                        self._buffers[info.name].upload(self._stream)
                tensorrt_api.execute_async(self._exec_context, self._tensors, self._device_ptrs, self._stream.handle,
                                           self._num_bindings)
                for info in self.outputs:
                    if info.name not in kept:
                        self._buffers[info.name].download(self._stream)
                self._stream.synchronize()
            for info in self.outputs:
                if info.name not in kept:
                    self._buffers[info.name].finish_download()
            return dict((info.name, self._buffers[info.name] if info.name in kept else self._buffers[info.name].host)
                        for info in self.outputs)

    def _copy_input(self, name, array):
        info = self.input_info(name)
        array = np.asarray(array)
        if tensorrt_api.host_dtype_for(array.dtype, info.dtype) is None:
            raise TypeError("input {!r}: got {} data, the engine expects {} (the model spec's input dtype must "
                            "match the engine)".format(name, array.dtype.name, info.dtype.name))
        if array.shape != info.shape:
            raise ValueError("input {!r}: got shape {}, the engine expects {}".format(name, array.shape, info.shape))
        np.copyto(self._buffers[name].host, array, casting="unsafe")

    def _check_open(self):
        if self._closed:
            raise RuntimeError("{}: the TensorRT backend is closed".format(self.path))

    def close(self):
        """Release execution context, engine and runtime inside the CUDA context, then the context
        (which frees the buffers while it is current)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            context, self._context = self._context, None
        if context is None:
            return
        with context.activate():
            self._buffers = {}
            self._device_ptrs = {}
            self._stream = None
            self._exec_context = None
            while self._trt_objects:
                del self._trt_objects[-1]     # context before engine before runtime
        context.close()
