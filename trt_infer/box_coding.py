"""Box decoding of SSD outputs: centre-size regressors against anchors, or boxes the model decoded itself.

`box_coding.type: centre_size` (BoxDecoder). For anchor (cy, cx, h, w) and raw values
(ty, tx, th, tw) divided by per-coordinate scales:
    centre_y = ty * h + cy            centre_x = tx * w + cx
    height   = exp(th) * h            width    = exp(tw) * w       (size_decoding: exp)
    height   = th * h                 width    = tw * w            (size_decoding: linear)
TF OD API: scales 10, 10, 5, 5, y first, exp. pytorch-ssd: variances 0.1 / 0.2 (= scales 10, 10,
5, 5), x first, exp. MediaPipe: scales = input size (128), x first, linear sizes, keypoints
(x, y pairs decoded like centres) after the 4 box values.

`box_coding.type: decoded` (CornerReader): the output already holds corners, as a graph cut before
its NMS does (`convert fix --nms runtime`: `boxes` [1, N, 4], TF order y1, x1, y2, x2); no anchors.
Both read only the rows asked for and return x1, y1, x2, y2 normalised to the network input.
"""
import numpy as np

from .schema import Field, SpecError

BOX_CODING_TYPES = ("centre_size", "decoded")

BOX_CODING_SCHEMA = {
    "type": Field(str, default="centre_size", choices=BOX_CODING_TYPES,
                  doc="centre_size: raw regressors decoded against ssd.anchors; decoded: the model outputs box "
                      "corners itself (a graph cut before its NMS, `convert fix --nms runtime`); no anchors"),
    "scales": Field(list, default=None, nullable=True, length=4, item=Field(float),
                    doc="[y, x, h, w] divisors of the raw values (TF: 10, 10, 5, 5; MediaPipe: 128 x 4)"),
    "variances": Field(list, default=None, nullable=True, length=2, item=Field(float),
                       doc="[centre, size] multipliers (pytorch-ssd: 0.1, 0.2); instead of scales"),
    "order": Field(str, default="yx", choices=("yx", "xy"),
                   doc="yx: raw values are [y, x, h, w] (TF), decoded corners [y1, x1, y2, x2]; xy: [x, y, w, h] "
                       "(MediaPipe, pytorch-ssd), decoded corners [x1, y1, x2, y2]"),
    "size_decoding": Field(str, default="exp", choices=("exp", "linear"),
                           doc="exp: size = exp(raw) * anchor; linear: size = raw * anchor (MediaPipe)"),
    "box_offset": Field(int, default=0, doc="index of the first box value in the regressor row"),
    "keypoint_offset": Field(int, default=4, doc="index of the first keypoint value in the regressor row"),
    "normalized": Field(bool, default=True,
                        doc="decoded only: true: corners (and keypoints) in 0..1 of the network input; false: in "
                            "network input pixels"),
}


def _scales_yxhw(coding, path):
    if coding.scales is not None and coding.variances is not None:
        raise SpecError(path, "give scales or variances, not both")
    if coding.variances is not None:
        centre, size = coding.variances
        if centre <= 0 or size <= 0:
            raise SpecError(path + ".variances", "got {!r}; both must be > 0".format(coding.variances))
        return np.array([centre, centre, size, size], dtype=np.float32)
    scales = coding.scales if coding.scales is not None else [1.0, 1.0, 1.0, 1.0]
    if min(scales) <= 0:
        raise SpecError(path + ".scales", "got {!r}; all must be > 0".format(scales))
    return 1.0 / np.array(scales, dtype=np.float32)


def box_decoder(coding, anchors, input_size, num_keypoints=0, path="ssd.box_coding"):
    """The reader of `coding.type`: a BoxDecoder against `anchors`, or a CornerReader (anchors unused).

    input_size: (width, height) of the network input, for decoded corners given in its pixels.
    """
    if coding.type == "decoded":
        return CornerReader(coding, input_size, num_keypoints, path)
    return BoxDecoder(coding, anchors, num_keypoints, path)


