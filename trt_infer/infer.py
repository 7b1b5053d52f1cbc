"""`infer`: the pipeline on image files, without ROS (like `detectnet image.jpg` or `yolo predict`).

    infer MODEL --spec SPEC IMAGE... [--json] [--out DIR] [--backend auto|onnxruntime|tensorrt]

MODEL is an `.onnx` file (ONNX Runtime) or a TensorRT engine (`.engine`/`.plan`). With --json each
image gives one JSON object on one line of stdout:
  {"image": path, "width": w, "height": h, "detections": [{"box": [x1, y1, x2, y2], "score": s,
   "class_id": i, "label": name}, ...]}
with boxes in the image's pixels; segmenters add "mask": {"fractions": {label: fraction}} (the share
of the image's pixels given to each class), classifiers "classes": [{"class_id", "label", "score"}].
Without --json a short readable summary is printed instead. --out DIR writes each image's overlay
(boxes, labels, mask) to DIR under the image's file name. Exit status 0 ok, 2 bad input.
"""
import argparse
import json
import logging
import os
import sys

import numpy as np

from trt_infer import cli_logging
from trt_infer.backends import BACKEND_KINDS
from trt_infer.errors import ImageError, TrtInferError

logger = logging.getLogger("trt_infer.infer")  # not __name__: under `python -m` that is "__main__"

EXIT_OK = 0
EXIT_BAD_INPUT = 2


def read_image(path):
    """The image file as a uint8 BGR (or mono) array; ImageError when it cannot be read."""
    import cv2

    if not os.path.isfile(path):
        raise ImageError("read", "image file not found: {}".format(path))
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError("read", "cannot decode {} as an image (OpenCV reads PNG, JPEG, BMP, TIFF, ...)".format(path))
    if image.dtype != np.uint8:
        raise ImageError("dtype", "{} has {} pixels; infer reads 8-bit images".format(path, image.dtype))
    return image


def mask_fractions(mask, spec):
    """{label: share of the pixels} for every labelled class and every class id present in `mask`."""
    mask = np.asarray(mask)
    counts = np.bincount(mask.reshape(-1), minlength=len(spec.labels))
    total = float(max(mask.size, 1))
    return dict((spec.label(class_id), float(count) / total) for class_id, count in enumerate(counts))


def result_record(path, image, result, spec):
    """The JSON object of one image (see the module docstring)."""
    detections = result.detections
    record = {"image": path, "width": int(image.shape[1]), "height": int(image.shape[0]), "detections": [
        {"box": [round(float(value), 3) for value in detections.boxes[index]],
         "score": round(float(detections.scores[index]), 6),
         "class_id": int(detections.class_ids[index]),
         "label": spec.label(int(detections.class_ids[index]))}
        for index in range(len(detections))]}
    if result.image_mask is not None:
        record["mask"] = {"fractions": mask_fractions(result.image_mask, spec)}
    if result.classes:
        record["classes"] = [{"class_id": int(class_id), "label": spec.label(int(class_id)),
                              "score": round(float(score), 6)} for class_id, score in result.classes]
    return record


def summary(record):
    """A readable block for one image: its size, then one line per detection, class or mask share."""
    lines = ["{}: {}x{}, {} detection{}".format(record["image"], record["width"], record["height"],
                                                len(record["detections"]),
                                                "" if len(record["detections"]) == 1 else "s")]
    for detection in record["detections"]:
        lines.append("  {} {:.3f} [{:.1f}, {:.1f}, {:.1f}, {:.1f}]".format(
            detection["label"], detection["score"], *detection["box"]))
    for entry in record.get("classes") or []:
        lines.append("  class {} {:.3f}".format(entry["label"], entry["score"]))
    fractions = record.get("mask", {}).get("fractions", {})
    for label in sorted(fractions, key=fractions.get, reverse=True):
        lines.append("  mask {} {:.1%}".format(label, fractions[label]))
    return "\n".join(lines)


def write_overlay(out_dir, path, image, result, spec):
    import cv2

    from trt_infer.overlay import render

    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
    target = os.path.join(out_dir, os.path.basename(path))
    if not cv2.imwrite(target, render(image, result, spec)):
        raise ImageError("write", "cannot write the overlay {} (check the folder and the file extension)".format(
            target))
    logger.info("wrote %s", target)
    return target


def run(model, spec_path, images, as_json=False, out_dir=None, backend_kind="auto", stream=None):
    """Run the model on each image file and print its record; returns the records."""
    from trt_infer.backends import load_backend
    from trt_infer.pipeline import Pipeline
    from trt_infer.spec import load_spec

    stream = stream if stream is not None else sys.stdout
    spec = load_spec(spec_path)
    records = []
    with load_backend(model, kind=backend_kind) as backend:
        pipeline = Pipeline(spec, backend)
        for path in images:
            image = read_image(path)
            result = pipeline(image, color_order="BGR")
            record = result_record(path, image, result, spec)
            stream.write((json.dumps(record, sort_keys=False) if as_json else summary(record)) + "\n")
            stream.flush()
            if out_dir is not None:
                write_overlay(out_dir, path, image, result, spec)
            records.append(record)
    return records


def build_parser():
    parser = argparse.ArgumentParser(prog="infer", description="Run a model on image files without ROS and print "
                                     "what it finds (boxes in the image's pixels).")
    parser.add_argument("model", help="the model: an .onnx file or a TensorRT engine (.engine/.plan)")
    parser.add_argument("--spec", required=True, help="the model spec YAML (config/models/*.yaml)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image per line")
    parser.add_argument("--out", metavar="DIR", help="write each image's overlay into DIR")
    parser.add_argument("--backend", choices=BACKEND_KINDS, default="auto",
                        help="how to run MODEL (default auto: ONNX Runtime for .onnx, TensorRT for engines)")
    cli_logging.add_logging_arguments(parser)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    cli_logging.configure(parser.prog, verbose=args.verbose, quiet=args.quiet)
    try:
        run(args.model, args.spec, args.images, as_json=args.json, out_dir=args.out, backend_kind=args.backend)
    except TrtInferError as error:
        logger.error("%s", " ".join(str(error).split()))
        return EXIT_BAD_INPUT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
