"""Strip the framework's NMS (ONNX NonMaxSuppression, as tf2onnx also emits for TF's
NonMaxSuppression* / CombinedNonMaxSuppression with their Gather/TopK/Scatter tails): the graph
ends at the decoded boxes [B, N, 4] and per-class scores [B, N, C], outputs `boxes` and `scores`."""
import onnx_graphsurgeon as gs

from converter.fixes import FixReport
from converter.errors import FixError
from converter.fixes.graph_tools import node_label, rename_output, unique_name

BOXES, SCORES = "boxes", "scores"


def _nms_nodes(graph):
    return [node for node in graph.nodes if node.op == "NonMaxSuppression"]


def _nms_in_subgraphs(graph):
    return [node_label(node) for node in graph.nodes
            for sub in node.attrs.values() if isinstance(sub, gs.Graph) and _nms_nodes(sub)]


def _scores_nxc(graph, scores):
    """NonMaxSuppression takes scores [B, C, N]; the runtime and the plugins want [B, N, C]."""
    producer = scores.inputs[0] if len(scores.inputs) == 1 else None
    if producer is not None and producer.op == "Transpose" and list(producer.attrs.get("perm", [])) == [0, 2, 1]:
        return producer.inputs[0]
    transposed = gs.Variable(unique_name(graph, SCORES), dtype=scores.dtype)
    graph.nodes.append(gs.Node("Transpose", name=unique_name(graph, "scores_to_bnc"), attrs={"perm": [0, 2, 1]},
                               inputs=[scores], outputs=[transposed]))
    return transposed


def strip_nms(graph):
    """Cut `graph` at the NMS inputs; returns the names of the NMS nodes removed."""
    nms = _nms_nodes(graph)
    if not nms:
        nested = _nms_in_subgraphs(graph)
        if nested:
            raise FixError("NonMaxSuppression inside control flow ({}): export the detector with batch size 1 and "
                           "without a per-image loop, so that NMS is a top-level node".format(", ".join(nested)))
        return []
    boxes, scores = nms[0].inputs[0], nms[0].inputs[1]
    for other in nms[1:]:
        if other.inputs[0] is not boxes or other.inputs[1] is not scores:
            raise FixError("NonMaxSuppression nodes {!r} and {!r} read different boxes/scores; strip_nms cuts at one "
                           "pair: export the model with a single NMS".format(node_label(nms[0]), node_label(other)))
    scores = _scores_nxc(graph, scores)
    outputs = []
    for tensor, name in ((boxes, BOXES), (scores, SCORES)):
        # Identity keeps the tensor's own name free for the nodes that still read it.
        output = gs.Variable(unique_name(graph, name + "_out"), dtype=tensor.dtype)
        graph.nodes.append(gs.Node("Identity", name=unique_name(graph, name + "_output"), inputs=[tensor],
                                   outputs=[output]))
        outputs.append(output)
    graph.outputs = outputs
    for output, name in zip(outputs, (BOXES, SCORES)):
        rename_output(graph, output, name)
    graph.cleanup(remove_unused_graph_inputs=False)
    return [node_label(node) for node in nms]


def fix_strip_nms(graph, target, context):
    if context.nms not in ("runtime", "plugin") or [tensor.name for tensor in graph.outputs] == [BOXES, SCORES]:
        return []
    removed = strip_nms(graph)
    if not removed:
        return []
    return [FixReport("strip_nms", removed, "graph cut at the decoded boxes [B, N, 4] and scores [B, N, C] before "
                                            "NonMaxSuppression (new outputs {!r}, {!r})".format(BOXES, SCORES))]
