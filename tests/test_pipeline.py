"""Pipeline(spec, backend)(image): spec/model checks, stages, results in image pixels, thresholds.

The models are tiny real ONNX graphs run by ONNX Runtime; where ONNX Runtime is absent (the
Python 3.6 environment) the same maths runs in FakeNumpyBackend so the pipeline's own code is
still exercised there. Only the ONNX Runtime runs count as proof of the backend seam.
"""
import numpy as np
import pytest

from trt_infer.backends import Backend, TensorInfo
from trt_infer.pipeline import STAGES, ModelMismatchError, Pipeline
from trt_infer.schema import SpecError
from trt_infer.spec import ModelSpec

RED, GREEN = (0, 0, 255), (0, 255, 0)  # BGR


def classifier_spec(**input_changes):
    fields = {"name": "image", "width": 8, "height": 8, "layout": "NCHW", "scale": 1 / 255.0}
    fields.update(input_changes)
    return ModelSpec({"name": "mean-colour", "task": "classification", "input": fields,
                      "outputs": {"scores": "scores"}, "labels": ["red", "green", "blue"],
                      "classification": {"top_k": 2, "activation": "none"}})


def segmenter_spec(**input_changes):
    # mean -1 on blue makes letterbox padding (0, 0, 0) the only place where blue wins
    fields = {"name": "image", "width": 32, "height": 16, "layout": "NHWC", "mean": [0.0, 0.0, -1.0]}
    fields.update(input_changes)
    return ModelSpec({"name": "argmax-colour", "task": "segmentation", "input": fields,
                      "outputs": {"logits": "logits"}, "segmentation": {"activation": "argmax"}})


class FakeNumpyBackend(Backend):
    """The tiny models' maths in numpy, for Python 3.6 where ONNX Runtime cannot be installed."""

    def __init__(self, model, spec_input):
        self.path = "fake-{}.onnx".format(model)
        shape = spec_input.shape
        self.inputs = [TensorInfo(spec_input.name, shape, np.float32)]
        if model == "classifier":
            self.outputs = [TensorInfo("scores", (1, 3), np.float32)]
            self.run = lambda x: {"scores": x.mean(axis=(2, 3))}
        else:
            self.outputs = [TensorInfo("logits", (shape[0], shape[3], shape[1], shape[2]), np.float32)]
            self.run = lambda x: {"logits": x.transpose(0, 3, 1, 2)}
        self.buffer = np.zeros(shape, np.float32)

    def input_buffer(self, name):
        return self.buffer

    def infer(self, inputs=None):
        return self.run(inputs[self.inputs[0].name] if inputs else self.buffer)


def onnx_backend(model, spec_input, tmp_path):
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is absent")
    pytest.importorskip("onnx", reason="the test models are built with onnx.helper (host side)")
    from onnx import TensorProto, helper
    from tests.test_onnxruntime_backend import save_model
    from trt_infer.backends import load_backend

    shape = list(spec_input.shape)
    if model == "classifier":
        nodes = [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
                 helper.make_node("Flatten", ["pooled"], ["scores"])]
        outputs = [("scores", TensorProto.FLOAT, [1, 3])]
    else:
        nodes = [helper.make_node("Transpose", ["image"], ["logits"], perm=[0, 3, 1, 2])]
        outputs = [("logits", TensorProto.FLOAT, [shape[0], shape[3], shape[1], shape[2]])]
    path = save_model(tmp_path / (model + ".onnx"), nodes, [("image", TensorProto.FLOAT, shape)], outputs)
    return load_backend(path)


@pytest.fixture(params=["onnxruntime", "fake-numpy"])
def make_backend(request, tmp_path):
    if request.param == "onnxruntime":
        return lambda model, spec: onnx_backend(model, spec.input, tmp_path)
    return lambda model, spec: FakeNumpyBackend(model, spec.input)


