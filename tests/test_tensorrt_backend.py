"""TensorRTBackend: buffers, copies, context push/pop, dynamic shapes, sidecar and corrupt-engine errors.

Where pycuda and TensorRT execution cannot exist (here), FakeCuda and the FakeTrt82/FakeTrt10
engines stand in: they prove the backend's bookkeeping, not TensorRT. The real-TensorRT test at
the end runs only where `tensorrt` imports and a GPU is present; the corrupt-engine test uses
TensorRT-RTX's real deserializer.
"""
import logging
import os
import threading

import numpy as np
import pytest

from tests.support.fake_tensorrt import (FakeCuda, FakeTensor, FakeTrt10Engine, FakeTrt82Engine,
                                         FakeTrtModule)
from trt_infer.backends import load_backend
from trt_infer.backends.tensorrt_backend import EngineLoadError, TensorRTBackend
from trt_infer.engine import cache as engine_cache

GENERATIONS = [(FakeTrt82Engine, "8.2.1.8"), (FakeTrt10Engine, "10.3.0.30")]
NANO = {"name": "NVIDIA Tegra X1", "compute_capability": "5.3"}


def tensors(ids_dtype):
    return [FakeTensor("boxes", False, (1, 4, 4)),
            FakeTensor("image", True, (1, 2, 4, 3)),
            FakeTensor("ids", True, (1, 4), ids_dtype),
            FakeTensor("total", False, (1, 4), ids_dtype)]


def compute(inputs):
    return {"boxes": inputs["image"].reshape(1, 4, 6)[:, :, :4] * 10.0,
            "total": inputs["ids"] + 1}


def write_engine(folder, trt, gpu=NANO, engine_bytes=None):
    path = str(folder / "model.engine")
    parts = engine_cache.key_parts("0" * 64, trt.__version__, gpu, "fp16", {"image": [1, 2, 4, 3]})
    sidecar = engine_cache.make_sidecar(parts, {"precision": "fp16", "workspace_mib": 256}, onnx_path="model.onnx")
    engine_cache.write_engine(path, FakeTrtModule.BLOB, sidecar)
    return path


def make(tmp_path, engine_class=FakeTrt10Engine, version="10.3.0.30", integrated=True, ids="INT32", **kwargs):
    cuda = FakeCuda(integrated=integrated)
    trt = FakeTrtModule(engine_class(tensors(ids), compute, cuda), version)
    path = write_engine(tmp_path, trt)
    return TensorRTBackend(path, trt_module=trt, cuda=cuda, **kwargs), trt, cuda


@pytest.mark.parametrize("engine_class, version", GENERATIONS)
@pytest.mark.parametrize("integrated", [True, False], ids=["mapped", "copies"])
def test_infer_on_both_generations_mapped_and_copied(tmp_path, engine_class, version, integrated):
    backend, trt, cuda = make(tmp_path, engine_class, version, integrated)
    assert [info.name for info in backend.inputs] == ["image", "ids"]
    assert [(info.name, info.shape, info.dtype) for info in backend.outputs] == [
        ("boxes", (1, 4, 4), np.float32), ("total", (1, 4), np.int32)]
    assert backend.mapped is integrated and trt.plugin_inits == 1
    image = np.random.RandomState(1).rand(1, 2, 4, 3).astype(np.float32)
    backend.input_buffer("image")[...] = image           # how the pre-processor writes
    outputs = backend.infer({"ids": np.array([[3, 1, 4, 1]], np.int32)})
    np.testing.assert_allclose(outputs["boxes"], image.reshape(1, 4, 6)[:, :, :4] * 10.0, rtol=1e-6)
    np.testing.assert_array_equal(outputs["total"], [[4, 2, 5, 2]])
    kinds = [entry[0] for entry in cuda.stream_log]
    assert kinds == (["execute", "sync"] if integrated else ["htod", "htod", "execute", "dtoh", "dtoh", "sync"])
    assert len(set(entry[1] for entry in cuda.stream_log)) == 1      # one stream for everything
    backend.close()


