"""Constant folding: everything computable at build time becomes an initializer."""
from converter.fixes import FixReport
from converter.fixes.graph_tools import node_label


def fix_fold_constants(graph, target, context):
    """graph.fold_constants(fold_shapes=True) + cleanup; reports the nodes that were folded away.

    Shape computations (Shape -> Gather -> Concat -> Reshape/Resize...) on static shapes vanish,
    which is what TensorRT 8.2 needs for Resize scales, Slice axes, Pad amounts and the like.
    """
    before = {id(node): node_label(node) for node in graph.nodes}
    graph.fold_constants(fold_shapes=True, error_ok=True).cleanup(remove_unused_graph_inputs=False)
    remaining = {id(node) for node in graph.nodes}
    folded = [label for key, label in before.items() if key not in remaining]
    if not folded:
        return []
    return [FixReport("fold_constants", folded, "{} node(s) computed at build time folded into "
                                                "initializers".format(len(folded)))]
