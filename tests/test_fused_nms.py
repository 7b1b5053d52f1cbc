"""Parsing the outputs of engines with EfficientNMS_TRT / BatchedNMS_TRT inside.

The plugins cannot run here (no TensorRT execution), so the outputs are built in the layout the
plugins document: num_detections [B, 1] int32, boxes [B, K, 4], scores [B, K], classes [B, K]
(int32 for EfficientNMS_TRT, float32 for BatchedNMS_TRT), rows past num_detections undefined
(filled with garbage here so that using them would show).
"""
import numpy as np
import pytest

from trt_infer.errors import ModelMismatchError
from trt_infer.geometry import ResizeTransform
from trt_infer.postprocess.fused_nms import FusedNMSPostprocessor

pytest.importorskip("yaml", reason="model specs are YAML")
from trt_infer.schema import SpecError
from trt_infer.spec import ModelSpec

OUTPUTS = {"num_detections": "num_dets", "boxes": "det_boxes", "scores": "det_scores", "classes": "det_classes"}


def spec(task="efficient_nms", section=None, width=320, height=320, resize="stretch", labels=None):
    data = {"name": "fused", "task": task,
            "input": {"name": "images", "width": width, "height": height, "resize": resize},
            "outputs": dict(OUTPUTS), "labels": labels or ["background", "person", "car"],
            "thresholds": {"score": 0.3, "max_detections": 10}}
    if section is not None:
        data[task] = section
    return ModelSpec(data)


def plugin_outputs(boxes, scores, classes, capacity=8, class_dtype=np.int32):
    count = len(scores)
    rng = np.random.RandomState(0)
    out_boxes = rng.uniform(-1e4, 1e4, (1, capacity, 4)).astype(np.float32)
    out_scores = rng.uniform(0.9, 1.0, (1, capacity)).astype(np.float32)  # garbage that would pass
    out_classes = rng.randint(0, 3, (1, capacity)).astype(class_dtype)
    out_boxes[0, :count] = boxes
    out_scores[0, :count] = scores
    out_classes[0, :count] = classes
    return {"num_dets": np.array([[count]], np.int32), "det_boxes": out_boxes, "det_scores": out_scores,
            "det_classes": out_classes}


@pytest.mark.parametrize("task, class_dtype", [("efficient_nms", np.int32), ("batched_nms", np.float32)])
def test_only_the_first_num_detections_rows_are_used(task, class_dtype):
    post = FusedNMSPostprocessor(spec(task))
    boxes = [[0.1, 0.2, 0.5, 0.6], [0.5, 0.5, 1.0, 1.0]]
    outputs = plugin_outputs(boxes, [0.9, 0.6], [1, 2], class_dtype=class_dtype)
    detections = post(outputs, ResizeTransform(640, 480, 320, 320)).detections
    assert detections.class_ids.dtype == np.int32 and detections.class_ids.tolist() == [1, 2]
    np.testing.assert_allclose(detections.scores, [0.9, 0.6])
    np.testing.assert_allclose(detections.boxes, [[64, 96, 320, 288], [320, 240, 640, 480]], atol=1e-3)


def test_batched_nms_num_detections_without_a_per_image_dimension():
    # BatchedNMS_TRT writes num_detections [B] (BatchedNMSDynamic_TRT and EfficientNMS_TRT [B, 1])
    outputs = plugin_outputs([[0.1, 0.2, 0.5, 0.6]], [0.9], [2], class_dtype=np.float32)
    outputs["num_dets"] = outputs["num_dets"].reshape(1)
    detections = FusedNMSPostprocessor(spec("batched_nms"))(outputs, ResizeTransform(640, 480, 320, 320)).detections
    assert detections.class_ids.tolist() == [2]


def test_yxyx_pixel_boxes_through_a_letterbox_with_class_offset():
    post = FusedNMSPostprocessor(spec(section={"box_order": "yxyx", "normalized": False, "class_offset": 1},
                                      resize="letterbox"))
    # 640x480 letterboxed into 320x320: scale 0.5, 240 rows, 40 rows of padding above
    # network pixels y1 60, x1 20, y2 160, x2 120 -> image x 40..240, y (60 - 40) / 0.5 = 40 .. 240
    outputs = plugin_outputs([[60, 20, 160, 120]], [0.8], [0])
    detections = post(outputs, ResizeTransform(640, 480, 320, 320, "letterbox")).detections
    np.testing.assert_allclose(detections.boxes, [[40, 40, 240, 240]], atol=1e-3)
    assert detections.class_ids.tolist() == [1]


def test_boxes_are_clipped_to_the_image():
    post = FusedNMSPostprocessor(spec())
    outputs = plugin_outputs([[-0.2, 0.5, 1.3, 1.1]], [0.8], [1])
    detections = post(outputs, ResizeTransform(100, 50, 320, 320)).detections
    np.testing.assert_allclose(detections.boxes, [[0, 25, 100, 50]], atol=1e-4)


def test_run_time_thresholds_filter_again():
    model = spec()
    post = FusedNMSPostprocessor(model)
    outputs = plugin_outputs([[0, 0, 0.1, 0.1]] * 5, [0.9, 0.8, 0.7, 0.4, 0.35], [1] * 5)
    transform = ResizeTransform(320, 320, 320, 320)
    assert len(post(outputs, transform).detections) == 5
    model.thresholds.update(score=0.75)
    assert post(outputs, transform).detections.scores.tolist() == pytest.approx([0.9, 0.8])
    model.thresholds.update(score=0.3, max_detections=3)
    assert len(post(outputs, transform).detections) == 3


def test_zero_detections():
    detections = FusedNMSPostprocessor(spec())(plugin_outputs(np.zeros((0, 4)), [], []),
                                               ResizeTransform(320, 320, 320, 320)).detections
    assert len(detections) == 0


def test_inconsistent_outputs_are_clear_errors():
    post = FusedNMSPostprocessor(spec())
    transform = ResizeTransform(320, 320, 320, 320)
    outputs = plugin_outputs([[0, 0, 1, 1]], [0.9], [1], capacity=4)
    outputs["num_dets"] = np.array([[7]], np.int32)
    with pytest.raises(ValueError, match="'num_dets' says 7 detections, but the boxes/scores/classes outputs hold 4"):
        post(outputs, transform)
    outputs = plugin_outputs([[0, 0, 1, 1]], [0.9], [1])
    outputs["det_boxes"] = np.concatenate([outputs["det_boxes"]] * 2)
    with pytest.raises(ValueError, match=r"'det_boxes' \(outputs.boxes\) has shape \(2, 8, 4\); expected batch 1"):
        post(outputs, transform)
    outputs = plugin_outputs([[0, 0, 1, 1]], [0.9], [1])
    del outputs["det_scores"]
    with pytest.raises(ModelMismatchError, match="'det_scores'.*not among the model's outputs"):
        post(outputs, transform)


def test_section_is_validated():
    with pytest.raises(SpecError, match=r"efficient_nms\.box_order: got 'xywh'; allowed: 'xyxy', 'yxyx'"):
        spec(section={"box_order": "xywh"})
    with pytest.raises(SpecError, match=r"batched_nms\.normalised: unknown key"):
        spec("batched_nms", section={"normalised": True})
