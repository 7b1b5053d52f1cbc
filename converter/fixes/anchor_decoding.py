"""Find the anchor box decoder in a detector graph, so EfficientNMS_TRT can fuse it.

A candidate is a tensor `raw` [B, N, 4] from which the decoded `boxes` [B, N, 4] are computed
with constants only. It is accepted when the graph's own numbers (ONNX Runtime on the subgraph
raw -> boxes) match the plugin's centre-size decoder for one set of anchors and scale factors:
  c = raw_c * scale_c * anchor_size + anchor_c,  size = anchor_size * exp(raw_s * scale_s),
boxes = corners of (c, size) in the graph's own coordinate order. Anchors and scales are read
off the subgraph (raw = 0 gives the anchors; unit deltas give the scales) and then checked on
random deltas, so a decoder of any other form is simply not fused.
"""
import numpy as np
import onnx_graphsurgeon as gs

from converter.fixes.graph_tools import static_shape

MAX_CANDIDATES = 8


def _cut_candidates(graph, boxes):
    """Tensors [B, N, 4] that alone (with constants) determine `boxes`, nearest first."""
    shape = static_shape(boxes)
    if shape is None:
        return []
    frontier, found = {boxes.name: boxes}, []
    for node in reversed(graph.nodes):
        if not any(output.name in frontier for output in node.outputs):
            continue
        for output in node.outputs:
            frontier.pop(output.name, None)
        for tensor in node.inputs:
            if isinstance(tensor, gs.Variable) and tensor.name:
                frontier[tensor.name] = tensor
        if any(tensor in graph.inputs for tensor in frontier.values()):
            break
        if len(frontier) == 1:
            (tensor,) = frontier.values()
            if static_shape(tensor) == shape:
                found.append(tensor)
                if len(found) == MAX_CANDIDATES:
                    break
    return found


def _decoder_model(graph, raw, boxes):
    sub = graph.copy()
    tensors = sub.tensors()
    sub.inputs = [tensors[raw.name]]
    tensors[raw.name].inputs.clear()
    sub.outputs = [tensors[boxes.name]]
    return gs.export_onnx(sub.cleanup())


def corners(centre_size):
    centre, size = centre_size[..., :2], centre_size[..., 2:]
    return np.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def _fit(decode, shape):
    """(anchors [1, N, 4] centre-size, scales [4]) that explain `decode`, or None."""
    zero = decode(np.zeros(shape, np.float32))
    anchors = np.concatenate([(zero[..., :2] + zero[..., 2:]) / 2, zero[..., 2:] - zero[..., :2]], axis=-1)[:1]
    if not np.all(anchors[..., 2:] > 0):
        return None
    scales = np.zeros(4, np.float32)
    for k in range(4):
        unit = np.zeros(shape, np.float32)
        unit[..., k] = 1.0
        out = decode(unit)
        centre, size = (out[..., :2] + out[..., 2:]) / 2, out[..., 2:] - out[..., :2]
        if k < 2:
            scales[k] = np.median((centre[..., k] - anchors[..., k]) / anchors[..., 2 + k])
        else:
            scales[k] = np.median(np.log(np.maximum(size[..., k - 2], 1e-30) / anchors[..., k]))
    deltas = np.random.RandomState(0).uniform(-1, 1, size=shape).astype(np.float32)
    scaled = deltas * scales
    expected = corners(np.concatenate([scaled[..., :2] * anchors[..., 2:] + anchors[..., :2],
                                       anchors[..., 2:] * np.exp(scaled[..., 2:])], axis=-1))
    if not np.allclose(decode(deltas), expected, rtol=1e-4, atol=1e-5):
        return None
    return anchors.astype(np.float32), scales


def find_anchor_decoding(graph, boxes):
    """(raw tensor, anchors [1, N, 4] centre-size, scales [4]) when `boxes` is a centre-size anchor
    decoding of `raw`, else None."""
    import onnxruntime

    for raw in _cut_candidates(graph, boxes):
        try:
            session = onnxruntime.InferenceSession(_decoder_model(graph, raw, boxes).SerializeToString(),
                                                   providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001  the subgraph needs more than `raw`: not a decoder cut
            continue
        input_name = session.get_inputs()[0].name
        fitted = _fit(lambda values: session.run(None, {input_name: values})[0], static_shape(raw))
        if fitted is not None:
            return (raw,) + fitted
    return None
