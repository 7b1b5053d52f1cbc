"""`convert check`: would this ONNX graph import and build on the target's TensorRT, and if not, why.

Every finding names the node, its op, the rule it breaks, why the target refuses it, and either
the fix pass that repairs it (converter/fixes pass names) or what to change in the model. The rules
and the passes that repair them are data (`RULES`), read by the docs and checked by the tests.
"""
from collections import Counter, OrderedDict

from converter.targets import CAST_DOWN, REJECTED, get_target

ERROR, WARNING = "error", "warning"
_NMS_OPS = ("NonMaxSuppression",)


class Rule(object):
    """A target rule: its name in findings, what it checks, and the `convert fix` passes that repair it."""

    def __init__(self, name, checks, fixes=()):
        self.name = name
        self.checks = checks
        self.fixes = tuple(fixes)


RULES = OrderedDict((rule.name, rule) for rule in (
    Rule("max_opset", "the model's opset is newer than the target's ONNX parser imports", ("convert_opset",)),
    Rule("min_opset", "the model's opset is older than the target's ONNX parser accepts"),
    Rule("io_dtype", "graph input and output types the target rejects or casts down",
         ("inputs_to_float", "int64_inputs")),
    Rule("dynamic_shape", "dynamic input dimensions without an optimization profile", ("static_shapes",)),
    Rule("plugin", "TensorRT plugins the target lacks or handles poorly"),
    Rule("custom_op", "ops that are neither ONNX ops nor TensorRT plugins", ("tflite_custom_ops",)),
    Rule("unsupported_op", "ONNX ops the target's parser has no importer for"),
    Rule("newer_op", "ops that do not exist at the target's maximum opset", ("hardswish",)),
    Rule("experimental_op", "ops the target imports only experimentally (NonMaxSuppression)", ("strip_nms",)),
    Rule("reduce_axes", "Reduce axes given as an input where the target's opset needs the attribute",
         ("reduce_axes",)),
    Rule("initializer", "op inputs the target needs as initializers but the model computes",
         ("resize_scales", "fold_constants", "static_shapes")),
    Rule("reshape_allowzero", "Reshape without an explicit allowzero on TensorRT < 8.4.2", ("reshape_allowzero",)),
    Rule("resize_mode", "Resize modes and coordinate transformations the target does not support",
         ("resize_mode",)),
    Rule("cast_dtype", "casts to types the target rejects"),
))


class Finding(object):
    """One rule a node (or graph input/output) breaks on the target."""

    def __init__(self, node, op, rule, why, fix=None, advice=None, severity=ERROR):
        if rule not in RULES:
            raise KeyError("check rule {!r} is not declared in converter.check.RULES".format(rule))
        if fix is not None and fix not in RULES[rule].fixes:
            raise KeyError("check rule {!r} names fix pass {!r}, which RULES does not declare for it "
                           "(declared: {})".format(rule, fix, ", ".join(RULES[rule].fixes) or "none"))
        self.node = node
        self.op = op
        self.rule = rule
        self.why = why
        self.fix = fix          # the fix pass that repairs it, or None
        self.advice = advice    # what to change in the model when no pass repairs it
        self.severity = severity

    def remedy(self):
        if self.fix:
            return "convert fix (pass {})".format(self.fix)
        return self.advice or ""

    def as_dict(self):
        return {"node": self.node, "op": self.op, "rule": self.rule, "severity": self.severity,
                "why": self.why, "fix": self.fix, "advice": self.advice}

    def __repr__(self):
        return "Finding({!r}, {!r}, {!r}, fix={!r})".format(self.node, self.op, self.rule, self.fix)


class CheckReport(object):
    def __init__(self, target, findings, opset):
        self.target = target
        self.findings = findings
        self.opset = opset

    @property
    def errors(self):
        return [finding for finding in self.findings if finding.severity == ERROR]

    @property
    def passed(self):
        return not self.errors

    def rules(self):
        return Counter(finding.rule for finding in self.findings)

    def as_dict(self):
        return {"target": self.target.name, "opset": self.opset, "passed": self.passed,
                "errors": len(self.errors), "warnings": len(self.findings) - len(self.errors),
                "findings": [finding.as_dict() for finding in self.findings]}


