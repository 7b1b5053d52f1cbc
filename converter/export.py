"""`convert export`: a trained model -> ONNX at the opset the target's TensorRT accepts.

Sources: a TF SavedModel folder, a TF1 frozen GraphDef (.pb; its inputs and outputs given, or found
for TF Object Detection API graphs by converter.od_api), a Keras file (.keras/.h5, exported to a SavedModel first, as
tf2onnx advises for Keras 3), a TFLite file, PyTorch (`module.py:factory`, where factory()
returns (module, example_input), or a TorchScript file with --input-shape) and ONNX (passed
through). Afterwards, uniformly for every source: inputs renamed and static shapes set.
"""
import logging
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from converter.errors import ExportError
from trt_infer import paths

logger = logging.getLogger(__name__)

FORMATS = ("saved_model", "graphdef", "keras", "tflite", "torch", "torchscript", "onnx")
# through tf2onnx, which may leave TF ops it cannot convert
TF_FORMATS = ("saved_model", "graphdef", "keras", "tflite")
# torch.onnx.export's TorchScript-based exporter handles opsets up to 17; beyond, only dynamo.
TORCHSCRIPT_EXPORTER_MAX_OPSET = 17


def detect_format(source):
    """Which exporter a source path needs; an ExportError says what was expected otherwise."""
    path, _, entry = _split_entry_point(source)
    if entry:
        if not path.endswith(".py"):
            raise ExportError("{}: a PyTorch entry point is `file.py:factory`".format(source))
        return "torch"
    if os.path.isdir(source):
        if os.path.isfile(os.path.join(source, "saved_model.pb")):
            return "saved_model"
        raise ExportError("{} is a folder without saved_model.pb; expected a TF SavedModel".format(source))
    if not os.path.isfile(source):
        raise ExportError("{} does not exist".format(source))
    extension = os.path.splitext(source)[1].lower()
    if os.path.basename(source) == "saved_model.pb":
        raise ExportError("{} is the graph of a SavedModel; pass its folder {}".format(
            source, os.path.dirname(source) or "."))
    known = {".pb": "graphdef", ".onnx": "onnx", ".tflite": "tflite", ".keras": "keras", ".h5": "keras",
             ".hdf5": "keras", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript",
             ".torchscript": "torchscript"}
    if extension in known:
        return known[extension]
    raise ExportError("{}: unknown model format {!r}; expected a SavedModel folder, a frozen GraphDef .pb, "
                      ".keras/.h5, .tflite, .onnx, a TorchScript .pt, or a PyTorch entry point "
                      "`module.py:factory`".format(source, extension))


def source_file(source):
    """The file or folder a source names ("net.py" of "net.py:make")."""
    return _split_entry_point(source)[0]


def _split_entry_point(source):
    # "models/net.py:make" -> ("models/net.py", ":", "make"); Windows drive letters are not a concern here.
    if ".py:" in source:
        return source.rpartition(":")
    return source, "", ""


def export(source, output, target, input_names=None, input_shapes=None, inputs_as_nchw=None, opset=None,
           graph_inputs=None, graph_outputs=None):
    """Write ONNX for `source` to `output`; returns the output path.

    input_names: new names for the graph inputs, in order.
    input_shapes: {input name (after renaming): static shape}; one shape may be given as {None: shape}
        for a single-input model.
    inputs_as_nchw: input names to expose as NCHW (TF/TFLite sources: tf2onnx folds the transposes).
    opset: overrides the target's export opset.
    graph_inputs, graph_outputs: tensor names to convert from and to (frozen GraphDef sources; found for
        OD API graphs when not given).
    """
    source_format = detect_format(source)
    check_source(source, source_format)
    if (graph_inputs or graph_outputs) and source_format != "graphdef":
        raise ExportError("--graph-inputs/--graph-outputs name tensors of a frozen GraphDef (.pb); {} is a {} "
                          "source, whose inputs and outputs are its own".format(source, source_format))
    partial = os.path.abspath(output) + ".partial.onnx"
    for written in (output, partial, partial + ".data"):
        paths.check_output(written, [source_file(source)], error=ExportError)
    output = os.path.abspath(output)
    opset = opset or target.export_opset
    if opset > target.max_opset:
        raise ExportError("opset {} is above what {} accepts ({})".format(opset, target.name, target.max_opset))
    os.makedirs(os.path.dirname(output), exist_ok=True)
    exporters = {"saved_model": _from_saved_model, "graphdef": _from_graphdef, "keras": _from_keras,
                 "tflite": _from_tflite, "torch": _from_torch_entry_point, "torchscript": _from_torchscript,
                 "onnx": _from_onnx}
    logger.info("export: %s (%s) -> %s at opset %s", source, source_format, output, opset)
    try:
        exporters[source_format](source, partial, opset, inputs_as_nchw=inputs_as_nchw, input_shapes=input_shapes,
                                 graph_inputs=graph_inputs, graph_outputs=graph_outputs)
        _finish(partial, output, input_names, input_shapes, source if source_format in TF_FORMATS else None)
    finally:
        for leftover in (partial, partial + ".data"):   # torch's dynamo exporter writes weights beside it
            if os.path.exists(leftover):
                os.remove(leftover)
    return output


