"""Append TensorRT's NMS plugin (EfficientNMS_TRT, or BatchedNMS_TRT where the target asks) to a graph
that ends in `boxes` [B, N, 4] (corners) and `scores` [B, N, C]. Runs last: ONNX Runtime cannot run
plugin nodes, so numerics are verified on the graph before this pass."""
import numpy as np
import onnx_graphsurgeon as gs

from converter.fixes import FixReport
from converter.errors import FixError
from converter.fixes.graph_tools import static_shape
from converter.fixes.nms_strip import BOXES, SCORES

OUTPUTS = ("num_detections", "detection_boxes", "detection_scores", "detection_classes")
DEFAULTS = {"score": 0.25, "nms_iou": 0.45, "max_detections": 100}


def _thresholds(spec):
    thresholds = getattr(spec, "thresholds", None)
    if thresholds is None:
        return dict(DEFAULTS)
    return {key: thresholds.get(key, default) for key, default in DEFAULTS.items()}


def _background_class(spec):
    section = getattr(spec, "section", None) if spec is not None else None
    if isinstance(section, dict) and isinstance(section.get("background_class"), int):
        return section["background_class"]
    return -1


def _nms_outputs(batch, keep, classes_dtype, count_shape=None):
    shapes = (count_shape or [batch, 1], [batch, keep, 4], [batch, keep], [batch, keep])
    dtypes = (np.int32, np.float32, np.float32, classes_dtype)
    return [gs.Variable(name, dtype=dtype, shape=shape) for name, dtype, shape in zip(OUTPUTS, dtypes, shapes)]


def _fused_decoder_inputs(graph, boxes):
    """[raw deltas (times the decoder's scale factors), anchors] when the graph decodes `boxes`
    from anchors, so the plugin decodes only the boxes it keeps; else None."""
    from converter.fixes.anchor_decoding import find_anchor_decoding

    found = find_anchor_decoding(graph, boxes)
    if found is None:
        return None
    raw, anchors, scales = found
    deltas = raw
    if not np.allclose(scales, 1.0):
        deltas = gs.Variable("box_deltas_scaled", dtype=np.float32, shape=raw.shape)
        graph.nodes.append(gs.Node("Mul", name="box_delta_scales", inputs=[raw, gs.Constant(
            "box_delta_scale_factors", scales.reshape(1, 1, 4))], outputs=[deltas]))
    return [deltas, gs.Constant("anchors", anchors)]


def efficient_nms(graph, boxes, scores, thresholds, background_class, batch):
    keep = thresholds["max_detections"]
    fused = _fused_decoder_inputs(graph, boxes)
    attrs = {"plugin_version": "1", "background_class": background_class, "max_output_boxes": keep,
             "score_threshold": float(thresholds["score"]), "iou_threshold": float(thresholds["nms_iou"]),
             "score_activation": 0, "box_coding": 0 if fused is None else 1}
    inputs = [boxes, scores] if fused is None else [fused[0], scores, fused[1]]
    return gs.Node("EfficientNMS_TRT", name="efficient_nms", attrs=attrs, inputs=inputs,
                   outputs=_nms_outputs(batch, keep, np.int32))


def batched_nms(graph, boxes, scores, thresholds, background_class, batch):
    boxes_shape, scores_shape = static_shape(boxes), static_shape(scores)
    if boxes_shape is None or scores_shape is None:
        raise FixError("BatchedNMS_TRT needs static `boxes`/`scores` shapes (got {} and {}); fix the input shape "
                       "first".format(boxes.shape, scores.shape))
    # keepTopK must not exceed topK (NVIDIA/TensorRT plugin/batchedNMSPlugin/README.md, release/8.2)
    top_k = min(boxes_shape[1], 4096)
    keep = min(thresholds["max_detections"], top_k)
    shared = gs.Variable("boxes_shared_location", dtype=np.float32, shape=[batch, boxes_shape[1], 1, 4])
    graph.nodes.append(gs.Node("Unsqueeze", name="boxes_to_bn14", inputs=[boxes, gs.Constant(
        "boxes_unsqueeze_axes", np.array([2], dtype=np.int64))], outputs=[shared]))
    attrs = {"plugin_version": "1", "shareLocation": 1, "backgroundLabelId": background_class,
             "numClasses": scores_shape[2], "topK": top_k, "keepTopK": keep,
             "scoreThreshold": float(thresholds["score"]), "iouThreshold": float(thresholds["nms_iou"]),
             "isNormalized": 1, "clipBoxes": 0}
    # num_detections has no per-image dimension: getOutputDimensions gives it nbDims 0 (batchedNMSPlugin.cpp,
    # release/8.2), so [B] in an explicit-batch network; BatchedNMSDynamic_TRT's is [B, 1]
    return gs.Node("BatchedNMS_TRT", name="batched_nms", attrs=attrs, inputs=[shared, scores],
                   outputs=_nms_outputs(batch, keep, np.float32, count_shape=[batch]))


def fix_insert_nms_plugin(graph, target, context):
    if context.nms != "plugin":
        return []
    outputs = {tensor.name: tensor for tensor in graph.outputs}
    if sorted(outputs) != sorted([BOXES, SCORES]):
        raise FixError("the NMS plugin goes after decoded `boxes` [B, N, 4] and `scores` [B, N, C] outputs; this graph "
                       "ends in {} and has no NonMaxSuppression to strip".format(", ".join(sorted(outputs))))
    plugin = getattr(target, "nms_plugin", None)
    if plugin not in ("EfficientNMS_TRT", "BatchedNMS_TRT"):
        raise FixError("target {} names no NMS plugin; use nms='runtime'".format(target.name))
    boxes, scores = outputs[BOXES], outputs[SCORES]
    batch = (static_shape(boxes) or (1,))[0]
    thresholds, background = _thresholds(context.spec), _background_class(context.spec)
    if plugin == "EfficientNMS_TRT":
        node = efficient_nms(graph, boxes, scores, thresholds, background, batch)
    else:
        node = batched_nms(graph, boxes, scores, thresholds, background, batch)
    graph.nodes.append(node)
    graph.outputs = list(node.outputs)
    fused = "; box decoder fused: anchors extracted as a constant" if len(node.inputs) == 3 else ""
    return [FixReport("insert_nms_plugin", [node.name], "{} appended (score_threshold {}, iou_threshold {}, "
                      "max_output_boxes {}{}); outputs {}".format(plugin, thresholds["score"], thresholds["nms_iou"],
                                                                  thresholds["max_detections"], fused,
                                                                  ", ".join(OUTPUTS)))]
