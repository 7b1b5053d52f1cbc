"""Reduce* `axes` given as an input (opset 18) -> the attribute older opsets use, before lowering."""
from converter.fixes import FixReport
from converter.errors import FixError
from converter.fixes.graph_tools import constant_values, graph_opset, is_empty_input, node_label, set_inputs

AXES_INPUT_SINCE = 18
# ReduceSum took its axes as an input already at opset 13.
AXES_INPUT_SINCE_BY_OP = {"ReduceSum": 13}
REDUCE_OPS = ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
              "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")


def fix_reduce_axes(graph, target, context):
    """When the graph's opset (>= 18) is above the target's maximum, move constant axes inputs to the
    `axes` attribute; the convert_opset pass then lowers the rest. Computed axes are an error."""
    opset = graph_opset(graph)
    if opset < AXES_INPUT_SINCE or target.max_opset >= AXES_INPUT_SINCE:
        return []
    changed = []
    for node in graph.nodes:
        if node.op not in REDUCE_OPS or target.max_opset >= AXES_INPUT_SINCE_BY_OP.get(node.op, AXES_INPUT_SINCE):
            continue
        if len(node.inputs) < 2 or is_empty_input(node.inputs[1]):
            continue
        axes = constant_values(node.inputs[1])
        if axes is None:
            raise FixError("node {!r} ({}): its axes are computed at run time ({!r}); target {} needs constant "
                           "axes. Give the model static shapes (fold_constants) or reduce over fixed "
                           "dimensions".format(node_label(node), node.op, node.inputs[1].name, target.name))
        set_inputs(node, node.inputs[:1])
        node.attrs["axes"] = [int(axis) for axis in axes.reshape(-1)]
        node.attrs.pop("noop_with_empty_axes", None)
        changed.append(node_label(node))
    if not changed:
        return []
    return [FixReport("reduce_axes", changed, "Reduce axes input -> attribute (opset {} -> {} for target "
                                              "{})".format(opset, target.max_opset, target.name))]