@pytest.mark.parametrize("engine_class, version", GENERATIONS)
def test_device_input_is_used_as_written_and_kept_outputs_stay_on_the_device(tmp_path, engine_class, version):
    backend, _, cuda = make(tmp_path, engine_class, version, integrated=False)
    assert backend.cuda_context is cuda.contexts[0]
    image = np.random.RandomState(2).rand(1, 2, 4, 3).astype(np.float32)
    device_image = backend.device_input("image")
    cuda.device_memory[device_image.device_ptr][...] = image   # as a GPU pre-processor writes it
    cuda.device_memory[backend.device_input("ids").device_ptr][...] = 7
    outputs = backend.infer(input_on_device=True, keep_on_device=["boxes"])
    assert outputs["boxes"] is backend.device_output("boxes")
    np.testing.assert_allclose(cuda.device_memory[outputs["boxes"].device_ptr],
                               image.reshape(1, 4, 6)[:, :, :4] * 10.0, rtol=1e-6)
    assert not outputs["boxes"].host.any()                     # not downloaded
    np.testing.assert_array_equal(outputs["total"], 8)
    assert not backend.input_buffer("image").any()             # the host input was never involved
    assert cuda.stream_log == [("execute", backend.stream.handle), ("dtoh", backend.stream.handle),
                               ("sync", backend.stream.handle)]


def test_device_options_are_checked(tmp_path):
    backend, _, _ = make(tmp_path, integrated=False)
    with pytest.raises(ValueError,
                       match=r"infer\(input_on_device=True\) runs on what is already in the device buffers"):
        backend.infer({"ids": np.ones((1, 4), np.int32)}, input_on_device=True)
    with pytest.raises(KeyError, match="no output named 'logits'"):
        backend.infer(keep_on_device=["logits"])
    with pytest.raises(KeyError, match="no input named 'boxes'"):
        backend.device_input("boxes")
    backend.close()
    assert backend.cuda_context is None
    with pytest.raises(RuntimeError, match="closed"):
        backend.device_output("boxes")


def test_buffers_are_allocated_once(tmp_path):
    backend, _, cuda = make(tmp_path)
    buffers = len(cuda.contexts[0].buffers)
    first = backend.infer()
    second = backend.infer()
    assert len(cuda.contexts[0].buffers) == buffers == 4
    assert first["boxes"] is second["boxes"] is backend._buffers["boxes"].host


def test_on_integrated_gpus_outputs_the_cpu_reads_are_cached_copies_of_the_mapped_pages(tmp_path):
    backend, _, cuda = make(tmp_path, integrated=True)
    assert backend.mapped
    image = backend.input_buffer("image")
    assert image is cuda.device_memory[backend.device_input("image").device_ptr]   # inputs: plainly mapped
    image[...] = 1.5
    outputs = backend.infer()
    mapped_pages = cuda.device_memory[backend.device_output("boxes").device_ptr]
    assert not np.shares_memory(outputs["boxes"], mapped_pages)
    np.testing.assert_array_equal(outputs["boxes"], mapped_pages)
    assert (outputs["boxes"] == 15.0).all()
    assert [entry[0] for entry in cuda.stream_log] == ["execute", "sync"]    # no extra copy on the stream


def test_int64_data_goes_into_a_tensorrt_8_int32_binding(tmp_path):
    backend, _, _ = make(tmp_path, FakeTrt82Engine, "8.2.1.8")
    assert backend.input_info("ids").dtype == np.int32
    outputs = backend.infer({"ids": np.array([[5, 6, 7, 8]], np.int64)})
    np.testing.assert_array_equal(outputs["total"], [[6, 7, 8, 9]])


def test_tensorrt_10_keeps_int64(tmp_path):
    backend, _, _ = make(tmp_path, FakeTrt10Engine, ids="INT64")
    assert backend.input_info("ids").dtype == np.int64
    np.testing.assert_array_equal(backend.infer({"ids": np.full((1, 4), 2 ** 40, np.int64)})["total"], 2 ** 40 + 1)


def test_wrong_input_dtype_shape_or_name_is_a_clear_error(tmp_path):
    backend, _, _ = make(tmp_path)
    with pytest.raises(TypeError, match="input 'image': got float64 data, the engine expects float32"):
        backend.infer({"image": np.zeros((1, 2, 4, 3))})
    with pytest.raises(ValueError, match=r"input 'image': got shape \(2, 4, 3\), the engine expects \(1, 2, 4, 3\)"):
        backend.infer({"image": np.zeros((2, 4, 3), np.float32)})
    with pytest.raises(KeyError, match="no input named 'images'"):
        backend.infer({"images": np.zeros((1, 2, 4, 3), np.float32)})


def test_any_thread_can_call_and_the_context_is_pushed_only_around_calls(tmp_path):
    backend, _, cuda = make(tmp_path, integrated=False)
    results = []
    worker = threading.Thread(target=lambda: results.append(backend.infer({"ids": np.ones((1, 4), np.int32)})))
    worker.start()
    worker.join()
    np.testing.assert_array_equal(results[0]["total"], 2)      # the fake asserts an active context at execute
    assert cuda.active_context() is None and all(not stack for stack in cuda.stacks.values())


