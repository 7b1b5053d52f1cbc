"""MediaPipe's TFLite custom op `Convolution2DTransposeBias`, left by tf2onnx as
`TFL_Convolution2DTransposeBias`, -> a standard ONNX ConvTranspose with bias.

Semantics (mediapipe/util/tflite/operations/transpose_conv_bias.cc, a copy of TFLite's reference
transpose convolution plus a bias): NHWC input, weights OHWI [out, kh, kw, in], bias [out];
input pixel (y, x) adds into output (y*stride - pad_top + ky, x*stride - pad_left + kx).
Padding SAME: total = max(0, k - (in - 1) % stride - 1), pad_before = total // 2, the rest after;
VALID: no padding. That is ONNX ConvTranspose with weights IOHW and pads [top, left, bottom, right].

tf2onnx drops the op's options (padding, strides), so they are recovered from the input and output
shapes; a shape pair that more than one setting explains is an error rather than a guess.
"""
import numpy as np
import onnx_graphsurgeon as gs

from converter.fixes import FixReport
from converter.errors import FixError
from converter.fixes.graph_tools import constant_values, node_label, static_shape, unique_name

OP = "TFL_Convolution2DTransposeBias"
NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]


def transpose_conv_padding(size_in, kernel, stride, padding):
    """(pad_before, pad_after) of one spatial axis, as MediaPipe's kernel computes them."""
    if padding == "VALID":
        return 0, 0
    total = max(0, kernel - (size_in - 1) % stride - 1)
    return total // 2, total - total // 2


def output_size(size_in, kernel, stride, padding):
    before, after = transpose_conv_padding(size_in, kernel, stride, padding)
    return stride * (size_in - 1) + kernel - before - after


def recover_options(node, in_hw, out_hw, kernel_hw):
    """The (strides, pads) that explain the op's shapes; FixError when none or several do."""
    settings = set()
    for padding in ("SAME", "VALID"):
        strides = []
        for size_in, size_out, kernel in zip(in_hw, out_hw, kernel_hw):
            fitting = [s for s in range(1, size_out + 1) if output_size(size_in, kernel, s, padding) == size_out]
            strides.append(fitting)
        for stride_h in strides[0]:
            for stride_w in strides[1]:
                pads = [transpose_conv_padding(size, kernel, stride, padding)
                        for size, kernel, stride in zip(in_hw, kernel_hw, (stride_h, stride_w))]
                settings.add(((stride_h, stride_w), (pads[0][0], pads[1][0], pads[0][1], pads[1][1])))
    if len(settings) != 1:
        raise FixError("{} {!r}: input {}x{} -> output {}x{} with a {}x{} kernel is explained by {} stride/padding "
                       "settings ({}); tf2onnx dropped the op's options, so give the model a static input shape or "
                       "convert the TFLite model's transposed convolution by hand".format(
                           OP, node_label(node), in_hw[0], in_hw[1], out_hw[0], out_hw[1], kernel_hw[0],
                           kernel_hw[1], len(settings) or "no", sorted(settings)))
    return settings.pop()


def _nchw_source(graph, tensor):
    """The NCHW tensor behind an NHWC one when it came straight from a Transpose; else a new Transpose."""
    producer = tensor.inputs[0] if len(tensor.inputs) == 1 else None
    if producer is not None and producer.op == "Transpose" and list(producer.attrs.get("perm", [])) == NCHW_TO_NHWC:
        return producer.inputs[0], None
    n, h, w, c = tensor.shape
    nchw = gs.Variable(unique_name(graph, tensor.name + "_nchw"), dtype=tensor.dtype, shape=[n, c, h, w])
    transpose = gs.Node("Transpose", name=unique_name(graph, tensor.name + "_to_nchw"),
                        attrs={"perm": NHWC_TO_NCHW}, inputs=[tensor], outputs=[nchw])
    return nchw, transpose


SHAPE_PRESERVING = {"Sigmoid", "Relu", "Tanh", "Identity", "Clip", "HardSigmoid", "LeakyRelu", "Softplus", "Elu"}


def _known_output_shape(tensor):
    """Shape inference stops at the custom op; an elementwise op after it shows the shape it had."""
    shape = static_shape(tensor)
    if shape is None and len(tensor.outputs) == 1 and tensor.outputs[0].op in SHAPE_PRESERVING:
        return _known_output_shape(tensor.outputs[0].outputs[0])
    return shape


def _replace(graph, node):
    data, weights, bias = node.inputs
    output = node.outputs[0]
    weights_ohwi, bias_values = constant_values(weights), constant_values(bias)
    if weights_ohwi is None or bias_values is None:
        raise FixError("{} {!r}: weights and bias must be constants (they are in MediaPipe's models); "
                       "fold constants first".format(OP, node_label(node)))
    in_shape, out_shape = static_shape(data), _known_output_shape(output)
    if in_shape is None or out_shape is None:
        raise FixError("{} {!r}: the input and output shapes must be static to recover the stride and padding "
                       "(got {} -> {}); convert with a static input shape".format(
                           OP, node_label(node), data.shape, output.shape))
    out_channels, kernel_h, kernel_w, in_channels = weights_ohwi.shape
    strides, pads = recover_options(node, in_shape[1:3], out_shape[1:3], (kernel_h, kernel_w))

    nchw_in, to_nchw = _nchw_source(graph, data)
    weights_iohw = gs.Constant(unique_name(graph, weights.name + "_iohw"),
                               np.ascontiguousarray(weights_ohwi.transpose(3, 0, 1, 2)))
    bias_const = gs.Constant(unique_name(graph, bias.name + "_bias"),
                             np.ascontiguousarray(bias_values.reshape(out_channels)))
    n, out_h, out_w, _ = out_shape
    output.dtype, output.shape = weights_ohwi.dtype, list(out_shape)
    nchw_out = gs.Variable(unique_name(graph, output.name + "_nchw"), dtype=output.dtype,
                           shape=[n, out_channels, out_h, out_w])
    conv = gs.Node("ConvTranspose", name=unique_name(graph, node_label(node) + "_convtranspose"),
                   attrs={"kernel_shape": [kernel_h, kernel_w], "strides": list(strides), "pads": list(pads),
                          "dilations": [1, 1], "group": 1},
                   inputs=[nchw_in, weights_iohw, bias_const], outputs=[nchw_out])
    # The NHWC Transpose takes over the custom node's output tensor, so its consumers need no rewiring.
    node.outputs.clear()
    to_nhwc = gs.Node("Transpose", name=unique_name(graph, node_label(node) + "_to_nhwc"),
                      attrs={"perm": NCHW_TO_NHWC}, inputs=[nchw_out], outputs=[output])
    graph.nodes.extend([new for new in (to_nchw, conv, to_nhwc) if new is not None])
    return conv.name, strides, pads


def fix_tflite_custom_ops(graph, target, context):
    reports = []
    for node in [node for node in graph.nodes if node.op == OP]:
        name = node_label(node)
        conv_name, strides, pads = _replace(graph, node)
        reports.append(FixReport("tflite_custom_ops", [name], "{} -> ConvTranspose {!r} with bias (strides {}, pads "
                                 "{}), NHWC kept at its boundary".format(OP, conv_name, list(strides), list(pads))))
    return reports
