"""sensor_msgs/Image <-> numpy: zero-copy views, the checks that reject bad frames, compressed input."""
import numpy as np
import pytest

from trt_infer.ros.image_msgs import (CHANNELS, ImageError, compressed_view, fill_image, from_bgr, image_view,
                                     skip_cause, to_bgr)

cv2 = pytest.importorskip("cv2", reason="OpenCV converts colours and decodes compressed images")


def _messages():
    return pytest.importorskip("sensor_msgs.msg", reason="needs the ROS 2 sensor_msgs package (host .venv)")


def _gradient(height=6, width=5):
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
    (dict(height=2, width=4, encoding="yuv422", step=8, data=bytes(16)), "encoding:yuv422", "unsupported encoding"),
    (dict(height=2, width=4, encoding="16UC1", step=8, data=bytes(16)), "encoding:16uc1", "rgb8"),
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
    for encoding in sorted(CHANNELS):
        converted = from_bgr(bgr, encoding)
        grey = cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        expected = grey if encoding == "mono8" else bgr
        np.testing.assert_array_equal(to_bgr(converted, encoding), expected)


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
