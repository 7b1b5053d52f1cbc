"""SSD anchor (prior box) generation for the TF Object Detection API and MediaPipe.

One generator covers TF's `ssd_anchor_generator` (multiple-grid anchor generator) and
MediaPipe's `SsdAnchorsCalculator`, which is a port of it with a few additions. Both build, for
every layer, a list of (scale, aspect ratio) box shapes and tile them over that layer's feature
map, row by row, anchors of one cell next to each other:

- layer scales are linear from `min_scale` to `max_scale` (or listed in `scales`);
- each aspect ratio gives a box of height scale/sqrt(ar), width scale*sqrt(ar), times
  `base_anchor_size`;
- `interpolated_scale_aspect_ratio` > 0 adds one box of scale sqrt(scale * next layer's scale)
  (1.0 after the last layer) with that aspect ratio;
- `reduce_boxes_in_lowest_layer` replaces layer 0's shapes with (0.1, 1.0), (s, 2.0), (s, 0.5);
- consecutive layers with the same stride share one grid and their shapes interleave in each
  cell (MediaPipe; BlazeFace's strides 8, 16, 16, 16 give 2 + 6 anchors per cell);
- `fixed_anchor_size` makes every anchor 1 x 1 (MediaPipe face detectors encode absolute sizes).

Centres are (cell + offset) / feature-map size, or, with `centres_from_strides` (TF's explicit
anchor strides, pytorch-ssd's shrinkage), (cell + offset) * stride / input size. pytorch-ssd and
torchvision priors put the interpolated box second (`interpolated_scale_index: 1`), take the
last layer's next scale from a seventh `scales` entry and clamp the priors (`clip`).

The result is (N, 4) float32 [cy, cx, h, w], normalised to the network input.
"""
import math

import numpy as np

from .schema import Field, SpecError

ANCHOR_SCHEMA = {
    "num_layers": Field(int, minimum=1,
                        doc="number of prediction layers (feature maps)"),
    "min_scale": Field(float, default=0.2, doc="scale of the first layer, relative to the input"),
    "max_scale": Field(float, default=0.95, doc="scale of the last layer"),
    "scales": Field(list, default=None, nullable=True, item=Field(float),
                    doc="explicit per-layer scales instead of min_scale..max_scale; one more entry gives the "
                        "scale after the last layer (default 1.0) for its interpolated box"),
    "strides": Field(list, default=None, nullable=True, item=Field(int),
                     doc="per-layer stride in input pixels; feature map = ceil(input / stride)"),
    "feature_map_sizes": Field(list, default=None, nullable=True,
                               item=Field(list, length=2, item=Field(int)),
                               doc="per-layer [height, width] of the feature map, instead of strides"),
    "aspect_ratios": Field(list, default=[1.0], item=Field(float),
                           doc="width / height of the anchor shapes of every layer"),
    "interpolated_scale_aspect_ratio": Field(float, default=1.0,
                                             doc="aspect ratio of the extra in-between-scale box; 0 disables it"),
    "interpolated_scale_index": Field(int, default=None, nullable=True,
                                      doc="position of that box among a cell's shapes; null: last (TF, MediaPipe), "
                                          "1: after the first (pytorch-ssd, torchvision)"),
    "reduce_boxes_in_lowest_layer": Field(bool, default=False,
                                          doc="layer 0 gets the three shapes (0.1, 1), (s, 2), (s, 0.5) (TF OD API)"),
    "base_anchor_size": Field(list, default=[1.0, 1.0], length=2, item=Field(float),
                              doc="[height, width] multiplying every anchor's size"),
    "fixed_anchor_size": Field(bool, default=False, doc="every anchor 1 x 1 (MediaPipe face detectors)"),
    "anchor_offset_x": Field(float, default=0.5, doc="anchor centre within its cell, 0..1"),
    "anchor_offset_y": Field(float, default=0.5, doc="anchor centre within its cell, 0..1"),
    "centres_from_strides": Field(bool, default=False,
                                  doc="centre = (cell + offset) * stride / input size instead of "
                                      "(cell + offset) / feature map size; needs strides"),
    "clip": Field(bool, default=False, doc="clamp cy, cx, h, w to 0..1 (pytorch-ssd, torchvision priors)"),
}


def _layer_scale(spec, layer):
    if spec.scales:
        return spec.scales[layer] if layer < len(spec.scales) else 1.0
    if layer >= spec.num_layers:
        return 1.0
    if spec.num_layers == 1:
        return (spec.min_scale + spec.max_scale) * 0.5
    return spec.min_scale + (spec.max_scale - spec.min_scale) * layer / (spec.num_layers - 1.0)


