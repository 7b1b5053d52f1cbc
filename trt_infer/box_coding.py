"""Centre-size box decoding of SSD regressor outputs against anchors, with optional keypoints.

For anchor (cy, cx, h, w) and raw values (ty, tx, th, tw) divided by per-coordinate scales:
    centre_y = ty * h + cy            centre_x = tx * w + cx
    height   = exp(th) * h            width    = exp(tw) * w       (size_decoding: exp)
    height   = th * h                 width    = tw * w            (size_decoding: linear)
TF OD API: scales 10, 10, 5, 5, y first, exp. pytorch-ssd: variances 0.1 / 0.2 (= scales 10, 10,
5, 5), x first, exp. MediaPipe: scales = input size (128), x first, linear sizes, keypoints
(x, y pairs decoded like centres) after the 4 box values.
"""
import numpy as np

from .schema import Field, SpecError

BOX_CODING_SCHEMA = {
    "scales": Field(list, default=None, nullable=True, length=4, item=Field(float),
                    doc="[y, x, h, w] divisors of the raw values (TF: 10, 10, 5, 5; MediaPipe: 128 x 4)"),
    "variances": Field(list, default=None, nullable=True, length=2, item=Field(float),
                       doc="[centre, size] multipliers (pytorch-ssd: 0.1, 0.2); instead of scales"),
    "order": Field(str, default="yx", choices=("yx", "xy"),
                   doc="yx: raw values are [y, x, h, w] (TF); xy: [x, y, w, h] (MediaPipe, pytorch-ssd)"),
    "size_decoding": Field(str, default="exp", choices=("exp", "linear"),
                           doc="exp: size = exp(raw) * anchor; linear: size = raw * anchor (MediaPipe)"),
    "box_offset": Field(int, default=0, doc="index of the first box value in the regressor row"),
    "keypoint_offset": Field(int, default=4, doc="index of the first keypoint value in the regressor row"),
}


def _scales_yxhw(coding, path):
    if coding["scales"] is not None and coding["variances"] is not None:
        raise SpecError(path, "give scales or variances, not both")
    if coding["variances"] is not None:
        centre, size = coding["variances"]
        if centre <= 0 or size <= 0:
            raise SpecError(path + ".variances", "got {!r}; both must be > 0".format(coding["variances"]))
        return np.array([centre, centre, size, size], dtype=np.float32)
    scales = coding["scales"] if coding["scales"] is not None else [1.0, 1.0, 1.0, 1.0]
    if min(scales) <= 0:
        raise SpecError(path + ".scales", "got {!r}; all must be > 0".format(scales))
    return 1.0 / np.array(scales, dtype=np.float32)


class BoxDecoder(object):
    """Decodes rows of an SSD regressor output ((N, values) float) against (N, 4) anchors.

    Only the rows asked for are decoded, so callers pass the indices that passed the score
    threshold instead of decoding every anchor.
    """

    def __init__(self, coding, anchors, num_keypoints=0, path="ssd.box_coding"):
        self.anchors = np.ascontiguousarray(anchors, dtype=np.float32)
        # Multipliers for [y, x, h, w]: 1 / scale, or the variance.
        self.multipliers = _scales_yxhw(coding, path)
        self.x_first = coding["order"] == "xy"
        self.exp_sizes = coding["size_decoding"] == "exp"
        self.box_offset = coding["box_offset"]
        self.keypoint_offset = coding["keypoint_offset"]
        self.num_keypoints = int(num_keypoints)
        self.values_needed = max(self.box_offset + 4,
                                 self.keypoint_offset + 2 * self.num_keypoints if self.num_keypoints else 0)

    def _yx(self, raw, start):
        """(y, x) raw columns starting at `start`, honouring the coding order."""
        first, second = raw[:, start], raw[:, start + 1]
        return (second, first) if self.x_first else (first, second)

    def decode_boxes(self, raw, rows):
        """(len(rows), 4) float32 x1, y1, x2, y2 normalised to the network input."""
        raw = raw[rows].astype(np.float32, copy=False)
        anchors = self.anchors[rows]
        ty, tx = self._yx(raw, self.box_offset)
        th, tw = self._yx(raw, self.box_offset + 2)
        my, mx, mh, mw = self.multipliers
        centre_y = ty * (my * anchors[:, 2]) + anchors[:, 0]
        centre_x = tx * (mx * anchors[:, 3]) + anchors[:, 1]
        if self.exp_sizes:
            half_h = np.exp(th * mh) * (0.5 * anchors[:, 2])
            half_w = np.exp(tw * mw) * (0.5 * anchors[:, 3])
        else:
            half_h = th * (0.5 * mh * anchors[:, 2])
            half_w = tw * (0.5 * mw * anchors[:, 3])
        boxes = np.empty((len(centre_y), 4), dtype=np.float32)
        boxes[:, 0] = centre_x - half_w
        boxes[:, 1] = centre_y - half_h
        boxes[:, 2] = centre_x + half_w
        boxes[:, 3] = centre_y + half_h
        return boxes

    def decode_keypoints(self, raw, rows):
        """(len(rows), K, 2) float32 x, y normalised to the network input, or None without keypoints."""
        if not self.num_keypoints:
            return None
        stop = self.keypoint_offset + 2 * self.num_keypoints
        pairs = raw[rows, self.keypoint_offset:stop].astype(np.float32).reshape(-1, self.num_keypoints, 2)
        if not self.x_first:
            pairs = pairs[:, :, ::-1]
        anchors = self.anchors[rows]
        my, mx = self.multipliers[:2]
        points = np.empty(pairs.shape, dtype=np.float32)
        points[:, :, 0] = pairs[:, :, 0] * (mx * anchors[:, 3:4]) + anchors[:, 1:2]
        points[:, :, 1] = pairs[:, :, 1] * (my * anchors[:, 2:3]) + anchors[:, 0:1]
        return points


def encode_boxes(boxes_xyxy, anchors, coding, path="ssd.box_coding"):
    """Inverse of BoxDecoder.decode_boxes for all anchors: (N, 4) raw values in the coding's order.

    Used to build realistic regressor outputs for tests and the benchmark.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    anchors = np.asarray(anchors, dtype=np.float64)
    multipliers = _scales_yxhw(coding, path).astype(np.float64)
    height = boxes[:, 3] - boxes[:, 1]
    width = boxes[:, 2] - boxes[:, 0]
    ty = ((boxes[:, 1] + boxes[:, 3]) * 0.5 - anchors[:, 0]) / anchors[:, 2] / multipliers[0]
    tx = ((boxes[:, 0] + boxes[:, 2]) * 0.5 - anchors[:, 1]) / anchors[:, 3] / multipliers[1]
    if coding["size_decoding"] == "exp":
        th = np.log(height / anchors[:, 2]) / multipliers[2]
        tw = np.log(width / anchors[:, 3]) / multipliers[3]
    else:
        th = height / anchors[:, 2] / multipliers[2]
        tw = width / anchors[:, 3] / multipliers[3]
    columns = (tx, ty, tw, th) if coding["order"] == "xy" else (ty, tx, th, tw)
    return np.stack(columns, axis=1).astype(np.float32)
