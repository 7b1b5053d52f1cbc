"""Small real ONNX classifiers built with onnx.helper, with their model spec and node params file.

mean colour: the image's mean R, G, B (NCHW, 0..1) through a softmax, so a one-colour image is
classified as its colour; with `hidden_channels`, a stack of 3x3 convolutions at `size` x `size`
comes first, which makes the model slow enough (tens of ms on 2 cores) to overload the node.
"""
import numpy as np


def write_classifier(folder, size=16, hidden_channels=0):
    """Writes <folder>/classifier.onnx, its spec and a params file; returns (params file, ONNX path)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, initializers, features = [], [], "image"
    if hidden_channels:
        rng = np.random.RandomState(0)
        channels = [3, hidden_channels, hidden_channels, 3]
        for index, (inputs, outputs) in enumerate(zip(channels, channels[1:])):
            weight = "w{}".format(index)
            initializers.append(numpy_helper.from_array(
                (rng.randn(outputs, inputs, 3, 3) * 0.1).astype(np.float32), weight))
            nodes.append(helper.make_node("Conv", [features, weight], ["conv{}".format(index)], pads=[1, 1, 1, 1]))
            features = "conv{}".format(index)
    nodes += [helper.make_node("GlobalAveragePool", [features], ["pooled"]),
              helper.make_node("Flatten", ["pooled"], ["means"]),
              helper.make_node("Softmax", ["means"], ["scores"], axis=1)]
    graph = helper.make_graph(nodes, "classifier", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                                  [1, 3, size, size])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx_path = str(folder / "classifier.onnx")
    onnx.save(model, onnx_path)
    spec_path = folder / "classifier.yaml"
    spec_path.write_text(
        "name: classifier\ntask: classification\n"
        "input: {{name: image, width: {0}, height: {0}, layout: NCHW, color_order: RGB, "
        "scale: 0.00392156862745098, mean: [0, 0, 0], std: [1, 1, 1]}}\n"
        "outputs: {{scores: scores}}\nlabels: [red, green, blue]\n"
        "classification: {{top_k: 3, activation: none}}\n".format(size))
    params_path = folder / "classifier_params.yaml"
    params_path.write_text("/**:\n  ros__parameters:\n    model_spec: {}\n    class_id_format: label\n".format(
        spec_path))
    return str(params_path), onnx_path
