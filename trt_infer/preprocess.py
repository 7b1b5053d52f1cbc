"""CPU pre-processing: a uint8 camera image -> the network's input tensor, written in place.

Resize (cv2 INTER_LINEAR, stretch or letterbox), split into channel planes, then per channel
value = pixel * scale / std - mean / std written straight into the backend's input buffer in
the network's layout, channel order and dtype. Letterbox borders are filled with the
normalised pad value. Scratch arrays are kept per image size, so steady state allocates nothing.
"""
import cv2
import numpy as np

from trt_infer.geometry import ResizeTransform

IMAGE_COLOR_ORDERS = ("BGR", "RGB")
ACCEPTED = "uint8 HxWx3 (BGR or RGB), HxWx4 (alpha dropped) or HxW / HxWx1 (mono, replicated)"


def check_image(image):
    """The image as a C-contiguous uint8 array of 2 or 3 dims; ValueError naming what is wrong."""
    if not isinstance(image, np.ndarray):
        raise ValueError("image is a {}; expected a numpy array: {}".format(type(image).__name__, ACCEPTED))
    channels_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3, 4))
    if image.dtype != np.uint8 or not channels_ok:
        raise ValueError("image has shape {} and dtype {}; accepted: {}".format(image.shape, image.dtype, ACCEPTED))
    if image.size == 0:
        raise ValueError("image has shape {}: it is empty; accepted: {}".format(image.shape, ACCEPTED))
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not image.flags.c_contiguous:
        image = np.ascontiguousarray(image)
    return image


def normalisation(input_spec):
    """(gain, offset, pad), one float per network channel: value = pixel * gain + offset, and pad
    is the value of a letterbox border pixel. Shared by the CPU and GPU pre-processors."""
    std = np.asarray(input_spec.std, dtype=np.float64)
    gain = [float(value) for value in input_spec.scale / std]
    offset = [float(value) for value in -np.asarray(input_spec.mean, dtype=np.float64) / std]
    pad = [input_spec.pad_value * channel_gain + channel_offset for channel_gain, channel_offset in zip(gain, offset)]
    return gain, offset, pad


class Preprocessor(object):
    """Fits images into the network input described by an InputSpec (trt_infer.spec).

    `pre(image, out=None, color_order="BGR") -> ResizeTransform` writes the tensor into `out`
    (normally `backend.input_buffer(spec.input.name)`) or into `pre.buffer` when out is None.
    `color_order` is the image's channel order ("BGR" for OpenCV/camera frames, or "RGB").
    """

    def __init__(self, input_spec):
        self.spec = input_spec
        self.width = input_spec.width
        self.height = input_spec.height
        self.nchw = input_spec.layout == "NCHW"
        self.shape = input_spec.shape
        self.dtype = np.dtype(input_spec.dtype)
        self.gain, self.offset, self.pad = normalisation(input_spec)
        self._buffer = None
        self._transforms = {}  # (image width, height) -> ResizeTransform
        self._resized = {}     # (width, height, channels) -> resize output
        self._split = {}       # resized shape -> its channel planes
        self._float = None     # float32 working copy when the output is float16

    @property
    def buffer(self):
        """The pre-processor's own output tensor, used when no `out` is given."""
        if self._buffer is None:
            self._buffer = np.zeros(self.shape, dtype=self.dtype)
        return self._buffer

    def __call__(self, image, out=None, color_order="BGR"):
        if color_order not in IMAGE_COLOR_ORDERS:
            raise ValueError("color_order {!r}; allowed: {}".format(color_order, ", ".join(IMAGE_COLOR_ORDERS)))
        image = check_image(image)
        out = self.buffer if out is None else self._check_out(out)
        height, width = image.shape[:2]
        transform = self._transform(width, height)
        planes = self._planes(self._resize(image, transform))
        work = out if out.dtype == np.float32 else self._float_work()
        self._normalise(planes, self._source_channels(planes, color_order), transform, work[0])
        if work is not out:
            np.copyto(out, work, casting="same_kind")
        return transform

    def _check_out(self, out):
        if out.shape != self.shape or out.dtype != self.dtype:
            raise ValueError("output buffer has shape {} {}; the input spec {!r} needs {} {}".format(
                out.shape, out.dtype, self.spec.name, self.shape, self.dtype))
        return out

    def _transform(self, width, height):
        key = (width, height)
        if key not in self._transforms:
            self._transforms[key] = ResizeTransform(width, height, self.width, self.height, self.spec.resize)
        return self._transforms[key]

    def _resize(self, image, transform):
        size = (transform.resized_width, transform.resized_height)
        if size == (transform.image_width, transform.image_height):
            return image
        key = size + image.shape[2:]
        if key not in self._resized:
            self._resized[key] = np.empty((size[1], size[0]) + image.shape[2:], dtype=np.uint8)
        return cv2.resize(image, size, dst=self._resized[key], interpolation=cv2.INTER_LINEAR)

    def _float_work(self):
        if self._float is None:
            self._float = np.empty(self.shape, dtype=np.float32)
        return self._float

    def _planes(self, resized):
        """The resized image's channels as contiguous planes (reading them strided is ~2x slower)."""
        if resized.ndim == 2:
            return (resized,)
        key = resized.shape
        if key not in self._split:
            self._split[key] = [np.empty(resized.shape[:2], dtype=np.uint8) for _ in range(resized.shape[2])]
        return cv2.split(resized, self._split[key])

    def _source_channels(self, planes, color_order):
        """For each network channel, the image plane that feeds it."""
        if len(planes) == 1:
            return (0, 0, 0)
        if color_order == self.spec.color_order:
            return (0, 1, 2)
        return (2, 1, 0)

    def _normalise(self, planes, sources, transform, tensor):
        """Write the normalised channels into `tensor` ((3, H, W) or (H, W, 3)) and fill the borders."""
        x, y, width, height = transform.valid_region()
        for channel, source in enumerate(sources):
            plane = tensor[channel] if self.nchw else tensor[:, :, channel]
            valid = plane[y:y + height, x:x + width]
            np.multiply(planes[source], self.gain[channel], out=valid, dtype=np.float32, casting="unsafe")
            valid += self.offset[channel]
            if (width, height) != (self.width, self.height):
                plane[:y] = self.pad[channel]
                plane[y + height:] = self.pad[channel]
                plane[y:y + height, :x] = self.pad[channel]
                plane[y:y + height, x + width:] = self.pad[channel]
