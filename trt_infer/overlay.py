"""Drawing results on images with OpenCV: boxes with labels and scores, keypoints, class lists,
colour masks and alpha-blended mask overlays. Images are BGR uint8 (OpenCV's order); palettes
are RGB rows, as written in the model spec.
"""
import colorsys

import cv2
import numpy as np

from trt_infer.preprocess import check_image

FONT = cv2.FONT_HERSHEY_SIMPLEX


def default_palette(count):
    """`count` distinct, saturated RGB colours (golden-ratio hue steps); class 0 is black."""
    colours = [(0, 0, 0)]
    for index in range(1, count):
        hue = (index * 0.618033988749895) % 1.0
        red, green, blue = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
        colours.append((int(red * 255), int(green * 255), int(blue * 255)))
    return np.array(colours[:count], dtype=np.uint8).reshape(-1, 3)


def _palette_for(mask, palette):
    """The palette as an (N, 3) uint8 RGB array covering every class id present in `mask`."""
    highest = int(mask.max()) if mask.size else 0
    if palette is None:
        return default_palette(max(highest + 1, 2))
    palette = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if highest >= len(palette):
        raise ValueError("mask has class id {} but the palette has {} colours; give one [r, g, b] per class".format(
            highest, len(palette)))
    return palette


def colour_mask(mask, palette=None, color_order="BGR"):
    """(H, W) class ids -> (H, W, 3) uint8 colours from the palette (RGB rows), in `color_order`."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype.kind not in "ui":
        raise ValueError("mask has shape {} and dtype {}; expected an (H, W) integer class-id mask".format(
            mask.shape, mask.dtype))
    colours = _palette_for(mask, palette)
    if color_order == "BGR":
        colours = colours[:, ::-1]
    return np.ascontiguousarray(colours)[mask]


def blend_mask(image, mask, palette=None, alpha=0.5, skip_background=True):
    """A copy of the BGR `image` with the mask's colours blended in with weight `alpha`.

    mask: (H, W) class ids at the image's resolution (Result.image_mask). With skip_background,
    class 0 pixels stay untouched, so the scene remains readable around the segments.
    """
    image = _as_bgr(image)
    if np.asarray(mask).shape != image.shape[:2]:
        raise ValueError("mask shape {} differs from the image's {}; use Result.image_mask".format(
            np.asarray(mask).shape, image.shape[:2]))
    if not 0.0 <= alpha <= 1.0:
        raise ValueError("alpha {} must be between 0 and 1".format(alpha))
    colours = colour_mask(mask, palette, "BGR")
    blended = cv2.addWeighted(image, 1.0 - alpha, colours, alpha, 0.0)
    if skip_background:
        background = np.asarray(mask) == 0
        blended[background] = image[background]
    return blended


def draw_detections(image, detections, labels=None, palette=None, thickness=2):
    """A copy of the BGR `image` with each detection's box, "label score" and keypoints drawn."""
    canvas = _as_bgr(image).copy()
    ids = detections.class_ids
    if palette is not None:
        colours = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    else:
        colours = default_palette(int(ids.max()) + 2 if len(ids) else 2)[1:]  # skip black
    for index in range(len(detections)):
        class_id = int(ids[index])
        red, green, blue = (int(value) for value in colours[class_id % len(colours)])
        colour = (blue, green, red)
        x1, y1, x2, y2 = (int(round(value)) for value in detections.boxes[index])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        text = "{} {:.2f}".format(_label(labels, class_id), float(detections.scores[index]))
        _put_text(canvas, text, (x1, y1), colour)
        if detections.keypoints is not None:
            for x, y in detections.keypoints[index]:
                cv2.circle(canvas, (int(round(x)), int(round(y))), max(2, thickness), colour, -1)
    return canvas


def draw_classes(image, classes, labels=None):
    """A copy of the BGR `image` with "label score" lines of a classification, best first."""
    canvas = _as_bgr(image).copy()
    for row, (class_id, score) in enumerate(classes):
        _put_text(canvas, "{} {:.2f}".format(_label(labels, class_id), score), (4, 4 + 22 * row), (0, 255, 0),
                  below=True)
    return canvas


def render(image, result, spec, alpha=0.5):
    """Everything a Result holds, drawn on a copy of the BGR image (the node's overlay topic)."""
    canvas = _as_bgr(image)
    if result.image_mask is not None:
        canvas = blend_mask(canvas, result.image_mask, spec.palette, alpha)
    if len(result.detections):
        canvas = draw_detections(canvas, result.detections, spec.labels, spec.palette)
    if result.classes:
        canvas = draw_classes(canvas, result.classes, spec.labels)
    return canvas if canvas is not image else canvas.copy()


def _as_bgr(image):
    """Overlays are drawn in colour: mono images are expanded, alpha dropped."""
    image = check_image(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _label(labels, class_id):
    if labels and 0 <= class_id < len(labels) and labels[class_id]:
        return labels[class_id]
    return str(class_id)


def _put_text(canvas, text, origin, colour, below=False):
    """Text on a filled box of the colour, above `origin` (or below it), kept inside the image."""
    (width, height), baseline = cv2.getTextSize(text, FONT, 0.5, 1)
    x = min(max(origin[0], 0), max(canvas.shape[1] - width, 0))
    top = origin[1] if below else origin[1] - height - baseline
    top = min(max(top, 0), max(canvas.shape[0] - height - baseline, 0))
    cv2.rectangle(canvas, (x, top), (x + width, top + height + baseline), colour, -1)
    ink = (0, 0, 0) if sum(colour) > 382 else (255, 255, 255)
    cv2.putText(canvas, text, (x, top + height), FONT, 0.5, ink, 1, cv2.LINE_AA)
