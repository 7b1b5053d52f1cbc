"""sensor_msgs/Image <-> numpy: zero-copy views, the checks that reject bad frames, compressed input."""
import numpy as np
import pytest

from trt_infer.ros.image_msgs import (CHANNELS, PIPELINE_ENCODINGS, ImageError, compressed_view, fill_image,
                                     from_bgr, image_view, message_image, skip_cause, to_bgr)

cv2 = pytest.importorskip("cv2", reason="OpenCV converts colours and decodes compressed images")


def _messages():
    return pytest.importorskip("sensor_msgs.msg", reason="needs the ROS 2 sensor_msgs package (host .venv)")


def _gradient(height=6, width=6):
    ramp = np.arange(height * width * 3, dtype=np.uint8).reshape(height, width, 3)
    return ramp * 7 + 3


@pytest.mark.parametrize("encoding", sorted(CHANNELS))
def test_every_encoding_round_trips_and_views_the_message_memory(encoding):
    msgs = _messages()
    image = from_bgr(_gradient(), encoding)
    msg = fill_image(msgs.Image(), image, encoding)
    view, seen_encoding = image_view(msg)
    assert seen_encoding == encoding
    np.testing.assert_array_equal(view, image)
    assert np.shares_memory(view, np.frombuffer(msg.data, dtype=np.uint8)), "the view copied the data"
    np.testing.assert_array_equal(to_bgr(view, encoding), to_bgr(image, encoding))


def test_row_padding_from_step_is_a_stride_not_a_copy():
    msgs = _messages()
    image = _gradient(4, 5)
    padded = np.zeros((4, 5 * 3 + 9), dtype=np.uint8)
    padded[:, :15] = image.reshape(4, 15)
    msg = msgs.Image(height=4, width=5, encoding="bgr8", step=24, data=padded.tobytes())
    view, _ = image_view(msg)
    np.testing.assert_array_equal(view, image)
    assert view.strides[0] == 24 and np.shares_memory(view, np.frombuffer(msg.data, dtype=np.uint8))


@pytest.mark.parametrize("fields, kind, words", [
    (dict(height=2, width=4, encoding="nv12", step=8, data=bytes(16)), "encoding:nv12", "unsupported encoding"),
    (dict(height=2, width=4, encoding="32FC1", step=8, data=bytes(16)), "encoding:32fc1", "rgb8"),
    (dict(height=2, width=4, encoding="mono16", step=6, data=bytes(12)), "step", "4 x 2 bytes per pixel"),
    (dict(height=2, width=3, encoding="yuyv", step=6, data=bytes(12)), "width:yuyv", "width 3 is odd"),
    (dict(height=2, width=4, encoding="rgb8", step=8, data=bytes(16)), "step", "step 8 is less than"),
    (dict(height=2, width=4, encoding="bgr8", step=12, data=bytes(20)), "size", "data has 20 bytes"),
    (dict(height=0, width=0, encoding="bgr8", step=0, data=b""), "empty", "empty image"),
    (dict(height=2, width=4, encoding="mono8", step=4, data=b""), "empty", "empty image"),
])
def test_bad_frames_raise_an_error_saying_what_is_wrong(fields, kind, words):
    msgs = _messages()
    with pytest.raises(ImageError) as caught:
        image_view(msgs.Image(**fields))
    assert caught.value.kind == kind
    assert words in str(caught.value) and "skipped" in str(caught.value)


def test_compressed_images_decode_to_bgr_and_garbage_is_refused():
    msgs = _messages()
    image = _gradient(16, 16)
    ok, png = cv2.imencode(".png", image)
    assert ok
    decoded, encoding = compressed_view(msgs.CompressedImage(format="png", data=png.tobytes()))
    assert encoding == "bgr8"
    np.testing.assert_array_equal(decoded, image)
    with pytest.raises(ImageError) as caught:
        compressed_view(msgs.CompressedImage(format="jpeg", data=b"not a jpeg at all"))
    assert caught.value.kind == "compressed" and "cannot decode" in str(caught.value)


