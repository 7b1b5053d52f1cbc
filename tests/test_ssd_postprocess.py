"""SSDPostprocessor on the shipped specs: planted objects come back, and random outputs match a
plain reference pipeline written here (full decode, activation, threshold, top-k, greedy NMS)."""
import json
import os

import numpy as np
import pytest

from tests.test_nms import reference_nms
from trt_infer.box_coding import encode_boxes
from trt_infer.errors import ModelMismatchError
from trt_infer.geometry import ResizeTransform
from trt_infer.postprocess.ssd import SSDPostprocessor

yaml = pytest.importorskip("yaml", reason="model specs are YAML")
from trt_infer.spec import ModelSpec  # noqa: E402  (needs yaml only for load_spec)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO = "ssd_mobilenet_v2_coco"
VOC = "ssd_mobilenet_v1_voc"


def spec_of(name, **changes):
    """A shipped spec, with top-level sections updated from `changes` (dicts are merged one level)."""
    path = os.path.join(REPO, "config", "models", name + ".yaml")
    with open(path) as handle:
        data = yaml.safe_load(handle)
    for key, value in changes.items():
        if isinstance(value, dict):
            data[key] = dict(data[key], **value)
        else:
            data[key] = value
    return ModelSpec(data, path=path)


def corners(anchors):
    """[cy, cx, h, w] -> x1, y1, x2, y2."""
    return np.column_stack([anchors[:, 1] - anchors[:, 3] / 2, anchors[:, 0] - anchors[:, 2] / 2,
                            anchors[:, 1] + anchors[:, 3] / 2, anchors[:, 0] + anchors[:, 2] / 2])


def iou_matrix(a, b):
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area = lambda boxes: (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])  # noqa: E731
    inter = width * height
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def planted_outputs(post, spec, objects_normalised, class_ids, rng):
    """Raw outputs where anchors matching each object (IoU > 0.5, as in SSD training) encode it."""
    anchors = post.anchors
    count, classes = len(anchors), len(spec.labels)
    raw_boxes = rng.normal(0, 0.5, (count, 4)).astype(np.float32)
    logits = rng.normal(-6, 1, (count, classes)).astype(np.float32)
    matches = iou_matrix(corners(anchors), np.asarray(objects_normalised)) > 0.5
    for index, class_id in enumerate(class_ids):
        rows = np.flatnonzero(matches[:, index])
        assert rows.size, "no anchor matches planted object {}".format(index)
        raw_boxes[rows] = encode_boxes(np.repeat([objects_normalised[index]], rows.size, axis=0), anchors[rows],
                                       spec.section.box_coding)
        logits[rows, class_id] = rng.uniform(2, 4, rows.size)
    return {spec.outputs["boxes"]: raw_boxes[None], spec.outputs["scores"]: logits[None]}


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
def test_planted_objects_come_back_in_image_pixels(resize):
    spec = spec_of(COCO, input={"resize": resize})
    post = SSDPostprocessor(spec)
    width, height = 640, 480
    person = [100.0, 50.0, 300.0, 400.0]
    dog = [350.0, 200.0, 600.0, 460.0]
    # image pixels -> network input 0..1, derived here: stretch scales each axis; letterbox scales
    # by min(300 / 640, 300 / 480) = 0.46875 and centres 300 x 225 rows, (300 - 225) // 2 = 37 above
    if resize == "stretch":
        to_net = lambda box: [box[0] / width, box[1] / height, box[2] / width, box[3] / height]  # noqa: E731
    else:
        to_net = lambda box: [box[0] * 0.46875 / 300, (box[1] * 0.46875 + 37) / 300,  # noqa: E731
                              box[2] * 0.46875 / 300, (box[3] * 0.46875 + 37) / 300]
    outputs = planted_outputs(post, spec, [to_net(person), to_net(dog)], [1, 18], np.random.RandomState(0))
    detections = post(outputs, ResizeTransform(width, height, 300, 300, resize)).detections
    assert sorted(spec.labels[class_id] for class_id in detections.class_ids) == ["dog", "person"]
    assert detections.scores[0] >= detections.scores[1] > 0.5
    by_class = dict(zip(detections.class_ids.tolist(), detections.boxes.tolist()))
    np.testing.assert_allclose(by_class[1], person, atol=0.05)
    np.testing.assert_allclose(by_class[18], dog, atol=0.05)
    assert detections.boxes.dtype == np.float32 and detections.class_ids.dtype == np.int32
    assert detections.keypoints is None


