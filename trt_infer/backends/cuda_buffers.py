"""One pycuda context per process, a stream, and host/device buffers allocated once.

On integrated GPUs (Jetson) the CPU and the GPU share DRAM: buffers there are mapped pinned
host memory, so the host array and the device pointer name the same pages and no copies are
made. On discrete GPUs a buffer is pinned host memory plus device memory, copied
asynchronously on one stream.

The context is created on the loading thread and left popped; `activate()` pushes it around
each use so the ROS executor's threads can share it. Everything made in it is also freed in it
(`free(buffer)`, `close()`): pycuda frees an allocation by activating its context, which it
cannot do from another thread than the one that made the context unless that context is
current there; it then warns "... in out-of-thread context could not be cleaned up" and the
memory leaks (inducer/pycuda src/cpp/cuda.hpp: scoped_context_activation,
CUDAPP_CATCH_CLEANUP_ON_DEAD_CONTEXT). `close()` first releases what depends on the context
(`close_first`: TensorRT's runtime, engine and execution context), then frees every buffer
while the context is current, then destroys it, so pycuda finds an empty context stack at exit;
the atexit hook does the same for a context nobody closed.

pycuda is imported inside the functions that need it: importing this module needs only numpy.
"""
import atexit
import contextlib
import threading
import weakref

import numpy as np

from trt_infer.errors import MissingDependencyError, SettingError


def _driver():
    try:
        import pycuda.driver as cuda
    except ImportError as error:
        raise MissingDependencyError(
            "the GPU path needs pycuda ({}); on a Jetson: `pip3 install pycuda` with nvcc on "
            "PATH, or run the model on the CPU with ONNX Runtime (node: -p backend:=onnxruntime)".format(error))
    cuda.init()
    return cuda


def device_count():
    """Number of CUDA devices, 0 when pycuda or a driver is missing (never raises)."""
    try:
        return _driver().Device.count()
    except Exception:  # noqa: BLE001  ImportError, or pycuda's LogicError/RuntimeError when no driver answers
        return 0


class CudaContext(object):
    """One CUDA context on `device_index`, pushed and popped around use by any thread.

    mapped: None picks mapped zero-copy buffers on integrated GPUs that can map host memory;
    True forces them (allowed on any GPU that can map host memory), False never maps.
    """

    def __init__(self, device_index=0, mapped=None):
        cuda = _driver()
        count = cuda.Device.count()
        if not 0 <= device_index < count:
            raise SettingError("CUDA device index {} does not exist: {} device(s) found; "
                             "set device_index to 0..{}".format(device_index, count, count - 1))
        self.device_index = device_index
        self.device = cuda.Device(device_index)
        attribute = cuda.device_attribute
        self.name = self.device.name()
        self.compute_capability = self.device.compute_capability()
        self._integrated = bool(self.device.get_attribute(attribute.INTEGRATED))
        can_map = bool(self.device.get_attribute(attribute.CAN_MAP_HOST_MEMORY))
        if mapped and not can_map:
            raise SettingError("{} cannot map host memory; use mapped=None or False".format(self.name))
        self.mapped = can_map and (self._integrated if mapped is None else bool(mapped))
        # make_context pushes the new context on this thread; pop it so no thread holds it
        # outside activate().
        self._context = self.device.make_context(cuda.ctx_flags.MAP_HOST)
        self._context.pop()
        self._local = threading.local()
        self._buffers = []
        self._cache = {}
        self._dependants = []
        self._closing = False
        self._closed = False
        atexit.register(_close_at_exit, weakref.ref(self))

    def is_integrated(self):
        """True on GPUs that share memory with the CPU (Jetson), from the INTEGRATED attribute."""
        return self._integrated

    @property
    def closed(self):
        return self._closed

    @contextlib.contextmanager
    def activate(self):
        """Make this context current on the calling thread for the block (re-entrant)."""
        if self._closed:
            raise RuntimeError("CUDA context on {} is closed".format(self.name))
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._context.push()
        self._local.depth = depth + 1
        try:
            yield self
        finally:
            self._local.depth = depth
            if depth == 0:
                _driver().Context.pop()

    def stream(self):
        """A new CUDA stream in this context."""
        with self.activate():
            stream = Stream(self)
        # kept to be freed at close(): a pycuda stream destroyed on a thread where its context
        # is not current cannot be released
        self._buffers.append(stream)
        return stream

    def buffer(self, shape, dtype, mapped=None, cpu_reads=False):
        """A HostDeviceBuffer of `shape` and `dtype`, zero-copy when this context maps memory.

        cpu_reads: the CPU reads what the GPU writes here (an output for CPU post-processing): when
        mapped, `.host` is then a cached copy made once per `finish_download` (see HostDeviceBuffer)."""
        with self.activate():
            buffer = HostDeviceBuffer(self, shape, dtype, self.mapped if mapped is None else mapped, cpu_reads)
        self._buffers.append(buffer)
        return buffer

    def device_array(self, nbytes):
        """Plain device memory of `nbytes` (freed with the context), e.g. a kernel's scratch."""
        with self.activate():
            allocation = _driver().mem_alloc(max(1, int(nbytes)))
        self._buffers.append(allocation)
        return allocation

    def free(self, buffer):
        """Release one buffer made here (a HostDeviceBuffer, device array or stream) now, inside this
        context, whichever thread calls: the way to replace a buffer, e.g. when the image size changes."""
        with self.activate():
            buffer.free()
        self._buffers = [kept for kept in self._buffers if kept is not buffer]

    def close_first(self, release):
        """Call release() at the start of close(), while the context still lives: for objects made in
        it that must be destroyed in it (TensorRT's execution context, engine, runtime)."""
        self._dependants.append(release)

    def cached(self, key, factory):
        """factory() made once per context and key (compiled kernels); dropped at close."""
        if key not in self._cache:
            with self.activate():
                self._cache[key] = factory()
        return self._cache[key]

    def close(self):
        """Free every buffer made here, then destroy the context. Safe to call twice."""
        if self._closed or self._closing:
            return
        self._closing = True
        try:
            while self._dependants:
                self._dependants.pop()()
        finally:
            self._free_and_destroy()

    def _free_and_destroy(self):
        self._context.push()
        try:
            self._cache = {}  # unloads the kernel modules while their context is current
            for buffer in reversed(self._buffers):
                buffer.free()
            self._buffers = []
        finally:
            # detach() of the current context destroys it and pops it from this thread.
            self._context.detach()
            self._closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return "CudaContext({} #{}, sm_{}{}, {}, {})".format(
            self.name, self.device_index, self.compute_capability[0], self.compute_capability[1],
            "integrated" if self._integrated else "discrete", "mapped" if self.mapped else "copies")


