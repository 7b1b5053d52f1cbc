"""Input dtypes, Reshape allowzero, static shapes, folding, opset lowering, Reduce axes and Resize
on graphs from the real exporters (tf2onnx, torch.onnx's TorchScript and default dynamo exporters)."""
import logging

import numpy as np
import pytest

from tests.test_fixes_common import (assert_same_outputs, cached_onnx, input_dtypes, op_types, random_feeds,
                                     tensorrt_parse_errors)

onnx = pytest.importorskip("onnx")
from converter.fixes import FixError, run_fixes  # noqa: E402
from converter.targets import get_target  # noqa: E402

NANO, TRT86, TRT10 = get_target("jetson-nano"), get_target("trt8.6"), get_target("trt10")


def _tf2onnx(function, signature, opset=None):
    tf2onnx = pytest.importorskip("tf2onnx")
    model, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=opset)
    return model


def _tf_uint8_classifier():
    """A TF function with an uint8 image input and in-graph normalisation, tf2onnx's default opset."""
    tf = pytest.importorskip("tensorflow")
    signature = (tf.TensorSpec((1, 32, 32, 3), tf.uint8, name="image"),)
    kernel = np.random.RandomState(0).normal(size=(3, 3, 3, 4)).astype(np.float32)

    @tf.function(input_signature=signature)
    def classify(image):
        x = (tf.cast(image, tf.float32) - 127.5) / 127.5
        x = tf.nn.relu(tf.nn.conv2d(x, tf.constant(kernel), strides=2, padding="SAME"))
        return tf.reduce_mean(x, axis=[1, 2])

    return _tf2onnx(classify, signature)


def _keras_unet():
    """The field report: Conv2DTranspose(strides=2, padding="same") + sigmoid, tf2onnx default opset
    (15), which writes a Reshape without allowzero and a dynamic batch."""
    tf = pytest.importorskip("tensorflow")
    tf.keras.utils.set_random_seed(0)
    image = tf.keras.Input((64, 64, 3), name="image")
    x = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu")(image)
    x = tf.keras.layers.MaxPooling2D()(x)
    x = tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = tf.keras.layers.Conv2DTranspose(16, 3, strides=2, padding="same")(x)
    x = tf.keras.layers.Concatenate()([x, image])
    mask = tf.keras.layers.Conv2D(1, 1, activation="sigmoid")(x)
    model = tf.keras.Model(image, mask)
    signature = (tf.TensorSpec((None, 64, 64, 3), tf.float32, name="image"),)
    return _tf2onnx(tf.function(lambda image: model(image), input_signature=signature), signature)


