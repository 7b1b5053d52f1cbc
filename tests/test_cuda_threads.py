"""The real CUDA layer (cuda_buffers, the GPU stages, the TensorRT backend) on FakePycuda, which
keeps pycuda's rules (tests/support/fake_tensorrt.py): allocations are freed under their own
context or leak with a warning when that context belongs to another thread, and TensorRT's objects
must go before the context they were made in. This is what the node does: the context is made on
the main thread, frames of changing sizes arrive on a worker thread.
"""
import gc
import logging
import threading
import warnings
import weakref

import numpy as np
import pytest

from tests.support.fake_tensorrt import FakePycuda, FakeTensor, FakeTrt10Engine, FakeTrt82Engine, FakeTrtModule
from trt_infer.spec import ModelSpec

SPEC = ModelSpec({"name": "seg", "task": "segmentation", "outputs": {"logits": "logits"},
                  "segmentation": {"activation": "argmax"},
                  "input": {"name": "image", "width": 32, "height": 16, "layout": "NCHW"}})
SIZES = [(48, 64), (30, 40), (48, 64), (61, 97), (30, 40), (61, 97)]


@pytest.fixture(params=[True, False], ids=["mapped", "copies"])
def pycuda(request, monkeypatch):
    from trt_infer.cuda import kernels

    fake = FakePycuda(integrated=request.param).install(monkeypatch)
    monkeypatch.setattr(kernels, "find_nvcc", lambda: fake.nvcc, raising=False)
    fake.nvcc_on_path = True
    return fake


def on_a_worker_thread(work):
    errors = []

    def run():
        try:
            work()
        except Exception as error:  # noqa: BLE001  re-raised in the test's thread
            errors.append(error)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
    if errors:
        raise errors[0]
    return [str(warning.message) for warning in caught]


def test_frames_of_changing_sizes_on_another_thread_free_what_they_replace(pycuda):
    from trt_infer.backends.cuda_buffers import CudaContext
    from trt_infer.cuda.preprocess import GpuPreprocessor
    from trt_infer.cuda.segmentation import GpuSegmentation

    context = CudaContext(0)                                  # made on this (the main) thread
    pre = GpuPreprocessor(SPEC.input, context)
    post = GpuSegmentation(SPEC, context, pre.stream)
    free = []

    def frames():
        for _ in range(3):
            for height, width in SIZES:
                transform = pre(np.zeros((height, width, 3), np.uint8))
                post.segment(np.zeros((1, 2, 16, 32), np.float32), transform)
            free.append(pycuda.mem_get_info()[0])

    messages = on_a_worker_thread(frames)
    assert messages == [] and pycuda.leaked == []
    assert free[0] == free[1] == free[2]                      # nothing grows with the changes of size
    assert len(context._buffers) <= 8                         # replaced buffers are not kept either
    context.close()
    assert pycuda.exit_problems() == []


def dynamic_engine(engine_class):
    return engine_class([FakeTensor("image", True, (1, 3, 16, 32)), FakeTensor("logits", False, (1, 2, 16, 32))],
                        lambda inputs: {"logits": inputs["image"][:, :2]})


@pytest.mark.parametrize("engine_class, version", [(FakeTrt82Engine, "8.2.1.8"), (FakeTrt10Engine, "10.3.0.30")])
def test_the_exit_hook_releases_an_unclosed_backends_tensorrt_objects_first(tmp_path, pycuda, engine_class,
                                                                             version):
    from tests.test_tensorrt_backend import write_engine
    from trt_infer.backends import cuda_buffers
    from trt_infer.backends.tensorrt_backend import TensorRTBackend

    trt = FakeTrtModule(dynamic_engine(engine_class), version,
                        context_alive=lambda: pycuda.current() is not None and pycuda.current().valid)
    backend = TensorRTBackend(write_engine(tmp_path, trt), trt_module=trt)
    context = backend.cuda_context
    cuda_buffers._close_at_exit(weakref.ref(context))        # what atexit runs, the backend still open
    del backend
    gc.collect()
    assert ("runtime", True) in trt.released and ("execution context", True) in trt.released
    assert all(alive for _, alive in trt.released) and context.closed
    assert pycuda.exit_problems() == [] and pycuda.leaked == []


# --- nvcc: pycuda compiles the kernels with nvcc, which JetPack puts in /usr/local/cuda/bin -------

def fake_backend(tmp_path):
    from tests.test_tensorrt_backend import write_engine
    from trt_infer.backends.tensorrt_backend import TensorRTBackend

    trt = FakeTrtModule(dynamic_engine(FakeTrt10Engine), "10.3.0.30", context_alive=lambda: True)
    return TensorRTBackend(write_engine(tmp_path, trt), trt_module=trt, check_sidecar=False)


@pytest.fixture
def no_nvcc_anywhere(tmp_path, monkeypatch):
    from trt_infer.cuda import kernels

    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setattr(kernels, "JETPACK_CUDA_HOME", str(tmp_path / "no-cuda"), raising=False)


def test_auto_falls_back_to_the_cpu_with_one_warning_naming_nvcc_and_cuda_home(tmp_path, monkeypatch,
                                                                               no_nvcc_anywhere, caplog):
    from trt_infer.pipeline import Pipeline

    FakePycuda(integrated=True, nvcc=None).install(monkeypatch)
    backend = fake_backend(tmp_path)
    with caplog.at_level(logging.WARNING):
        pipeline = Pipeline(SPEC, backend, processing="auto")
    assert pipeline.processing == "cpu"
    (record,) = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert record.levelno == logging.WARNING and "nvcc" in record.getMessage() \
        and "CUDA_HOME" in record.getMessage() and "/usr/local/cuda/bin" in record.getMessage()
    backend.close()


def test_gpu_without_nvcc_is_a_setting_error_naming_nvcc(tmp_path, monkeypatch, no_nvcc_anywhere):
    from trt_infer.errors import SettingError
    from trt_infer.pipeline import Pipeline

    FakePycuda(integrated=True, nvcc=None).install(monkeypatch)
    backend = fake_backend(tmp_path)
    with pytest.raises(SettingError, match="processing 'gpu' was requested but nvcc .*CUDA_HOME"):
        Pipeline(SPEC, backend, processing="gpu")
    backend.close()


def test_nvcc_under_cuda_home_is_found_off_the_path(tmp_path, monkeypatch, no_nvcc_anywhere):
    import os

    from trt_infer.pipeline import Pipeline

    nvcc = tmp_path / "cuda" / "bin" / "nvcc"
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text(u"#!/bin/sh\n")
    os.chmod(str(nvcc), 0o755)
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "cuda"))
    pycuda = FakePycuda(integrated=True, nvcc=str(nvcc)).install(monkeypatch)
    backend = fake_backend(tmp_path)
    pipeline = Pipeline(SPEC, backend, processing="auto")
    assert pipeline.processing == "gpu" and set(pycuda.compiled) == {str(nvcc)}
    backend.close()