def check_model(model, target, shapes=None):
    """Check an onnx.ModelProto against `target` (a Target or its name).

    shapes: {input name: static shape} the build will use (an optimization profile); dynamic
    inputs not listed are reported.
    """
    target = get_target(target)
    graph = _GraphIndex(model)
    findings = []
    findings += _check_opset(graph, target)
    findings += _check_io(graph, target, shapes or {})
    for node, path in graph.nodes():
        findings += _check_node(node, path, graph, target)
    return CheckReport(target, findings, graph.opset)


def check_file(path, target, shapes=None):
    import onnx

    return check_model(onnx.load(path), target, shapes)


class _GraphIndex(object):
    """Producers, constants and opset of a model, with subgraphs (Loop/If bodies) walked too."""

    def __init__(self, model):
        import onnx

        self.model = model
        self.opset = next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 1)
        self.graph_inputs = set(value.name for value in model.graph.input)
        self.constants = set(initializer.name for initializer in model.graph.initializer)
        self.graph_inputs -= self.constants
        self.producer = {}
        for node, _ in self.nodes():
            for output in node.output:
                self.producer[output] = node
            if node.op_type == "Constant":
                self.constants.update(node.output)
        self._onnx = onnx
        self._origin = {}

    def nodes(self):
        stack = [(self.model.graph, "")]
        while stack:
            graph, path = stack.pop(0)
            for node in graph.node:
                yield node, path
                for attribute in node.attribute:
                    for subgraph in list(attribute.graphs) + ([attribute.g] if attribute.HasField("g") else []):
                        stack.append((subgraph, "{}{}/{}/".format(path, node.name or node.op_type, attribute.name)))

    def origin(self, tensor):
        """'constant' (an initializer), 'foldable' (computed from constants only), 'shape' (computed from
        constants and the shapes of graph inputs) or 'data' (computed from input values)."""
        if tensor in self.constants:
            return "constant"
        if tensor in self._origin:
            return self._origin[tensor]
        self._origin[tensor] = "data"   # breaks cycles through loop-carried values
        node = self.producer.get(tensor)
        if node is None:
            result = "data"
        elif node.op_type in ("Shape", "Size"):
            result = "shape"
        else:
            kinds = set(self.origin(name) for name in node.input if name)
            if not kinds or kinds == {"constant"} or kinds <= {"constant", "foldable"}:
                result = "foldable"
            elif "data" in kinds:
                result = "data"
            else:
                result = "shape"
        self._origin[tensor] = result
        return result

    def has_schema(self, op_type, max_opset):
        try:
            self._onnx.defs.get_schema(op_type, max_opset, "")
            return True
        except self._onnx.defs.SchemaError:
            return False

    def takes_axes_input(self, op_type, opset):
        try:
            schema = self._onnx.defs.get_schema(op_type, opset, "")
        except self._onnx.defs.SchemaError:
            return False
        return any(formal.name == "axes" for formal in schema.inputs)

    def has_dynamic_inputs(self):
        for value in self.model.graph.input:
            if value.name in self.graph_inputs:
                for dim in value.type.tensor_type.shape.dim:
                    if not dim.HasField("dim_value") or dim.dim_value <= 0:
                        return True
        return False

    def is_onnx_op(self, op_type):
        return self._onnx.defs.has(op_type)


def _dtype_name(elem_type):
    import onnx

    return onnx.TensorProto.DataType.Name(elem_type)


def _check_opset(graph, target):
    if graph.opset > target.max_opset:
        return [Finding("(model)", "opset", "max_opset",
                        "the model uses ONNX opset {}; TensorRT {} imports up to opset {}".format(
                            graph.opset, target.tensorrt[1], target.max_opset),
                        fix="convert_opset")]
    if graph.opset < target.min_opset:
        return [Finding("(model)", "opset", "min_opset",
                        "opset {} is older than the oldest TensorRT {} accepts ({})".format(
                            graph.opset, target.tensorrt[1], target.min_opset),
                        advice="re-export at opset {} (convert export --target {})".format(
                            target.export_opset, target.name))]
    return []


