"""Anchor generation: counts and first anchors of each layer, derived here from the published configs.

BlazeFace short range (MediaPipe face_detection_short_range.pbtxt, SsdAnchorsCalculatorOptions):
128x128 input, strides 8, 16, 16, 16, aspect ratio 1 plus the interpolated box, fixed anchor size.
  stride 8  -> 16x16 cells x 2 anchors                       = 512
  stride 16 -> 8x8 cells x (3 layers x 2 anchors) = 6 anchors = 384      total 896
SSD-MobileNet-v2 COCO (TF OD API ssd_mobilenet_v2_coco.config, ssd_anchor_generator):
num_layers 6, min_scale 0.2, max_scale 0.95, aspect ratios 1, 2, 0.5, 3, 0.3333, defaults
reduce_boxes_in_lowest_layer true and interpolated_scale_aspect_ratio 1; feature maps of a
300x300 input are 19, 10, 5, 3, 2, 1.
  19^2 x 3 + (10^2 + 5^2 + 3^2 + 2^2 + 1^2) x 6 = 1083 + 834 = 1917
"""
import math
import os

import numpy as np
import pytest

from trt_infer.anchors import ANCHOR_SCHEMA, generate_anchors
from trt_infer.schema import SpecError, validate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLAZEFACE = {"num_layers": 4, "min_scale": 0.1484375, "max_scale": 0.75, "strides": [8, 16, 16, 16],
             "aspect_ratios": [1.0], "fixed_anchor_size": True}
SSD_MOBILENET_V2 = {"num_layers": 6, "min_scale": 0.2, "max_scale": 0.95,
                    "aspect_ratios": [1.0, 2.0, 0.5, 3.0, 0.3333], "reduce_boxes_in_lowest_layer": True,
                    "feature_map_sizes": [[19, 19], [10, 10], [5, 5], [3, 3], [2, 2], [1, 1]]}


def anchors_of(section, width=None, height=None):
    return generate_anchors(validate(section, ANCHOR_SCHEMA, "ssd.anchors"), width, height)


def box(cy, cx, scale, ratio):
    """[cy, cx, h, w] of a box with this scale and aspect ratio (width / height)."""
    return [cy, cx, scale / math.sqrt(ratio), scale * math.sqrt(ratio)]