def check_source(source, source_format=None):
    """ModelLoadError when a file source is not what its name says (empty, truncated, another format)."""
    from converter.model_files import check_graphdef, check_keras, check_tflite, check_torchscript
    from trt_infer.onnx_file import check_onnx_file

    checks = {"onnx": check_onnx_file, "graphdef": check_graphdef, "tflite": check_tflite, "keras": check_keras,
              "torchscript": check_torchscript}
    source_format = source_format or detect_format(source)
    if source_format in checks:
        checks[source_format](source)


def _run_tf2onnx(arguments, source):
    command = [sys.executable, "-m", "tf2onnx.convert"] + arguments
    completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.strip().splitlines()[-15:])
        raise ExportError("tf2onnx could not convert {}:\n{}".format(source, tail))


def _tf2onnx_nchw(inputs_as_nchw):
    return ["--inputs-as-nchw", ",".join(inputs_as_nchw)] if inputs_as_nchw else []


def _from_saved_model(source, output, opset, inputs_as_nchw=None, **_):
    _run_tf2onnx(["--saved-model", source, "--opset", str(opset), "--output", output] + _tf2onnx_nchw(inputs_as_nchw),
                 source)


def _from_graphdef(source, output, opset, inputs_as_nchw=None, graph_inputs=None, graph_outputs=None, **_):
    from converter.od_api import graph_def_tensors

    inputs, outputs = graph_def_tensors(source, graph_inputs, graph_outputs)
    _run_tf2onnx(["--graphdef", source, "--inputs", ",".join(inputs), "--outputs", ",".join(outputs),
                  "--opset", str(opset), "--output", output] + _tf2onnx_nchw(inputs_as_nchw), source)


def _from_keras(source, output, opset, inputs_as_nchw=None, **_):
    import keras

    model = keras.models.load_model(source, compile=False)
    folder = tempfile.mkdtemp(prefix="convert-keras-")
    try:
        model.export(folder, verbose=False)
        _from_saved_model(folder, output, opset, inputs_as_nchw=inputs_as_nchw)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _from_tflite(source, output, opset, inputs_as_nchw=None, **_):
    # In-process through tf2onnx's public API: no second TensorFlow start-up.
    import tf2onnx

    try:
        tf2onnx.convert.from_tflite(source, opset=opset, inputs_as_nchw=inputs_as_nchw, output_path=output)
    except struct.error as error:   # the flatbuffer reader ran past the end of the file
        raise ExportError("{} is truncated or not a TFLite flatbuffer ({}); copy the complete .tflite file "
                          "again".format(source, error))
    except Exception as error:  # noqa: BLE001  tf2onnx raises whatever its handlers hit
        raise ExportError("tf2onnx could not convert {}: {}".format(source, str(error).strip().splitlines()[0]))


def _torch_export(module, example, output, opset):
    import torch

    module.eval()
    examples = example if isinstance(example, tuple) else (example,)
    names = ["input" if len(examples) == 1 else "input_{}".format(index) for index in range(len(examples))]
    dynamo = opset > TORCHSCRIPT_EXPORTER_MAX_OPSET
    try:
        with torch.no_grad():
            torch.onnx.export(module, examples, output, dynamo=dynamo, opset_version=opset, input_names=names)
    except Exception as error:  # noqa: BLE001  torch raises many exception types from its exporters
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ExportError("torch.onnx.export ({} exporter, opset {}) failed: {}. Replace the operator in the "
                          "model, or choose a target with a higher opset".format(
                              "dynamo" if dynamo else "TorchScript", opset, first_line))


def _no_nchw_for_torch(inputs_as_nchw):
    if inputs_as_nchw:
        raise ExportError("--inputs-as-nchw is for TF/TFLite sources; PyTorch models are NCHW already")