class _RowLayout(object):
    """Where the box and keypoint values sit in an output row, and which coordinate comes first."""

    def __init__(self, coding, num_keypoints):
        self.x_first = coding.order == "xy"
        self.box_offset = coding.box_offset
        self.keypoint_offset = coding.keypoint_offset
        self.num_keypoints = int(num_keypoints)
        self.values_needed = max(self.box_offset + 4,
                                 self.keypoint_offset + 2 * self.num_keypoints if self.num_keypoints else 0)

    def _yx(self, raw, start):
        """(y, x) raw columns starting at `start`, honouring the coding order."""
        first, second = raw[:, start], raw[:, start + 1]
        return (second, first) if self.x_first else (first, second)

    def _keypoint_pairs(self, raw, rows):
        """(len(rows), K, 2) float32 raw keypoint values as x, y pairs, or None without keypoints."""
        if not self.num_keypoints:
            return None
        stop = self.keypoint_offset + 2 * self.num_keypoints
        pairs = raw[rows, self.keypoint_offset:stop].astype(np.float32).reshape(-1, self.num_keypoints, 2)
        return pairs if self.x_first else pairs[:, :, ::-1]


class BoxDecoder(_RowLayout):
    """Decodes rows of an SSD regressor output ((N, values) float) against (N, 4) anchors.

    Only the rows asked for are decoded, so callers pass the indices that passed the score
    threshold instead of decoding every anchor.
    """

    def __init__(self, coding, anchors, num_keypoints=0, path="ssd.box_coding"):
        if not coding.normalized:
            raise SpecError(path + ".normalized", "got False; centre-size boxes decode against anchors in 0..1, so "
                                                  "they are always normalised: remove it, or use type: decoded for "
                                                  "boxes the model outputs in pixels")
        super(BoxDecoder, self).__init__(coding, num_keypoints)
        self.anchors = np.ascontiguousarray(anchors, dtype=np.float32)
        # Multipliers for [y, x, h, w]: 1 / scale, or the variance.
        self.multipliers = _scales_yxhw(coding, path)
        self.exp_sizes = coding.size_decoding == "exp"

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
        pairs = self._keypoint_pairs(raw, rows)
        if pairs is None:
            return None
        anchors = self.anchors[rows]
        my, mx = self.multipliers[:2]
        points = np.empty(pairs.shape, dtype=np.float32)
        points[:, :, 0] = pairs[:, :, 0] * (mx * anchors[:, 3:4]) + anchors[:, 1:2]
        points[:, :, 1] = pairs[:, :, 1] * (my * anchors[:, 2:3]) + anchors[:, 0:1]
        return points


class CornerReader(_RowLayout):
    """Reads rows of an output that already holds box corners ((N, values) float), e.g. the `boxes`
    of a graph cut before its NMS. Same interface as BoxDecoder; corners given in either order
    (x2 < x1) are put in order, as TF's NMS does."""

    def __init__(self, coding, input_size, num_keypoints=0, path="ssd.box_coding"):
        for key in ("scales", "variances"):
            if coding[key] is not None:
                raise SpecError(path + "." + key, "got {!r}; decoded boxes are not decoded against anchors, so they "
                                                  "take no {}: remove it".format(coding[key], key))
        super(CornerReader, self).__init__(coding, num_keypoints)
        width, height = input_size
        # x, y multipliers to 0..1 of the network input
        self.to_unit = None if coding.normalized else np.array([1.0 / width, 1.0 / height], dtype=np.float32)

    def decode_boxes(self, raw, rows):
        """(len(rows), 4) float32 x1, y1, x2, y2 normalised to the network input."""
        raw = raw[rows].astype(np.float32, copy=False)
        y1, x1 = self._yx(raw, self.box_offset)
        y2, x2 = self._yx(raw, self.box_offset + 2)
        boxes = np.empty((len(raw), 4), dtype=np.float32)
        np.minimum(x1, x2, out=boxes[:, 0])
        np.minimum(y1, y2, out=boxes[:, 1])
        np.maximum(x1, x2, out=boxes[:, 2])
        np.maximum(y1, y2, out=boxes[:, 3])
        if self.to_unit is not None:
            boxes *= np.tile(self.to_unit, 2)
        return boxes

    def decode_keypoints(self, raw, rows):
        """(len(rows), K, 2) float32 x, y normalised to the network input, or None without keypoints."""
        pairs = self._keypoint_pairs(raw, rows)
        if pairs is None or self.to_unit is None:
            return pairs
        return pairs * self.to_unit


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
    if coding.size_decoding == "exp":
        th = np.log(height / anchors[:, 2]) / multipliers[2]
        tw = np.log(width / anchors[:, 3]) / multipliers[3]
    else:
        th = height / anchors[:, 2] / multipliers[2]
        tw = width / anchors[:, 3] / multipliers[3]
    columns = (tx, ty, tw, th) if coding.order == "xy" else (ty, tx, th, tw)
    return np.stack(columns, axis=1).astype(np.float32)
