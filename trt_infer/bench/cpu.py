"""`bench`: CPU pre- and post-processing timed against OpenCV references in the same run.

    python -m trt_infer.bench [--iterations N] [--out DIR]

1. pre-processing: a 640x480 BGR frame -> 300x300 NCHW float32 (RGB, (x - 127.5) / 127.5) with
   the runtime's Preprocessor vs cv2.dnn.blobFromImage (same result, checked);
2. SSD post-processing for SSD-MobileNet-v2 COCO (1917 anchors x 91 classes): the runtime's
   decode + NMS from the raw outputs vs the same pipeline with cv2.dnn.NMSBoxesBatched as the
   NMS (the kept sets are checked equal), and the NMS stage alone vs NMSBoxesBatched on the
   same decoded candidates.
The raw SSD outputs are synthetic but shaped like a trained model's: a few objects whose
matching anchors (IoU > 0.5) regress to jittered copies of them with high scores, and
background logits around -6 elsewhere. Ratios are ours / reference: below 1.0 is faster.
Prints the machine, then the table; writes bench.json and bench.md into --out.
"""
import argparse
import json
import logging
import os
import sys
import time

import numpy as np

from trt_infer import cli_logging
from trt_infer.bench import machine as machine_info
from trt_infer.errors import TrtInferError
from trt_infer.paths import resolve_path

logger = logging.getLogger(__name__)

DEFAULT_OUT = os.path.join("output", "bench")
SSD_SPEC = os.path.join("config", "models", "ssd_mobilenet_v2_coco.yaml")  # found by resolve_path


def machine():
    """The machine and the library versions, as printed and stored with the figures."""
    import cv2

    return machine_info.machine(opencv=cv2.__version__)


def time_calls(function, iterations, warmup=10):
    """Median and 95th percentile of one call, in milliseconds."""
    for _ in range(warmup):
        function()
    samples = np.empty(iterations)
    for index in range(iterations):
        start = time.perf_counter()
        function()
        samples[index] = time.perf_counter() - start
    return {"median_ms": float(np.median(samples) * 1e3), "p95_ms": float(np.percentile(samples, 95) * 1e3)}


def comparison(name, ours, reference, reference_name, check):
    return {"name": name, "ours": ours, "reference": reference, "reference_name": reference_name,
            "ratio_median": ours["median_ms"] / reference["median_ms"],
            "ratio_p95": ours["p95_ms"] / reference["p95_ms"], "goal": 1.0, "check": check}


def bench_preprocess(iterations):
    import cv2

    from trt_infer.preprocess import Preprocessor
    from trt_infer.schema import validate
    from trt_infer.spec import INPUT_SCHEMA, InputSpec

    input_spec = InputSpec(validate({"name": "input", "width": 300, "height": 300, "layout": "NCHW",
                                     "color_order": "RGB", "mean": [127.5] * 3, "std": [127.5] * 3},
                                    INPUT_SCHEMA, "input"))
    frame = np.random.RandomState(0).randint(0, 256, (480, 640, 3)).astype(np.uint8)
    preprocessor = Preprocessor(input_spec)
    out = np.zeros(input_spec.shape, np.float32)

    def ours():
        preprocessor(frame, out=out, color_order="BGR")

    def reference():
        return cv2.dnn.blobFromImage(frame, 1 / 127.5, (300, 300), (127.5, 127.5, 127.5), swapRB=True, crop=False)

    ours()
    difference = float(np.abs(out - reference()).max())
    if difference > 1e-4:
        raise AssertionError("Preprocessor and cv2.dnn.blobFromImage differ by {} (expected equal)".format(difference))
    return comparison("preprocess 640x480 BGR -> 300x300 NCHW float32", time_calls(ours, iterations),
                      time_calls(reference, iterations), "cv2.dnn.blobFromImage",
                      "max |difference| {:.2g}".format(difference))