def _check_io(graph, target, shapes):
    findings = []
    for value, role in [(value, "input") for value in graph.model.graph.input if value.name in graph.graph_inputs] + \
                       [(value, "output") for value in graph.model.graph.output]:
        tensor_type = value.type.tensor_type
        dtype = _dtype_name(tensor_type.elem_type)
        rule = target.dtype_rule(dtype)
        if rule == REJECTED:
            findings.append(_rejected_dtype(value.name, role, dtype, target))
        elif rule == CAST_DOWN:
            findings.append(Finding(value.name, "graph " + role, "io_dtype",
                                    "TensorRT {} casts {} {} to {} (values outside its range are clamped)".format(
                                        target.tensorrt[1], dtype, role, "INT32" if dtype == "INT64" else "FLOAT"),
                                    fix="int64_inputs" if role == "input" and dtype == "INT64" else None,
                                    advice="read it as {} in the runtime".format(
                                        "int32" if dtype == "INT64" else "float32"),
                                    severity=WARNING))
        profiled = value.name in shapes or (None in shapes and len(graph.graph_inputs) == 1)
        if role == "input" and not profiled:
            dims = [dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or "?")
                    for dim in tensor_type.shape.dim]
            dynamic = [dim for dim in dims if not isinstance(dim, int) or dim <= 0]
            if dynamic:
                findings.append(Finding(value.name, "graph input", "dynamic_shape",
                                        "input shape {} has dynamic dimensions; TensorRT needs an optimization "
                                        "profile for them, and shapes computed from them at build time often "
                                        "fail on TensorRT {}".format(dims, target.tensorrt[1]),
                                        fix="static_shapes",
                                        advice="or give `convert build --profile {}:MIN/OPT/MAX`".format(value.name),
                                        severity=ERROR if target.static_shapes_required else WARNING))
    return findings


def _rejected_dtype(name, role, dtype, target):
    why = "TensorRT {} rejects {} as a graph {}".format(target.tensorrt[1], dtype, role)
    if role == "input" and dtype == "UINT8":
        return Finding(name, "graph input", "io_dtype", why, fix="inputs_to_float")
    if role == "input":
        return Finding(name, "graph input", "io_dtype", why,
                       advice="export the model with a float32 input and convert in pre-processing")
    return Finding(name, "graph output", "io_dtype", why,
                   advice="end the model before its cast to {}; convert in post-processing".format(dtype.lower()))


def _check_node(node, path, graph, target):
    name = path + (node.name or "<unnamed {}>".format(node.op_type))
    op = node.op_type
    if op in target.plugins:
        note = target.plugins[op]
        return [Finding(name, op, "plugin", "{} is {}".format(op, note), severity=WARNING,
                        advice="prefer `--nms runtime` on this target")] if note else []
    if op in _known_plugins() or node.domain not in ("", "ai.onnx"):
        return [_custom_op(name, node, target)]
    if not graph.is_onnx_op(op):
        return [_custom_op(name, node, target)]
    if op in target.unsupported_ops:
        return [Finding(name, op, "unsupported_op", "TensorRT {} has no importer for {}".format(target.tensorrt[1], op),
                        advice=target.unsupported_ops[op])]
    if not graph.has_schema(op, target.max_opset):
        return [_newer_op(name, op, target)]
    findings = []
    if op in target.experimental_ops:
        findings.append(Finding(name, op, "experimental_op", "TensorRT {}: {} is {}".format(
            target.tensorrt[1], op, target.experimental_ops[op]),
            fix="strip_nms" if op in _NMS_OPS else None,
            advice="leave NMS to the runtime (--nms runtime) or use the {} plugin".format(target.nms_plugin)))
    findings += _check_constant_inputs(name, node, graph, target)
    findings += _check_attributes(name, node, graph, target)
    return findings


def _known_plugins():
    return ("EfficientNMS_TRT", "BatchedNMS_TRT", "BatchedNMSDynamic_TRT")


def _custom_op(name, node, target):
    op = node.op_type
    if op in _known_plugins():
        return Finding(name, op, "plugin", "TensorRT {} has no {} plugin".format(target.tensorrt[1], op),
                       advice="convert again with `--nms runtime`, or with the {} plugin".format(target.nms_plugin))
    where = " (domain {})".format(node.domain) if node.domain else ""
    if op.startswith("TFL_"):
        return Finding(name, op, "custom_op", "{}{} is a TFLite custom op; no ONNX parser imports it".format(op, where),
                       fix="tflite_custom_ops")
    return Finding(name, op, "custom_op", "{}{} is not an ONNX op and not a TensorRT plugin on {}".format(
        op, where, target.name), advice="export without custom ops, or register a TensorRT plugin named {}".format(op))