def test_close_releases_everything_inside_the_context_once(tmp_path):
    backend, trt, cuda = make(tmp_path, integrated=False)
    backend.infer()
    backend.close()
    backend.close()
    assert cuda.contexts[0].closed and cuda.device_memory == {}
    assert cuda.freed_outside_context == 0
    # the execution context, then the runtime went away while the context was current
    assert trt.released == [("execution context", True), ("runtime", True)]
    with pytest.raises(RuntimeError, match="closed"):
        backend.infer()


dynamic = [FakeTensor("images", True, (1, 3, -1, -1), profile=((1, 3, 64, 64), (1, 3, 256, 192), (1, 3, 512, 512))),
           FakeTensor("logits", False, (1, 3, -1, -1))]


@pytest.mark.parametrize("engine_class, version", GENERATIONS)
def test_dynamic_input_uses_the_profiles_opt_shape_or_the_spec(tmp_path, engine_class, version):
    from trt_infer.spec import ModelSpec

    cuda = FakeCuda(integrated=True)
    trt = FakeTrtModule(engine_class(dynamic, lambda inputs: {"logits": inputs["images"] * 2}, cuda), version)
    path = write_engine(tmp_path, trt)
    backend = TensorRTBackend(path, trt_module=trt, cuda=cuda)
    assert backend.input_info("images").shape == (1, 3, 256, 192)
    assert backend.output_info("logits").shape == (1, 3, 256, 192)
    spec = ModelSpec({"name": "seg", "task": "classification", "outputs": {"scores": "logits"},
                      "input": {"name": "images", "width": 320, "height": 160, "layout": "NCHW"}})
    backend = TensorRTBackend(path, trt_module=trt, cuda=cuda, spec=spec)
    assert backend.output_info("logits").shape == (1, 3, 160, 320)
    assert backend.infer({"images": np.ones((1, 3, 160, 320), np.float32)})["logits"].sum() == 2 * 3 * 160 * 320


TWO_PROFILES = [{"images": ((1, 3, 64, 64), (1, 3, 128, 128), (1, 3, 128, 128))},
                {"images": ((1, 3, 256, 256), (1, 3, 320, 320), (1, 3, 512, 512))}]


def two_profile_backend(tmp_path, engine_class, version, width, integrated=False):
    from trt_infer.spec import ModelSpec

    cuda = FakeCuda(integrated=integrated)
    engine = engine_class(dynamic, lambda inputs: {"logits": inputs["images"] * 2}, cuda, profiles=TWO_PROFILES)
    trt = FakeTrtModule(engine, version)
    spec = ModelSpec({"name": "seg", "task": "classification", "outputs": {"scores": "logits"},
                      "input": {"name": "images", "width": width, "height": width, "layout": "NCHW"}})
    return TensorRTBackend(write_engine(tmp_path, trt), trt_module=trt, cuda=cuda, spec=spec), engine


@pytest.mark.parametrize("engine_class, version", GENERATIONS)
@pytest.mark.parametrize("width, profile", [(96, 0), (320, 1)])
def test_an_engine_with_several_profiles_selects_the_one_that_fits(tmp_path, engine_class, version, width,
                                                                   profile):
    backend, engine = two_profile_backend(tmp_path, engine_class, version, width)
    assert backend.input_info("images").shape == (1, 3, width, width)
    assert backend._exec_context.profile == profile
    if engine_class is FakeTrt82Engine:   # profile k's bindings follow the others'; their names carry the profile
        assert [t.index for t in backend._tensors] == [2 * profile, 2 * profile + 1]
        assert engine.get_binding_name(2) == "images [profile 1]"
        assert [t.name for t in backend._tensors] == ["images", "logits"]
    outputs = backend.infer({"images": np.ones((1, 3, width, width), np.float32)})
    assert outputs["logits"].shape == (1, 3, width, width) and outputs["logits"].sum() == 2 * 3 * width * width
    backend.close()


def test_a_shape_no_profile_covers_names_the_profiles(tmp_path):
    with pytest.raises(ValueError, match=r"refused shape \(1, 3, 200, 200\) for input 'images'"):
        two_profile_backend(tmp_path, FakeTrt82Engine, "8.2.1.8", 200)


def test_a_corrupt_engine_is_a_clear_error_and_leaks_no_context(tmp_path):
    cuda = FakeCuda(integrated=True)
    trt = FakeTrtModule(FakeTrt10Engine(tensors("INT32"), compute, cuda), "10.3.0.30")
    path = write_engine(tmp_path, trt)
    with open(path, "wb") as handle:
        handle.write(b"FAKE-TENSORRT-PLAM")         # same size, one byte flipped: the sidecar cannot tell
    with pytest.raises(EngineLoadError) as error:
        TensorRTBackend(path, trt_module=trt, cuda=cuda)
    message = str(error.value)
    assert path in message and "18 bytes" in message and "corrupt" in message
    assert "ros2 run trt_infer convert build model.onnx -o {} --precision fp16 --workspace 256".format(path) in message
    assert cuda.contexts[0].closed


