"""sensor_msgs/Image <-> numpy without copies on the way in.

`image_view(msg)` returns an (H, W, C) or (H, W) uint8 array that views the message's data
buffer (row padding from `step` included as a stride), after checking the encoding, the step
and the data size. Problems raise ImageError with a `kind` ("encoding:yuv422", "step", "size",
"empty", "compressed", "compressed:corrupt", "compressed:depth:uint16") so a node can log each
cause once and skip the frame (`skip_cause`).

Needs only numpy (OpenCV for compressed images); the message objects are passed in, so this
module does not import rclpy or the message packages.
"""
import array
import contextlib
import os
import re
import sys
import tempfile
import threading

import numpy as np

from trt_infer.errors import ImageError

# encoding -> channels; all 8 bits per channel, so endianness does not matter.
CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}
ENCODINGS = tuple(sorted(CHANNELS))


def _buffer(data):
    """A uint8 array over the message's data: zero-copy for array.array / bytes (rclpy >= Foxy)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8)  # a list of ints: no buffer to share


def image_view(msg):
    """(array, encoding) for a sensor_msgs/Image; the array shares the message's memory."""
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    encoding = msg.encoding.lower()
    if width == 0 or height == 0 or len(msg.data) == 0:
        raise ImageError("empty", "empty image ({}x{}, {} data bytes): skipped".format(
            width, height, len(msg.data)))
    if encoding not in CHANNELS:
        raise ImageError("encoding:" + encoding, "unsupported encoding {!r}: skipped; publish one of {} "
                         "(or convert upstream, e.g. image_proc)".format(msg.encoding, ", ".join(ENCODINGS)))
    channels = CHANNELS[encoding]
    row_bytes = width * channels
    if step < row_bytes:
        raise ImageError("step", "step {} is less than width {} x {} bytes per pixel ({} encoding) = {}: "
                         "skipped; the publisher sets step wrongly".format(step, width, channels, encoding,
                                                                            row_bytes))
    if len(msg.data) != step * height:
        raise ImageError("size", "data has {} bytes but step {} x height {} = {}: skipped; the publisher's "
                         "step/height do not match its data".format(len(msg.data), step, height, step * height))
    flat = _buffer(msg.data)
    shape = (height, width) if channels == 1 else (height, width, channels)
    strides = (step, 1) if channels == 1 else (step, channels, 1)
    return np.lib.stride_tricks.as_strided(flat, shape=shape, strides=strides, writeable=False), encoding


def skip_cause(error):
    """The key under which a node logs a skipped frame once: the ImageError's kind, else the
    exception's type and message with its numbers left out (so one cause is one line, and
    another cause of the same type gets its own)."""
    if isinstance(error, ImageError):
        return error.kind
    return "error:{}:{}".format(type(error).__name__, re.sub(r"\d+", "N", str(error))[:200])


# a line of rcutils' console format: another thread's log record, not the decoder's
_LOG_LINE = re.compile(r"^\[(DEBUG|INFO|WARN|ERROR|FATAL)\] \[")
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _decoder_messages(messages):
    """Collect into `messages` what the image decoders write to file descriptor 2 meanwhile:
    libjpeg prints "Corrupt JPEG data: ..." itself, past OpenCV's log level, once per bad frame.
    Lines in rcutils' format (other threads' log records) are written on to stderr."""
    with _STDERR_LOCK, tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if _LOG_LINE.match(line):
                    os.write(2, (line + "\n").encode("utf-8"))
                elif line.strip():
                    messages.append(line.strip())


def _container(data):
    head = bytes(data[:8])
    if head.startswith(b"\xff\xd8"):
        return "JPEG"
    if head.startswith(b"\x89PNG"):
        return "PNG"
    return "compressed"


def compressed_view(msg):
    """(array, encoding) for a sensor_msgs/CompressedImage, decoded by OpenCV (bgr8, bgra8 or mono8).
    A frame the decoder reports as corrupt is skipped (ImageError) rather than half decoded."""
    import cv2

    if len(msg.data) == 0:
        raise ImageError("empty", "empty compressed image: skipped")
    data = _buffer(msg.data)
    messages = []
    with _decoder_messages(messages):
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    said = " (decoder: {})".format("; ".join(messages)) if messages else ""
    if decoded is None:
        raise ImageError("compressed", "cannot decode the {!r} compressed image ({} bytes){}: skipped".format(
            msg.format, len(msg.data), said))
    if messages:
        raise ImageError("compressed:corrupt", "the {!r} {} image ({} bytes) is corrupt{}: skipped; check the "
                         "camera driver or its compression".format(msg.format, _container(data), len(data), said))
    if decoded.dtype != np.uint8:
        raise ImageError("compressed:depth:" + decoded.dtype.name, "the {!r} {} image is {}-bit; the node takes "
                         "8-bit images: skipped; publish 8-bit (bgr8, mono8) or convert upstream".format(
                             msg.format, _container(data), decoded.dtype.itemsize * 8))
    if decoded.ndim == 2:
        return decoded, "mono8"
    return decoded, "bgr8" if decoded.shape[2] == 3 else "bgra8"


def to_bgr(image, encoding):
    """A 3-channel BGR uint8 image from one of ENCODINGS (a no-copy pass-through for bgr8)."""
    import cv2

    conversions = {"rgb8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGBA2BGR, "bgra8": cv2.COLOR_BGRA2BGR,
                   "mono8": cv2.COLOR_GRAY2BGR}
    if encoding == "bgr8":
        return image
    if encoding not in conversions:
        raise ImageError("encoding:" + encoding, "unsupported encoding {!r}".format(encoding))
    return cv2.cvtColor(np.ascontiguousarray(image), conversions[encoding])


def from_bgr(image, encoding):
    """A BGR uint8 image converted to one of ENCODINGS (for publishers such as the replay tool)."""
    import cv2

    conversions = {"rgb8": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_BGR2RGBA, "bgra8": cv2.COLOR_BGR2BGRA,
                   "mono8": cv2.COLOR_BGR2GRAY}
    if encoding == "bgr8":
        return image
    if encoding not in conversions:
        raise ValueError("cannot publish encoding {!r}; allowed: {}".format(encoding, ", ".join(ENCODINGS)))
    return cv2.cvtColor(image, conversions[encoding])


def fill_image(msg, image, encoding, header=None):
    """Write a uint8 array into a sensor_msgs/Image `msg` (one copy) and return it."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    channels = 1 if image.ndim == 2 else image.shape[2]
    if CHANNELS.get(encoding) != channels:
        raise ValueError("a {} array cannot be published as {!r} ({} channels)".format(
            image.shape, encoding, CHANNELS.get(encoding)))
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(image.shape[1] * channels)
    data = array.array("B")
    data.frombytes(image.data)
    msg.data = data
    return msg
