"""GPU segmentation post-processing: class logits -> uint8 class-id masks, on the GPU.

The same rules as trt_infer.postprocess.segmentation (whose validation and cut-off it reuses):
argmax over class channels, or one channel compared with a sigmoid/probability threshold; the
mask mapped back to the image (letterbox cropped, nearest-neighbour upsampling) and optionally
coloured from the palette. Only uint8 masks cross to the host.
"""
import numpy as np

from trt_infer.cuda.kernels import MASK_ARGS, MASK_TO_IMAGE_ARGS, SEGMENTATION_SOURCE, compile_module, launch_grid
from trt_infer.overlay import default_palette
from trt_infer.postprocess.segmentation import SegmentationPostprocessor, valid_crop
from trt_infer.result import Result

PALETTE_SIZE = 256  # uint8 class ids


class GpuSegmentation(object):
    """Built from a ModelSpec of task segmentation; `post(outputs, transform)` returns
    a Result with mask and image_mask like the CPU post-processor. The logits may be a HostDeviceBuffer
    already on the GPU (the engine's output: read in place) or a numpy array (uploaded).

    colour: also make the colour mask (`segment(...)[2]`, or `last_colours` after a call),
    rows of the spec's palette (RGB; default_palette when the spec has none) in `color_order`.
    """

    def __init__(self, spec, context=None, stream=None, colour=False, color_order="RGB"):
        from trt_infer.backends.cuda_buffers import CudaContext
        self.rules = SegmentationPostprocessor(spec)
        self.output_name = self.rules.output_name
        self._owns_context = context is None
        self.context = CudaContext(0) if context is None else context
        self.stream = stream if stream is not None else self.context.stream()
        self.colour = colour
        self._palette_rows = None if spec.palette is None else len(spec.palette)
        palette = default_palette(PALETTE_SIZE) if spec.palette is None else _padded(spec.palette)
        if color_order == "BGR":
            palette = palette[:, ::-1]
        self._palette = self.context.buffer((PALETTE_SIZE, 3), np.uint8)
        self._palette.host[...] = palette
        self._palette.upload(self.stream)
        self._module = compile_module(self.context, SEGMENTATION_SOURCE)
        self._buffers = {}
        self.last_colours = None

    @property
    def device_outputs(self):
        """The outputs this post-processor reads in place on the GPU (the pipeline keeps them there)."""
        return (self.output_name,)

    def check_outputs(self, infos):
        """Called by the pipeline with the model's outputs (name -> TensorInfo): ValueError if unusable."""
        self.rules.check_outputs(infos)

    def __call__(self, outputs, transform):
        mask, image_mask, colours = self.segment(outputs[self.output_name], transform)
        self.last_colours = colours
        return Result(mask=mask, image_mask=image_mask)

    def segment(self, logits, transform):
        """(mask at the output's resolution, mask at the image's, colours (H, W, 3) or None)."""
        scores = self._device_scores(logits)
        shape = scores.host.shape
        self.rules.check_output_shape(shape)
        classes, height, width = self.rules.channels_and_size(shape)
        self._check_palette(classes)
        dtype = scores.host.dtype.name
        mask = self._buffer("mask", (height, width))
        image_size = (transform.image_height, transform.image_width)
        image_mask = self._buffer("image_mask", image_size)
        colours = self._buffer("colours", image_size + (3,)) if self.colour else None
        left, top, crop_width, crop_height = valid_crop(width, height, transform)
        with self.context.activate():
            grid, block = launch_grid(width, height)
            if self.rules.activation == "argmax":
                layout = "nchw" if self.rules.layout == "NCHW" or len(shape) < 4 else "nhwc"
                kernel = self._kernel("argmax_{}_{}".format(layout, dtype), MASK_ARGS["argmax"])
                kernel.prepared_async_call(grid, block, self.stream.cuda_stream, scores.device_ptr,
                                           mask.device_ptr, width, height, classes)
            else:
                kernel = self._kernel("threshold_" + dtype, MASK_ARGS["threshold"])
                kernel.prepared_async_call(grid, block, self.stream.cuda_stream, scores.device_ptr,
                                           mask.device_ptr, width, height, np.float32(self.rules.cutoff))
            grid, block = launch_grid(transform.image_width, transform.image_height)
            self._kernel("mask_to_image", MASK_TO_IMAGE_ARGS).prepared_async_call(
                grid, block, self.stream.cuda_stream, mask.device_ptr, width, left, top, crop_width,
                crop_height, image_mask.device_ptr, transform.image_width, transform.image_height,
                1.0 / (float(transform.image_width) / crop_width), 1.0 / (float(transform.image_height) / crop_height),
                self._palette.device_ptr, colours.device_ptr if colours is not None else 0)
            for buffer in (mask, image_mask, colours):
                if buffer is not None:
                    buffer.download(self.stream)
            self.stream.cuda_stream.synchronize()
        # copies: the pinned buffers are reused by the next call
        return mask.host.copy(), image_mask.host.copy(), None if colours is None else colours.host.copy()

    def close(self):
        """Release the context when this post-processor made it."""
        if self._owns_context:
            self.context.close()

    def _device_scores(self, logits):
        if hasattr(logits, "device_ptr"):
            return logits
        logits = np.asarray(logits)
        if logits.dtype not in (np.float32, np.float16):
            logits = logits.astype(np.float32)
        staging = self._buffer("logits", logits.shape, logits.dtype)
        staging.host[...] = logits
        staging.upload(self.stream)
        return staging

    def _buffer(self, role, shape, dtype=np.uint8):
        """A buffer per role, reallocated only when the shape changes (the image size, mostly)."""
        shape = tuple(shape)
        buffer = self._buffers.get(role)
        if buffer is None or buffer.host.shape != shape or buffer.host.dtype != dtype:
            if buffer is not None:
                self.stream.synchronize()
                self.context.free(buffer)
            buffer = self._buffers[role] = self.context.buffer(shape, dtype)
        return buffer

    def _kernel(self, name, arguments):
        return self.context.cached(("kernel", name), lambda: self._module.get_function(name).prepare(arguments))

    def _check_palette(self, classes):
        classes = max(classes, 2)
        if self.colour and self._palette_rows is not None and self._palette_rows < classes:
            raise ValueError("segmentation output {!r} has {} classes but the palette has {} colours; give "
                             "one [r, g, b] per class".format(self.output_name, classes, self._palette_rows))


def _padded(palette):
    rows = np.zeros((PALETTE_SIZE, 3), np.uint8)
    palette = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)[:PALETTE_SIZE]
    rows[:len(palette)] = palette
    return rows
