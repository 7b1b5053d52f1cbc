"""HardSwish (opset 14; TensorRT >= 8.5) -> x * HardSigmoid(x, 1/6, 0.5), which opset 6+ has."""
import onnx_graphsurgeon as gs

from converter.fixes import FixReport
from converter.fixes.graph_tools import graph_opset, node_label, set_inputs, unique_name

HARDSWISH_SINCE = 14


def fix_hardswish(graph, target, context):
    """Rewrite HardSwish where the graph's opset lacks it (tf2onnx writes it even at opset 13 for
    TFLite) or the target's does, or the target lists it as unsupported."""
    lacking = (graph_opset(graph) < HARDSWISH_SINCE or target.max_opset < HARDSWISH_SINCE
               or "HardSwish" in set(target.unsupported_ops))
    if not lacking:
        return []
    changed = []
    for node in [node for node in graph.nodes if node.op == "HardSwish"]:
        x, y = node.inputs[0], node.outputs[0]
        gate = gs.Variable(unique_name(graph, y.name + "_hardsigmoid"), dtype=x.dtype, shape=x.shape)
        graph.nodes.append(gs.Node("HardSigmoid", name=unique_name(graph, node_label(node) + "_hardsigmoid"),
                                   attrs={"alpha": 1.0 / 6.0, "beta": 0.5}, inputs=[x], outputs=[gate]))
        # The Mul keeps the node's name and output tensor, so consumers and graph outputs stay wired.
        node.op = "Mul"
        node.attrs = {}
        set_inputs(node, [x, gate])
        changed.append(node_label(node))
    if not changed:
        return []
    return [FixReport("hardswish", changed, "HardSwish -> x * HardSigmoid(x, alpha=1/6, beta=0.5) "
                                            "(opset {} / target {})".format(graph_opset(graph), target.name))]
