"""On the GPU machine: what the node does, with real pycuda. The CUDA context and the pipeline are
made on one thread (the node's start), frames of changing sizes are processed on another (the
worker), many times. Device memory (cuMemGetInfo) must not grow and pycuda must not warn: a buffer
freed outside its context on the worker thread leaks with "... in out-of-thread context could not
be cleaned up" (inducer/pycuda src/cpp/cuda.hpp). The gpu-marked test runs only where pycuda and a
GPU are; the same check also runs on FakePycuda everywhere else.
"""
import threading
import warnings

import numpy as np
import pytest

from tests.support.gpu import DeviceBufferBackend, require_gpu
from trt_infer.backends import Backend, TensorInfo

SIZES = [(480, 640), (1080, 1920), (397, 512), (61, 97), (720, 1280), (300, 451)]
ROUNDS = 20
SLACK = 4 << 20      # the driver's own bookkeeping; one leaked 1080p frame alone is 6 MB


class CudaTransposeBackend(DeviceBufferBackend, Backend):
    """A backend with real pycuda device buffers (the TensorRTBackend device-buffer API) whose network is
    numpy: logits = the NHWC input as NCHW, read from and written back to the device. Needs neither
    TensorRT nor onnx, which the GPU machine lacks."""

    def __init__(self, spec, context, mapped):
        height, width = spec.input.height, spec.input.width
        self.path = "transpose-network"
        self.inputs = [TensorInfo("image", (1, height, width, 3), np.float32)]
        self.outputs = [TensorInfo("logits", (1, 3, height, width), np.float32)]
        self._make_buffers(context, mapped)

    def infer(self, inputs=None, input_on_device=False, keep_on_device=()):
        image, logits = self.buffers["image"], self.buffers["logits"]
        image.download(self.stream)
        self.stream.synchronize()
        np.copyto(logits.host, image.host.transpose(0, 3, 1, 2))
        logits.upload(self.stream)
        self.stream.synchronize()
        return {"logits": logits if "logits" in keep_on_device else logits.host}


def device_free(context):
    import pycuda.driver as cuda
    with context.activate():
        return cuda.mem_get_info()[0]


def check_frames_on_a_worker_thread(mapped):
    """The node's threading with the real CUDA layer: returns nothing, fails on a leak or a warning."""
    from tests.test_pipeline_gpu import segmenter_spec
    from trt_infer.backends.cuda_buffers import CudaContext
    from trt_infer.cuda.segmentation import GpuSegmentation
    from trt_infer.pipeline import Pipeline

    context = CudaContext(0)                       # this thread: the node's start
    spec = segmenter_spec(width=64, height=32)
    pipeline = Pipeline(spec, CudaTransposeBackend(spec, context, mapped), processing="gpu")
    assert pipeline.processing == "gpu" and isinstance(pipeline.postprocess, GpuSegmentation)
    rng = np.random.RandomState(5)
    images = [rng.randint(0, 256, size + (3,)).astype(np.uint8) for size in SIZES]
    free, errors, shapes = [], [], []

    def worker():
        try:
            for round_index in range(ROUNDS):
                for image in images:
                    shapes.append(pipeline(image).image_mask.shape == image.shape[:2])
                if round_index in (1, ROUNDS - 1):    # after a warm-up round, and at the end
                    free.append(device_free(context))
        except Exception as error:  # noqa: BLE001  re-raised in the test's thread
            errors.append(error)

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            thread = threading.Thread(target=worker, name="frames")
            thread.start()
            thread.join()
    finally:
        context.close()                            # back on the first thread, as at the node's exit
    if errors:
        raise errors[0]
    assert all(shapes) and len(shapes) == ROUNDS * len(SIZES)
    leaks = [str(warning.message) for warning in caught if "context" in str(warning.message)]
    assert not leaks, "{} pycuda warnings, the first: {}".format(len(leaks), leaks[0])
    assert free[0] - free[1] < SLACK, "device memory grew by {} bytes over {} rounds".format(free[0] - free[1],
                                                                                            ROUNDS - 2)


@pytest.mark.gpu
@pytest.mark.parametrize("mapped", [False, True], ids=["copies", "mapped"])
def test_frames_of_changing_sizes_on_a_worker_thread_leak_nothing(capfd, mapped):
    require_gpu()
    check_frames_on_a_worker_thread(mapped)
    err = capfd.readouterr().err
    assert "PyCUDA WARNING" not in err and "could not be cleaned up" not in err, err


@pytest.mark.parametrize("mapped", [False, True], ids=["copies", "mapped"])
def test_the_same_check_on_fake_pycuda(monkeypatch, mapped):
    """Where no GPU is: the check itself runs, on FakePycuda's rules (it failed on the unfixed stages)."""
    from tests.support.fake_tensorrt import FakePycuda
    from trt_infer.cuda import kernels

    fake = FakePycuda(integrated=mapped).install(monkeypatch)
    fake.nvcc_on_path = True
    monkeypatch.setattr(kernels, "find_nvcc", lambda: "nvcc")
    check_frames_on_a_worker_thread(mapped)
    assert fake.leaked == [] and fake.exit_problems() == [] and len(fake.launches) == ROUNDS * len(SIZES) * 3
