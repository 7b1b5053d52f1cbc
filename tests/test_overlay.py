"""Overlays: colour masks, alpha blending, boxes with labels, class lists; inputs never modified."""
import numpy as np
import pytest

from trt_infer.overlay import blend_mask, colour_mask, default_palette, draw_classes, draw_detections, render
from trt_infer.result import Detections, Result
from trt_infer.spec import ModelSpec

PALETTE = np.array([[0, 0, 0], [255, 0, 0], [0, 128, 255]], np.uint8)  # RGB rows


def class_mask():
    mask = np.zeros((40, 60), np.uint8)
    mask[5:20, 10:30] = 1
    mask[25:, 40:] = 2
    return mask


def test_colour_mask_uses_the_palette_in_the_requested_order():
    mask = class_mask()
    bgr = colour_mask(mask, PALETTE)
    rgb = colour_mask(mask, PALETTE, color_order="RGB")
    for class_id in range(3):
        assert np.all(rgb[mask == class_id] == PALETTE[class_id])
        assert np.all(bgr[mask == class_id] == PALETTE[class_id][::-1])
    with pytest.raises(ValueError) as error:
        colour_mask(mask, PALETTE[:2])
    assert "class id 2" in str(error.value) and "2 colours" in str(error.value)


def test_default_palette_is_distinct_with_black_background():
    palette = default_palette(20)
    assert palette.shape == (20, 3) and np.all(palette[0] == 0)
    assert len({tuple(colour) for colour in palette}) == 20


def test_blend_keeps_background_and_mixes_foreground():
    image = np.random.RandomState(1).randint(0, 256, (40, 60, 3)).astype(np.uint8)
    original = image.copy()
    mask = class_mask()
    blended = blend_mask(image, mask, PALETTE, alpha=0.25)
    np.testing.assert_array_equal(image, original)
    np.testing.assert_array_equal(blended[mask == 0], image[mask == 0])
    expected = 0.75 * image[mask == 2].astype(float) + 0.25 * PALETTE[2][::-1]
    assert np.abs(blended[mask == 2] - expected).max() <= 1.0
    with pytest.raises(ValueError) as error:
        blend_mask(image, mask[:20], PALETTE)
    assert "image_mask" in str(error.value)


def test_detections_are_drawn_on_a_copy_at_their_boxes():
    image = np.zeros((100, 200, 3), np.uint8)
    detections = Detections([[50, 40, 150, 90]], [0.87], [1], keypoints=[[[100, 60]]])
    drawn = draw_detections(image, detections, labels=["bg", "face"], palette=PALETTE)
    assert not image.any()
    colour = PALETTE[1][::-1]
    assert np.all(drawn[70, 50] == colour) and np.all(drawn[90, 100] == colour)  # left and bottom edges
    assert np.all(drawn[60, 100] == colour)  # the keypoint
    assert not drawn[70:85, 60:90].any() and not drawn[:, 160:].any()  # inside and beside the box
    assert drawn[20:40, 50:120].any()  # the "face 0.87" label above the box


def test_render_draws_what_the_result_holds_on_mono_images_too():
    spec = ModelSpec({"name": "seg", "task": "segmentation", "input": {"name": "x", "width": 8, "height": 8},
                      "outputs": {"logits": "y"}, "labels": ["bg", "a", "b"], "palette": PALETTE.tolist()})
    gray = np.full((40, 60), 100, np.uint8)
    drawn = render(gray, Result(image_mask=class_mask()), spec)
    assert drawn.shape == (40, 60, 3)
    assert np.all(drawn[0, 0] == 100) and not np.all(drawn[10, 20] == 100)
    listed = draw_classes(np.zeros((60, 120, 3), np.uint8), [(2, 0.9), (1, 0.05)], spec.labels)
    assert listed[:50, :80].any() and not listed[50:].any()
