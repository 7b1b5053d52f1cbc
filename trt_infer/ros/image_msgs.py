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

# wire encoding -> (channels, bytes per channel) of its pixels in the message's data.
CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1,
            "yuv422": 2, "uyvy": 2, "yuv422_yuy2": 2, "yuyv": 2,
            "bayer_rggb8": 1, "bayer_bggr8": 1, "bayer_gbrg8": 1, "bayer_grbg8": 1,
            "mono16": 1, "16UC1": 1, "rgb16": 3, "bgr16": 3}
BYTES_PER_CHANNEL = {"mono16": 2, "16UC1": 2, "rgb16": 2, "bgr16": 2}
ENCODINGS = tuple(sorted(CHANNELS))
_CANONICAL = dict((name.lower(), name) for name in ENCODINGS)  # "BGR8" and "16uc1" are seen too
# what the pipeline takes: 8-bit images in these encodings (the node's colour orders)
PIPELINE_ENCODINGS = ("bgr8", "bgra8", "mono8", "rgb8", "rgba8")
# 16-bit data keeps its high byte (value >> 8): a fixed scale, so brightness does not flicker per frame
SIXTEEN_TO_EIGHT = {"mono16": "mono8", "16UC1": "mono8", "rgb16": "rgb8", "bgr16": "bgr8"}
# packed YUV 4:2:2 byte order; "yuv422" is UYVY and "yuv422_yuy2" YUYV (sensor_msgs' deprecated names)
YUV422_ORDER = {"yuv422": "UYVY", "uyvy": "UYVY", "yuv422_yuy2": "YUY2", "yuyv": "YUY2"}
# the colour of the top-left 2x2 cell, row by row. OpenCV names a Bayer code after the second row's
# second and third pixels, so ROS's rggb is OpenCV's BayerBG (as cv_bridge maps it).
BAYER_PATTERN = {"bayer_rggb8": "RGGB", "bayer_bggr8": "BGGR", "bayer_gbrg8": "GBRG", "bayer_grbg8": "GRBG"}
_BAYER_OPENCV = {"RGGB": "BG", "BGGR": "RG", "GBRG": "GR", "GRBG": "GB"}


def _buffer(data):
    """A uint8 array over the message's data: zero-copy for array.array / bytes (rclpy >= Foxy)."""
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8)  # a list of ints: no buffer to share


def _dtype(encoding, bigendian):
    if BYTES_PER_CHANNEL.get(encoding, 1) == 1:
        return np.dtype(np.uint8)  # 8 bits per channel: endianness does not matter
    return np.dtype(">u2" if bigendian else "<u2")


def image_view(msg):
    """(array, encoding) for a sensor_msgs/Image; the array shares the message's memory.

    The array is the data as the wire has it: (H, W, C) or (H, W) uint8 for 8-bit encodings,
    (H, W, 2) for packed YUV 4:2:2, (H, W) for Bayer mosaics, and uint16 in the message's byte order
    (`is_bigendian`) for 16-bit ones. `message_image` converts it to what the pipeline takes."""
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    encoding = _CANONICAL.get(msg.encoding.lower(), msg.encoding.lower())
    if width == 0 or height == 0 or len(msg.data) == 0:
        raise ImageError("empty", "empty image ({}x{}, {} data bytes): skipped".format(
            width, height, len(msg.data)))
    if encoding not in CHANNELS:
        raise ImageError("encoding:" + encoding, "unsupported encoding {!r}: skipped; publish one of {} "
                         "(or convert upstream, e.g. image_proc)".format(msg.encoding, ", ".join(ENCODINGS)))
    channels = CHANNELS[encoding]
    dtype = _dtype(encoding, msg.is_bigendian)
    pixel_bytes = channels * dtype.itemsize
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise ImageError("step", "step {} is less than width {} x {} bytes per pixel ({} encoding) = {}: "
                         "skipped; the publisher sets step wrongly".format(step, width, pixel_bytes, encoding,
                                                                            row_bytes))
    if len(msg.data) != step * height:
        raise ImageError("size", "data has {} bytes but step {} x height {} = {}: skipped; the publisher's "
                         "step/height do not match its data".format(len(msg.data), step, height, step * height))
    if encoding in YUV422_ORDER and width % 2:
        raise ImageError("width:" + encoding, "width {} is odd, but {} pairs pixels: skipped; the publisher's "
                         "width is wrong".format(width, encoding))
    flat = _buffer(msg.data)
    shape = (height, width) if channels == 1 else (height, width, channels)
    strides = (step, dtype.itemsize) if channels == 1 else (step, pixel_bytes, dtype.itemsize)
    view = np.ndarray(shape, dtype=dtype, buffer=flat, strides=strides)
    view.flags.writeable = False
    return view, encoding


def to_pipeline(image, encoding):
    """(image, encoding) the pipeline takes, from an `image_view`: 8-bit encodings pass through
    as they are; YUV 4:2:2 and Bayer become bgr8 (one cv2.cvtColor); 16-bit data keeps its high
    byte (value >> 8, whatever the byte order) as mono8 / rgb8 / bgr8."""
    if encoding in PIPELINE_ENCODINGS:
        return image, encoding
    if encoding in SIXTEEN_TO_EIGHT:
        return _high_byte(image), SIXTEEN_TO_EIGHT[encoding]
    return to_bgr(image, encoding), "bgr8"


