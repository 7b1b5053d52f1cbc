"""GPU pre-processing equals the CPU Preprocessor within one pixel level on real images."""
import numpy as np
import pytest

from tests.support.gpu import real_images, require_gpu
from trt_infer.preprocess import Preprocessor
from tests.support.specs import input_spec

pytestmark = pytest.mark.gpu

NORMALISATIONS = {
    "mediapipe": {"scale": 1.0, "mean": [127.5] * 3, "std": [127.5] * 3},
    "imagenet": {"scale": 1.0 / 255, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
}


@pytest.fixture(scope="module")
def images():
    require_gpu()
    return real_images()


def denormalised(tensor, spec):
    """Network tensor -> pixel levels (0..255), channels last."""
    values = tensor.astype(np.float64)[0]
    if spec.layout == "NCHW":
        values = values.transpose(1, 2, 0)
    return (values * np.array(spec.std) + np.array(spec.mean)) / spec.scale


def run_both(context, spec, image, color_order="BGR"):
    from trt_infer.cuda.preprocess import GpuPreprocessor
    cpu = Preprocessor(spec)
    cpu_transform = cpu(image, color_order=color_order)
    gpu = GpuPreprocessor(spec, context)
    out = context.buffer(spec.shape, spec.dtype, mapped=False)
    gpu_transform = gpu(image, out=out, color_order=color_order)
    out.download(gpu.stream)
    gpu.stream.synchronize()
    return cpu.buffer, cpu_transform, out.host.copy(), gpu_transform


def assert_close_in_pixels(gpu, cpu, spec):
    difference = np.abs(denormalised(gpu, spec) - denormalised(cpu, spec))
    # float16 stores both results to ~3 significant digits: allow its rounding on top of 1 level
    half_ulp = 0.0
    if spec.dtype == "float16":
        largest = np.abs(cpu.astype(np.float64)).max()
        half_ulp = float(np.spacing(np.float16(largest))) * max(spec.std) / spec.scale
    assert difference.max() <= 1.0 + half_ulp + 1e-3, "max difference {:.3f} pixel levels".format(difference.max())
    # the GPU rounds the resized pixel as cv::resize does; they differ only where OpenCV's
    # fixed-point weights round the other way (about one value in ten)
    assert difference.mean() < 0.25, "mean difference {:.3f} pixel levels".format(difference.mean())


@pytest.mark.parametrize("name", ["astronaut_512x512", "chelsea_451x300", "coffee_1920x1080", "coffee_637x359",
                                  "camera_mono_512x512", "chelsea_bgra_451x300", "astronaut_crop_97x61"])
@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_matches_cpu_on_real_images(cuda_context, images, name, resize):
    spec = input_spec(width=300, height=300, resize=resize, pad_value=114.0, **NORMALISATIONS["mediapipe"])
    cpu, cpu_transform, gpu, gpu_transform = run_both(cuda_context, spec, images[name])
    assert gpu_transform.valid_region() == cpu_transform.valid_region()
    assert_close_in_pixels(gpu, cpu, spec)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("normalisation", sorted(NORMALISATIONS))
@pytest.mark.parametrize("network_order, image_order", [("RGB", "BGR"), ("BGR", "BGR"), ("RGB", "RGB")])
def test_layouts_dtypes_and_channel_orders(cuda_context, images, layout, dtype, normalisation, network_order,
                                           image_order):
    image = images["chelsea_451x300"]
    if image_order == "RGB":
        image = np.ascontiguousarray(image[:, :, ::-1])
    spec = input_spec(width=257, height=193, layout=layout, dtype=dtype, color_order=network_order,
                      resize="letterbox", pad_value=0.0, **NORMALISATIONS[normalisation])
    cpu, _, gpu, _ = run_both(cuda_context, spec, image, color_order=image_order)
    assert gpu.shape == cpu.shape and gpu.dtype == cpu.dtype
    assert_close_in_pixels(gpu, cpu, spec)


def test_upscaling_and_identity_sizes(cuda_context, images):
    crop = images["astronaut_crop_97x61"]
    for width, height in ((300, 300), (97, 61)):
        spec = input_spec(width=width, height=height, **NORMALISATIONS["imagenet"])
        cpu, _, gpu, _ = run_both(cuda_context, spec, crop)
        assert_close_in_pixels(gpu, cpu, spec)


def test_repeated_calls_and_changing_image_sizes_reuse_the_output(cuda_context, images):
    from trt_infer.cuda.preprocess import GpuPreprocessor
    spec = input_spec(width=128, height=128, resize="letterbox", **NORMALISATIONS["mediapipe"])
    gpu = GpuPreprocessor(spec, cuda_context)
    cpu = Preprocessor(spec)
    for name in ("coffee_1920x1080", "chelsea_451x300", "coffee_1920x1080"):
        gpu(images[name])
        cpu(images[name])
        gpu.buffer.download(gpu.stream)
        gpu.stream.synchronize()
        assert_close_in_pixels(gpu.buffer.host, cpu.buffer, spec)


def test_bad_input_is_refused_with_the_reason(cuda_context):
    from trt_infer.cuda.preprocess import GpuPreprocessor
    spec = input_spec()
    gpu = GpuPreprocessor(spec, cuda_context)
    with pytest.raises(ValueError, match="dtype float32"):
        gpu(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="needs"):
        gpu(np.zeros((10, 10, 3), np.uint8), out=cuda_context.buffer((1, 3, 10, 10), np.float32))
    with pytest.raises(ValueError, match="color_order"):
        gpu(np.zeros((10, 10, 3), np.uint8), color_order="YUV")
