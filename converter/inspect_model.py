"""`convert inspect`: inputs, outputs, opset, op histogram and the target check on one screen."""
from converter.check import check_model, op_histogram
from converter.report import check_table, format_table


def _describe(value):
    import onnx

    tensor_type = value.type.tensor_type
    dims = [str(dim.dim_value) if dim.HasField("dim_value") else (dim.dim_param or "?")
            for dim in tensor_type.shape.dim]
    return value.name, onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower(), "x".join(dims) or "scalar"


def inspect_model(model, target, shapes=None):
    """A dict of the model's interface and ops plus the CheckReport for `target`."""
    initializers = set(initializer.name for initializer in model.graph.initializer)
    return {
        "inputs": [_describe(value) for value in model.graph.input if value.name not in initializers],
        "outputs": [_describe(value) for value in model.graph.output],
        "opsets": dict((entry.domain or "ai.onnx", entry.version) for entry in model.opset_import),
        "producer": "{} {}".format(model.producer_name, model.producer_version).strip(),
        "ops": op_histogram(model),
        "check": check_model(model, target, shapes),
    }


def inspect_text(info, path):
    ops = sorted(info["ops"].items(), key=lambda item: (-item[1], item[0]))
    histogram = ", ".join("{} {}".format(op, count) for op, count in ops)
    lines = [
        "{}: produced by {}; opsets {}".format(
            path, info["producer"] or "unknown",
            ", ".join("{} {}".format(domain, version) for domain, version in sorted(info["opsets"].items()))),
        "",
        format_table(["", "name", "dtype", "shape"], [("input",) + row for row in info["inputs"]] +
                     [("output",) + row for row in info["outputs"]]),
        "",
        "ops ({} nodes): {}".format(sum(info["ops"].values()), histogram),
        "",
        check_table(info["check"]),
    ]
    return "\n".join(lines)


def inspect_json(info):
    return dict(info, ops=dict(info["ops"]), check=info["check"].as_dict(),
                inputs=[dict(zip(("name", "dtype", "shape"), row)) for row in info["inputs"]],
                outputs=[dict(zip(("name", "dtype", "shape"), row)) for row in info["outputs"]])
