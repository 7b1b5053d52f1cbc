"""The TensorRT API adapter's branching on both generations.

FakeTrt82Engine / FakeTrt10Engine prove which methods each path calls (a 10-only method on the
8.2 fake is an AttributeError), not TensorRT. Builder helpers are also run against the real
TensorRT-RTX module (TensorRT 10 API) where it is installed.
"""
import numpy as np
import pytest

from tests.support.fake_tensorrt import FakeCuda, FakeTensor, FakeTrt10Engine, FakeTrt82Engine
from trt_infer.backends import tensorrt_api

GENERATIONS = [FakeTrt82Engine, FakeTrt10Engine]


def detector_tensors():
    # An output declared before the input: binding order must come from the engine, not from roles.
    return [
        FakeTensor("scores", False, (1, 896, 1)),
        FakeTensor("input", True, (1, 128, 128, 3)),
        FakeTensor("ids", False, (1, 896), "INT32"),
    ]


def compute(inputs):
    image = inputs["input"]
    return {"scores": image.reshape(1, -1, 1)[:, :896] * 2.0 + 1.0,
            "ids": np.arange(896, dtype=np.int32).reshape(1, 896) + int(image.flat[0])}


@pytest.mark.parametrize("engine_class", GENERATIONS)
def test_io_tensors_lists_inputs_and_outputs_in_engine_order(engine_class):
    tensors = tensorrt_api.io_tensors(engine_class(detector_tensors(), compute))
    assert [(t.name, t.index, t.is_input, t.shape) for t in tensors] == [
        ("scores", 0, False, (1, 896, 1)), ("input", 1, True, (1, 128, 128, 3)), ("ids", 2, False, (1, 896))]
    assert [t.dtype for t in tensors] == [np.float32, np.float32, np.int32]


def test_the_fakes_only_have_their_generations_methods():
    old = FakeTrt82Engine(detector_tensors(), compute)
    new = FakeTrt10Engine(detector_tensors(), compute)
    assert not tensorrt_api.uses_tensor_api(old) and tensorrt_api.uses_tensor_api(new)
    with pytest.raises(AttributeError):
        old.get_tensor_name(0)
    with pytest.raises(AttributeError):
        new.get_binding_name(0)
    with pytest.raises(AttributeError):
        old.create_execution_context().execute_async_v3(0)
    with pytest.raises(AssertionError, match="no DataType.INT64"):
        FakeTrt82Engine([FakeTensor("ids", True, (1, 4), "INT64")], compute)


@pytest.mark.parametrize("name, expected", [("FLOAT", np.float32), ("HALF", np.float16), ("INT8", np.int8),
                                            ("INT32", np.int32), ("INT64", np.int64), ("UINT8", np.uint8),
                                            ("BOOL", np.bool_)])
def test_numpy_dtype_by_member_name(name, expected):
    member = type("Member", (object,), {"name": name})()
    assert tensorrt_api.numpy_dtype(member) == np.dtype(expected)


def test_numpy_dtype_names_the_unsupported_type():
    with pytest.raises(TypeError, match="FP8 has no numpy equivalent"):
        tensorrt_api.numpy_dtype(type("Member", (object,), {"name": "FP8"})())


def test_int64_data_is_narrowed_only_into_int32_bindings():
    assert tensorrt_api.host_dtype_for(np.int64, np.int32) == np.int32      # TensorRT 8.x INT64 I/O
    assert tensorrt_api.host_dtype_for(np.int64, np.int64) == np.int64      # TensorRT >= 9
    assert tensorrt_api.host_dtype_for(np.float64, np.float32) is None
    assert tensorrt_api.host_dtype_for(np.float32, np.float16) is None


def dynamic_tensors():
    return [FakeTensor("images", True, (-1, 3, -1, -1), profile=((1, 3, 64, 64), (1, 3, 320, 320), (4, 3, 640, 640))),
            FakeTensor("logits", False, (-1, 3, -1, -1))]


@pytest.mark.parametrize("engine_class", GENERATIONS)
def test_profile_shapes_and_dynamic_input_shapes(engine_class):
    engine = engine_class(dynamic_tensors(), compute)
    images, logits = tensorrt_api.io_tensors(engine)
    assert images.is_dynamic and not tensorrt_api.EngineTensor("x", 0, True, (1, 3), np.float32).is_dynamic
    low, opt, high = tensorrt_api.profile_shapes(engine, images)
    assert (low, opt, high) == ((1, 3, 64, 64), (1, 3, 320, 320), (4, 3, 640, 640))
    context = engine.create_execution_context()
    tensorrt_api.set_input_shape(context, images, opt)
    assert tensorrt_api.context_shape(context, images) == (1, 3, 320, 320)
    assert tensorrt_api.context_shape(context, logits) == (1, 3, 320, 320)


def test_a_refused_input_shape_is_a_clear_error():
    class RefusingContext(object):
        def set_input_shape(self, name, shape):
            return False

    tensor = tensorrt_api.EngineTensor("images", 0, True, (-1, 3, -1, -1), np.float32)
    with pytest.raises(ValueError, match=r"refused shape \(1, 3, 9999, 9999\) for input 'images'.*--profile"):
        tensorrt_api.set_input_shape(RefusingContext(), tensor, (1, 3, 9999, 9999))