def reference_ssd(spec, anchors, outputs, transform):
    """Decode every anchor by the textbook formula, then threshold, top-k and greedy NMS per class."""
    section = spec.section
    raw = outputs[spec.outputs["boxes"]][0].astype(np.float64)
    logits = outputs[spec.outputs["scores"]][0].astype(np.float64)
    coding = section.box_coding
    if coding.variances:
        v_centre, v_size = coding.variances
        scales = [1 / v_centre, 1 / v_centre, 1 / v_size, 1 / v_size]
    else:
        scales = coding.scales
    ty, tx, th, tw = (raw.T if coding.order == "yx" else raw[:, [1, 0, 3, 2]].T)
    cy, cx, ah, aw = anchors.astype(np.float64).T
    centre_y, centre_x = ty / scales[0] * ah + cy, tx / scales[1] * aw + cx
    h, w = np.exp(th / scales[2]) * ah, np.exp(tw / scales[3]) * aw
    boxes = np.column_stack([centre_x - w / 2, centre_y - h / 2, centre_x + w / 2, centre_y + h / 2])
    if section.score_activation == "softmax":
        scores = np.exp(logits - logits.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
    else:
        scores = 1 / (1 + np.exp(-logits))
    scores[:, section.background_class] = -1
    rows, classes = np.nonzero(scores >= spec.thresholds.score)
    candidate_scores = scores[rows, classes]
    order = sorted(range(len(rows)), key=lambda index: (-candidate_scores[index], index))[:section.nms.top_k]
    rows, classes, candidate_scores = rows[order], classes[order], candidate_scores[order]
    kept = reference_nms(boxes[rows], candidate_scores, spec.thresholds.nms_iou, classes,
                         spec.thresholds.max_detections)
    image_size = np.array([transform.image_width, transform.image_height] * 2, np.float64)
    pixels = np.clip(boxes[rows[kept]] * image_size, 0, image_size)  # stretch: x * width, y * height
    return pixels, candidate_scores[kept], classes[kept]


@pytest.mark.parametrize("name", [COCO, VOC])
@pytest.mark.parametrize("seed", range(3))
def test_random_outputs_match_the_reference_pipeline(name, seed):
    spec = spec_of(name, thresholds={"score": 0.3, "nms_iou": 0.5, "max_detections": 50})
    post = SSDPostprocessor(spec)
    rng = np.random.RandomState(seed)
    count, classes = len(post.anchors), len(spec.labels)
    # About 1 in 300 (anchor, class) pairs clears the threshold: a few hundred candidates.
    logits = rng.normal(-4, 1.5, (1, count, classes)).astype(np.float32)
    if spec.section.score_activation == "softmax":
        logits[..., 0] += 3.0  # background dominates most anchors, as in a trained model
        hot = rng.choice(count, 150, replace=False)
        logits[0, hot, rng.randint(1, classes, 150)] += 8.0
    outputs = {spec.outputs["boxes"]: rng.normal(0, 1, (1, count, 4)).astype(np.float32),
               spec.outputs["scores"]: logits}
    transform = ResizeTransform(640, 480, 300, 300, "stretch")
    detections = post(outputs, transform).detections
    boxes, scores, class_ids = reference_ssd(spec, post.anchors, outputs, transform)
    assert 5 < len(detections) <= 50
    assert detections.class_ids.tolist() == class_ids.tolist()
    np.testing.assert_allclose(detections.scores, scores, rtol=1e-5)
    np.testing.assert_allclose(detections.boxes, boxes, atol=2e-3)
    assert 0 not in detections.class_ids  # background


def test_thresholds_are_read_on_every_call():
    spec = spec_of(COCO)
    post = SSDPostprocessor(spec)
    rng = np.random.RandomState(5)
    objects = [[0.1, 0.1, 0.4, 0.5], [0.5, 0.5, 0.9, 0.9], [0.6, 0.05, 0.95, 0.3]]
    outputs = planted_outputs(post, spec, objects, [1, 3, 62], rng)
    transform = ResizeTransform(300, 300, 300, 300)
    assert len(post(outputs, transform).detections) == 3
    spec.thresholds.update(max_detections=2)
    two = post(outputs, transform).detections
    assert len(two) == 2
    spec.thresholds.update(max_detections=100, score=0.999)
    assert len(post(outputs, transform).detections) == 0
    spec.thresholds.update(score=0.5, nms_iou=0.0)  # suppress any overlap, across one class only
    assert len(post(outputs, transform).detections) == 3


def test_class_agnostic_nms_lets_classes_suppress_each_other():
    objects = [[0.2, 0.2, 0.6, 0.6], [0.21, 0.2, 0.61, 0.6]]
    per_class = spec_of(COCO)
    agnostic = spec_of(COCO, ssd={"nms": {"method": "hard", "class_agnostic": True, "top_k": 1000}})
    post = SSDPostprocessor(per_class)
    outputs = planted_outputs(post, per_class, objects, [17, 18], np.random.RandomState(6))
    transform = ResizeTransform(300, 300, 300, 300)
    assert sorted(post(outputs, transform).detections.class_ids.tolist()) == [17, 18]
    assert len(SSDPostprocessor(agnostic)(outputs, transform).detections) == 1


def test_no_candidates_gives_empty_detections():
    spec = spec_of(COCO)
    post = SSDPostprocessor(spec)
    outputs = {spec.outputs["boxes"]: np.zeros((1, 1917, 4), np.float32),
               spec.outputs["scores"]: np.full((1, 1917, 91), -10.0, np.float32)}
    detections = post(outputs, ResizeTransform(640, 480, 300, 300)).detections
    assert len(detections) == 0 and detections.boxes.shape == (0, 4)


def test_score_clip_and_weighted_nms_with_keypoints():
    spec = spec_of("blazeface", input={"resize": "stretch"})
    post = SSDPostprocessor(spec)
    raw = np.zeros((1, 896, 16), np.float32)
    logits = np.full((1, 896, 1), -1e4, np.float32)
    # two fixed-size anchors of the first 16x16 grid cell: box 32 px (0.25) wide and high,
    # shifted 12.8 px (0.1) right in the second; keypoint 0 at the box centre
    raw[0, 0, :4] = [0.0, 0.0, 32.0, 32.0]
    raw[0, 1, :4] = [12.8, 0.0, 32.0, 32.0]
    raw[0, 1, 4:6] = [12.8, 0.0]
    logits[0, 0, 0], logits[0, 1, 0] = 1e4, np.log(3.0)  # clipped to 100 -> score 1.0; sigmoid 0.75
    detections = post({"regressors": raw, "classificators": logits}, ResizeTransform(128, 128, 128, 128)).detections
    assert len(detections) == 1
    np.testing.assert_allclose(detections.scores, [1.0])
    # weights 1 and 0.75: centre x = 4 + 0.75 * 12.8 / 1.75 px, a 32 px box
    centre_x, centre_y = 4 + 0.75 * 12.8 / 1.75, 4.0
    np.testing.assert_allclose(detections.boxes, [[max(centre_x - 16, 0), 0, centre_x + 16, centre_y + 16]], atol=1e-3)
    np.testing.assert_allclose(detections.keypoints[0, 0], [centre_x, centre_y], atol=1e-3)


def test_wrong_output_shapes_are_clear_errors():
    spec = spec_of(COCO)
    post = SSDPostprocessor(spec)
    transform = ResizeTransform(300, 300, 300, 300)
    boxes, scores = spec.outputs["boxes"], spec.outputs["scores"]
    good = {boxes: np.zeros((1, 1917, 4), np.float32), scores: np.zeros((1, 1917, 91), np.float32)}
    with pytest.raises(ValueError, match=r"'raw_outputs/class_predictions' has shape \(1, 1000, 91\); expected "
                                         r"\(1, 1917, values\)"):
        post(dict(good, **{scores: np.zeros((1, 1000, 91), np.float32)}), transform)
    with pytest.raises(ValueError, match="has 2 values per anchor"):
        post(dict(good, **{boxes: np.zeros((1, 1917, 2), np.float32)}), transform)
    with pytest.raises(ModelMismatchError, match="'raw_outputs/box_encodings'.*not among the model's outputs"):
        post({scores: good[scores]}, transform)


def test_check_outputs_rejects_a_model_that_does_not_fit_the_anchors():
    from trt_infer.backends import TensorInfo

    spec = spec_of(COCO)
    post = SSDPostprocessor(spec)
    infos = {spec.outputs["boxes"]: TensorInfo(spec.outputs["boxes"], (1, 1917, 4), np.float32),
             spec.outputs["scores"]: TensorInfo(spec.outputs["scores"], (1, 1917, 91), np.float32)}
    post.check_outputs(infos)
    infos[spec.outputs["boxes"]] = TensorInfo(spec.outputs["boxes"], (1, 3000, 4), np.float32)
    with pytest.raises(ValueError, match="1917 anchors"):
        post.check_outputs(infos)


def test_bad_ssd_sections_name_the_key():
    from trt_infer.schema import SpecError

    with pytest.raises(SpecError, match=r"ssd\.nms\.method: got 'soft'; allowed: 'hard', 'weighted'"):
        spec_of(COCO, ssd={"nms": {"method": "soft"}})
    with pytest.raises(SpecError, match=r"ssd\.score_activation: got 'relu'"):
        spec_of(COCO, ssd={"score_activation": "relu"})
    bad = json.loads(json.dumps(spec_of(COCO).section))  # a plain, writable copy of the read-only section
    bad["anchors"]["aspect_ratio"] = [1.0]
    with pytest.raises(SpecError, match=r"ssd\.anchors\.aspect_ratio: unknown key"):
        spec_of(COCO, ssd=bad)