def realistic_ssd_outputs(post, spec, seed=0, objects=8):
    """Raw (1, 1917, 4) box encodings and (1, 1917, 91) logits that look like a trained SSD's."""
    from trt_infer.box_coding import encode_boxes

    rng = np.random.RandomState(seed)
    anchors = post.anchors
    count, classes = len(anchors), len(spec.labels)
    raw_boxes = rng.normal(0, 0.5, (count, 4)).astype(np.float32)
    logits = rng.normal(-6.0, 1.5, (count, classes)).astype(np.float32)
    anchor_corners = np.column_stack([anchors[:, 1] - anchors[:, 3] / 2, anchors[:, 0] - anchors[:, 2] / 2,
                                      anchors[:, 1] + anchors[:, 3] / 2, anchors[:, 0] + anchors[:, 2] / 2])
    for _ in range(objects):
        size = rng.uniform(0.1, 0.6, 2)
        corner = rng.uniform(0, 1 - size)
        target = np.concatenate([corner, corner + size])
        rows = np.flatnonzero(_iou(anchor_corners, target) > 0.5)
        jittered = target + rng.normal(0, 0.02, (rows.size, 4))
        raw_boxes[rows] = encode_boxes(jittered, anchors[rows], spec.section.box_coding)
        logits[rows, rng.randint(1, classes)] = rng.uniform(-1.0, 4.0, rows.size)
    return {spec.outputs["boxes"]: raw_boxes[None], spec.outputs["scores"]: logits[None]}


def _iou(boxes, box):
    width = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    height = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    inter = width * height
    return inter / ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) + (box[2] - box[0]) * (box[3] - box[1])
                    - inter)


def bench_ssd(iterations):
    import cv2

    from trt_infer.geometry import ResizeTransform
    from trt_infer.nms import hard_nms, top_k_indices
    from trt_infer.postprocess.ssd import SSDPostprocessor, sigmoid
    from trt_infer.spec import load_spec

    if not hasattr(cv2.dnn, "NMSBoxesBatched"):
        logger.warning("skipped SSD decode + NMS: this OpenCV (%s) has no cv2.dnn.NMSBoxesBatched", cv2.__version__)
        return []
    spec = load_spec(resolve_path(SSD_SPEC))
    post = SSDPostprocessor(spec)
    outputs = realistic_ssd_outputs(post, spec)
    raw_boxes = outputs[spec.outputs["boxes"]][0]
    logits = outputs[spec.outputs["scores"]][0]
    transform = ResizeTransform(300, 300, 300, 300)  # boxes stay in network pixels for both sides
    thresholds = spec.thresholds
    all_anchors = np.arange(len(post.anchors))

    def ours():
        return post(outputs, transform).detections

    def opencv_nms(boxes, scores, class_ids):
        """cv2.dnn.NMSBoxesBatched on x1, y1, x2, y2 boxes; kept indices best first."""
        xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).astype(np.float64)
        kept = cv2.dnn.NMSBoxesBatched(xywh, scores, class_ids, 0.0, thresholds.nms_iou)
        return np.asarray(kept, dtype=np.intp).reshape(-1)[:thresholds.max_detections]

    def with_opencv_nms():
        """The usual OpenCV recipe: decode every anchor, sigmoid every score, threshold, NMSBoxesBatched."""
        boxes = post.decoder.decode_boxes(raw_boxes, all_anchors)
        scores = sigmoid(logits)
        scores[:, spec.section.background_class] = 0
        rows, class_ids = np.nonzero(scores >= thresholds.score)
        candidate_scores = scores[rows, class_ids]
        kept = opencv_nms(boxes[rows], candidate_scores, class_ids)
        return np.clip(boxes[rows[kept]] * 300, 0, 300), candidate_scores[kept], class_ids[kept]

    detections = ours()
    boxes, scores, class_ids = with_opencv_nms()
    same = (detections.class_ids.tolist() == class_ids.tolist() and np.allclose(detections.boxes, boxes, atol=1e-3)
            and np.allclose(detections.scores, scores, rtol=1e-5))
    if not same:
        raise AssertionError("SSD post-processing and the OpenCV NMS pipeline kept different detections:\n"
                             "ours {} {}\nopencv {} {}".format(detections.class_ids, detections.scores,
                                                                class_ids, scores))
    full = comparison("SSD decode + NMS, 1917 anchors x 91 classes", time_calls(ours, iterations),
                      time_calls(with_opencv_nms, iterations),
                      "numpy decode + sigmoid + cv2.dnn.NMSBoxesBatched",
                      "same {} detections".format(len(detections)))

    # The NMS stage alone, on the candidates both pipelines hand to NMS.
    cand_rows, cand_classes, cand_scores = post._candidates(logits, thresholds.score)
    best = top_k_indices(cand_scores, post.top_k)
    cand_rows, cand_classes, cand_scores = cand_rows[best], cand_classes[best], cand_scores[best]
    cand_boxes = post.decoder.decode_boxes(raw_boxes, cand_rows)
    kept_ours = hard_nms(cand_boxes, cand_scores, thresholds.nms_iou, cand_classes, thresholds.max_detections)
    kept_opencv = opencv_nms(cand_boxes, cand_scores, cand_classes)
    if kept_ours.tolist() != kept_opencv.tolist():
        raise AssertionError("hard_nms kept {} but NMSBoxesBatched kept {}".format(kept_ours, kept_opencv))
    nms_only = comparison(
        "NMS stage only, {} candidates".format(len(cand_scores)),
        time_calls(lambda: hard_nms(cand_boxes, cand_scores, thresholds.nms_iou, cand_classes,
                                    thresholds.max_detections), iterations),
        time_calls(lambda: opencv_nms(cand_boxes, cand_scores, cand_classes), iterations),
        "cv2.dnn.NMSBoxesBatched", "same kept set ({} boxes)".format(len(kept_ours)))
    return [full, nms_only]