@pytest.mark.parametrize("engine_class", GENERATIONS)
def test_execute_async_binds_every_tensor_to_its_own_pointer(engine_class):
    cuda = FakeCuda(integrated=True)
    engine = engine_class(detector_tensors(), compute, cuda)
    tensors = tensorrt_api.io_tensors(engine)
    context = engine.create_execution_context()
    context_ = cuda.CudaContext()
    with context_.activate():
        buffers = dict((t.name, context_.buffer(t.shape, t.dtype)) for t in tensors)
        buffers["input"].host[...] = np.random.RandomState(0).rand(1, 128, 128, 3)
        buffers["input"].host.flat[0] = 7
        tensorrt_api.execute_async(context, tensors, dict((n, b.device_ptr) for n, b in buffers.items()), 0x77)
    expected = compute({"input": buffers["input"].host})
    np.testing.assert_array_equal(buffers["scores"].host, expected["scores"].astype(np.float32))
    np.testing.assert_array_equal(buffers["ids"].host, expected["ids"])
    assert buffers["ids"].host[0, 0] == 7 and cuda.stream_log == [("execute", 0x77)]


# --- builder helpers, on the real TensorRT-RTX (TensorRT 10 API) and an 8.2-shaped stand-in ---

class FakeTrt82BuilderModule(object):
    """Just the 8.2 builder attributes the helpers look at: EXPLICIT_BATCH, max_batch_size, max_workspace_size."""

    class NetworkDefinitionCreationFlag(object):
        EXPLICIT_BATCH = 0

    class Builder(object):
        max_batch_size = 1
        platform_has_fast_fp16 = True
        platform_has_fast_int8 = False

    class IBuilderConfig(object):
        max_workspace_size = 0


def test_builder_helpers_on_the_8_2_generation():
    trt = FakeTrt82BuilderModule
    assert tensorrt_api.network_flags(trt, trt.Builder()) == 1
    config = trt.IBuilderConfig()
    tensorrt_api.set_workspace(trt, config, 256 << 20)
    assert config.max_workspace_size == 256 << 20
    assert tensorrt_api.platform_has(trt.Builder(), "fast_fp16") is True
    assert tensorrt_api.platform_has(trt.Builder(), "fast_int8") is False
    assert not tensorrt_api.has_progress_monitor(trt, config)


def test_builder_helpers_on_tensorrt_rtx():
    trt = pytest.importorskip("tensorrt_rtx_bindings", reason="TensorRT-RTX bindings are not installed here")
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    assert tensorrt_api.network_flags(trt, builder) == 0
    config = builder.create_builder_config()
    tensorrt_api.set_workspace(trt, config, 123 << 20)
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 123 << 20
    assert tensorrt_api.platform_has(builder, "fast_fp16") is None       # RTX cannot tell
    assert tensorrt_api.builder_flag(trt, "FP16") is None
    assert tensorrt_api.has_progress_monitor(trt, config)


def test_parser_errors_from_the_real_parser():
    trt = pytest.importorskip("tensorrt_rtx_bindings", reason="TensorRT-RTX bindings are not installed here")
    logger = trt.Logger(trt.Logger.INTERNAL_ERROR)
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert not parser.parse(b"not an onnx model")
    (error,) = tensorrt_api.parser_errors(parser)
    assert "parse" in error["desc"].lower() and error["code"] == "MODEL_DESERIALIZE_FAILED"


def test_import_tensorrt_names_the_module_and_the_override(monkeypatch):
    monkeypatch.setenv(tensorrt_api.MODULE_ENV, "no_such_tensorrt_module")
    with pytest.raises(ImportError, match="no_such_tensorrt_module.*TRT_INFER_TENSORRT_MODULE"):
        tensorrt_api.import_tensorrt()
    assert tensorrt_api.import_tensorrt("numpy") is np      # an explicit name wins over the environment


def test_the_8_2_layout_of_several_profiles_and_the_choice_between_them():
    profiles = [{"images": ((1, 3, 64, 64), (1, 3, 128, 128), (1, 3, 128, 128))},
                {"images": ((1, 3, 256, 256), (1, 3, 320, 320), (1, 3, 512, 512))}]
    engine = FakeTrt82Engine(dynamic_tensors(), compute, profiles=profiles)
    assert engine.num_bindings == 4 and engine.get_binding_name(3) == "logits [profile 1]"
    second = tensorrt_api.io_tensors(engine, profile=1)
    assert [(t.name, t.index) for t in second] == [("images", 2), ("logits", 3)]
    assert tensorrt_api.profile_shapes(engine, second[0], 1)[2] == (1, 3, 512, 512)
    assert tensorrt_api.choose_profile(engine, {"images": (1, 3, 100, 100)}) == 0
    assert tensorrt_api.choose_profile(engine, {"images": (1, 3, 400, 300)}) == 1
    assert tensorrt_api.choose_profile(engine, {"images": (1, 3, 200, 200)}) is None
    assert tensorrt_api.num_bindings(engine) == 4
    assert tensorrt_api.num_bindings(FakeTrt10Engine(dynamic_tensors(), compute, profiles=profiles)) is None


def test_a_second_execution_context_gets_its_profile_selected():
    engine = FakeTrt82Engine(dynamic_tensors(), compute)
    engine.create_execution_context()
    second = engine.create_execution_context()     # only the first one gets profile 0 implicitly
    images = tensorrt_api.io_tensors(engine)[0]
    with pytest.raises(AssertionError, match="the context uses profile -1"):
        tensorrt_api.set_input_shape(second, images, (1, 3, 320, 320))
    tensorrt_api.select_profile(second, 0, 0x77)
    tensorrt_api.set_input_shape(second, images, (1, 3, 320, 320))
    assert tensorrt_api.context_shape(second, images) == (1, 3, 320, 320)