def test_fill_image_refuses_an_array_that_does_not_fit_the_encoding():
    msgs = _messages()
    with pytest.raises(ValueError, match="mono8"):
        fill_image(msgs.Image(), _gradient(), "mono8")


def test_colour_conversions_agree_with_each_other():
    bgr = _gradient()
    for encoding in PIPELINE_ENCODINGS + ("mono16", "16UC1", "rgb16", "bgr16"):  # the lossless ones
        converted = from_bgr(bgr, encoding)
        grey = cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        expected = grey if encoding in ("mono8", "mono16", "16UC1") else bgr
        np.testing.assert_array_equal(to_bgr(converted, encoding), expected)


# OpenCV's code for each camera encoding, written out here (cv_bridge's table) rather than taken from the module
OPENCV_CODES = {"yuv422": "COLOR_YUV2BGR_UYVY", "uyvy": "COLOR_YUV2BGR_UYVY", "yuv422_yuy2": "COLOR_YUV2BGR_YUY2",
                "yuyv": "COLOR_YUV2BGR_YUY2", "bayer_rggb8": "COLOR_BayerBG2BGR", "bayer_bggr8": "COLOR_BayerRG2BGR",
                "bayer_gbrg8": "COLOR_BayerGR2BGR", "bayer_grbg8": "COLOR_BayerGB2BGR"}


@pytest.mark.parametrize("encoding", sorted(OPENCV_CODES))
def test_camera_encodings_match_opencvs_own_conversion_of_the_same_pixels(encoding):
    msgs = _messages()
    height, width, padding = 6, 8, 4
    channels = 2 if OPENCV_CODES[encoding].startswith("COLOR_YUV") else 1
    raw = np.random.RandomState(3).randint(0, 256, size=(height, width * channels + padding)).astype(np.uint8)
    msg = msgs.Image(height=height, width=width, encoding=encoding, step=width * channels + padding,
                     data=raw.tobytes())
    view, _ = image_view(msg)
    assert np.shares_memory(view, np.frombuffer(msg.data, dtype=np.uint8)), "the view copied the data"
    image, seen = message_image(msg)
    pixels = np.ascontiguousarray(raw[:, :width * channels].reshape((height, width, channels)[:2 + (channels > 1)]))
    assert seen == "bgr8"
    np.testing.assert_array_equal(image, cv2.cvtColor(pixels, getattr(cv2, OPENCV_CODES[encoding])))


@pytest.mark.parametrize("encoding", ["bayer_rggb8", "bayer_bggr8", "bayer_gbrg8", "bayer_grbg8"])
def test_a_bayer_mosaic_of_one_colour_demosaics_to_that_colour(encoding):
    bgr = np.empty((8, 8, 3), dtype=np.uint8)
    bgr[:] = (10, 100, 200)
    mosaic = from_bgr(bgr, encoding)
    first = {"r": 200, "g": 100, "b": 10}[encoding[6]]
    assert mosaic[0, 0] == first, "the pattern names the top-left pixel's colour"
    np.testing.assert_array_equal(to_bgr(mosaic, encoding)[2:-2, 2:-2], bgr[2:-2, 2:-2])


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_published_from_bgr_decodes_close_to_the_frame(encoding):
    rows, columns = np.mgrid[0:8, 0:16]
    bgr = np.dstack([20 + 8 * columns, 60 + 5 * rows, 200 - 6 * columns]).astype(np.uint8)  # smooth colours
    packed = from_bgr(bgr, encoding)
    assert packed.shape == (8, 16, 2)
    luma = packed[:, :, 1 if encoding in ("yuv422", "uyvy") else 0]
    np.testing.assert_array_equal(luma, cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)[:8])
    assert np.abs(to_bgr(packed, encoding).astype(int) - bgr).max() <= 12  # pixel pairs share chroma (8 per pixel here)


@pytest.mark.parametrize("encoding, channels, eight", [("mono16", 1, "mono8"), ("16UC1", 1, "mono8"),
                                                       ("rgb16", 3, "rgb8"), ("bgr16", 3, "bgr8")])
