"""Strip the framework's pre-processing (Cast uint8->float, Sub/Mul/Div/Add normalisation, Resize of
the input) when the model spec has the runtime do it: the graph then starts at the tensor after it."""
import numpy as np

from converter.fixes import FixReport
from converter.errors import FixError
from converter.fixes.graph_tools import constant_values, node_label

ARITHMETIC = ("Sub", "Mul", "Div", "Add")


def _chain_step(tensor):
    """The single pre-processing node reading `tensor`, or None."""
    if len(tensor.outputs) != 1:
        return None
    node = tensor.outputs[0]
    if node.op == "Cast" or node.op == "Resize" and node.inputs[0] is tensor:
        return node
    if node.op in ARITHMETIC and len(node.inputs) == 2:
        other = node.inputs[1] if node.inputs[0] is tensor else node.inputs[0]
        if constant_values(other) is not None and np.asarray(constant_values(other)).size in (1, 3):
            return node
    return None


def preprocessing_chain(graph_input):
    """The nodes of the leading pre-processing chain and the tensor after it."""
    nodes, tensor = [], graph_input
    node = _chain_step(tensor)
    while node is not None:
        nodes.append(node)
        tensor = node.outputs[0]
        node = _chain_step(tensor)
    return nodes, tensor


def _runtime_normalises(spec_input):
    return (spec_input.scale, tuple(spec_input.mean), tuple(spec_input.std)) != (1.0, (0.0, 0.0, 0.0),
                                                                                   (1.0, 1.0, 1.0))


def _cut_point(graph, spec_input):
    """(graph input, tensor the network should start at, nodes removed), or None when nothing to strip."""
    tensors = graph.tensors()
    named = tensors.get(spec_input.name)
    if named is not None and named not in graph.inputs and len(graph.inputs) == 1:
        return graph.inputs[0], named
    for graph_input in graph.inputs:
        if graph_input.name != spec_input.name:
            continue
        nodes, after = preprocessing_chain(graph_input)
        if nodes and _runtime_normalises(spec_input) and any(node.op in ARITHMETIC for node in nodes):
            return graph_input, after
    return None


def fix_strip_preprocessing(graph, target, context):
    spec_input = getattr(context.spec, "input", None)
    if spec_input is None:
        return []
    cut = _cut_point(graph, spec_input)
    if cut is None:
        return []
    old_input, start = cut
    before = {id(node): node_label(node) for node in graph.nodes}
    start.inputs.clear()
    start.dtype = np.float32
    graph.inputs = [start if tensor is old_input else tensor for tensor in graph.inputs]
    graph.cleanup(remove_unused_graph_inputs=False)
    stale = [node_label(node) for node in graph.nodes if old_input in node.inputs]
    if stale:
        raise FixError("model spec input {!r}: nodes {} still read the original input {!r}, so the pre-processing "
                       "cannot be cut there; name the tensor after all pre-processing in the spec's input.name".format(
                           spec_input.name, ", ".join(stale), old_input.name))
    old_name = start.name
    if graph.tensors().get(spec_input.name, start) is start:
        start.name = spec_input.name
    remaining = {id(node) for node in graph.nodes}
    removed = [label for key, label in before.items() if key not in remaining]
    return [FixReport("strip_preprocessing", removed, "graph now starts at {!r} (float32, after the framework's "
                      "pre-processing), renamed {!r}; the runtime pre-processes as the spec says".format(
                          old_name, start.name))]
