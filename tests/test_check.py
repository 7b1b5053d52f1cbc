"""`check`: each target rule on a small real ONNX graph, with the fix pass or advice it names."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the converter's host tools need onnx (absent in the Python 3.6 venv)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from converter.check import ERROR, RULES, WARNING, Finding, check_model  # noqa: E402


def make_model(nodes, inputs, outputs, initializers=(), opset=13, domains=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(domain, 1) for domain in domains]
    return helper.make_model(graph, opset_imports=imports)


def tensor(name, dtype=TensorProto.FLOAT, shape=(1, 3, 8, 8)):
    return helper.make_tensor_value_info(name, dtype, list(shape))


def const(name, values, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def relu_model(opset=13, input_dtype=TensorProto.FLOAT, output_dtype=TensorProto.FLOAT, shape=(1, 3, 8, 8)):
    return make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")],
                      [tensor("x", input_dtype, shape)], [tensor("y", output_dtype, shape)], opset=opset)


def only(report, rule):
    found = [finding for finding in report.findings if finding.rule == rule]
    assert len(found) == 1, report.findings
    return found[0]


@pytest.mark.parametrize("target", ["jetson-nano", "trt8.6", "trt10"])
def test_a_plain_graph_passes_every_target(target):
    report = check_model(relu_model(), target)
    assert report.passed and not report.findings


def test_opset_above_the_target_is_repaired_by_convert_opset():
    finding = only(check_model(relu_model(opset=17), "jetson-nano"), "max_opset")
    assert finding.fix == "convert_opset" and "17" in finding.why and "13" in finding.why
    assert check_model(relu_model(opset=17), "trt10").passed


def test_uint8_input_is_rejected_on_tensorrt_8_2_only():
    model = make_model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.FLOAT, name="cast")],
                       [tensor("x", TensorProto.UINT8)], [tensor("y")])
    finding = only(check_model(model, "jetson-nano"), "io_dtype")
    assert (finding.node, finding.fix, finding.severity) == ("x", "inputs_to_float", ERROR)
    assert check_model(model, "trt8.6").passed


def test_int64_input_is_a_warning_cast_down_and_uint8_output_an_error_with_advice():
    model = make_model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.UINT8, name="to_bytes")],
                       [tensor("x", TensorProto.INT64)], [tensor("y", TensorProto.UINT8)])
    report = check_model(model, "jetson-nano")
    by_node = dict(((finding.node, finding.rule), finding) for finding in report.findings)
    assert by_node[("x", "io_dtype")].severity == WARNING and by_node[("x", "io_dtype")].fix == "int64_inputs"
    assert by_node[("y", "io_dtype")].severity == ERROR and by_node[("y", "io_dtype")].fix is None
    assert "post-processing" in by_node[("y", "io_dtype")].advice
    cast = by_node[("to_bytes", "cast_dtype")]
    assert cast.severity == ERROR and ".byte()" in cast.advice
    assert not report.passed


def test_unsupported_op_gets_advice_instead_of_a_fix():
    model = make_model([helper.make_node("NonZero", ["x"], ["y"], name="mask_index")],
                       [tensor("x")], [tensor("y", TensorProto.INT64, (4, None))])
    finding = only(check_model(model, "jetson-nano"), "unsupported_op")
    assert finding.node == "mask_index" and finding.fix is None and "boolean" in finding.advice
    assert not [f for f in check_model(model, "trt10").findings if f.rule == "unsupported_op"]


def test_ops_newer_than_the_targets_opset():
    hardswish = make_model([helper.make_node("HardSwish", ["x"], ["y"], name="hs")], [tensor("x")], [tensor("y")],
                           opset=14)
    assert only(check_model(hardswish, "jetson-nano"), "newer_op").fix == "hardswish"
    layer_norm = make_model([helper.make_node("LayerNormalization", ["x", "scale"], ["y"], name="ln")],
                            [tensor("x")], [tensor("y")], [const("scale", np.ones(8))], opset=17)
    finding = only(check_model(layer_norm, "jetson-nano"), "newer_op")
    assert finding.fix is None and "export at opset 13" in finding.advice
    assert check_model(layer_norm, "trt10").passed


def test_custom_ops_tflite_ones_have_a_pass_others_advice():
    model = make_model([helper.make_node("TFL_Convolution2DTransposeBias", ["x"], ["t"], name="up"),
                        helper.make_node("MyOp", ["t"], ["y"], name="mine", domain="com.example")],
                       [tensor("x")], [tensor("y")], domains=["com.example"])
    findings = dict((finding.node, finding) for finding in check_model(model, "trt10").findings)
    assert findings["up"].fix == "tflite_custom_ops"
    mine = findings["mine"]
    assert mine.fix is None and "plugin" in mine.advice and "com.example" in mine.why


def conv_model(weight_from):
    """Conv whose weights are an initializer, folded from constants, or a graph input."""
    nodes, inits, inputs = [], [const("b", np.zeros(4))], [tensor("x")]
    if weight_from == "initializer":
        inits.append(const("w", np.ones((4, 3, 1, 1))))
    elif weight_from == "constants":
        inits += [const("w0", np.ones((4, 3, 1, 1))), const("two", 2.0)]
        nodes.append(helper.make_node("Mul", ["w0", "two"], ["w"], name="scale_weights"))
    else:
        inputs.append(tensor("w", shape=(4, 3, 1, 1)))
    nodes.append(helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv"))
    return make_model(nodes, inputs, [tensor("y", shape=(1, 4, 8, 8))], inits)


def test_conv_weights_must_be_initializers():
    assert check_model(conv_model("initializer"), "jetson-nano").passed
    assert only(check_model(conv_model("constants"), "jetson-nano"), "initializer").fix == "fold_constants"
    finding = only(check_model(conv_model("input"), "jetson-nano"), "initializer")
    assert finding.fix is None and "weights" in finding.why and "'w'" in finding.why and finding.advice
    assert check_model(conv_model("input"), "trt10").passed


def resize_model(mode="linear", coordinates="half_pixel", computed_scales=False):
    inits = [const("roi", [])]
    nodes = []
    if computed_scales:
        inits += [const("one", [1.0, 1.0]), const("two", [2.0, 2.0])]
        nodes += [helper.make_node("Shape", ["x"], ["shape"], name="shape"),
                  helper.make_node("Concat", ["one", "two"], ["scales"], axis=0, name="make_scales")]
    else:
        inits.append(const("scales", [1.0, 1.0, 2.0, 2.0]))
    nodes.append(helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode=mode, name="up",
                                  coordinate_transformation_mode=coordinates))
    return make_model(nodes, [tensor("x")], [tensor("y", shape=(1, 3, 16, 16))], inits)


def test_resize_rules():
    assert check_model(resize_model(), "jetson-nano").passed
    assert only(check_model(resize_model(computed_scales=True), "jetson-nano"), "initializer").fix == "resize_scales"
    assert only(check_model(resize_model(mode="cubic"), "jetson-nano"), "resize_mode").fix == "resize_mode"
    assert check_model(resize_model(mode="cubic"), "trt10").passed
    crop = only(check_model(resize_model(coordinates="tf_crop_and_resize"), "trt10"), "resize_mode")
    assert crop.fix is None and "pre-processing" in crop.advice


def reshape_model(opset, allowzero=None):
    attributes = {} if allowzero is None else {"allowzero": allowzero}
    return make_model([helper.make_node("Reshape", ["x", "shape"], ["y"], name="flatten", **attributes)],
                      [tensor("x")], [tensor("y", shape=(1, 192))], [const("shape", [1, -1], np.int64)], opset=opset)


def test_reshape_without_allowzero_at_opset_14_fails_before_tensorrt_8_4_2():
    finding = only(check_model(reshape_model(15), "jetson-nano"), "reshape_allowzero")
    assert finding.node == "flatten" and finding.fix == "reshape_allowzero" and "allowzero" in finding.why
    assert not [f for f in check_model(reshape_model(15, allowzero=0), "jetson-nano").findings
                if f.rule == "reshape_allowzero"]
    assert not check_model(reshape_model(13), "jetson-nano").findings
    assert check_model(reshape_model(15), "trt8.6").passed


def test_dynamic_input_needs_static_shapes_on_the_nano_and_a_profile_elsewhere():
    model = relu_model(shape=("batch", 3, 8, 8))
    finding = only(check_model(model, "jetson-nano"), "dynamic_shape")
    assert finding.severity == ERROR and finding.fix == "static_shapes" and "batch" in finding.why
    assert only(check_model(model, "trt10"), "dynamic_shape").severity == WARNING
    assert check_model(model, "trt10").passed
    assert check_model(model, "jetson-nano", shapes={"x": [1, 3, 8, 8]}).passed
    assert check_model(model, "jetson-nano", shapes={None: [1, 3, 8, 8]}).passed


def nms_model(op, **attributes):
    inputs = [tensor("boxes", shape=(1, 10, 4)), tensor("scores", shape=(1, 1, 10))]
    if op == "NonMaxSuppression":
        node = helper.make_node(op, ["boxes", "scores", "k"], ["selected"], name="nms")
        return make_model([node], inputs, [tensor("selected", TensorProto.INT64, (None, 3))],
                          [const("k", [5], np.int64)])
    node = helper.make_node(op, ["boxes", "scores"], ["num", "nmsed_boxes", "nmsed_scores", "nmsed_classes"],
                            name="nms", **attributes)
    return make_model([node], inputs, [tensor("num", TensorProto.INT32, (1, 1))])


def test_nms_plugins_and_the_experimental_onnx_nms():
    assert check_model(nms_model("EfficientNMS_TRT", score_threshold=0.5), "jetson-nano").passed
    deprecated = only(check_model(nms_model("BatchedNMS_TRT"), "trt10"), "plugin")
    assert deprecated.severity == WARNING and "deprecated" in deprecated.why
    experimental = only(check_model(nms_model("NonMaxSuppression"), "jetson-nano"), "experimental_op")
    assert experimental.fix == "strip_nms" and "runtime" in experimental.advice
    assert check_model(nms_model("NonMaxSuppression"), "trt10").passed


def test_reduce_axes_input_needs_the_attribute_below_opset_18():
    model = make_model([helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=1)],
                       [tensor("x")], [tensor("y", shape=(1, 3, 1, 1))], [const("axes", [2, 3], np.int64)], opset=18)
    rules = check_model(model, "jetson-nano").rules()
    assert rules["reduce_axes"] == 1 and rules["max_opset"] == 1
    assert only(check_model(model, "jetson-nano"), "reduce_axes").fix == "reduce_axes"
    assert check_model(model, "trt10").passed


def test_nodes_inside_subgraphs_are_checked_with_their_path():
    branch = helper.make_graph([helper.make_node("NonZero", ["x"], ["nz"], name="inner")], "then", [],
                               [tensor("nz", TensorProto.INT64, (4, None))])
    model = make_model([helper.make_node("If", ["cond"], ["out"], name="branch", then_branch=branch,
                                         else_branch=branch)],
                       [tensor("x"), tensor("cond", TensorProto.BOOL, ())],
                       [tensor("out", TensorProto.INT64, (4, None))])
    nodes = [finding.node for finding in check_model(model, "jetson-nano").findings if finding.rule == "unsupported_op"]
    assert nodes and all(node.startswith("branch/") and node.endswith("inner") for node in nodes)


def test_every_fix_named_by_check_is_a_pass_of_converter_fixes():
    fixes = pytest.importorskip("converter.fixes", reason="converter.fixes not importable")
    models = [relu_model(opset=17), conv_model("constants"), resize_model(computed_scales=True),
              resize_model(mode="cubic"), reshape_model(15), relu_model(shape=("batch", 3, 8, 8)),
              nms_model("NonMaxSuppression")]
    named = set(finding.fix for model in models for finding in check_model(model, "jetson-nano").findings
                if finding.fix)
    assert named and named <= set(fixes.PASS_NAMES)


def test_every_rule_declares_only_real_fix_passes_and_every_pass_is_declared_by_a_rule():
    fixes = pytest.importorskip("converter.fixes", reason="converter.fixes not importable")
    declared = set(fix for rule in RULES.values() for fix in rule.fixes)
    assert declared <= set(fixes.PASS_NAMES)
    # passes no check rule asks for: the framework-specific rewrites, and the plugin insertion (`--nms plugin`)
    assert set(fixes.PASS_NAMES) - declared == {"strip_preprocessing", "insert_nms_plugin"}


def test_a_finding_must_use_a_declared_rule_and_one_of_its_fix_passes():
    with pytest.raises(KeyError, match="not declared"):
        Finding("n", "Relu", "no_such_rule", "why")
    with pytest.raises(KeyError, match="does not declare for it"):
        Finding("n", "Reshape", "reshape_allowzero", "why", fix="fold_constants")
    assert Finding("n", "Reshape", "reshape_allowzero", "why", fix="reshape_allowzero").remedy() == \
        "convert fix (pass reshape_allowzero)"


def test_reduce_sum_takes_axes_as_an_input_already_at_opset_13():
    model = make_model([helper.make_node("ReduceSum", ["x", "axes"], ["y"], name="total", keepdims=1)],
                       [tensor("x")], [tensor("y", shape=(1, 3, 1, 1))], [const("axes", [2, 3], np.int64)])
    assert check_model(model, "jetson-nano").passed