def test_16_bit_data_keeps_its_high_byte_in_either_byte_order(encoding, channels, eight):
    msgs = _messages()
    shape = (3, 4) if channels == 1 else (3, 4, channels)
    values = np.random.RandomState(5).randint(0, 65536, size=shape).astype(np.uint16)
    for bigendian, dtype in ((0, "<u2"), (1, ">u2")):
        msg = msgs.Image(height=3, width=4, encoding=encoding, is_bigendian=bigendian, step=4 * channels * 2,
                         data=values.astype(dtype).tobytes())
        view, _ = image_view(msg)
        np.testing.assert_array_equal(view, values)
        assert np.shares_memory(view, np.frombuffer(msg.data, dtype=np.uint8)), "the view copied the data"
        image, seen = message_image(msg)
        assert seen == eight and image.dtype == np.uint8
        np.testing.assert_array_equal(image, (values // 256).astype(np.uint8))


def test_fill_image_writes_16_bit_arrays_with_their_byte_order():
    msgs = _messages()
    values = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    for dtype, bigendian in (("<u2", 0), (">u2", 1)):
        msg = fill_image(msgs.Image(), values.astype(dtype), "mono16")
        assert (msg.is_bigendian, msg.step, len(msg.data)) == (bigendian, 8, 24)
        np.testing.assert_array_equal(image_view(msg)[0], values)
    with pytest.raises(ValueError, match="16 bits"):
        fill_image(msgs.Image(), values.astype(np.uint8), "mono16")


def test_pipeline_encodings_pass_through_message_image_as_views():
    msgs = _messages()
    msg = fill_image(msgs.Image(), _gradient(), "rgb8")
    image, seen = message_image(msg)
    assert seen == "rgb8" and np.shares_memory(image, np.frombuffer(msg.data, dtype=np.uint8))


def _jpeg_and_png(image):
    return cv2.imencode(".jpg", image)[1].tobytes(), cv2.imencode(".png", image)[1].tobytes()


def test_each_cause_of_a_bad_compressed_frame_has_its_own_kind():
    msgs = _messages()
    image = _gradient(32, 32)
    jpeg, png = _jpeg_and_png(image)
    png16 = cv2.imencode(".png", image.astype(np.uint16) * 256)[1].tobytes()
    corrupt = jpeg[:200] + b"\x00" * 50 + jpeg[250:]   # libjpeg: "Corrupt JPEG data: ... extraneous bytes"
    kinds = {}
    for name, data in [("corrupt jpeg", corrupt), ("16-bit png", png16), ("truncated png", png[:len(png) // 2]),
                       ("text", b"not an image")]:
        with pytest.raises(ImageError) as caught:
            compressed_view(msgs.CompressedImage(format="jpeg", data=data))
        kinds[name] = caught.value.kind
        assert "skipped" in str(caught.value)
    assert kinds == {"corrupt jpeg": "compressed:corrupt", "16-bit png": "compressed:depth:uint16",
                     "truncated png": "compressed", "text": "compressed"}
    assert len({skip_cause(ImageError(kind, "")) for kind in kinds.values()}) == 3


def test_the_decoders_own_lines_are_not_printed(capfd):
    msgs = _messages()
    jpeg, png = _jpeg_and_png(_gradient(32, 32))
    for data in (jpeg[:200] + b"\x00" * 50 + jpeg[250:], png[:len(png) // 2]):
        with pytest.raises(ImageError) as caught:
            compressed_view(msgs.CompressedImage(format="jpeg", data=data))
        assert "decoder: " in str(caught.value)  # the decoder's words, in the one line the node logs
    assert compressed_view(msgs.CompressedImage(format="jpeg", data=jpeg))[1] == "bgr8"
    out, err = capfd.readouterr()
    assert err == "" and out == ""


def test_skip_causes_keep_distinct_messages_apart_and_numbers_together():
    assert skip_cause(ValueError("shape (1, 2) does not fit")) == skip_cause(ValueError("shape (3, 4) does not fit"))
    assert skip_cause(ValueError("shape (1, 2) does not fit")) != skip_cause(ValueError("another problem"))
    assert skip_cause(ValueError("x")) != skip_cause(TypeError("x"))
    assert skip_cause(ImageError("encoding:yuv422", "a")) == skip_cause(ImageError("encoding:yuv422", "b"))
