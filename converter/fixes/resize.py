"""Resize: scales computed at run time -> initializers; modes the target lacks."""
import numpy as np
import onnx_graphsurgeon as gs

from converter.fixes import FixReport
from converter.fixes.graph_tools import (constant_values, is_empty_input, node_label, set_inputs, static_shape,
                                        unique_name)


def _scales_input(node):
    return node.inputs[2] if len(node.inputs) > 2 and not is_empty_input(node.inputs[2]) else None


def _sizes_input(node):
    return node.inputs[3] if len(node.inputs) > 3 and not is_empty_input(node.inputs[3]) else None


def _scale(size_in, size_out):
    """A float32 scale whose floor(size_in * scale) is exactly size_out, as Resize computes it."""
    scale = np.float32(size_out) / np.float32(size_in)
    while np.floor(np.float32(size_in) * scale) < size_out:
        scale = np.nextafter(scale, np.float32(np.inf))
    return scale


def fix_resize_scales(graph, target, context):
    """Resize whose scales (or sizes) are computed at run time: constant `scales` from the static
    input and output shapes (TensorRT 8.2 needs them as an initializer). Left alone when the
    shapes are not static; constant sizes are kept (exact, and accepted)."""
    if "Resize" not in getattr(target, "initializer_inputs", {}):
        return []
    changed = []
    for node in graph.nodes:
        if node.op != "Resize":
            continue
        scales, sizes = _scales_input(node), _sizes_input(node)
        given = sizes if sizes is not None else scales
        if given is None or constant_values(given) is not None:
            continue
        in_shape, out_shape = static_shape(node.inputs[0]), static_shape(node.outputs[0])
        if in_shape is None or out_shape is None:
            continue  # check reports it; static_shapes + fold_constants usually make it constant
        values = np.array([_scale(size, out) for size, out in zip(in_shape, out_shape)], dtype=np.float32)
        roi = node.inputs[1] if len(node.inputs) > 1 and not is_empty_input(node.inputs[1]) else None
        if roi is None or constant_values(roi) is None:
            roi = gs.Constant(unique_name(graph, node_label(node) + "_roi"), np.zeros((0,), dtype=np.float32))
        set_inputs(node, [node.inputs[0], roi, gs.Constant(unique_name(graph, node_label(node) + "_scales"), values)])
        changed.append(node_label(node))
    if not changed:
        return []
    return [FixReport("resize_scales", changed, "Resize scales/sizes computed at run time -> constant scales from "
                                                "the static shapes (target {})".format(target.name))]


def fix_resize_mode(graph, target, context):
    """cubic -> linear where the target has no cubic (a visible but small change: warned);
    tf_crop_and_resize cannot be rewritten and is reported for the model to change."""
    modes = set(target.resize_modes)
    changed = []
    for node in graph.nodes:
        if node.op != "Resize":
            continue
        mode = node.attrs.get("mode", "nearest")
        if mode not in modes and mode == "cubic" and "linear" in modes:
            node.attrs["mode"] = "linear"
            node.attrs.pop("cubic_coeff_a", None)
            changed.append(node_label(node))
        if node.attrs.get("coordinate_transformation_mode") in getattr(target, "resize_rejected_coordinate_modes",
                                                                       ()):
            context.note(FixReport("resize_mode", [node_label(node)], "coordinate_transformation_mode {} has no "
                                   "equivalent on target {}: crop in pre-processing and resize with half_pixel "
                                   "instead".format(node.attrs["coordinate_transformation_mode"], target.name)))
    if not changed:
        return []
    return [FixReport("resize_mode", changed, "Resize mode cubic -> linear (target {} has no cubic; outputs change "
                                              "slightly)".format(target.name), warning=True)]
