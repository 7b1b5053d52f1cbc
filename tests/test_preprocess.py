"""Pre-processing against OpenCV's own blobFromImage, letterbox geometry, layouts, dtypes, bad input."""
import tracemalloc

import cv2
import numpy as np
import pytest

from trt_infer.geometry import ResizeTransform
from trt_infer.preprocess import Preprocessor
from tests.support.specs import input_spec

RNG = np.random.RandomState(7)


def random_image(height, width, channels=3):
    shape = (height, width) if channels is None else (height, width, channels)
    return RNG.randint(0, 256, size=shape).astype(np.uint8)


@pytest.mark.parametrize("image_size, net_size", [((480, 640), (300, 300)), ((100, 90), (224, 160))])
@pytest.mark.parametrize("swap_rb", [True, False])
def test_equals_blob_from_image_where_settings_coincide(image_size, net_size, swap_rb):
    image = random_image(*image_size)
    mean, factor = (123.7, 116.3, 103.5), 0.017
    # blob = (pixel - mean) * factor == (pixel * scale - mean) / std with scale 1 and std 1/factor
    spec = input_spec(width=net_size[0], height=net_size[1], color_order="RGB" if swap_rb else "BGR",
                      mean=list(mean), std=[1.0 / factor] * 3)
    expected = cv2.dnn.blobFromImage(image, factor, net_size, mean, swapRB=swap_rb, crop=False)
    pre = Preprocessor(spec)
    transform = pre(image)
    assert pre.buffer.shape == expected.shape
    np.testing.assert_allclose(pre.buffer, expected, rtol=0, atol=1e-4)
    assert (transform.image_width, transform.image_height) == (image_size[1], image_size[0])


def test_writes_into_the_given_buffer_without_allocating_in_steady_state():
    pre = Preprocessor(input_spec(resize="letterbox", dtype="float16"))
    out = np.zeros((1, 3, 300, 300), np.float16)
    image = random_image(480, 640)
    pre(image, out=out)
    first = out.copy()
    out[...] = 0
    tracemalloc.start()
    try:
        pre(image, out=out)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out, first)
    # numpy's casting loops use transient buffers of 8192 elements (<= 64 KiB); any array the
    # size of a resized plane (300x300 uint8 = 88 KiB, float32 = 352 KiB) would exceed this.
    assert peak < 80 * 1024, "a steady-state call allocated {} bytes".format(peak)


def test_letterbox_geometry_and_borders():
    spec = input_spec(resize="letterbox", pad_value=114, scale=1 / 255.0, mean=[0.5] * 3, std=[0.25] * 3)
    pre = Preprocessor(spec)
    image = random_image(480, 640)
    transform = pre(image, color_order="RGB")
    # 640x480 into 300x300: one scale 300/640, 300x225 content centred vertically
    assert (transform.resized_width, transform.resized_height) == (300, 225)
    assert (transform.pad_x, transform.pad_y) == (0, 37)
    pad = (114 / 255.0 - 0.5) / 0.25
    tensor = pre.buffer[0]
    np.testing.assert_allclose(tensor[:, :37], pad, rtol=1e-6)
    np.testing.assert_allclose(tensor[:, 37 + 225:], pad, rtol=1e-6)
    content = cv2.resize(image, (300, 225), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    expected = (content / 255.0 - 0.5) / 0.25
    np.testing.assert_allclose(tensor[:, 37:262].transpose(1, 2, 0), expected, atol=1e-5)
    # a box at the content's corners maps back to the image's corners
    corners = np.array([[0.0, 37 / 300.0, 1.0, 262 / 300.0]])
    np.testing.assert_allclose(transform.boxes_to_image(corners), [[0, 0, 640, 480]], atol=1e-3)


def test_letterbox_of_a_tall_image_pads_left_and_right_and_repaints_borders_on_size_change():
    pre = Preprocessor(input_spec(width=128, height=128, resize="letterbox", pad_value=0))
    wide = np.full((64, 128, 3), 255, np.uint8)
    pre(wide)
    tall = np.full((128, 64, 3), 255, np.uint8)
    transform = pre(tall)
    assert (transform.pad_x, transform.pad_y, transform.resized_width) == (32, 0, 64)
    tensor = pre.buffer[0]
    assert np.all(tensor[:, :, :32] == 0) and np.all(tensor[:, :, 96:] == 0)
    assert np.all(tensor[:, :, 32:96] == 255)


def test_nhwc_is_nchw_transposed_and_float16_is_float32_rounded():
    image = random_image(90, 120)
    settings = dict(width=64, height=48, scale=1 / 255.0, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    nchw = Preprocessor(input_spec(**settings))
    nchw(image)
    nhwc = Preprocessor(input_spec(layout="NHWC", **settings))
    nhwc(image)
    half = Preprocessor(input_spec(layout="NHWC", dtype="float16", **settings))
    half(image)
    assert nhwc.buffer.shape == (1, 48, 64, 3) and half.buffer.dtype == np.float16
    np.testing.assert_allclose(nhwc.buffer, nchw.buffer.transpose(0, 2, 3, 1), atol=1e-6)
    np.testing.assert_array_equal(half.buffer, nhwc.buffer.astype(np.float16))


def test_colour_orders_mono_alpha_and_strided_inputs_agree():
    pre = Preprocessor(input_spec(width=50, height=40))
    bgr = random_image(60, 80)

    def run(image, **kwargs):
        pre(image, **kwargs)
        return pre.buffer.copy()

    reference = run(bgr)
    np.testing.assert_array_equal(run(np.ascontiguousarray(bgr[:, :, ::-1]), color_order="RGB"), reference)
    alpha = np.dstack([bgr, random_image(60, 80, None)])
    np.testing.assert_array_equal(run(alpha), reference)
    np.testing.assert_array_equal(run(bgr[:, :, ::-1], color_order="RGB"), reference)  # a strided view
    gray = random_image(60, 80, None)
    np.testing.assert_array_equal(run(gray), run(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)))
    np.testing.assert_array_equal(run(gray[:, :, None]), run(gray))


@pytest.mark.parametrize("image, named", [
    (np.zeros((10, 10, 3), np.float32), "float32"),
    (np.zeros((10, 10, 5), np.uint8), "(10, 10, 5)"),
    (np.zeros((10,), np.uint8), "(10,)"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    (np.zeros((2, 10, 10, 3), np.uint8), "(2, 10, 10, 3)"),
    ([[1, 2], [3, 4]], "list"),
])
def test_bad_images_are_clear_errors(image, named):
    with pytest.raises(ValueError) as error:
        Preprocessor(input_spec())(image)
    assert named in str(error.value) and "HxWx3" in str(error.value)


def test_wrong_output_buffer_and_colour_order_are_clear_errors():
    pre = Preprocessor(input_spec())
    with pytest.raises(ValueError) as error:
        pre(random_image(10, 10), out=np.zeros((1, 300, 300, 3), np.float32))
    assert "(1, 300, 300, 3)" in str(error.value) and "(1, 3, 300, 300)" in str(error.value)
    with pytest.raises(ValueError) as error:
        pre(random_image(10, 10), color_order="GBR")
    assert "'GBR'" in str(error.value)


def test_returned_transform_is_the_geometry_of_the_fit():
    pre = Preprocessor(input_spec(width=200, height=100, resize="stretch"))
    transform = pre(random_image(50, 100))
    assert isinstance(transform, ResizeTransform)
    assert (transform.scale_x, transform.scale_y, transform.mode) == (2.0, 2.0, "stretch")