def test_blazeface_has_896_anchors_on_mediapipe_grids():
    anchors = anchors_of(BLAZEFACE, 128, 128)
    assert anchors.shape == (896, 4) and anchors.dtype == np.float32
    assert np.all(anchors[:, 2:] == 1.0)  # fixed_anchor_size
    # stride 8: cell (row 0, col 0) centre 0.5/16, two anchors, then col 1
    np.testing.assert_allclose(anchors[0, :2], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[1, :2], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(anchors[2, :2], [0.5 / 16, 1.5 / 16])
    # row 1 starts after 16 cells x 2 anchors
    np.testing.assert_allclose(anchors[32, :2], [1.5 / 16, 0.5 / 16])
    # stride 16 grid starts at 512: 6 anchors per cell of an 8x8 grid
    np.testing.assert_allclose(anchors[512:518, :2], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(anchors[518, :2], [0.5 / 8, 1.5 / 8])
    np.testing.assert_allclose(anchors[-1, :2], [7.5 / 8, 7.5 / 8])


def test_ssd_mobilenet_v2_has_1917_anchors_like_tf_od_api():
    anchors = anchors_of(SSD_MOBILENET_V2)
    assert anchors.shape == (1917, 4)
    scales = [0.2 + 0.75 * layer / 5 for layer in range(6)] + [1.0]
    # layer 0 (reduced): (0.1, 1), (0.2, 2), (0.2, 0.5) at the centre of cell (0, 0) of 19x19
    c0 = 0.5 / 19
    np.testing.assert_allclose(anchors[:3], [box(c0, c0, 0.1, 1.0), box(c0, c0, 0.2, 2.0), box(c0, c0, 0.2, 0.5)],
                               rtol=1e-6)
    np.testing.assert_allclose(anchors[3, :2], [c0, 1.5 / 19], rtol=1e-6)
    # every later layer: 5 aspect ratios at its scale, then sqrt(scale * next scale) at ratio 1
    start = 19 * 19 * 3
    for layer, size in enumerate([10, 5, 3, 2, 1], start=1):
        centre = 0.5 / size
        scale = scales[layer]
        expected = [box(centre, centre, scale, ratio) for ratio in (1.0, 2.0, 0.5, 3.0, 0.3333)]
        expected.append(box(centre, centre, math.sqrt(scale * scales[layer + 1]), 1.0))
        np.testing.assert_allclose(anchors[start:start + 6], expected, rtol=1e-6, err_msg="layer {}".format(layer))
        start += size * size * 6
    assert start == 1917


def test_strides_give_the_same_anchors_as_the_feature_map_sizes_they_imply():
    # MediaPipe's SSD configs give strides: ceil(300 / 16) = 19, ceil(300 / 32) = 10, ...
    strided = dict(SSD_MOBILENET_V2, strides=[16, 32, 64, 128, 256, 512])
    del strided["feature_map_sizes"]
    np.testing.assert_array_equal(anchors_of(strided, 300, 300), anchors_of(SSD_MOBILENET_V2))


def test_offsets_base_size_and_explicit_scales():
    section = {"num_layers": 2, "scales": [0.3, 0.6], "feature_map_sizes": [[2, 4], [1, 1]],
               "aspect_ratios": [1.0], "interpolated_scale_aspect_ratio": 0.0,
               "base_anchor_size": [0.5, 2.0], "anchor_offset_x": 0.0, "anchor_offset_y": 1.0}
    anchors = anchors_of(section)
    assert anchors.shape == (2 * 4 + 1, 4)
    # row 0 of a 2-row grid with offset_y 1.0 sits at 1/2; column 1 of 4 with offset_x 0 at 1/4
    np.testing.assert_allclose(anchors[1], [0.5, 0.25, 0.3 * 0.5, 0.3 * 2.0])
    np.testing.assert_allclose(anchors[-1], [1.0, 0.0, 0.6 * 0.5, 0.6 * 2.0])


def test_single_layer_uses_the_middle_scale():
    anchors = anchors_of({"num_layers": 1, "min_scale": 0.2, "max_scale": 0.4, "feature_map_sizes": [[1, 1]],
                          "interpolated_scale_aspect_ratio": 0.0})
    np.testing.assert_allclose(anchors, [[0.5, 0.5, 0.3, 0.3]], rtol=1e-6)


@pytest.mark.parametrize("section, width, message", [
    (dict(BLAZEFACE, strides=[8, 16]), 128, "ssd.anchors.strides: has 2 entries but num_layers is 4"),
    ({"num_layers": 1}, 128, "give either strides or feature_map_sizes"),
    (BLAZEFACE, None, "need the input width and height"),
    (dict(SSD_MOBILENET_V2, scales=[0.1]), None, "ssd.anchors.scales: has 1 entries"),
])
def test_inconsistent_sections_name_the_key(section, width, message):
    with pytest.raises(SpecError, match=message):
        anchors_of(section, width, width)


def test_unknown_key_is_an_error():
    with pytest.raises(SpecError, match="ssd.anchors.min_scales: unknown key"):
        anchors_of(dict(BLAZEFACE, min_scales=0.1), 128, 128)


def pytorch_ssd_priors(image_size, specs):
    """qfgaohao/pytorch-ssd vision/utils/box_utils.generate_ssd_priors, loop for loop: [cx, cy, w, h]."""
    priors = []
    for feature_map_size, shrinkage, (min_size, max_size), aspect_ratios in specs:
        scale = image_size / float(shrinkage)
        for j in range(feature_map_size):
            for i in range(feature_map_size):
                x_center, y_center = (i + 0.5) / scale, (j + 0.5) / scale
                size = min_size / float(image_size)
                priors.append([x_center, y_center, size, size])
                size = math.sqrt(max_size * min_size) / image_size
                priors.append([x_center, y_center, size, size])
                size = min_size / float(image_size)
                for ratio in aspect_ratios:
                    ratio = math.sqrt(ratio)
                    priors.append([x_center, y_center, size * ratio, size / ratio])
                    priors.append([x_center, y_center, size / ratio, size * ratio])
    return np.clip(np.array(priors), 0.0, 1.0)


def test_pytorch_ssd_priors_from_the_shipped_voc_spec():
    from trt_infer.spec import load_spec

    pytest.importorskip("yaml")
    spec = load_spec(os.path.join(REPO, "config", "models", "ssd_mobilenet_v1_voc.yaml"))
    anchors = generate_anchors(spec.section.anchors, spec.input.width, spec.input.height)
    mobilenet_v1_ssd_config = [(19, 16, (60, 105), [2, 3]), (10, 32, (105, 150), [2, 3]),
                               (5, 64, (150, 195), [2, 3]), (3, 100, (195, 240), [2, 3]),
                               (2, 150, (240, 285), [2, 3]), (1, 300, (285, 330), [2, 3])]
    expected = pytorch_ssd_priors(300, mobilenet_v1_ssd_config)[:, [1, 0, 3, 2]]  # -> cy, cx, h, w
    assert anchors.shape == expected.shape == (3000, 4)
    np.testing.assert_allclose(anchors, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name, count", [("ssd_mobilenet_v2_coco", 1917), ("blazeface", 896)])
def test_shipped_specs_generate_the_published_anchor_counts(name, count):
    from trt_infer.spec import load_spec

    pytest.importorskip("yaml")
    spec = load_spec(os.path.join(REPO, "config", "models", name + ".yaml"))
    assert generate_anchors(spec.section.anchors, spec.input.width, spec.input.height).shape == (count, 4)