def _newer_op(name, op, target):
    why = "{} does not exist in ONNX opset {} (TensorRT {}'s maximum)".format(op, target.max_opset, target.tensorrt[1])
    if op == "HardSwish":
        return Finding(name, op, "newer_op", why, fix="hardswish")
    return Finding(name, op, "newer_op", why,
                   advice="export at opset {} (convert export --target {}) so the exporter decomposes {}".format(
                       target.export_opset, target.name, op))


def _check_constant_inputs(name, node, graph, target):
    findings = []
    required = dict(target.initializer_inputs.get(node.op_type, {}))
    if node.op_type.startswith("Reduce") and len(node.input) > 1 and node.input[1] \
            and not graph.takes_axes_input(node.op_type, target.max_opset):
        findings.append(Finding(name, node.op_type, "reduce_axes",
                                "{} takes axes as an input only from a later opset; at opset {} they must be the "
                                "axes attribute".format(node.op_type, target.max_opset), fix="reduce_axes"))
        required.pop(1, None)
    for index, role in sorted(required.items()):
        if index >= len(node.input) or not node.input[index]:
            continue
        origin = graph.origin(node.input[index])
        if origin == "constant":
            continue
        why = "TensorRT {} needs {} {} as an initializer; {!r} is computed {}".format(
            target.tensorrt[1], node.op_type, role, node.input[index],
            {"foldable": "from constants", "shape": "from input shapes", "data": "from input values"}[origin])
        if node.op_type == "Resize" and role == "scales" and origin != "data":
            findings.append(Finding(name, node.op_type, "initializer", why, fix="resize_scales"))
        elif origin == "foldable":
            findings.append(Finding(name, node.op_type, "initializer", why, fix="fold_constants"))
        elif origin == "shape" and not graph.has_dynamic_inputs():
            findings.append(Finding(name, node.op_type, "initializer", why, fix="fold_constants"))
        elif origin == "shape":
            findings.append(Finding(name, node.op_type, "initializer", why, fix="static_shapes",
                                    advice="give a static input shape (--input-shape) so the shapes fold"))
        else:
            findings.append(Finding(name, node.op_type, "initializer", why,
                                    advice="make {} a constant in the model (e.g. fixed interpolate scale factors, "
                                           "constant weights)".format(role)))
    return findings


def _attribute(node, key, default=None):
    import onnx

    for attribute in node.attribute:
        if attribute.name == key:
            value = onnx.helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _check_attributes(name, node, graph, target):
    op = node.op_type
    if op == "Reshape" and target.reshape_allowzero_required and graph.opset >= 14 \
            and _attribute(node, "allowzero") is None:
        return [Finding(name, op, "reshape_allowzero",
                        "Reshape at opset {} without an explicit allowzero attribute fails in TensorRT {}'s parser "
                        "('Attribute not found: allowzero'; fixed in 8.4.2)".format(graph.opset, target.tensorrt[1]),
                        fix="reshape_allowzero")]
    if op == "Resize":
        findings = []
        mode = _attribute(node, "mode", "nearest")
        if mode not in target.resize_modes:
            findings.append(Finding(name, op, "resize_mode", "Resize mode {!r}: TensorRT {} supports {}".format(
                mode, target.tensorrt[1], ", ".join(target.resize_modes)), fix="resize_mode"))
        coordinates = _attribute(node, "coordinate_transformation_mode", "half_pixel")
        if coordinates in target.resize_rejected_coordinate_modes:
            findings.append(Finding(name, op, "resize_mode",
                                    "coordinate_transformation_mode {!r} is not supported by TensorRT {}".format(
                                        coordinates, target.tensorrt[1]),
                                    advice="crop and resize in pre-processing, or as a plugin"))
        return findings
    if op == "Cast":
        dtype = _dtype_name(_attribute(node, "to", 1))
        if dtype in target.cast_rejected_dtypes:
            return [Finding(name, op, "cast_dtype", "TensorRT {} rejects Cast to {}".format(target.tensorrt[1], dtype),
                            advice="remove the cast to {} from the model (`.byte()`, tf.cast(..., tf.uint8)); keep "
                                   "the values float and convert in post-processing".format(dtype.lower()))]
    return []


def op_histogram(model):
    """op_type -> count over the graph and its subgraphs."""
    return Counter(node.op_type for node, _ in _GraphIndex(model).nodes())
