"""The inputs and outputs of a TF1 frozen GraphDef (.pb), found by name for TF Object Detection API graphs.

A frozen graph carries no signature: tf2onnx needs the tensors to start from and to end at. The OD API's
exporter (`export_inference_graph.py --input_type image_tensor`) names them the same in every model:
the input `image_tensor` (uint8 [N, H, W, 3]) and, for SSD, the raw head tensors before the
post-processor: `Postprocessor/raw_box_encodings` (box codes [N, anchors, 4]) and the concatenated
class-head logits that `Postprocessor/convert_scores` (the score sigmoid) is computed from
([N, anchors, classes + 1], background first). Cutting there leaves the box decoding and the
multiclass NMS loop out of the ONNX graph: the runtime's SSD post-processing does them.
Graphs of other families: give the tensors with --graph-inputs / --graph-outputs.
"""
import logging

from converter.errors import ExportError

logger = logging.getLogger(__name__)

IMAGE_INPUT = "image_tensor"
RAW_BOXES = "Postprocessor/raw_box_encodings"
SCORE_SIGMOID = "Postprocessor/convert_scores"
CLASS_HEAD_OPS = ("ConcatV2", "Concat")
MAX_WALK = 16   # nodes between the score sigmoid and the class-head concat (scale_logits, Identity, ...)


def read_graph_def(path):
    """The GraphDef of a frozen .pb; ExportError naming the file when it is not one."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    graph_def = tf.compat.v1.GraphDef()
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        graph_def.ParseFromString(data)
    except DecodeError as error:
        raise ExportError("{} is not a frozen TensorFlow GraphDef ({}); a TF1 exporter writes one as "
                          "frozen_inference_graph.pb, a TF2 model is a SavedModel folder".format(path, error))
    if not graph_def.node:
        raise ExportError("{} holds no graph nodes; pass the frozen graph (frozen_inference_graph.pb)".format(path))
    return graph_def


def _tensor(name):
    return name if ":" in name else name + ":0"


def _node_name(tensor):
    return tensor.lstrip("^").split(":")[0]


def od_api_tensors(graph_def):
    """(inputs, outputs) tensor names of an OD API SSD graph, or None when the graph is not one."""
    nodes = dict((node.name, node) for node in graph_def.node)
    if IMAGE_INPUT not in nodes or RAW_BOXES not in nodes or SCORE_SIGMOID not in nodes:
        return None
    node = nodes[SCORE_SIGMOID]
    for _ in range(MAX_WALK):
        if not node.input or _node_name(node.input[0]) not in nodes:
            return None
        node = nodes[_node_name(node.input[0])]
        if node.op in CLASS_HEAD_OPS:
            return [_tensor(IMAGE_INPUT)], [_tensor(RAW_BOXES), _tensor(node.name)]
    return None


def graph_def_tensors(path, inputs=None, outputs=None):
    """(inputs, outputs) for tf2onnx: the ones given, the rest found for OD API graphs.

    ExportError when neither is possible, listing the graph's placeholders as a start."""
    if inputs and outputs:
        return [_tensor(name) for name in inputs], [_tensor(name) for name in outputs]
    graph_def = read_graph_def(path)
    found = od_api_tensors(graph_def)
    if found is None:
        placeholders = [node.name for node in graph_def.node if node.op == "Placeholder"]
        raise ExportError("{}: not a TF Object Detection API SSD graph (no {}, {} and {}), so its inputs and outputs "
                          "are not known; give them with --graph-inputs and --graph-outputs (tensor names such as "
                          "{}:0); its placeholders: {}".format(
                              path, IMAGE_INPUT, RAW_BOXES, SCORE_SIGMOID,
                              placeholders[0] if placeholders else "input",
                              ", ".join(placeholders) or "none"))
    found_inputs, found_outputs = found
    logger.info("%s: a TF Object Detection API SSD graph; input %s, raw heads %s (box codes, class logits)",
                path, ", ".join(found_inputs), ", ".join(found_outputs))
    return ([_tensor(name) for name in inputs] if inputs else found_inputs,
            [_tensor(name) for name in outputs] if outputs else found_outputs)
