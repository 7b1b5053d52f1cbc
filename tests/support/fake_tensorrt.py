"""Named fakes for what cannot exist on the CI machines: TensorRT execution and a CUDA device.

Each fake implements only the attributes its TensorRT generation really has, so code that calls
a >= 8.5 method on the 8.2 fake fails with AttributeError. They prove the adapter's branching
and the backend's buffer/context bookkeeping, never TensorRT itself. FakeCuda keeps host and
"device" memory apart (unless mapped), so a missing upload or download changes the answer.
"""
import contextlib
import itertools
import threading

import numpy as np


class _Member(object):
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "DataType." + self.name


def _enum(names):
    return type("FakeEnum", (object,), dict((name, _Member(name)) for name in names))


TRT82_DTYPES = ("FLOAT", "HALF", "INT8", "INT32", "BOOL")
TRT10_DTYPES = TRT82_DTYPES + ("UINT8", "INT64")


class FakeTensor(object):
    """Declares one engine I/O tensor; profile = (min, opt, max) for a dynamic input."""

    def __init__(self, name, is_input, shape, dtype="FLOAT", profile=None):
        self.name, self.is_input, self.shape, self.dtype, self.profile = name, is_input, tuple(shape), dtype, profile


def _resolve(tensors, shapes):
    """Output shapes follow the first input's shape where an output has dynamic dims."""
    first_input = next(t for t in tensors if t.is_input)
    return dict((t.name, shapes[first_input.name] if not t.is_input and any(d < 0 for d in t.shape)
                 else shapes[t.name]) for t in tensors)


def _within(shape, profile):
    low, _, high = profile
    return len(shape) == len(low) and all(lo <= dim <= hi for dim, lo, hi in zip(shape, low, high))


class _FakeContextBase(object):
    def __init__(self, engine, profile):
        self._engine = engine
        self._shapes = dict((t.name, t.shape) for t in engine.tensors)
        self.executions = 0
        self.profile = profile          # -1: none selected yet

    def __del__(self):
        module = getattr(self._engine, "module", None)
        if module is not None:
            module.released.append(("execution context", module.context_alive()))

    def set_optimization_profile_async(self, profile_index, stream_handle):
        # pyCore.cpp (8.2 and later) raises when TensorRT refuses the index
        if not 0 <= profile_index < self._engine.num_optimization_profiles:
            raise RuntimeError("Error in set optimization profile async.")
        self.profile = profile_index
        return True

    def _set_shape(self, tensor, shape):
        assert self.profile >= 0, "no optimization profile selected for this execution context"
        if tensor.profile is not None and not _within(tuple(shape), self._engine.profile_of(tensor, self.profile)):
            return False
        self._shapes[tensor.name] = tuple(shape)
        return True

    def _run(self, pointers, stream_handle):
        assert self.profile >= 0, "no optimization profile selected for this execution context"
        cuda = self._engine.cuda
        assert cuda.active_context() is not None, "TensorRT call outside an active CUDA context"
        arrays = dict((name, cuda.device_memory[int(ptr)]) for name, ptr in pointers.items())
        inputs = dict((t.name, arrays[t.name]) for t in self._engine.tensors if t.is_input)
        for name, value in self._engine.compute(inputs).items():
            np.copyto(arrays[name], value, casting="unsafe")
        cuda.stream_log.append(("execute", stream_handle))
        self.executions += 1
        return True


