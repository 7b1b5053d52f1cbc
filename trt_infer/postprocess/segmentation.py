"""Segmentation: network output -> class-id mask at the network's and at the image's resolution.

activation:
  argmax       several channels of per-class scores (logits or probabilities): the best class.
  sigmoid      one channel of logits: class 1 where sigmoid(logit) > threshold, else 0.
  probability  one channel already holding probabilities (e.g. MediaPipe selfie segmentation,
               whose last op is a sigmoid): class 1 where value > threshold, else 0.
"""
import math

import cv2
import numpy as np

from trt_infer.result import Result
from trt_infer.schema import Field

ACTIVATIONS = ("argmax", "sigmoid", "probability")
LAYOUTS = ("NCHW", "NHWC")

SCHEMA = {
    "activation": Field(str, default="argmax", choices=ACTIVATIONS,
                        doc="argmax over class channels; sigmoid of one logit channel; probability: one channel "
                            "already holding probabilities"),
    "threshold": Field(float, default=0.5,
                       above=0, below=1,
                       doc="for sigmoid/probability: the foreground probability above which a pixel is class 1"),
    "logits_layout": Field(str, default="NCHW", choices=LAYOUTS, doc="layout of the segmentation output"),
}


class SegmentationPostprocessor(object):
    """Returns a Result with mask (uint8 class ids, network resolution) and image_mask (the received image's)."""

    def __init__(self, spec):
        section = spec.section
        self.output_name = spec.outputs["logits"]
        self.activation = section.activation
        self.layout = section.logits_layout
        threshold = section.threshold
        # sigmoid(x) > t  <=>  x > log(t / (1 - t)): compare logits directly, no exp per pixel.
        self.cutoff = math.log(threshold / (1.0 - threshold)) if self.activation == "sigmoid" else threshold

    def channels_and_size(self, shape):
        """(classes, height, width) of an output of this shape, or ValueError."""
        shape = tuple(shape)
        if len(shape) == 4 and shape[0] in (1, -1):
            return shape[1:] if self.layout == "NCHW" else (shape[3], shape[1], shape[2])
        if len(shape) == 3 and shape[0] in (1, -1):
            return (1,) + shape[1:]
        if len(shape) == 2:
            return (1,) + shape
        raise ValueError("segmentation output {!r} has shape {}; expected (1, C, H, W) or (1, H, W, C) as "
                         "set by segmentation.logits_layout ({}), (1, H, W) or (H, W)".format(
                             self.output_name, shape, self.layout))

    def check_outputs(self, infos):
        """Called by the pipeline with the model's outputs (name -> TensorInfo): ValueError if unusable."""
        self.check_output_shape(infos[self.output_name].shape)

    def check_output_shape(self, shape):
        """ValueError when the activation cannot apply to an output of this shape (-1: not fixed)."""
        classes = self.channels_and_size(shape)[0]
        if classes < 0:
            return
        if self.activation == "argmax" and not 2 <= classes <= 256:
            raise ValueError("segmentation output {!r} has shape {} ({} class channels): argmax needs 2 to 256; "
                             "use segmentation.activation: sigmoid (logits) or probability".format(
                                 self.output_name, tuple(shape), classes))
        if self.activation != "argmax" and classes != 1:
            raise ValueError("segmentation output {!r} has shape {} ({} class channels): activation {!r} needs "
                             "one channel; use segmentation.activation: argmax".format(
                                 self.output_name, tuple(shape), classes, self.activation))

    def network_mask(self, output):
        """uint8 class ids (H, W) at the network's output resolution."""
        output = np.asarray(output)
        self.check_output_shape(output.shape)
        classes, height, width = self.channels_and_size(output.shape)
        if self.activation == "argmax":
            channel_axis = 1 if self.layout == "NCHW" and output.ndim == 4 else -1
            return np.argmax(output, axis=channel_axis).reshape(height, width).astype(np.uint8)
        return (output.reshape(height, width) > self.cutoff).astype(np.uint8)

    def __call__(self, outputs, transform):
        mask = self.network_mask(outputs[self.output_name])
        return Result(mask=mask, image_mask=lambda: mask_to_image(mask, transform))


def mask_to_image(mask, transform):
    """A network-resolution class-id mask in the received image's pixels: the letterbox's valid
    region is cropped (scaled to the mask's resolution when it differs from the input's), then
    resized with nearest neighbour so no class id is invented at borders."""
    left, top, width, height = valid_crop(mask.shape[1], mask.shape[0], transform)
    valid = mask[top:top + height, left:left + width]
    return cv2.resize(valid, (transform.image_width, transform.image_height), interpolation=cv2.INTER_NEAREST)


def valid_crop(mask_width, mask_height, transform):
    """(left, top, width, height) of the part of a mask that holds image content: the letterbox's
    valid region scaled to the mask's resolution, at least one pixel. Shared with the GPU path."""
    x, y, width, height = transform.valid_region()
    sx = float(mask_width) / transform.net_width
    sy = float(mask_height) / transform.net_height
    left, top = int(round(x * sx)), int(round(y * sy))
    right = min(mask_width, max(left + 1, int(round((x + width) * sx))))
    bottom = min(mask_height, max(top + 1, int(round((y + height) * sy))))
    return left, top, right - left, bottom - top
