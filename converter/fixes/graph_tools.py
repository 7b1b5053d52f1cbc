"""Small onnx-graphsurgeon helpers shared by the fix passes."""
import numpy as np
import onnx
import onnx_graphsurgeon as gs


def to_model(graph):
    return gs.export_onnx(graph)


def infer_shapes(graph):
    """Re-import `graph` with ONNX shape inference applied; unknown (custom) ops are left as they are."""
    model = to_model(graph)
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001  shape inference is an aid: a graph it chokes on is still repairable
        pass
    return gs.import_onnx(model)


def tidy(graph):
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    return graph


def node_label(node):
    return node.name or "<unnamed {}>".format(node.op)


def constant_values(tensor):
    """The value of a tensor known at build time (initializer or Constant node output), else None."""
    if isinstance(tensor, gs.Constant):
        return tensor.values
    if len(tensor.inputs) == 1 and tensor.inputs[0].op == "Constant":
        attrs = tensor.inputs[0].attrs
        if "value" in attrs:
            return attrs["value"].values
    return None


def is_empty_input(tensor):
    """An omitted optional input ('' in ONNX)."""
    return tensor is None or (isinstance(tensor, gs.Variable) and tensor.name == "" and not tensor.inputs)


def static_shape(tensor):
    """The tensor's shape as a tuple of ints, or None when any dimension is unknown."""
    shape = getattr(tensor, "shape", None)
    if shape is None or any(not isinstance(dim, (int, np.integer)) or dim < 0 for dim in shape):
        return None
    return tuple(int(dim) for dim in shape)


def unique_name(graph, base):
    taken = set(graph.tensors()) | {node.name for node in graph.nodes}
    name, index = base, 1
    while name in taken:
        name = "{}_{}".format(base, index)
        index += 1
    return name


def replace_uses(graph, old, new):
    """Make every consumer (and graph output) of tensor `old` read `new` instead."""
    for node in list(old.outputs):
        for index, tensor in enumerate(node.inputs):
            if tensor is old:
                node.inputs[index] = new
    graph.outputs = [new if tensor is old else tensor for tensor in graph.outputs]


def set_inputs(node, tensors):
    """Replace a node's inputs, keeping onnx-graphsurgeon's producer/consumer links in step."""
    node.inputs.clear()
    node.inputs.extend(tensors)


def rename_output(graph, tensor, name):
    """Give graph output `tensor` the name `name`, moving any tensor already called so out of the way."""
    if tensor.name == name:
        return
    clash = graph.tensors().get(name)
    if clash is not None:
        clash.name = unique_name(graph, name + "_orig")
    tensor.name = name


def graph_opset(graph):
    return int(graph.opset)


def replace_contents(graph, new):
    """Make `graph` (the object the passes hold) the same graph as `new`."""
    graph.nodes = new.nodes
    graph.inputs = new.inputs
    graph.outputs = new.outputs
    graph.opset = new.opset
    graph.import_domains = new.import_domains


def target_allows_dtype(target, dtype_name):
    return dtype_name in set(getattr(target, "input_dtypes"))
