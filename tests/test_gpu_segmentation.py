"""GPU segmentation masks are identical to the CPU post-processor's (argmax, thresholds, letterbox, colours)."""
import numpy as np
import pytest

from trt_infer.geometry import ResizeTransform
from trt_infer.overlay import colour_mask
from trt_infer.postprocess.segmentation import SegmentationPostprocessor
from trt_infer.spec import ModelSpec

pytestmark = pytest.mark.gpu
RNG = np.random.RandomState(11)


def segmentation_spec(activation="argmax", layout="NCHW", palette=None, threshold=0.5, size=(256, 192)):
    return ModelSpec({
        "name": "seg", "task": "segmentation",
        "input": {"name": "x", "width": size[0], "height": size[1], "resize": "letterbox"},
        "outputs": {"logits": "logits"}, "palette": palette,
        "segmentation": {"activation": activation, "logits_layout": layout, "threshold": threshold},
    })


def logits(classes, height, width, layout, dtype):
    """Smooth blobs per class (like a real network's) plus noise, so classes form regions."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    centres = RNG.uniform(0, 1, size=(classes, 2)) * (height, width)
    scores = np.stack([-np.hypot(yy - cy, xx - cx) / 20.0 for cy, cx in centres])
    scores += RNG.normal(0, 0.3, size=scores.shape).astype(np.float32)
    if layout == "NHWC":
        scores = scores.transpose(1, 2, 0)
    return scores[np.newaxis].astype(dtype)


def cpu_result(spec, outputs, transform):
    """The CPU post-processor's answer (a Result; its image mask is computed on access)."""
    return SegmentationPostprocessor(spec)(outputs, transform)


def cpu_and_gpu(context, spec, outputs, transform, colour=False):
    from trt_infer.cuda.segmentation import GpuSegmentation
    expected = cpu_result(spec, outputs, transform)
    gpu = GpuSegmentation(spec, context, colour=colour)
    mask, image_mask, colours = gpu.segment(outputs["logits"], transform)
    return expected, mask, image_mask, colours


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("image_size", [(640, 480), (451, 300), (97, 301)])
def test_argmax_masks_identical_to_cpu(cuda_context, layout, dtype, image_size):
    spec = segmentation_spec(layout=layout)
    transform = ResizeTransform(image_size[0], image_size[1], 256, 192, "letterbox")
    outputs = {"logits": logits(21, 96, 128, layout, dtype)}  # half the input resolution, like many nets
    expected, mask, image_mask, _ = cpu_and_gpu(cuda_context, spec, outputs, transform)
    assert len(np.unique(mask)) > 5
    np.testing.assert_array_equal(mask, expected.mask)
    np.testing.assert_array_equal(image_mask, expected.image_mask)
    assert image_mask.shape == (image_size[1], image_size[0])


@pytest.mark.parametrize("activation", ["sigmoid", "probability"])
def test_threshold_masks_identical_to_cpu(cuda_context, activation):
    spec = segmentation_spec(activation=activation, threshold=0.3)
    values = logits(1, 192, 256, "NCHW", np.float32)[:, 0] + 4.0
    if activation == "probability":
        values = 1.0 / (1.0 + np.exp(-values))
    transform = ResizeTransform(1920, 1080, 256, 192, "letterbox")
    expected, mask, image_mask, _ = cpu_and_gpu(cuda_context, spec, {"logits": values}, transform)
    assert 0 < mask.mean() < 1
    np.testing.assert_array_equal(mask, expected.mask)
    np.testing.assert_array_equal(image_mask, expected.image_mask)


@pytest.mark.parametrize("palette", [None, [[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]])
def test_colour_mask_matches_overlay_colours(cuda_context, palette):
    spec = segmentation_spec(palette=palette)
    transform = ResizeTransform(333, 250, 256, 192, "stretch")
    expected, _, image_mask, colours = cpu_and_gpu(
        cuda_context, spec, {"logits": logits(4, 192, 256, "NCHW", np.float32)}, transform, colour=True)
    np.testing.assert_array_equal(image_mask, expected.image_mask)
    np.testing.assert_array_equal(colours, colour_mask(expected.image_mask, spec.palette, color_order="RGB"))


def test_reads_logits_in_place_from_a_device_buffer(cuda_context):
    from trt_infer.cuda.segmentation import GpuSegmentation
    spec = segmentation_spec()
    values = logits(5, 192, 256, "NCHW", np.float32)
    engine_output = cuda_context.buffer(values.shape, np.float32)
    engine_output.host[...] = values
    gpu = GpuSegmentation(spec, cuda_context)
    engine_output.upload(gpu.stream)
    transform = ResizeTransform(640, 480, 256, 192, "letterbox")
    result = gpu({"logits": engine_output}, transform)
    expected = cpu_result(spec, {"logits": values}, transform)
    np.testing.assert_array_equal(result.mask, expected.mask)
    np.testing.assert_array_equal(result.image_mask, expected.image_mask)


def test_palette_too_short_for_the_classes_is_refused(cuda_context):
    from trt_infer.cuda.segmentation import GpuSegmentation
    gpu = GpuSegmentation(segmentation_spec(palette=[[0, 0, 0], [9, 9, 9]]), cuda_context, colour=True)
    with pytest.raises(ValueError, match="3 classes but the palette has 2"):
        gpu.segment(logits(3, 192, 256, "NCHW", np.float32), ResizeTransform(64, 48, 256, 192))
