"""GPU pre-processing: one fused CUDA kernel from the uint8 camera image to the network input.

Same options, same accepted images and the same ResizeTransform as the CPU Preprocessor
(trt_infer.preprocess); the tensor is written straight into a device buffer, normally the
engine's input, so nothing but the uint8 image crosses the bus.
"""
import numpy as np

from trt_infer.cuda.kernels import PREPROCESS_ARGS, PREPROCESS_SOURCE, compile_module, launch_grid, \
    preprocess_kernel_name
from trt_infer.geometry import ResizeTransform
from trt_infer.preprocess import IMAGE_COLOR_ORDERS, check_image, normalisation


class GpuPreprocessor(object):
    """Fits images into the network input described by an InputSpec, on the GPU.

    `pre(image, out=None, color_order="BGR") -> ResizeTransform` queues the upload of `image`
    and the kernel on `pre.stream`, writing into `out` (a HostDeviceBuffer such as the engine's
    input, or a device pointer int) or into `pre.buffer` when out is None. Work queued after it
    on the same stream (inference) needs no synchronisation; call `pre.stream.synchronize()`
    before reading the result on the host.

    context: a trt_infer.backends.cuda_buffers.CudaContext (the backend's); None makes one on
    device 0, closed by `close()`.
    """

    def __init__(self, input_spec, context=None, stream=None):
        from trt_infer.backends.cuda_buffers import CudaContext
        self.spec = input_spec
        self._owns_context = context is None
        self.context = CudaContext(0) if context is None else context
        self.stream = stream if stream is not None else self.context.stream()
        self.shape = input_spec.shape
        self.dtype = np.dtype(input_spec.dtype)
        gain, offset, pad = normalisation(input_spec)
        self._normalise = tuple(np.float32(value) for value in gain + offset + pad)
        self._module = compile_module(self.context, PREPROCESS_SOURCE)
        self._buffer = None
        self._staging = None
        self._kernel_done = None  # recorded after each kernel: the staging image may be overwritten
        self._kernel_event = self.context.cached(("event", id(self)), self._new_event)
        self._transforms = {}

    @property
    def buffer(self):
        """The pre-processor's own output tensor (a HostDeviceBuffer), used when no `out` is given."""
        if self._buffer is None:
            self._buffer = self.context.buffer(self.shape, self.dtype)
        return self._buffer

    def staging(self, shape):
        """The pinned (mapped on Jetson) image buffer for images of `shape`: a producer that
        writes frames into `staging(shape).host` spares `__call__` one host copy."""
        shape = tuple(shape)
        if self._staging is None or self._staging.host.shape != shape:
            self._wait_for_kernel()
            if self._staging is not None:
                self.context.free(self._staging)
            self._staging = self.context.buffer(shape, np.uint8)
        return self._staging

    def __call__(self, image, out=None, color_order="BGR"):
        if color_order not in IMAGE_COLOR_ORDERS:
            raise ValueError("color_order {!r}; allowed: {}".format(color_order, ", ".join(IMAGE_COLOR_ORDERS)))
        image = check_image(image)
        out_ptr = self._out_pointer(out)
        staging = self.staging(image.shape)
        if image is staging.host:
            staging.upload(self.stream)
        else:
            if staging.mapped:
                self._wait_for_kernel()
            staging.upload_from(image, self.stream)
        return self.enqueue(image.shape, out_ptr, color_order)

    def enqueue(self, image_shape, out_ptr, color_order="BGR"):
        """Queue the kernel on the image already in `staging(image_shape)` on the device."""
        height, width = image_shape[:2]
        channels = 1 if len(image_shape) == 2 else image_shape[2]
        transform = self._transform(width, height)
        x, y, region_width, region_height = transform.valid_region()
        grid, block = launch_grid(self.spec.width, self.spec.height)
        with self.context.activate():
            self._kernel(channels).prepared_async_call(
                grid, block, self.stream.cuda_stream, self._staging.device_ptr, width, height,
                width * channels, out_ptr, self.spec.width, self.spec.height, x, y, region_width,
                region_height, np.float32(float(width) / region_width),
                np.float32(float(height) / region_height), *(self._sources(channels, color_order) + self._normalise))
            self._kernel_done = self._record()
        return transform

    def close(self):
        """Release the context when this pre-processor made it (a shared one is the backend's)."""
        if self._owns_context:
            self.context.close()

    def _out_pointer(self, out):
        if out is None:
            return self.buffer.device_ptr
        if isinstance(out, int):
            return out
        host = getattr(out, "host", None)
        if host is None or not hasattr(out, "device_ptr"):
            raise ValueError("out is a {}; expected a HostDeviceBuffer (e.g. the engine's input) or a "
                             "device pointer".format(type(out).__name__))
        if host.shape != self.shape or host.dtype != self.dtype:
            raise ValueError("output buffer has shape {} {}; the input spec {!r} needs {} {}".format(
                host.shape, host.dtype, self.spec.name, self.shape, self.dtype))
        return out.device_ptr

    def _transform(self, width, height):
        key = (width, height)
        if key not in self._transforms:
            self._transforms[key] = ResizeTransform(width, height, self.spec.width, self.spec.height, self.spec.resize)
        return self._transforms[key]

    def _kernel(self, channels):
        name = preprocess_kernel_name(channels, self.spec.layout, self.dtype.name)
        return self.context.cached(("kernel", name), lambda: self._module.get_function(name).prepare(PREPROCESS_ARGS))

    def _sources(self, channels, color_order):
        """For each network channel, the image channel that feeds it (as the CPU path decides)."""
        if channels == 1 or color_order == self.spec.color_order:
            return (0, 1, 2)
        return (2, 1, 0)

    def _record(self):
        self._kernel_event.record(self.stream.cuda_stream)
        return self._kernel_event

    @staticmethod
    def _new_event():
        import pycuda.driver as cuda
        return cuda.Event(cuda.event_flags.DISABLE_TIMING)

    def _wait_for_kernel(self):
        if self._kernel_done is not None:
            with self.context.activate():
                self._kernel_done.synchronize()
            self._kernel_done = None
