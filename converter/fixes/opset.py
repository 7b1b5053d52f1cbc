"""Opset conversion down to the target's maximum.

onnx.version_converter is tried first. It has no down-adapter for many ops whose newer version
only widened the accepted types (it stops at "No Adapter From Version 14 for Relu"), so when it
fails the graph is lowered node by node against the ONNX schemas: an op that exists at the
target opset and uses no attribute or input the older version lacks (beyond attributes at their
default, which are dropped) keeps its meaning. Anything else is an error naming the node.
"""
import logging

import onnx_graphsurgeon as gs

from converter.fixes import FixReport
from converter.errors import FixError
from converter.fixes.graph_tools import graph_opset, node_label, replace_contents, to_model

logger = logging.getLogger(__name__)

# Attributes later opsets added whose default value means the older behaviour.
DROPPABLE_DEFAULTS = {
    "allowzero": 0,                     # Reshape 14
    "training_mode": 0,                 # BatchNormalization 14
    "layout": 0,                        # GRU / LSTM / RNN 14
    "start": 0,                         # Shape 15
    "antialias": 0,                     # Resize 18
    "keep_aspect_ratio_policy": "stretch",  # Resize 18
    "saturate": 1,                      # Cast 19
}


def _schema(op, opset):
    import onnx

    try:
        return onnx.defs.get_schema(op, opset, "")
    except onnx.defs.SchemaError:
        return None


def _lower_node(node, opset, max_opset):
    """Make `node` valid at `max_opset`; returns True when it had to change, FixError when it cannot."""
    newer, older = _schema(node.op, opset), _schema(node.op, max_opset)
    if older is None:
        raise FixError("node {!r}: op {} does not exist at opset {} (target maximum); a fix pass must rewrite it "
                       "first or the model must avoid it".format(node_label(node), node.op, max_opset))
    if newer is not None and newer.since_version == older.since_version:
        return False
    for name in sorted(set(node.attrs) - set(older.attributes)):
        value = node.attrs[name]
        if name in DROPPABLE_DEFAULTS and value == DROPPABLE_DEFAULTS[name]:
            del node.attrs[name]
            continue
        raise FixError("node {!r} ({}): attribute {}={!r} has no equivalent at opset {}; re-export the model at "
                       "opset {}".format(node_label(node), node.op, name, value, max_opset, max_opset))
    used_inputs = len(node.inputs)
    while used_inputs and node.inputs[used_inputs - 1].name == "":
        used_inputs -= 1
    if used_inputs > older.max_input:
        raise FixError("node {!r} ({}) uses input {!r}, which opset {} does not have; re-export the model at "
                       "opset {}".format(node_label(node), node.op, node.inputs[used_inputs - 1].name,
                                         max_opset, max_opset))
    return True


def _lower_by_schema(graph, opset, max_opset):
    changed = [node_label(node) for node in graph.nodes if (node.domain or "") in ("", "ai.onnx")
               and _lower_node(node, opset, max_opset)]
    graph.opset = max_opset
    for entry in graph.import_domains or []:
        if entry.domain in ("", "ai.onnx"):
            entry.version = max_opset
    return changed


def fix_convert_opset(graph, target, context):
    """Lower the default-domain opset to target.max_opset (HardSwish and Reduce axes are rewritten
    by their own passes, which run before this one)."""
    import onnx

    opset = graph_opset(graph)
    if opset <= target.max_opset:
        return []
    try:
        converted = onnx.version_converter.convert_version(to_model(graph), target.max_opset)
    except Exception as error:  # noqa: BLE001  RuntimeError/IndexError/... depending on the op it stopped at
        logger.debug("onnx.version_converter stopped (%s); lowering by the op schemas instead", error)
        try:  # on a copy first: a node that cannot be lowered leaves the whole graph at its opset
            _lower_by_schema(graph.copy(), opset, target.max_opset)
        except FixError as blocker:
            context.note(FixReport("convert_opset", [], "opset {} kept: {}".format(opset, blocker), changed=False))
            return []
        changed = _lower_by_schema(graph, opset, target.max_opset)
    else:
        before = {node_label(node): node.op for node in graph.nodes}
        new = gs.import_onnx(converted)
        replace_contents(graph, new)
        changed = sorted(label for label, op in ((node_label(node), node.op) for node in graph.nodes)
                         if before.get(label) != op)
    return [FixReport("convert_opset", changed, "opset {} -> {} (target {} accepts at most {})".format(
        opset, target.max_opset, target.name, target.max_opset))]
