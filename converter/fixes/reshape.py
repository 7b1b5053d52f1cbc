"""Reshape `allowzero`: TensorRT < 8.4.2 fails with "Attribute not found: allowzero" at opset >= 14."""
from converter.fixes import FixReport
from converter.errors import FixError
from converter.fixes.graph_tools import constant_values, graph_opset, node_label

ALLOWZERO_SINCE = 14


def fix_reshape_allowzero(graph, target, context):
    """Make every Reshape's `allowzero` what the target parses.

    Opset <= 13: Reshape has no such attribute, so one left there (invalid ONNX) is dropped.
    Opset >= 14 on a target whose parser needs it: write the explicit default allowzero=0. An
    allowzero=1 Reshape whose shape holds no 0 means the same with 0 and is rewritten; one that
    copies nothing for a 0 cannot be expressed for that target and is an error.
    """
    opset = graph_opset(graph)
    needs_explicit = opset >= ALLOWZERO_SINCE and not target.reshape_allowzero_fixed
    changed = []
    for node in graph.nodes:
        if node.op != "Reshape":
            continue
        if opset < ALLOWZERO_SINCE:
            if "allowzero" in node.attrs:
                del node.attrs["allowzero"]
                changed.append(node_label(node))
            continue
        if not needs_explicit:
            continue
        allowzero = node.attrs.get("allowzero")
        if allowzero == 0:
            continue
        if allowzero == 1:
            shape = constant_values(node.inputs[1])
            if shape is None or 0 in shape.tolist():
                raise FixError("Reshape {!r} has allowzero=1 with a shape that {}; target {} cannot express it. "
                               "Re-export without zero-sized reshape targets".format(
                                   node_label(node), "is computed at run time" if shape is None else "contains 0",
                                   target.name))
        node.attrs["allowzero"] = 0
        changed.append(node_label(node))
    if not changed:
        return []
    why = ("opset {} Reshape has no allowzero attribute".format(opset) if opset < ALLOWZERO_SINCE else
           "TensorRT of target {} fails with 'Attribute not found: allowzero' unless it is "
           "explicit".format(target.name))
    return [FixReport("reshape_allowzero", changed, "allowzero {} ({})".format(
        "removed" if opset < ALLOWZERO_SINCE else "set to 0", why))]