def _layer_box_shapes(spec, layer):
    """[(scale, aspect_ratio)] of one layer."""
    scale = _layer_scale(spec, layer)
    if layer == 0 and spec.reduce_boxes_in_lowest_layer:
        return [(0.1, 1.0), (scale, 2.0), (scale, 0.5)]
    shapes = [(scale, ratio) for ratio in spec.aspect_ratios]
    if spec.interpolated_scale_aspect_ratio > 0:
        between = math.sqrt(scale * _layer_scale(spec, layer + 1))
        position = spec.interpolated_scale_index
        shapes.insert(len(shapes) if position is None else position,
                      (between, spec.interpolated_scale_aspect_ratio))
    return shapes


def _feature_maps(spec, input_width, input_height, path):
    """[(height, width)] per layer, checked against num_layers."""
    layers = spec.num_layers
    if spec.feature_map_sizes:
        sizes = [tuple(size) for size in spec.feature_map_sizes]
        key = "feature_map_sizes"
    elif spec.strides:
        if not input_width or not input_height:
            raise SpecError(path + ".strides", "anchors from strides need the input width and height")
        sizes = [(int(math.ceil(float(input_height) / stride)), int(math.ceil(float(input_width) / stride)))
                 for stride in spec.strides]
        key = "strides"
    else:
        raise SpecError(path, "give either strides or feature_map_sizes (one entry per layer)")
    if len(sizes) != layers:
        raise SpecError("{}.{}".format(path, key), "has {} entries but num_layers is {}; give one per layer".format(
            len(sizes), layers))
    if spec.scales and len(spec.scales) not in (layers, layers + 1):
        raise SpecError(path + ".scales", "has {} entries but num_layers is {}; give one per layer, optionally "
                                          "one more for after the last".format(len(spec.scales), layers))
    if spec.centres_from_strides and not spec.strides:
        raise SpecError(path + ".centres_from_strides", "needs strides (one per layer)")
    if any(height <= 0 or width <= 0 for height, width in sizes):
        raise SpecError("{}.{}".format(path, key), "gives an empty feature map {!r}".format(sizes))
    return sizes


def generate_anchors(anchor_spec, input_width=None, input_height=None, path="ssd.anchors"):
    """(N, 4) float32 [cy, cx, h, w] normalised anchors for a validated ANCHOR_SCHEMA section.

    input_width/height (network input pixels) are needed only when the spec gives strides.
    """
    sizes = _feature_maps(anchor_spec, input_width, input_height, path)
    grids = []
    layer = 0
    while layer < len(sizes):
        # Layers sharing a stride (hence a feature map) are tiled as one grid, shapes interleaved.
        group_end = layer
        while group_end < len(sizes) and sizes[group_end] == sizes[layer]:
            group_end += 1
        shapes = [shape for member in range(layer, group_end) for shape in _layer_box_shapes(anchor_spec, member)]
        cy, cx = _centres(anchor_spec, layer, sizes[layer], input_width, input_height)
        grids.append(_tile(cy, cx, *_heights_and_widths(anchor_spec, shapes)))
        layer = group_end
    anchors = np.concatenate(grids)
    if anchor_spec.clip:
        np.clip(anchors, 0.0, 1.0, out=anchors)
    return anchors.astype(np.float32)


def _heights_and_widths(spec, shapes):
    if spec.fixed_anchor_size:
        return np.ones(len(shapes)), np.ones(len(shapes))
    scales = np.array([scale for scale, _ in shapes], dtype=np.float64)
    ratio_roots = np.sqrt([ratio for _, ratio in shapes])
    base_height, base_width = spec.base_anchor_size
    return scales / ratio_roots * base_height, scales * ratio_roots * base_width


def _centres(spec, layer, size, input_width, input_height):
    """Normalised centre y of each row and x of each column of one layer's grid."""
    rows, cols = size
    if spec.centres_from_strides:
        stride = float(spec.strides[layer])
        step_y, step_x = stride / input_height, stride / input_width
    else:
        step_y, step_x = 1.0 / rows, 1.0 / cols
    return (np.arange(rows) + spec.anchor_offset_y) * step_y, (np.arange(cols) + spec.anchor_offset_x) * step_x


def _tile(cy, cx, heights, widths):
    """Anchors of one grid, ordered row, column, shape."""
    rows, cols, count = len(cy), len(cx), len(heights)
    grid = np.empty((rows, cols, count, 4), dtype=np.float64)
    grid[..., 0] = cy[:, None, None]
    grid[..., 1] = cx[None, :, None]
    grid[..., 2] = heights
    grid[..., 3] = widths
    return grid.reshape(-1, 4)
