"""On the GPU machine: what the node does, with real pycuda. The CUDA context and the pipeline are
made on one thread (the node's start), frames of changing sizes are processed on another (the
worker), many times. Device memory (cuMemGetInfo) must not grow and pycuda must not warn: a buffer
freed outside its context on the worker thread leaks with "... in out-of-thread context could not
be cleaned up" (inducer/pycuda src/cpp/cuda.hpp). tests/test_cuda_threads.py proves the same on
FakePycuda where no GPU is present; this runs only where pycuda and a GPU are (marked gpu).
"""
import threading
import warnings

import numpy as np
import pytest

from tests.support.gpu import require_gpu

SIZES = [(480, 640), (1080, 1920), (397, 512), (61, 97), (720, 1280), (300, 451)]
ROUNDS = 20
SLACK = 4 << 20      # the driver's own bookkeeping; one leaked 1080p frame alone is 6 MB


def device_free(context):
    import pycuda.driver as cuda
    with context.activate():
        return cuda.mem_get_info()[0]


@pytest.mark.gpu
@pytest.mark.parametrize("mapped", [False, True], ids=["copies", "mapped"])
def test_frames_of_changing_sizes_on_a_worker_thread_leak_nothing(tmp_path, capfd, mapped):
    require_gpu()
    pytest.importorskip("onnxruntime", reason="the network runs in ONNX Runtime on the GPU machine")
    from tests.test_pipeline import onnx_backend
    from tests.test_pipeline_gpu import CudaOnnxBackend, segmenter_spec
    from trt_infer.backends.cuda_buffers import CudaContext
    from trt_infer.pipeline import Pipeline

    context = CudaContext(0)                       # this thread: the node's start
    spec = segmenter_spec(width=64, height=32)
    pipeline = Pipeline(spec, CudaOnnxBackend(onnx_backend("segmenter", spec.input, tmp_path).path, context,
                                              mapped=mapped), processing="gpu")
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
    messages = [str(warning.message) for warning in caught]
    assert not [message for message in messages if "cleaned up" in message or "context" in message], messages
    assert free[0] - free[1] < SLACK, "device memory grew by {} bytes over {} rounds".format(free[0] - free[1],
                                                                                            ROUNDS - 2)
    err = capfd.readouterr().err
    assert "PyCUDA WARNING" not in err and "could not be cleaned up" not in err, err