def _from_torch_entry_point(source, output, opset, inputs_as_nchw=None, **_):
    import importlib.util

    _no_nchw_for_torch(inputs_as_nchw)
    path, _, factory_name = _split_entry_point(source)
    if not os.path.isfile(path):
        raise ExportError("{} does not exist".format(path))
    spec = importlib.util.spec_from_file_location("_convert_entry_point", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    factory = getattr(module, factory_name, None)
    if factory is None:
        raise ExportError("{} defines no {!r}; expected a function returning (torch module, example input)".format(
            path, factory_name))
    made = factory()
    if not (isinstance(made, tuple) and len(made) == 2):
        raise ExportError("{}:{}() returned {}; expected (torch module, example input)".format(
            path, factory_name, type(made).__name__))
    _torch_export(made[0], made[1], output, opset)


def _from_torchscript(source, output, opset, inputs_as_nchw=None, input_shapes=None, **_):
    import torch

    _no_nchw_for_torch(inputs_as_nchw)
    shapes = list((input_shapes or {}).values())
    if len(shapes) != 1:
        raise ExportError("{}: a TorchScript file carries no example input; give its shape with "
                          "--input-shape 1,3,H,W".format(source))
    module = torch.jit.load(source, map_location="cpu")
    _torch_export(module, torch.zeros(*shapes[0]), output, min(opset, TORCHSCRIPT_EXPORTER_MAX_OPSET))


def _from_onnx(source, output, opset, inputs_as_nchw=None, **_):
    import onnx

    from converter.model_files import load_onnx

    if inputs_as_nchw:
        raise ExportError("--inputs-as-nchw applies when exporting from TF/TFLite; this is ONNX already")
    onnx.save(load_onnx(source), output)


def _finish(partial, output, input_names, input_shapes, tf_source=None):
    """Rename inputs and set static shapes, the same way for every source; then move into place.
    tf_source: the TF/TFLite source tf2onnx converted, whose unconverted ops are an error."""
    import onnx

    from converter.model_files import describe_tf_ops, tf_ops_left

    model = onnx.load(partial)
    inputs = _graph_inputs(model)
    left = tf_ops_left(model) if tf_source else None
    if left:
        shape = [dim.dim_value for dim in inputs[0].type.tensor_type.shape.dim] if inputs else None
        raise ExportError(describe_tf_ops(tf_source, left, shape))
    if input_names:
        if len(input_names) != len(inputs):
            raise ExportError("--input-names gives {} names for {} inputs ({})".format(
                len(input_names), len(inputs), ", ".join(value.name for value in inputs)))
        for value, name in zip(inputs, input_names):
            _rename_tensor(model.graph, value.name, name)
    apply_input_shapes(model, input_shapes)
    onnx.save(model, output)


def _graph_inputs(model):
    initializers = set(initializer.name for initializer in model.graph.initializer)
    return [value for value in model.graph.input if value.name not in initializers]


def apply_input_shapes(model, input_shapes):
    """Give graph inputs static shapes in place: {name: dims}, or {None: dims} for a single-input model."""
    inputs = _graph_inputs(model)
    for name, shape in (input_shapes or {}).items():
        _set_input_shape(model, inputs, name, shape)
    return model


def _rename_tensor(graph, old, new):
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def _set_input_shape(model, inputs, name, shape):
    if name is None:
        if len(inputs) != 1:
            raise ExportError("--input-shape without a name needs a single-input model; inputs: {}; write "
                              "NAME:1,H,W,C".format(", ".join(value.name for value in inputs)))
        value = inputs[0]
    else:
        matches = [value for value in inputs if value.name == name]
        if not matches:
            raise ExportError("--input-shape names {!r}, which is not an input; inputs: {}".format(
                name, ", ".join(value.name for value in inputs)))
        value = matches[0]
    dims = value.type.tensor_type.shape.dim
    if len(dims) != len(shape):
        raise ExportError("--input-shape {} for {!r} has {} dimensions; the input has {}".format(
            shape, value.name, len(shape), len(dims)))
    for dim, size in zip(dims, shape):
        if dim.HasField("dim_value") and dim.dim_value > 0 and dim.dim_value != size:
            raise ExportError("--input-shape {} for {!r} conflicts with its fixed dimension {}".format(
                shape, value.name, dim.dim_value))
        dim.Clear()
        dim.dim_value = int(size)


def parse_shapes(texts):
    """["image:1,224,224,3", "1,3,64,64"] -> {"image": [1, 224, 224, 3], None: [1, 3, 64, 64]}."""
    shapes = {}
    for text in texts or ():
        name, _, dims = text.rpartition(":")
        try:
            shapes[name or None] = [int(dim) for dim in dims.replace("x", ",").split(",") if dim]
        except ValueError:
            raise ExportError("--input-shape {!r}: expected NAME:1,224,224,3 or 1,224,224,3".format(text))
    return shapes
