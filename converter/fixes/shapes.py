"""Static input shapes: dynamic batch / spatial dimensions fixed to the model spec's (or batch 1)."""
import onnx_graphsurgeon as gs

from converter.fixes import FixReport
from converter.errors import FixError


def _spec_shape(spec, tensor):
    """The model spec's shape for this input, when the spec describes it."""
    spec_input = getattr(spec, "input", None)
    if spec_input is None or getattr(spec_input, "name", None) != tensor.name:
        return None
    return tuple(spec_input.shape)


def _is_dynamic(dim):
    return not isinstance(dim, int) or dim < 0


def input_shape_option(name, shape, example=False):
    """The --input-shape value for `name`: fixed dimensions as they are, batch 1, the others by their
    symbolic name (H, W, ...) or, with example=True, 320."""
    dims = []
    for index, dim in enumerate(shape):
        if not _is_dynamic(dim):
            dims.append(str(dim))
        elif index == 0:
            dims.append("1")
        else:
            dims.append("320" if example or not isinstance(dim, str) or not dim else dim)
    return "{}:{}".format(name, ",".join(dims))


def fix_static_shapes(graph, target, context):
    """Where the target needs static shapes (TensorRT 8.2 folding, Resize scales), make inputs static.

    The spec's input size wins; without one only a dynamic batch can be fixed (to 1); other
    dynamic dimensions are an error naming the input and the spec keys to set.
    """
    if not target.static_shapes:
        return []
    reports = []
    for tensor in graph.inputs:
        if tensor.shape is None or not any(_is_dynamic(dim) for dim in tensor.shape):
            continue
        wanted = _spec_shape(context.spec, tensor)
        if wanted is None:
            wanted = tuple(1 if index == 0 and _is_dynamic(dim) else dim for index, dim in enumerate(tensor.shape))
        if len(wanted) != len(tensor.shape):
            raise FixError("graph input {!r} has {} dimensions {} but the model spec gives shape {}; fix `input` "
                           "(width/height/layout) in the spec".format(tensor.name, len(tensor.shape),
                                                                      tensor.shape, wanted))
        for dim, want in zip(tensor.shape, wanted):
            if not _is_dynamic(dim) and dim != want:
                raise FixError("graph input {!r} has shape {} but the model spec asks for {}; fix `input` in the "
                               "spec or re-export the model".format(tensor.name, tensor.shape, list(wanted)))
        if any(_is_dynamic(dim) for dim in wanted):
            raise FixError("graph input {!r} has dynamic dimensions {} and target {} needs static shapes; pass "
                           "--input-shape {} with the size the model runs at (e.g. --input-shape {}), or a --spec "
                           "whose `input` is named {!r}".format(
                               tensor.name, tensor.shape, target.name, input_shape_option(tensor.name, wanted),
                               input_shape_option(tensor.name, wanted, example=True), tensor.name))
        old = list(tensor.shape)
        tensor.shape = list(wanted)
        reports.append(FixReport("static_shapes", [tensor.name], "graph input {!r} shape {} -> {} (target {} needs "
                                 "static shapes)".format(tensor.name, old, list(wanted), target.name)))
    if reports:
        # Shapes inferred downstream still carry the old symbolic dims; shape inference refills them.
        inputs = {tensor.name for tensor in graph.inputs}
        for tensor in graph.tensors().values():
            if isinstance(tensor, gs.Variable) and tensor.name not in inputs and tensor.shape is not None \
                    and any(_is_dynamic(dim) for dim in tensor.shape):
                tensor.shape = None
    return reports