def two_colour_image(height=40, width=80):
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :width // 2] = RED
    image[:, width // 2:] = GREEN
    return image


def test_classification_names_the_mean_colour(make_backend):
    spec = classifier_spec()
    pipeline = Pipeline(spec, make_backend("classifier", spec))
    image = np.zeros((30, 20, 3), np.uint8)
    image[:, :] = (200, 0, 100)  # BGR: blue 200, red 100
    result = pipeline(image)
    assert [class_id for class_id, _ in result.classes] == [2, 0]
    np.testing.assert_allclose([score for _, score in result.classes], [200 / 255.0, 100 / 255.0], rtol=1e-5)
    assert spec.label(result.classes[0][0]) == "blue"


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_segmentation_mask_comes_back_in_image_pixels(make_backend, resize):
    spec = segmenter_spec(resize=resize)
    pipeline = Pipeline(spec, make_backend("segmenter", spec))
    result = pipeline(two_colour_image())
    assert result.mask.shape == (16, 32) and result.image_mask.shape == (40, 80)
    assert np.all(result.image_mask[:, :39] == 0) and np.all(result.image_mask[:, 41:] == 1)
    if resize == "letterbox":  # 80x40 into 32x16 fills it exactly; padding shows only for other shapes
        square = pipeline(two_colour_image(80, 80))
        assert np.all(square.mask[:, :8] == 2) and np.all(square.mask[:, 24:] == 2)
        assert not np.any(square.image_mask == 2)
        assert np.all(square.image_mask[:, :39] == 0) and np.all(square.image_mask[:, 41:] == 1)


def test_timings_cover_every_stage(make_backend):
    spec = segmenter_spec()
    result = Pipeline(spec, make_backend("segmenter", spec))(two_colour_image())
    assert sorted(result.timings) == sorted(STAGES)
    stages = [result.timings[name] for name in STAGES[:-1]]
    assert all(value >= 0 for value in stages)
    assert result.timings["total"] >= max(stages)
    assert result.timings["total"] == pytest.approx(sum(stages), rel=1e-6, abs=1e-6)


def test_the_pre_processor_writes_into_the_backend_buffer(make_backend):
    spec = segmenter_spec()
    backend = make_backend("segmenter", spec)
    pipeline = Pipeline(spec, backend)
    assert pipeline.input_buffer is backend.input_buffer("image")
    pipeline(two_colour_image())
    red_pixel = backend.input_buffer("image")[0, 0, 0]
    assert list(red_pixel) == [255.0, 0.0, 1.0]  # RGB order; blue's mean is -1


def test_the_steps_one_by_one_keep_each_frame_in_its_own_buffer(make_backend):
    # the node prepares frame N+1 while frame N's inference reads the buffer N was written to
    spec = segmenter_spec()
    backend = make_backend("segmenter", spec)
    pipeline = Pipeline(spec, backend)
    first, second = pipeline.new_input_buffer(), pipeline.new_input_buffer()
    assert first is not second and first.shape == pipeline.input_buffer.shape
    flipped = np.ascontiguousarray(two_colour_image()[:, ::-1])
    first_transform = pipeline.prepare(two_colour_image(), out=first)
    second_transform = pipeline.prepare(flipped, color_order="BGR", out=second)
    assert not np.any(backend.input_buffer("image"))  # the backend's own buffer was never written
    second_result = pipeline.finish(pipeline.run(second), second_transform)
    first_result = pipeline.finish(pipeline.run(first), first_transform)
    expected = pipeline(two_colour_image())
    np.testing.assert_array_equal(first_result.image_mask, expected.image_mask)
    np.testing.assert_array_equal(second_result.image_mask, expected.image_mask[:, ::-1])


def test_mismatches_between_spec_and_model_name_both_sides():
    model = FakeNumpyBackend("segmenter", segmenter_spec().input)
    cases = [
        (segmenter_spec(width=64, height=64), ["spec input 'image' 64x64 NHWC", "(1, 16, 32, 3)", model.path]),
        (segmenter_spec(layout="NCHW"), ["32x16 NCHW", "(1, 16, 32, 3)"]),
        (segmenter_spec(name="input"), ["'input' is not an input", "'image'"]),
        (segmenter_spec(dtype="float16"), ["float16", "float32"]),
    ]
    for spec, expected in cases:
        with pytest.raises(ModelMismatchError) as error:
            Pipeline(spec, model)
        for text in expected:
            assert text in str(error.value)
    renamed = ModelSpec({"name": "x", "task": "segmentation", "input": {"name": "image", "width": 32, "height": 16,
                                                                           "layout": "NHWC"},
                         "outputs": {"logits": "mask"}})
    with pytest.raises(ModelMismatchError) as error:
        Pipeline(renamed, model)
    assert "outputs.logits = 'mask'" in str(error.value) and "'logits'" in str(error.value)


def test_a_single_channel_output_cannot_be_argmaxed():
    spec = segmenter_spec()
    model = FakeNumpyBackend("segmenter", spec.input)
    model.outputs = [TensorInfo("logits", (1, 1, 16, 32), np.float32)]
    with pytest.raises(ModelMismatchError) as error:
        Pipeline(spec, model)
    assert "activation: sigmoid" in str(error.value) and "(1, 1, 16, 32)" in str(error.value)


def test_thresholds_are_set_at_run_time_and_validated():
    spec = segmenter_spec()
    pipeline = Pipeline(spec, FakeNumpyBackend("segmenter", spec.input))
    pipeline.set_thresholds(score=0.8, max_detections=5)
    assert spec.thresholds.score == 0.8 and pipeline.thresholds.max_detections == 5
    with pytest.raises(SpecError):
        pipeline.set_thresholds(nms_iou=-0.1)
    assert spec.thresholds.nms_iou == 0.45
