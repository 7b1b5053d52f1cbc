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


class _FakeContextBase(object):
    def __init__(self, engine):
        self._engine = engine
        self._shapes = dict((t.name, t.shape) for t in engine.tensors)
        self.executions = 0

    def _run(self, pointers, stream_handle):
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
    """TensorRT 8.2 IExecutionContext: bindings by index, execute_async_v2."""

    def set_binding_shape(self, index, shape):
        self._shapes[self._engine.tensors[index].name] = tuple(shape)
        return True

    def get_binding_shape(self, index):
        return _resolve(self._engine.tensors, self._shapes)[self._engine.tensors[index].name]

    def execute_async_v2(self, bindings, stream_handle):
        return self._run(dict((t.name, bindings[i]) for i, t in enumerate(self._engine.tensors)), stream_handle)


class FakeTrt10Context(_FakeContextBase):
    """TensorRT >= 8.5 / 10 IExecutionContext: tensors by name, execute_async_v3."""

    def __init__(self, engine):
        super(FakeTrt10Context, self).__init__(engine)
        self._addresses = {}

    def set_input_shape(self, name, shape):
        self._shapes[name] = tuple(shape)
        return True

    def get_tensor_shape(self, name):
        return _resolve(self._engine.tensors, self._shapes)[name]

    def set_tensor_address(self, name, pointer):
        self._addresses[name] = pointer
        return True

    def execute_async_v3(self, stream_handle):
        return self._run(self._addresses, stream_handle)


class _FakeEngineBase(object):
    DTYPES = ()

    def __init__(self, tensors, compute, cuda=None):
        for tensor in tensors:
            assert tensor.dtype in self.DTYPES, "{} has no DataType.{}".format(type(self).__name__, tensor.dtype)
        self.tensors = list(tensors)
        self.compute = compute
        self.cuda = cuda
        self.num_optimization_profiles = 1

    def _dtype(self, tensor):
        return _Member(tensor.dtype)


class FakeTrt82Engine(_FakeEngineBase):
    """TensorRT 8.2 ICudaEngine: num_bindings, get_binding_*, binding_is_input, get_profile_shape."""

    DTYPES = TRT82_DTYPES

    @property
    def num_bindings(self):
        return len(self.tensors)

    def get_binding_name(self, index):
        return self.tensors[index].name

    def binding_is_input(self, index):
        return self.tensors[index].is_input

    def get_binding_shape(self, index):
        return self.tensors[index].shape

    def get_binding_dtype(self, index):
        return self._dtype(self.tensors[index])

    def get_profile_shape(self, profile, index):
        assert profile == 0 and isinstance(index, int)
        return self.tensors[index].profile

    def create_execution_context(self):
        return FakeTrt82Context(self)


class FakeTrt10Engine(_FakeEngineBase):
    """TensorRT 10 ICudaEngine: num_io_tensors, get_tensor_*, get_tensor_profile_shape(name, profile)."""

    DTYPES = TRT10_DTYPES

    def _by_name(self, name):
        return next(t for t in self.tensors if t.name == name)

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
        assert profile == 0 and isinstance(name, str)
        return self._by_name(name).profile

    def create_execution_context(self):
        return FakeTrt10Context(self)


class FakeTrtModule(object):
    """A `tensorrt` module stand-in whose Runtime deserializes one known blob into `engine`."""

    BLOB = b"FAKE-TENSORRT-PLAN"

    def __init__(self, engine, version):
        self.__name__ = "fake_tensorrt"
        self.__version__ = version
        self.engine = engine
        self.plugin_inits = 0
        self.DataType = _enum(type(engine).DTYPES)
        self.released = []
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
                module.released.append(("runtime", module.engine.cuda.active_context() is not None))

        self.Logger = Logger
        self.Runtime = Runtime

    def init_libnvinfer_plugins(self, logger, namespace):
        self.plugin_inits += 1
        return True


class FakeCudaContext(object):
    """Mirrors cuda_buffers.CudaContext: activate() push/pop per thread, buffer(), stream(), close()."""

    def __init__(self, cuda, device_index=0, mapped=None):
        self.cuda = cuda
        self.name = cuda.gpu_name
        self.compute_capability = cuda.compute_capability
        self.mapped = cuda.integrated if mapped is None else bool(mapped)
        self.closed = False
        self.buffers = []

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

    def buffer(self, shape, dtype, mapped=None):
        with self.activate():
            buffer = FakeBuffer(self.cuda, shape, dtype, self.mapped if mapped is None else mapped)
        self.buffers.append(buffer)
        return buffer

    def stream(self):
        with self.activate():
            return FakeStream(self.cuda)

    def close(self):
        if self.closed:
            return
        with self.activate():
            for buffer in self.buffers:
                buffer.free()
        self.buffers = []
        self.closed = True


class FakeBuffer(object):
    def __init__(self, cuda, shape, dtype, mapped):
        assert cuda.active_context() is not None, "allocation outside an active CUDA context"
        self.cuda = cuda
        self.host = np.zeros(shape, dtype)
        self.mapped = mapped
        self.device = self.host if mapped else np.zeros(shape, dtype)
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

    def free(self):
        if self.cuda.active_context() is None:
            self.cuda.freed_outside_context += 1
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

    def active_context(self):
        stack = self.stacks.get(threading.current_thread().ident)
        return stack[-1] if stack else None

    def CudaContext(self, device_index=0, mapped=None):
        context = FakeCudaContext(self, device_index, mapped)
        self.contexts.append(context)
        return context