class FakeTrt82Context(_FakeContextBase):
    """TensorRT 8.2 IExecutionContext: bindings by index, execute_async_v2, active_optimization_profile.

    With several optimization profiles the binding indices of profile k are k * n .. k * n + n - 1
    (n bindings per profile); only the selected profile's may be used and execute_async_v2 reads
    `bindings[k * n + i]` from a list that covers every profile's bindings."""

    @property
    def active_optimization_profile(self):
        return self.profile

    @active_optimization_profile.setter
    def active_optimization_profile(self, profile_index):   # deprecated in 8.2 for set_optimization_profile_async
        self.set_optimization_profile_async(profile_index, 0)

    def _tensor(self, index):
        per_profile = len(self._engine.tensors)
        if index // per_profile != self.profile:
            raise AssertionError("binding {} belongs to profile {}, the context uses profile {}".format(
                index, index // per_profile, self.profile))
        return self._engine.tensors[index % per_profile]

    def set_binding_shape(self, index, shape):
        return self._set_shape(self._tensor(index), shape)

    def get_binding_shape(self, index):
        return _resolve(self._engine.tensors, self._shapes)[self._tensor(index).name]

    def execute_async_v2(self, bindings, stream_handle):
        engine = self._engine
        assert len(bindings) == engine.num_bindings, "execute_async_v2 got {} bindings, the engine has {}".format(
            len(bindings), engine.num_bindings)
        offset = self.profile * len(engine.tensors)
        return self._run(dict((t.name, bindings[offset + i]) for i, t in enumerate(engine.tensors)), stream_handle)


class FakeTrt10Context(_FakeContextBase):
    """TensorRT >= 8.5 / 10 IExecutionContext: tensors by name, execute_async_v3."""

    def __init__(self, engine, profile):
        super(FakeTrt10Context, self).__init__(engine, profile)
        self._addresses = {}

    def set_input_shape(self, name, shape):
        return self._set_shape(self._engine._by_name(name), shape)

    def get_tensor_shape(self, name):
        return _resolve(self._engine.tensors, self._shapes)[name]

    def set_tensor_address(self, name, pointer):
        self._addresses[name] = pointer
        return True

    def execute_async_v3(self, stream_handle):
        return self._run(self._addresses, stream_handle)


class _FakeEngineBase(object):
    """profiles: one {input name: (min, opt, max)} per optimization profile (default: one, from
    the tensors' own `profile`). The first execution context gets profile 0, later ones none
    (NVIDIA/TensorRT include/NvInferRuntime.h, release/8.2: createExecutionContext)."""

    DTYPES = ()

    def __init__(self, tensors, compute, cuda=None, profiles=None):
        for tensor in tensors:
            assert tensor.dtype in self.DTYPES, "{} has no DataType.{}".format(type(self).__name__, tensor.dtype)
        self.tensors = list(tensors)
        self.compute = compute
        self.cuda = cuda
        self.module = None
        self.profiles = profiles or [dict((t.name, t.profile) for t in self.tensors if t.profile is not None)]
        self.num_optimization_profiles = len(self.profiles)
        self.contexts_made = 0

    def _dtype(self, tensor):
        return _Member(tensor.dtype)

    def _by_name(self, name):
        return next(t for t in self.tensors if t.name == name)

    def profile_of(self, tensor, profile):
        assert 0 <= profile < len(self.profiles), "profile {} does not exist".format(profile)
        return self.profiles[profile].get(tensor.name, tensor.profile)

    def _next_context_profile(self):
        self.contexts_made += 1
        return 0 if self.contexts_made == 1 else -1


class FakeTrt82Engine(_FakeEngineBase):
    """TensorRT 8.2 ICudaEngine: num_bindings, get_binding_*, binding_is_input, get_profile_shape.

    Every optimization profile repeats the bindings: num_bindings = n * profiles and binding
    k * n + i is tensor i of profile k, named "<name> [profile k]" for k > 0 (NvInferRuntime.h,
    release/8.2: getBindingName)."""

    DTYPES = TRT82_DTYPES

    @property
    def num_bindings(self):
        return len(self.tensors) * self.num_optimization_profiles

    def _at(self, index):
        assert 0 <= index < self.num_bindings, "binding index {} out of range".format(index)
        return self.tensors[index % len(self.tensors)]

    def get_binding_name(self, index):
        profile = index // len(self.tensors)
        return self._at(index).name + (" [profile {}]".format(profile) if profile else "")

    def binding_is_input(self, index):
        return self._at(index).is_input

    def get_binding_shape(self, index):
        return self._at(index).shape

    def get_binding_dtype(self, index):
        return self._dtype(self._at(index))

    def get_profile_shape(self, profile, index):
        # the binding must belong to the profile, or lie in 0..n-1 (then corrected to the profile's)
        assert isinstance(index, int) and (index < len(self.tensors) or index // len(self.tensors) == profile)
        return self.profile_of(self._at(index), profile)

    def create_execution_context(self):
        return FakeTrt82Context(self, self._next_context_profile())


class FakeTrt10Engine(_FakeEngineBase):
    """TensorRT 10 ICudaEngine: num_io_tensors, get_tensor_*, get_tensor_profile_shape(name, profile)."""

    DTYPES = TRT10_DTYPES

    @property
    def num_io_tensors(self):
        return len(self.tensors)

    def get_tensor_name(self, index):
        return self.tensors[index].name

    def get_tensor_mode(self, name):
        return _Member("INPUT" if self._by_name(name).is_input else "OUTPUT")

    def get_tensor_shape(self, name):
        return self._by_name(name).shape

    def get_tensor_dtype(self, name):
        return self._dtype(self._by_name(name))

    def get_tensor_profile_shape(self, name, profile):
        assert isinstance(name, str)
        return self.profile_of(self._by_name(name), profile)

    def create_execution_context(self):
        return FakeTrt10Context(self, self._next_context_profile())


class FakeTrtModule(object):
    """A `tensorrt` module stand-in whose Runtime deserializes one known blob into `engine`."""

    BLOB = b"FAKE-TENSORRT-PLAN"

    def __init__(self, engine, version, context_alive=None):
        self.__name__ = "fake_tensorrt"
        self.__version__ = version
        self.engine = engine
        self.plugin_inits = 0
        self.DataType = _enum(type(engine).DTYPES)
        self.released = []
        # whether a live CUDA context is current on this thread: TensorRT's objects must be destroyed in one
        self.context_alive = context_alive or (lambda: engine.cuda.active_context() is not None)
        engine.module = self
        module = self

        class Logger(object):
            WARNING = "WARNING"

            def __init__(self, severity):
                self.severity = severity

        class Runtime(object):
            def __init__(self, logger):
                assert module.plugin_inits > 0, "init_libnvinfer_plugins must run before deserializing"

            def deserialize_cuda_engine(self, data):
                return module.engine if bytes(data) == module.BLOB else None

            def __del__(self):
                module.released.append(("runtime", module.context_alive()))

        self.Logger = Logger
        self.Runtime = Runtime

    def init_libnvinfer_plugins(self, logger, namespace):
        self.plugin_inits += 1
        return True


class FakeCudaContext(object):
    """Mirrors cuda_buffers.CudaContext: activate() push/pop per thread, buffer(), stream(), free(),
    cached(), close_first() and close(); owned by the thread that made it, like a pycuda context."""

    def __init__(self, cuda, device_index=0, mapped=None):
        self.cuda = cuda
        self.name = cuda.gpu_name
        self.compute_capability = cuda.compute_capability
        self.mapped = cuda.integrated if mapped is None else bool(mapped)
        self.thread = threading.current_thread().ident
        self.closed = False
        self.buffers = []
        self._cache = {}
        self._dependants = []

    def is_integrated(self):
        return self.cuda.integrated

    @contextlib.contextmanager
    def activate(self):
        assert not self.closed, "activate() on a closed context"
        stack = self.cuda.stacks.setdefault(threading.current_thread().ident, [])
        stack.append(self)
        try:
            yield self
        finally:
            assert stack.pop() is self

    def buffer(self, shape, dtype, mapped=None, cpu_reads=False):
        with self.activate():
            buffer = FakeBuffer(self.cuda, shape, dtype, self.mapped if mapped is None else mapped, cpu_reads)
        self.buffers.append(buffer)
        return buffer

    def free(self, buffer):
        with self.activate():
            buffer.free()
        self.buffers = [kept for kept in self.buffers if kept is not buffer]

    def cached(self, key, factory):
        if key not in self._cache:
            with self.activate():
                self._cache[key] = factory()
        return self._cache[key]

    def stream(self):
        with self.activate():
            return FakeStream(self.cuda)

    def close_first(self, release):
        self._dependants.append(release)

    def close(self):
        if self.closed:
            return
        while self._dependants:
            self._dependants.pop()()
        with self.activate():
            for buffer in self.buffers:
                buffer.free()
        self.buffers = []
        self.closed = True


class FakeBuffer(object):
    """Host and device arrays apart unless mapped. free() follows pycuda's rule (see FakePycuda): outside
    its context on a thread that did not make it, the memory is not released (counted in cuda.leaked)."""

    def __init__(self, cuda, shape, dtype, mapped, cpu_reads=False):
        assert cuda.active_context() is not None, "allocation outside an active CUDA context"
        self.cuda = cuda
        self.context = cuda.active_context()
        self.host = np.zeros(shape, dtype)
        self.mapped = mapped
        self.device = self.host if mapped else np.zeros(shape, dtype)
        self.cached_copy = bool(mapped and cpu_reads)   # .host a cached copy of the mapped pages
        if self.cached_copy:
            self.device = np.zeros(shape, dtype)
        self.device_ptr = next(cuda.pointers)
        cuda.device_memory[self.device_ptr] = self.device

    def upload(self, stream):
        if not self.mapped:
            self.cuda.stream_log.append(("htod", stream.handle))
            np.copyto(self.device, self.host)

    def download(self, stream):
        if not self.mapped:
            self.cuda.stream_log.append(("dtoh", stream.handle))
            np.copyto(self.host, self.device)

    def finish_download(self):
        if self.cached_copy:
            np.copyto(self.host, self.device)

    def free(self):
        if self.cuda.active_context() is None:
            self.cuda.freed_outside_context += 1
        if self.cuda.active_context() is not self.context and threading.current_thread().ident != self.context.thread:
            self.cuda.leaked.append(self.device_ptr)
            return
        self.cuda.device_memory.pop(self.device_ptr, None)


class FakeStream(object):
    handles = itertools.count(0x5000)

    def __init__(self, cuda):
        self.cuda = cuda
        self.handle = next(self.handles)

    def synchronize(self):
        self.cuda.stream_log.append(("sync", self.handle))


class FakeCuda(object):
    """Stands in for trt_infer.backends.cuda_buffers where pycuda and a GPU are absent."""

    def __init__(self, integrated, gpu_name="NVIDIA Tegra X1", compute_capability=(5, 3)):
        self.integrated = integrated
        self.gpu_name = gpu_name
        self.compute_capability = compute_capability
        self.pointers = itertools.count(0x10000, 0x1000)
        self.device_memory = {}
        self.stream_log = []
        self.stacks = {}
        self.contexts = []
        self.freed_outside_context = 0
        self.leaked = []

    def active_context(self):
        stack = self.stacks.get(threading.current_thread().ident)
        return stack[-1] if stack else None

    def CudaContext(self, device_index=0, mapped=None):
        context = FakeCudaContext(self, device_index, mapped)
        self.contexts.append(context)
        return context


# --- pycuda ---------------------------------------------------------------------------------------

class FakePycudaLogicError(RuntimeError):
    """pycuda.driver.LogicError."""


class FakeExecError(OSError):
    """pytools.prefork.ExecError (an OSError): what pycuda.compiler raises when nvcc cannot be run."""


class FakePycuda(object):
    """`pycuda` (driver + compiler) with pycuda's context rules, for the real cuda_buffers code.

    Modelled on inducer/pycuda src/cpp/cuda.hpp: every thread has its own context stack;
    `make_context` pushes the new context on the thread that made it, which owns it. Freeing an
    allocation (device memory, page-locked host memory) activates its context: nothing to do when
    it is current on the calling thread, a push when the calling thread made the context, and
    otherwise (`scoped_context_activation` throws cannot_activate_out_of_thread_context) a
    UserWarning "<type> in out-of-thread context could not be cleaned up" while the allocation is
    marked invalid and its memory stays allocated: a leak. A context stack left non-empty at exit
    is pycuda's "context stack was not empty upon module cleanup" abort (`exit_problems`).
    pycuda.compiler runs nvcc (its version, and the preprocessor for sources with #include) on
    every SourceModule, cached or not: without nvcc it raises pytools' ExecError.
    """

    TOTAL = 4 << 30

    def __init__(self, integrated=True, nvcc="/usr/local/cuda/bin/nvcc", devices=1, name="NVIDIA Tegra X1",
                 compute_capability=(5, 3)):
        import types

        self.integrated, self.nvcc, self.devices = integrated, nvcc, devices
        self.name, self.compute_capability = name, compute_capability
        self.stacks = {}
        self.live = {}          # id(allocation) -> bytes still allocated on the device or pinned
        self.leaked = []        # type names of allocations freed out of thread (pycuda's warning)
        self.launches = []
        self.compiled = []
        self.pointers = itertools.count(0x7000000, 0x100000)
        self.memory = {}        # device pointer -> numpy uint8 view of the bytes behind it
        fake = self

        driver = types.ModuleType("pycuda.driver")
        driver.LogicError = FakePycudaLogicError
        driver.CompileError = type("CompileError", (RuntimeError,), {})
        driver.ctx_flags = type("ctx_flags", (object,), {"MAP_HOST": 8, "SCHED_AUTO": 0})
        driver.host_alloc_flags = type("host_alloc_flags", (object,), {"DEVICEMAP": 2, "PORTABLE": 1})
        driver.event_flags = type("event_flags", (object,), {"DISABLE_TIMING": 2})
        driver.device_attribute = type("device_attribute", (object,), {"INTEGRATED": "INTEGRATED",
                                                                       "CAN_MAP_HOST_MEMORY": "CAN_MAP"})
        driver.init = lambda flags=0: None
        driver.mem_get_info = self.mem_get_info

        class Context(object):
            def __init__(self, primary=False):
                self.thread = threading.current_thread().ident
                self.valid = True
                self.primary = primary

            def push(self):
                if not self.valid:
                    raise FakePycudaLogicError("cannot push dead context")
                fake._stack().append(self)

            @staticmethod
            def pop():
                stack = fake._stack()
                if not stack:
                    raise FakePycudaLogicError("cuCtxPopCurrent failed: invalid device context")
                stack.pop()

            def detach(self):
                stack = fake._stack()
                if stack and stack[-1] is self:
                    stack.pop()
                self.valid = False
                # destroying a context releases everything still allocated in it
                for key in [key for key, (context, _) in fake.live.items() if context is self]:
                    del fake.live[key]

            @staticmethod
            def get_current():
                return fake.current()

        class Device(object):
            @staticmethod
            def count():
                return fake.devices

            def __init__(self, index):
                if not 0 <= index < fake.devices:
                    raise FakePycudaLogicError("cuDeviceGet failed: invalid device ordinal")

            def name(self):
                return fake.name

            def compute_capability(self):
                return fake.compute_capability

            def get_attribute(self, attribute):
                return {"INTEGRATED": int(fake.integrated), "CAN_MAP": 1}[attribute]

            def make_context(self, flags=0):
                context = Context()
                context.push()
                return context

            def retain_primary_context(self):
                return Context(primary=True)

        class _Allocation(object):
            kind = "device_allocation"

            def _register(self, nbytes):
                context = fake.current()
                if context is None:
                    raise FakePycudaLogicError("cuMemAlloc failed: invalid device context")
                self.context, self.valid = context, True
                fake.live[id(self)] = (context, nbytes)

            def free(self):
                if not self.valid:
                    raise FakePycudaLogicError("{}::free failed: invalid resource handle".format(self.kind))
                self.valid = False
                current = fake.current()
                if current is not self.context and self.context.valid \
                        and threading.current_thread().ident != self.context.thread:
                    import warnings
                    fake.leaked.append(self.kind)
                    warnings.warn("{} in out-of-thread context could not be cleaned up".format(self.kind),
                                  UserWarning)
                    return
                fake.live.pop(id(self), None)

        class DeviceAllocation(_Allocation):
            def __init__(self, nbytes):
                self._register(nbytes)
                self.data = np.zeros(nbytes, np.uint8)
                self.pointer = fake._map(self.data)

            def __int__(self):
                return self.pointer

            __index__ = __int__

        class PagelockedAllocation(bytearray, _Allocation):
            kind = "pagelocked_host_allocation"

            def get_device_pointer(self):
                return self.pointer

        def pagelocked_empty(shape, dtype, order="C", mem_flags=0):
            dtype = np.dtype(dtype)
            nbytes = int(np.prod(shape)) * dtype.itemsize
            allocation = PagelockedAllocation(max(1, nbytes))
            allocation._register(nbytes)
            array = np.ndarray(shape, dtype, buffer=allocation)
            allocation.pointer = fake._map(np.ndarray((max(1, nbytes),), np.uint8, buffer=allocation))
            return array

        def _bytes(target):
            if isinstance(target, np.ndarray):
                return target.reshape(-1).view(np.uint8)
            return fake.memory[int(target)]

        def memcpy(destination, source, stream=None):
            fake._need_context("cuMemcpy")
            source = _bytes(source)
            _bytes(destination)[:source.size] = source

        class Stream(object):
            def __init__(self, flags=0):
                fake._need_context("cuStreamCreate")
                self.handle = next(fake.pointers)

            def synchronize(self):
                fake._need_context("cuStreamSynchronize")

        class Event(object):
            def __init__(self, flags=0):
                fake._need_context("cuEventCreate")

            def record(self, stream=None):
                return self

            def synchronize(self):
                return self

        def memset_d32_async(destination, value, count, stream=None):
            fake._need_context("cuMemsetD32Async")
            fake.memory[int(destination)].view(np.uint32)[:count] = value

        driver.memset_d32 = driver.memset_d32_async = memset_d32_async
        driver.get_driver_version = lambda: 12080
        driver.Context, driver.Device, driver.Stream, driver.Event = Context, Device, Stream, Event
        driver.mem_alloc = DeviceAllocation
        driver.pagelocked_empty = pagelocked_empty
        driver.memcpy_htod = driver.memcpy_dtoh = driver.memcpy_htod_async = driver.memcpy_dtoh_async = memcpy

        class Function(object):
            def __init__(self, name):
                self.name = name

            def prepare(self, arguments):
                return self

            def prepared_async_call(self, grid, block, stream, *arguments):
                fake._need_context("cuLaunchKernel")
                fake.launches.append(self.name)

        class SourceModule(object):
            def __init__(self, source, nvcc="nvcc", options=None, keep=False, no_extern_c=False, **kwargs):
                fake._need_context("cuModuleLoadData")
                if fake.nvcc is None or (nvcc != fake.nvcc and nvcc != "nvcc") or \
                        (nvcc == "nvcc" and not fake.nvcc_on_path):
                    raise FakeExecError("error invoking '{} --version': [Errno 2] No such file or directory: "
                                        "'{}'".format(nvcc, nvcc))
                fake.compiled.append(nvcc)

            def get_function(self, name):
                return Function(name)

        compiler = types.ModuleType("pycuda.compiler")
        compiler.SourceModule = SourceModule
        package = types.ModuleType("pycuda")
        package.driver, package.compiler = driver, compiler
        package.VERSION_TEXT = "fake"
        self.driver, self.compiler, self.package = driver, compiler, package
        self.nvcc_on_path = False

    def install(self, monkeypatch):
        """Make `import pycuda.driver` / `pycuda.compiler` give this fake for the test."""
        import sys
        for name, module in (("pycuda", self.package), ("pycuda.driver", self.driver),
                             ("pycuda.compiler", self.compiler)):
            monkeypatch.setitem(sys.modules, name, module)
        return self

    def _stack(self):
        return self.stacks.setdefault(threading.current_thread().ident, [])

    def current(self):
        stack = self.stacks.get(threading.current_thread().ident)
        return stack[-1] if stack else None

    def _need_context(self, call):
        if self.current() is None:
            raise FakePycudaLogicError("{} failed: invalid device context".format(call))

    def _map(self, data):
        pointer = next(self.pointers)
        self.memory[pointer] = data
        return pointer

    def mem_get_info(self):
        """(free, total) bytes as cuMemGetInfo reports them: what is allocated and not freed counts."""
        return self.TOTAL - sum(nbytes for _, nbytes in self.live.values()), self.TOTAL

    def exit_problems(self):
        """What pycuda's module cleanup would abort on: threads whose context stack is not empty."""
        return ["context stack was not empty upon module cleanup (thread {})".format(thread)
                for thread, stack in self.stacks.items() if stack]


# --- builder side ---------------------------------------------------------------------------------

class FakeParserError(object):
    """8.2's ParserError: desc(), node(), code(); no node_name()/node_operator() (added in 10)."""

    def __init__(self, desc, node):
        self._desc, self._node = desc, node

    def desc(self):
        return self._desc

    def node(self):
        return self._node

    def code(self):
        return type("Code", (object,), {"name": "UNSUPPORTED_NODE"})()


class FakeTrtTerminate(BaseException):
    """std::terminate: on TensorRT 8.2 a Python exception leaving a calibrator callback aborts the process."""


def _version_tuple(version):
    return tuple(int(part) for part in version.split(".")[:2])


class FakeTrtBuilder(object):
    """The builder side of a TensorRT 8.x module (8.2's API), configurable per test.

    version decides how exceptions raised in the INT8 calibrator's Python methods behave, as the
    trampolines in NVIDIA/TensorRT python/src/infer/pyInt8.cpp do: on release/8.2 `getBatch`,
    `readCalibrationCache` and `writeCalibrationCache` are noexcept without a try, so the exception
    ends in std::terminate (FakeTrtTerminate); from release/8.5 they catch it, print
    "[ERROR] Exception caught in get_batch(): ..." (kept in `stderr`) and return "no batch" / "no
    cache", so calibration ends early and the build goes on. `create_timing_cache` takes a buffer
    (8.2: py::buffer, so None is a TypeError); `get_timing_cache().serialize()` gives it back.
    """

    class NetworkDefinitionCreationFlag(object):
        EXPLICIT_BATCH = 0

    class BuilderFlag(object):
        FP16 = "FP16"
        INT8 = "INT8"

    class IInt8EntropyCalibrator2(object):
        def __init__(self):
            pass

    class ILogger(object):
        def __init__(self):
            pass

    def __init__(self, fast_fp16=True, fast_int8=False, inputs=(("input", (1, 3, 300, 300)),),
                 parse_errors=(), fail_with=None, while_building=None, version="8.2.1.8"):
        self.__name__ = "fake_tensorrt_{}".format("_".join(version.split(".")[:2]))
        self.__version__ = version
        self.events = []
        self.stderr = []
        self.calibration_batches = 0
        module = self

        class Network(object):
            num_inputs = len(inputs)

            def get_input(self, index):
                name, shape = inputs[index]
                return type("Tensor", (object,), {"name": name, "shape": shape})()

        class TimingCache(object):
            def __init__(self, data):
                self.data = bytes(data)

            def serialize(self):
                return memoryview(self.data + b"+timings")

        class Config(object):
            def __init__(self):
                self.max_workspace_size = 0
                self.flags = []
                self.int8_calibrator = None
                self.profiles = []
                self.timing_cache = None

            def set_flag(self, flag):
                self.flags.append(flag)

            def add_optimization_profile(self, profile):
                self.profiles.append(profile)

            def create_timing_cache(self, serialized_timing_cache):
                if serialized_timing_cache is None:
                    raise TypeError("create_timing_cache(): incompatible function arguments (needs a buffer)")
                return TimingCache(memoryview(serialized_timing_cache))

            def set_timing_cache(self, cache, ignore_mismatch):
                self.timing_cache = cache
                return True

            def get_timing_cache(self):
                return self.timing_cache

        class Profile(object):
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, low, opt, high):
                self.shapes[name] = (low, opt, high)

        class Builder(object):
            max_batch_size = 1
            platform_has_fast_fp16 = fast_fp16
            platform_has_fast_int8 = fast_int8

            def __init__(self, logger):
                assert module.events == ["plugins"], "plugins must be initialised before the builder"
                self.logger = logger

            def create_network(self, flags):
                module.events.append(("network flags", flags))
                return Network()

            def create_builder_config(self):
                module.config = Config()
                return module.config

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                if while_building is not None:
                    while_building()
                if config.int8_calibrator is not None and "INT8" in config.flags:
                    module._calibrate(config.int8_calibrator, [name for name, _ in inputs])
                if fail_with is not None:
                    self.logger.log(type("Severity", (object,), {"name": "ERROR"})(), fail_with)
                    return None
                return b"PLAN-8.2:" + ",".join(config.flags).encode()

        class OnnxParser(object):
            def __init__(self, network, logger):
                self.num_errors = len(parse_errors)

            def parse_from_file(self, path):
                module.events.append(("parsed", path))
                return not parse_errors

            def get_error(self, index):
                return FakeParserError(*parse_errors[index])

        self.Builder = Builder
        self.OnnxParser = OnnxParser

    def init_libnvinfer_plugins(self, logger, namespace):
        self.events.append("plugins")

    def _trampoline(self, method, call, failed):
        try:
            return call()
        except FakeTrtTerminate:
            raise
        except BaseException as error:  # noqa: BLE001  pybind11 turns every Python exception into a C++ one
            if _version_tuple(self.__version__) < (8, 5):
                raise FakeTrtTerminate("terminate called after throwing an instance of "
                                       "'pybind11::error_already_set' in {}(): {}".format(method, error))
            self.stderr.append("[ERROR] Exception caught in {}(): {}".format(method, error))
            return failed

    def _calibrate(self, calibrator, names):
        """What the builder does with an IInt8EntropyCalibrator2: the cache, else batches until None."""
        if self._trampoline("read_calibration_cache", calibrator.read_calibration_cache, None):
            return
        while self.calibration_batches < 1000:
            pointers = self._trampoline("get_batch", lambda: calibrator.get_batch(names), None)
            if not pointers:
                break
            assert len(pointers) == len(names) and all(int(pointer) for pointer in pointers)
            self.calibration_batches += 1
        cache = memoryview(b"TRT-8201-EntropyCalibration2\ninput: 3c010a14\n")
        self._trampoline("write_calibration_cache", lambda: calibrator.write_calibration_cache(cache), None)