def message_image(msg):
    """(image, encoding) for the pipeline from a sensor_msgs/Image: `to_pipeline(*image_view(msg))`.
    The encoding is one of PIPELINE_ENCODINGS and tells the image's colour order."""
    return to_pipeline(*image_view(msg))


def _high_byte(image):
    """uint16 (either byte order, numpy reads it as tagged) -> uint8 keeping value >> 8."""
    return (image >> 8).astype(np.uint8)


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


def _bayer_code(encoding, target):
    import cv2

    return getattr(cv2, "COLOR_Bayer{}2{}".format(_BAYER_OPENCV[BAYER_PATTERN[encoding]], target))


def to_bgr(image, encoding):
    """A 3-channel BGR uint8 image from an `image_view` of one of ENCODINGS (one cv2.cvtColor;
    a no-copy pass-through for bgr8)."""
    import cv2

    conversions = {"rgb8": cv2.COLOR_RGB2BGR, "rgba8": cv2.COLOR_RGBA2BGR, "bgra8": cv2.COLOR_BGRA2BGR,
                   "mono8": cv2.COLOR_GRAY2BGR}
    if encoding == "bgr8":
        return image
    if encoding in SIXTEEN_TO_EIGHT:
        return to_bgr(_high_byte(image), SIXTEEN_TO_EIGHT[encoding])
    if encoding in YUV422_ORDER:
        code = getattr(cv2, "COLOR_YUV2BGR_" + YUV422_ORDER[encoding])
    elif encoding in BAYER_PATTERN:
        code = _bayer_code(encoding, "BGR")
    elif encoding in conversions:
        code = conversions[encoding]
    else:
        raise ImageError("encoding:" + encoding, "unsupported encoding {!r}".format(encoding))
    return cv2.cvtColor(np.ascontiguousarray(image), code)


def _yuv422_from_bgr(image, order):
    """Packed YUV 4:2:2 (H, W, 2) from BGR: OpenCV's BGR -> I420 (the coefficients its YUV 4:2:2
    decoder uses), each chroma row shared by the two image rows it came from."""
    import cv2

    height, width = image.shape[:2]
    if height % 2 or width % 2:
        raise ValueError("YUV 4:2:2 needs an even width and height, not {}x{}; pass --size".format(width, height))
    planar = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)
    chroma_planes = planar[height:].reshape(2, height // 2, width // 2)  # U then V, each a quarter
    u, v = (np.repeat(plane, 2, axis=0) for plane in chroma_planes)
    luma, chroma = (1, 0) if order == "UYVY" else (0, 1)
    packed = np.empty((height, width, 2), dtype=np.uint8)
    packed[:, :, luma] = planar[:height]
    packed[:, 0::2, chroma] = u
    packed[:, 1::2, chroma] = v
    return packed


def _bayer_from_bgr(image, encoding):
    """The Bayer mosaic of a BGR image: each pixel keeps the one colour its filter passes."""
    mosaic = np.empty(image.shape[:2], dtype=np.uint8)
    for cell, colour in enumerate(BAYER_PATTERN[encoding]):
        row, column = divmod(cell, 2)
        mosaic[row::2, column::2] = image[row::2, column::2, "BGR".index(colour)]
    return mosaic


def from_bgr(image, encoding):
    """A BGR uint8 image converted to one of ENCODINGS (for publishers such as the replay tool).
    16-bit encodings get value * 257 (so 255 is full scale and >> 8 gives the 8-bit value back),
    in native byte order."""
    import cv2

    conversions = {"rgb8": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_BGR2RGBA, "bgra8": cv2.COLOR_BGR2BGRA,
                   "mono8": cv2.COLOR_BGR2GRAY}
    if encoding == "bgr8":
        return image
    if encoding in SIXTEEN_TO_EIGHT:
        return from_bgr(image, SIXTEEN_TO_EIGHT[encoding]).astype(np.uint16) * 257
    if encoding in YUV422_ORDER:
        return _yuv422_from_bgr(image, YUV422_ORDER[encoding])
    if encoding in BAYER_PATTERN:
        return _bayer_from_bgr(image, encoding)
    if encoding not in conversions:
        raise ValueError("cannot publish encoding {!r}; allowed: {}".format(encoding, ", ".join(ENCODINGS)))
    return cv2.cvtColor(image, conversions[encoding])


def fill_image(msg, image, encoding, header=None):
    """Write an array in `encoding`'s layout (uint8, or uint16 in either byte order for 16-bit
    encodings) into a sensor_msgs/Image `msg` (one copy) and return it."""
    bytes_per_channel = BYTES_PER_CHANNEL.get(encoding, 1)
    image = np.asarray(image)
    channels = 1 if image.ndim == 2 else image.shape[2]
    if CHANNELS.get(encoding) != channels or image.dtype.itemsize != bytes_per_channel:
        raise ValueError("a {} {} array cannot be published as {!r} ({} channels of {} bits)".format(
            image.shape, image.dtype, encoding, CHANNELS.get(encoding), 8 * bytes_per_channel))
    image = np.ascontiguousarray(image, dtype=np.uint8 if bytes_per_channel == 1 else image.dtype)
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = encoding
    byteorder = image.dtype.byteorder
    msg.is_bigendian = int(bytes_per_channel > 1 and (byteorder == ">" or (byteorder == "=" and
                                                                           sys.byteorder == "big")))
    msg.step = int(image.shape[1] * channels * bytes_per_channel)
    data = array.array("B")
    data.frombytes(image.reshape(-1).view(np.uint8).data)  # bytes as they lie, in the array's byte order
    msg.data = data
    return msg