def markdown(report):
    lines = ["| benchmark | ratio median | ratio p95 | goal | ours median ms | ours p95 ms | reference "
             "| reference median ms | reference p95 ms | check |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in report["benchmarks"]:
        lines.append("| {} | {:.2f} | {:.2f} | <= {:.1f} | {:.3f} | {:.3f} | {} | {:.3f} | {:.3f} | {} |".format(
            row["name"], row["ratio_median"], row["ratio_p95"], row["goal"], row["ours"]["median_ms"],
            row["ours"]["p95_ms"], row["reference_name"], row["reference"]["median_ms"],
            row["reference"]["p95_ms"], row["check"]))
    info = report["machine"]
    lines.append("")
    lines.append("{cpu}, {cores} cores; Python {python}, numpy {numpy}, OpenCV {opencv}; "
                 "{iterations} iterations".format(iterations=report["iterations"], **info))
    return "\n".join(lines) + "\n"


def run(iterations, out_dir):
    report = {"machine": machine(), "iterations": iterations, "benchmarks": []}
    print("machine: {cpu}, {cores} cores, Python {python}, numpy {numpy}, OpenCV {opencv}".format(**report["machine"]))
    report["benchmarks"].append(bench_preprocess(iterations))
    report["benchmarks"].extend(bench_ssd(iterations))
    table = markdown(report)
    print(table)
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
    with open(os.path.join(out_dir, "bench.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    with open(os.path.join(out_dir, "bench.md"), "w") as handle:
        handle.write(table)
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=500, help="timed calls per measurement (default 500)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="folder for bench.json and bench.md (default output/bench)")
    cli_logging.add_logging_arguments(parser)
    args = parser.parse_args(argv)
    cli_logging.configure(parser.prog, verbose=args.verbose, quiet=args.quiet)
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")
    try:
        run(args.iterations, args.out)
    except TrtInferError as error:
        logger.error("%s\nThe benchmark looks for config/ in the working directory, the source tree and the "
                     "share/trt_infer of the install on AMENT_PREFIX_PATH (source its setup.bash).", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