def _close_at_exit(context_ref):
    context = context_ref()
    if context is not None:
        context.close()


class Stream(object):
    """A CUDA stream; `handle` is the integer TensorRT's execute_async calls take."""

    def __init__(self, context):
        self.context = context
        self.cuda_stream = _driver().Stream()
        self.handle = int(self.cuda_stream.handle)

    def synchronize(self):
        with self.context.activate():
            self.cuda_stream.synchronize()

    def free(self):
        """Release the stream; called by CudaContext.close() while the context is current."""
        self.cuda_stream = None


class HostDeviceBuffer(object):
    """A tensor's memory: `.host` (numpy, pinned) and `.device_ptr` (int), allocated once.

    mapped: `.host` is mapped pinned memory and `.device_ptr` points at the same pages, so
    upload/download are no-ops. Otherwise they copy asynchronously on the given stream; the
    caller synchronises the stream before reading `.host` after a download.

    cpu_reads (mapped only): the GPU writes the mapped pages and `.host` is an ordinary (cached)
    array that `finish_download()` fills with one sequential copy once the stream is done. On
    Jetson the CPU and the GPU share DRAM but the Nano's CPU does not cache pinned memory (no I/O
    coherency), so post-processing that reads an output many times, out of order (SSD's scores,
    the anchors' boxes), would read uncached memory at every access; one streaming copy is cheap
    next to that. Inputs stay plainly mapped: the CPU only writes them, once, in order.
    trt_infer.bench.mapped measures the three ways on a GPU (docs/benchmarks.md).
    """

    def __init__(self, context, shape, dtype, mapped, cpu_reads=False):
        cuda = _driver()
        self.context = context
        self.mapped = bool(mapped)
        self._pages = None
        flags = cuda.host_alloc_flags.DEVICEMAP if self.mapped else 0
        self.host = cuda.pagelocked_empty(tuple(shape), np.dtype(dtype), mem_flags=flags)
        if self.mapped:
            self._device = None
            self.device_ptr = int(self.host.base.get_device_pointer())
            if cpu_reads:
                self._pages, self.host = self.host, np.empty(self.host.shape, self.host.dtype)
        else:
            self._device = cuda.mem_alloc(max(1, self.host.nbytes))
            self.device_ptr = int(self._device)

    @property
    def nbytes(self):
        return self.host.nbytes

    def upload(self, stream):
        """Queue host -> device on `stream` (no-op when mapped)."""
        if not self.mapped:
            with self.context.activate():
                _driver().memcpy_htod_async(self._device, self.host, stream.cuda_stream)

    def upload_from(self, array, stream):
        """Queue `array` (any C-contiguous host array of this buffer's size, pageable too) to the
        device, skipping `.host`; when mapped, copy it into `.host` (the caller must know the
        GPU is done reading it)."""
        if self.mapped:
            np.copyto(self.host, array)
        else:
            with self.context.activate():
                _driver().memcpy_htod_async(self._device, array, stream.cuda_stream)

    def download(self, stream):
        """Queue device -> host on `stream` (no-op when mapped)."""
        if not self.mapped:
            with self.context.activate():
                _driver().memcpy_dtoh_async(self.host, self._device, stream.cuda_stream)

    def finish_download(self):
        """After the stream is synchronised: copy mapped pages the CPU reads into `.host` (no-op otherwise)."""
        if self._pages is not None:
            np.copyto(self.host, self._pages)

    def free(self):
        """Release the memory; called by CudaContext.close() while the context is current."""
        if self._device is not None:
            self._device.free()
            self._device = None
        pinned = self._pages if self._pages is not None else self.host
        if pinned is not None:
            pinned.base.free()
            self.host = self._pages = None

    def __repr__(self):
        if self.host is None:
            return "HostDeviceBuffer(freed)"
        return "HostDeviceBuffer({} {}, {})".format(
            self.host.shape, self.host.dtype, "mapped" if self.mapped else "copied")
