"""The CUDA context, streams and buffers on a real GPU; the auto CPU/GPU choice everywhere."""
import subprocess
import sys
import threading

import numpy as np
import pytest

from tests.support.gpu import require_gpu

INCREMENT = r"""
extern "C" __global__ void increment(float* values, int count)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) values[i] += 1.0f;
}
"""


def increment_on_device(context, buffer, stream):
    from pycuda.compiler import SourceModule
    kernel = context.cached(("test", "increment"), lambda: SourceModule(INCREMENT, no_extern_c=True)).get_function(
        "increment")
    with context.activate():
        kernel(np.intp(buffer.device_ptr), np.int32(buffer.host.size), block=(256, 1, 1),
               grid=((buffer.host.size + 255) // 256, 1), stream=stream.cuda_stream)


def test_importing_the_gpu_package_imports_no_pycuda():
    code = "import sys, trt_infer.cuda, trt_infer.cuda.kernels, trt_infer.backends.cuda_buffers; " \
           "print('pycuda' in sys.modules)"
    assert subprocess.check_output([sys.executable, "-c", code]).decode().strip() == "False"


def test_without_pycuda_the_message_names_the_parameter_to_set(monkeypatch):
    from trt_infer.backends import cuda_buffers
    from trt_infer.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    with pytest.raises(MissingDependencyError) as error:
        cuda_buffers._driver()
    message = str(error.value)
    # `preprocess` is no parameter of the node; backend is
    assert "pip3 install pycuda" in message and "-p backend:=onnxruntime" in message and "preprocess" not in message


def test_choose_processing_follows_the_request():
    from trt_infer.cuda import choose_processing, gpu_available
    assert choose_processing("cpu") == "cpu"
    assert choose_processing("auto") == ("gpu" if gpu_available() else "cpu")
    with pytest.raises(ValueError, match="allowed: auto, gpu, cpu"):
        choose_processing("tpu")
    if not gpu_available():
        with pytest.raises(ValueError, match="no CUDA device is usable"):
            choose_processing("gpu")


@pytest.mark.gpu
def test_context_reports_the_device(cuda_context):
    import pycuda.driver as cuda
    assert cuda_context.is_integrated() == bool(cuda.Device(0).get_attribute(cuda.device_attribute.INTEGRATED))
    assert cuda_context.mapped == cuda_context.is_integrated()
    assert cuda_context.name in repr(cuda_context)


@pytest.mark.gpu
@pytest.mark.parametrize("mapped", [False, True])
def test_buffer_round_trip_through_a_kernel(cuda_context, mapped):
    import pycuda.driver as cuda
    if mapped and not cuda.Device(0).get_attribute(cuda.device_attribute.CAN_MAP_HOST_MEMORY):
        pytest.skip("this GPU cannot map host memory")
    buffer = cuda_context.buffer((3, 5, 7), np.float32, mapped=mapped)
    assert buffer.mapped == mapped
    buffer.host[...] = np.arange(buffer.host.size, dtype=np.float32).reshape(buffer.host.shape)
    stream = cuda_context.stream()
    buffer.upload(stream)
    increment_on_device(cuda_context, buffer, stream)
    if not mapped:
        buffer.host[...] = -1  # the device copy is untouched by host writes until download
    buffer.download(stream)
    stream.synchronize()
    expected = np.arange(buffer.host.size, dtype=np.float32).reshape(buffer.host.shape) + 1
    np.testing.assert_array_equal(buffer.host, expected)


@pytest.mark.gpu
def test_mapped_buffer_is_shared_without_copies(cuda_context):
    import pycuda.driver as cuda
    if not cuda.Device(0).get_attribute(cuda.device_attribute.CAN_MAP_HOST_MEMORY):
        pytest.skip("this GPU cannot map host memory")
    buffer = cuda_context.buffer((1000,), np.float32, mapped=True)
    stream = cuda_context.stream()
    buffer.host[...] = 41
    increment_on_device(cuda_context, buffer, stream)  # no upload, no download
    stream.synchronize()
    assert (buffer.host == 42).all()
    with cuda_context.activate():
        on_device = np.empty_like(buffer.host)
        cuda.memcpy_dtoh(on_device, buffer.device_ptr)  # read through the device pointer
    assert (on_device == 42).all()


@pytest.mark.gpu
def test_any_thread_can_use_the_context(cuda_context):
    buffer = cuda_context.buffer((64,), np.float32)
    errors = []

    def work():
        try:
            stream = cuda_context.stream()
            buffer.host[...] = 1
            buffer.upload(stream)
            increment_on_device(cuda_context, buffer, stream)
            buffer.download(stream)
            stream.synchronize()
        except Exception as error:  # noqa: BLE001  reported below, in the test's thread
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors
    assert (buffer.host == 2).all()


@pytest.mark.gpu
def test_close_frees_everything_and_exit_is_clean():
    require_gpu()
    code = "\n".join([
        "import numpy as np, pycuda.driver as cuda",
        "from trt_infer.backends.cuda_buffers import CudaContext",
        "closed = CudaContext(0); closed.buffer((4,), np.float32); closed.close(); closed.close()",
        "try:\n    closed.activate().__enter__()\nexcept RuntimeError as e:\n    print('refused:', e)",
        "left_open = CudaContext(0); left_open.buffer((4,), np.float32, mapped=False)",
        "print('current after close:', cuda.Context.get_current())",
    ])
    run = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = run.communicate()
    out, err = out.decode(), err.decode()
    assert run.returncode == 0, err
    assert "refused: CUDA context" in out
    assert "current after close: None" in out
    assert "context stack was not empty" not in err and "PyCUDA WARNING" not in err, err
