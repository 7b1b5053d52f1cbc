"""How an image is fitted into the network input, and the inverse mapping back to its pixels."""
import numpy as np

RESIZE_MODES = ("stretch", "letterbox")


class ResizeTransform(object):
    """Maps between the received image (image_width x image_height) and the network input.

    stretch: each axis scaled independently to fill the input.
    letterbox: one scale for both axes, the image centred, borders padded.
    Network pixel = image pixel * scale + pad.
    """

    def __init__(self, image_width, image_height, net_width, net_height, mode="stretch"):
        if mode not in RESIZE_MODES:
            raise ValueError("resize mode {!r}; allowed: {}".format(mode, ", ".join(RESIZE_MODES)))
        if image_width <= 0 or image_height <= 0:
            raise ValueError("image size {}x{} is empty".format(image_width, image_height))
        self.image_width = int(image_width)
        self.image_height = int(image_height)
        self.net_width = int(net_width)
        self.net_height = int(net_height)
        self.mode = mode
        if mode == "stretch":
            self.scale_x = float(net_width) / image_width
            self.scale_y = float(net_height) / image_height
            self.resized_width, self.resized_height = self.net_width, self.net_height
        else:
            scale = min(float(net_width) / image_width, float(net_height) / image_height)
            self.scale_x = self.scale_y = scale
            self.resized_width = max(1, min(self.net_width, int(round(image_width * scale))))
            self.resized_height = max(1, min(self.net_height, int(round(image_height * scale))))
        self.pad_x = (self.net_width - self.resized_width) // 2
        self.pad_y = (self.net_height - self.resized_height) // 2

    def points_to_image(self, points_normalised):
        """(..., 2) x, y in 0..1 of the network input -> image pixels (not clipped)."""
        points = np.asarray(points_normalised, dtype=np.float32)
        out = np.empty_like(points)
        out[..., 0] = (points[..., 0] * self.net_width - self.pad_x) / self.scale_x
        out[..., 1] = (points[..., 1] * self.net_height - self.pad_y) / self.scale_y
        return out

    def boxes_to_image(self, boxes_normalised):
        """(N, 4) x1, y1, x2, y2 in 0..1 of the network input -> image pixels, clipped to the image."""
        boxes = np.asarray(boxes_normalised, dtype=np.float32).reshape(-1, 2, 2)
        pixels = self.points_to_image(boxes).reshape(-1, 4)
        np.clip(pixels[:, 0::2], 0, self.image_width, out=pixels[:, 0::2])
        np.clip(pixels[:, 1::2], 0, self.image_height, out=pixels[:, 1::2])
        return pixels

    def valid_region(self):
        """(x, y, width, height) of the network input that holds image content (not padding)."""
        return self.pad_x, self.pad_y, self.resized_width, self.resized_height

    def __repr__(self):
        return "ResizeTransform({}x{} -> {}x{}, {})".format(
            self.image_width, self.image_height, self.net_width, self.net_height, self.mode)