def test_a_truncated_engine_is_caught_from_its_sidecar_before_deserializing(tmp_path):
    backend, trt, cuda = make(tmp_path)
    backend.close()
    with open(backend.path, "r+b") as handle:
        handle.truncate(7)
    trt.engine = None          # the deserializer must not even be asked
    with pytest.raises(EngineLoadError, match=r"7 bytes; truncated: its sidecar records 18 bytes"):
        TensorRTBackend(backend.path, trt_module=trt, cuda=cuda)


def test_an_engine_from_another_tensorrt_or_gpu_is_refused_with_the_rebuild_command(tmp_path):
    cuda = FakeCuda(integrated=False, gpu_name="NVIDIA GeForce RTX 3060", compute_capability=(8, 6))
    trt = FakeTrtModule(FakeTrt10Engine(tensors("INT32"), compute, cuda), "10.3.0.30")
    path = write_engine(tmp_path, trt)               # built for the Nano's GPU
    with pytest.raises(engine_cache.EngineMismatchError) as error:
        TensorRTBackend(path, trt_module=trt, cuda=cuda)
    message = str(error.value)
    assert "NVIDIA Tegra X1" in message and "NVIDIA GeForce RTX 3060" in message and "8.6" in message
    assert "ros2 run trt_infer convert build model.onnx -o " + path in message
    assert cuda.contexts[0].closed


def test_a_missing_sidecar_is_a_warning_not_a_silent_pass(tmp_path, caplog):
    backend, trt, cuda = make(tmp_path)
    backend.close()
    os.remove(engine_cache.sidecar_path(backend.path))
    TensorRTBackend(backend.path, trt_module=trt, cuda=cuda).close()
    assert [(record.levelno, "no sidecar" in record.getMessage()) for record in caplog.records] == [
        (logging.WARNING, True)]


def test_load_backend_picks_this_backend_for_engine_files(tmp_path):
    cuda = FakeCuda(integrated=True)
    trt = FakeTrtModule(FakeTrt82Engine(tensors("INT32"), compute, cuda), "8.2.1.8")
    backend = load_backend(write_engine(tmp_path, trt), trt_module=trt, cuda=cuda)
    assert isinstance(backend, TensorRTBackend) and backend.input_info("image").shape == (1, 2, 4, 3)


def test_tensorrt_rtx_deserializer_rejects_a_truncated_plan_cleanly(tmp_path):
    """A real TensorRT-family deserializer (TensorRT-RTX) on a real, truncated plan returns None:
    the backend turns that into EngineLoadError. (RTX cannot run engines here, so the fake CUDA
    context stands in; this proves the error path, not execution.)"""
    trt = pytest.importorskip("tensorrt_rtx_bindings", reason="TensorRT-RTX bindings are not installed here")
    from tests.test_build_rtx import tiny_onnx
    from trt_infer.engine.build import build_engine

    engine = str(tmp_path / "tiny.engine")
    build_engine(tiny_onnx(tmp_path), engine, trt_module=trt)
    with open(engine, "r+b") as handle:
        handle.truncate(1000)
    with pytest.raises(EngineLoadError, match="1000 bytes; TensorRT's deserializer returned nothing"):
        TensorRTBackend(engine, trt_module=trt, cuda=FakeCuda(integrated=False), check_sidecar=False)


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_real_tensorrt_engine_matches_onnxruntime(tmp_path):
    pytest.importorskip("tensorrt", reason="needs the real tensorrt package (JetPack / TensorRT wheel)")
    pytest.importorskip("pycuda.driver", reason="needs pycuda and a GPU")
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs onnxruntime as the reference")
    from tests.test_build_rtx import tiny_onnx
    from trt_infer.engine.build import build_engine

    onnx_path = tiny_onnx(tmp_path)
    engine = str(tmp_path / "tiny.engine")
    build_engine(onnx_path, engine, precision="fp32")
    image = np.random.RandomState(0).rand(1, 3, 32, 32).astype(np.float32)
    reference = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"]).run(None, {"image": image})
    with TensorRTBackend(engine) as backend:
        for _ in range(2):
            outputs = backend.infer({"image": image})
            np.testing.assert_allclose(outputs[backend.outputs[0].name], reference[0], rtol=1e-3, atol=1e-4)