def _torch_default_export():
    """torch's current default exporter (dynamo, opset 18+): HardSwish, run-time interpolate sizes,
    a mean with an axes input, a dynamic batch."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript", reason="torch's dynamo exporter needs onnxscript")
    functional = torch.nn.functional

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.head = torch.nn.Conv2d(8, 2, 1)

        def forward(self, x):
            y = functional.hardswish(self.conv(x))
            y = functional.interpolate(y, size=(x.shape[2] * 2, x.shape[3] * 2), mode="bilinear",
                                       align_corners=False)
            return self.head(y), y.mean(dim=(2, 3))

    torch.manual_seed(0)
    program = torch.onnx.export(Net().eval(), (torch.zeros(1, 3, 16, 16),), input_names=["x"],
                                output_names=["y", "pooled"], dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    return program.model_proto


def _torch_int64_embedding():
    torch = pytest.importorskip("torch")
    import io

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Flatten(), torch.nn.Linear(12, 2)).eval()
    buffer = io.BytesIO()
    torch.onnx.export(net, torch.zeros(1, 3, dtype=torch.long), buffer, opset_version=13, dynamo=False,
                      input_names=["tokens"], output_names=["logits"])
    return onnx.load_from_string(buffer.getvalue())


def _reports(reports):
    return {report.pass_name: report.nodes for report in reports}


# ---- inputs_to_float / int64_inputs ----

def test_uint8_input_becomes_float32_and_its_cast_goes():
    model = cached_onnx(_tf_uint8_classifier)
    cast = [node.name for node in model.graph.node if node.op_type == "Cast" and node.input[0] == "image"]
    fixed, reports = run_fixes(model, NANO, passes=["inputs_to_float"])
    assert _reports(reports) == {"inputs_to_float": ["image"] + cast}
    assert input_dtypes(fixed)["image"] == np.float32
    assert not any(node.op_type == "Cast" and node.input[0] == "image" for node in fixed.graph.node)
    onnx.checker.check_model(fixed, full_check=True)
    assert_same_outputs(model, fixed, random_feeds(model))


def test_uint8_input_stays_where_the_target_accepts_it():
    model = cached_onnx(_tf_uint8_classifier)
    fixed, reports = run_fixes(model, TRT86, passes=["inputs_to_float"])
    assert reports == [] and input_dtypes(fixed)["image"] == np.uint8


def test_uint8_input_used_as_integers_is_an_error_naming_the_node():
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Add", ["image", "image"], ["out"], name="add_pixels")], "g",
                              [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.UINT8, [1, 4])])
    with pytest.raises(FixError) as error:
        run_fixes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), NANO)
    assert "add_pixels" in str(error.value) and "image" in str(error.value)


def test_int64_input_becomes_int32_with_a_cast():
    model = cached_onnx(_torch_int64_embedding)
    assert input_dtypes(model)["tokens"] == np.int64
    fixed, reports = run_fixes(model, NANO, passes=["int64_inputs"])
    assert _reports(reports)["int64_inputs"][0] == "tokens"
    assert input_dtypes(fixed)["tokens"] == np.int32
    onnx.checker.check_model(fixed, full_check=True)
    assert_same_outputs(model, fixed, random_feeds(model))
    unchanged, none = run_fixes(model, TRT10, passes=["int64_inputs"])
    assert none == [] and input_dtypes(unchanged)["tokens"] == np.int64


# ---- reshape_allowzero ----

def _reshape_attrs(model):
    return {node.name: {attr.name: onnx.helper.get_attribute_value(attr) for attr in node.attribute}
            for node in model.graph.node if node.op_type == "Reshape"}


def test_keras_unet_reshape_gets_explicit_allowzero_for_trt82():
    model = cached_onnx(_keras_unet)
    assert model.opset_import[0].version >= 14 and _reshape_attrs(model)
    assert all("allowzero" not in attrs for attrs in _reshape_attrs(model).values())
    fixed, reports = run_fixes(model, NANO, passes=["reshape_allowzero"])
    assert sorted(_reports(reports)["reshape_allowzero"]) == sorted(_reshape_attrs(model))
    assert all(attrs.get("allowzero") == 0 for attrs in _reshape_attrs(fixed).values())
    onnx.checker.check_model(fixed, full_check=True)
    assert_same_outputs(model, fixed, random_feeds(model))


def test_reshape_is_left_alone_where_the_parser_is_fixed():
    fixed, reports = run_fixes(cached_onnx(_keras_unet), TRT86, passes=["reshape_allowzero"])
    assert reports == [] and all("allowzero" not in attrs for attrs in _reshape_attrs(fixed).values())


def test_keras_unet_all_passes_for_the_nano():
    model = cached_onnx(_keras_unet)
    fixed, reports = run_fixes(model, NANO)
    done = _reports(reports)
    assert done["static_shapes"] == ["image"] and "convert_opset" in done
    assert [entry.version for entry in fixed.opset_import if entry.domain in ("", "ai.onnx")] == [13]
    assert [dim.dim_value for dim in fixed.graph.input[0].type.tensor_type.shape.dim] == [1, 64, 64, 3]
    assert all("allowzero" not in attrs for attrs in _reshape_attrs(fixed).values())
    onnx.checker.check_model(fixed, full_check=True)
    assert_same_outputs(model, fixed, random_feeds(model))
    assert tensorrt_parse_errors(fixed) == []


# ---- the torch default exporter: static_shapes, fold_constants, reduce_axes, convert_opset, resize_scales ----

@pytest.fixture(scope="module")
def torch_default():
    return cached_onnx(_torch_default_export)


def test_torch_default_export_is_lowered_to_opset13_for_the_nano(torch_default):
    assert torch_default.opset_import[0].version >= 18
    fixed, reports = run_fixes(torch_default, NANO)
    done = _reports(reports)
    assert done["static_shapes"] == ["x"]
    assert [node.name for node in torch_default.graph.node if node.op_type == "ReduceMean"] == done["reduce_axes"]
    assert set(done["fold_constants"]) >= {node.name for node in torch_default.graph.node if node.op_type == "Shape"}
    assert [entry.version for entry in fixed.opset_import if entry.domain in ("", "ai.onnx")] == [13]
    assert "HardSwish" not in op_types(fixed) and "Shape" not in op_types(fixed)
    resize = next(node for node in fixed.graph.node if node.op_type == "Resize")
    initializers = {init.name for init in fixed.graph.initializer}
    assert all(name in initializers for name in resize.input[1:] if name)  # folded sizes: constant
    onnx.checker.check_model(fixed, full_check=True)
    assert_same_outputs(torch_default, fixed, random_feeds(torch_default, low=-1.0, high=1.0))
    assert tensorrt_parse_errors(fixed) == []


def test_torch_default_export_needs_nothing_on_trt10_but_a_valid_graph(torch_default):
    fixed, reports = run_fixes(torch_default, TRT10, passes=["static_shapes", "reduce_axes", "convert_opset",
                                                             "hardswish", "resize_scales"])
    assert reports == []
    assert op_types(fixed) == op_types(torch_default)


def test_run_time_resize_sizes_become_constant_scales(torch_default):
    fixed, reports = run_fixes(torch_default, NANO, passes=["static_shapes", "resize_scales"])
    assert _reports(reports)["resize_scales"] == ["node_upsample_bilinear2d"]
    resize = next(node for node in fixed.graph.node if node.op_type == "Resize")
    scales = next(init for init in fixed.graph.initializer if init.name == resize.input[2])
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(scales), [1, 1, 2, 2])
    assert len(resize.input) == 3
    assert_same_outputs(torch_default, fixed, random_feeds(torch_default))


def test_static_shape_comes_from_the_model_spec(torch_default):
    spec = type("Spec", (), {"input": type("Input", (), {"name": "x", "shape": (1, 3, 16, 16)})()})()
    fixed, reports = run_fixes(torch_default, NANO, spec=spec, passes=["static_shapes"])
    assert _reports(reports) == {"static_shapes": ["x"]}
    wrong = type("Spec", (), {"input": type("Input", (), {"name": "x", "shape": (1, 3, 32, 32)})()})()
    with pytest.raises(FixError) as error:
        run_fixes(torch_default, NANO, spec=wrong, passes=["static_shapes"])
    assert "'x'" in str(error.value) and "spec" in str(error.value)


def test_cubic_resize_becomes_linear_with_a_report(caplog):
    from onnx import TensorProto, helper, numpy_helper

    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
    roi = numpy_helper.from_array(np.zeros((0,), dtype=np.float32), "roi")
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="up", mode="cubic")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 8, 8])],
                              initializer=[scales, roi])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with caplog.at_level(logging.INFO, logger="converter.fixes"):
        fixed, reports = run_fixes(model, NANO, passes=["resize_mode"])
    assert _reports(reports) == {"resize_mode": ["up"]}
    # a change that alters the outputs: one warning record, not a warning plus an info line
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.WARNING, str(reports[0]))]
    assert onnx.helper.get_attribute_value(fixed.graph.node[0].attribute[0]) == b"linear"
    kept, none = run_fixes(model, TRT10, passes=["resize_mode"])
    assert none == []
