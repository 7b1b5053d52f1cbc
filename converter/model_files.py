"""The converter's model files as they are read: one line for a file that is not what it claims.

`load_onnx` checks the file's outer layer first (trt_infer.onnx_file: empty, truncated, not ONNX),
then parses it with onnx; `check_graphdef` refuses an empty frozen graph; `check_tflite` looks for the
TFLite flatbuffer identifier, `check_keras` and `check_torchscript` for the zip or HDF5 container of those
files; `tf_ops_left` finds the TensorFlow ops tf2onnx could not convert and left in the graph under their TF names.
Every error is a ModelLoadError (exit status 2) naming the file and what to do.
"""
import logging
import os
import struct

from trt_infer.errors import ModelLoadError, ModelNotFoundError
from trt_infer.onnx_file import FIX, check_onnx_file

logger = logging.getLogger(__name__)

TFLITE_IDENTIFIER = b"TFL3"   # the flatbuffer file_identifier of TFLite's schema, at bytes 4-8
# TensorFlow ops tf2onnx leaves when it cannot convert them -> why, and what to change
TF_OP_ADVICE = {
    "StatefulPartitionedCall": "a TensorFlow function tf2onnx could not inline (Keras 3 compiles grouped and "
                               "depthwise Conv2D with XLA, _XlaMustCompile)",
    "PartitionedCall": "a TensorFlow function tf2onnx could not inline",
    "Erfc": "from the exact GELU; gelu(approximate=True) exports as ONNX ops",
}
KERAS_VIA_TORCH = ("for a Keras 3 model, export through Keras's PyTorch backend instead, with a static input shape: "
                   "KERAS_BACKEND=torch python -c \"import keras; keras.models.load_model('{keras}').export('{onnx}', "
                   "format='onnx', input_signature=[keras.InputSpec(shape={shape}, dtype='float32')])\", then "
                   "`convert export {onnx}`; otherwise replace those layers")


def load_onnx(path):
    """onnx.load(path), or ModelNotFoundError / ModelLoadError saying what is wrong with the file."""
    import onnx
    from google.protobuf.message import DecodeError

    if not os.path.exists(path):
        raise ModelNotFoundError("{} does not exist".format(path))
    check_onnx_file(path)
    try:
        return onnx.load(path)
    except DecodeError as error:
        first = (str(error).strip().splitlines() or ["corrupt"])[0]
        raise ModelLoadError("{} is not a readable ONNX model ({}); {}".format(path, first, FIX))


def check_tflite(path):
    """ModelLoadError unless `path` starts like a TFLite flatbuffer (its identifier, a root inside it)."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if size == 0:
        raise ModelLoadError("{} is empty (0 bytes), not a TFLite model; {}".format(path, FIX))
    if len(head) < 8 or head[4:8] != TFLITE_IDENTIFIER:
        raise ModelLoadError("{} is not a TFLite flatbuffer (bytes 4-8 are {!r}, a .tflite file has {!r}); pass the "
                             ".tflite model itself, or rename the file to its real format".format(
                                 path, head[4:8], TFLITE_IDENTIFIER))
    if struct.unpack("<I", head[:4])[0] >= size:
        raise ModelLoadError("{} is truncated ({} bytes, its root table lies beyond the end); {}".format(
            path, size, FIX))


def check_graphdef(path):
    """ModelLoadError when a frozen GraphDef file is empty (its contents are parsed by converter.od_api)."""
    if os.path.getsize(path) == 0:
        raise ModelLoadError("{} is empty (0 bytes), not a frozen TensorFlow graph; {}".format(path, FIX))


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"   # at byte 0, 512, 1024, 2048, ... (the HDF5 superblock)


def _check_container(path, kind, container, how_to_save):
    import zipfile

    if os.path.getsize(path) == 0:
        raise ModelLoadError("{} is empty (0 bytes), not a {}; {}".format(path, kind, FIX))
    if container == "HDF5 file":
        with open(path, "rb") as handle:
            head = handle.read(2048 + len(HDF5_SIGNATURE))
        ok = any(head[offset:offset + len(HDF5_SIGNATURE)] == HDF5_SIGNATURE for offset in (0, 512, 1024, 2048))
    else:
        ok = zipfile.is_zipfile(path)
    if not ok:
        raise ModelLoadError("{} is not a {} (not a complete {}); copy it again, or save the model again with "
                             "{}".format(path, kind, container, how_to_save))


def check_keras(path):
    """ModelLoadError unless `path` is the container its extension says: .keras a zip archive, .h5 HDF5."""
    if os.path.splitext(path)[1].lower() == ".keras":
        _check_container(path, "Keras 3 .keras file", "zip archive", "model.save('model.keras')")
    else:
        _check_container(path, "Keras HDF5 model", "HDF5 file", "model.save('model.h5')")


def check_torchscript(path):
    """ModelLoadError unless `path` is a zip archive, as torch.jit.save writes."""
    _check_container(path, "TorchScript file", "zip archive", "torch.jit.save(torch.jit.script(model), 'model.pt')")


def _graphs(graph):
    """`graph` and, depth first, the subgraphs of its nodes (If/Loop/Scan bodies)."""
    import onnx

    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                for inner in _graphs(attribute.g):
                    yield inner
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for subgraph in attribute.graphs:
                    for inner in _graphs(subgraph):
                        yield inner


def tf_ops_left(model):
    """{op type: [node names]} of default-domain nodes that are no ONNX op: TensorFlow ops tf2onnx left.
    TFLite ops (TFL_*, which `convert check` and `convert fix` handle) and TensorRT plugins (*_TRT) are
    not counted, nor ops of the model's own local functions."""
    import onnx.defs

    local = set((function.domain, function.name) for function in model.functions)
    found = {}
    for graph in _graphs(model.graph):
        for node in graph.node:
            domain, op = node.domain or "", node.op_type
            if (domain not in ("", "ai.onnx") or (domain, op) in local or op.startswith("TFL_")
                    or op.endswith("_TRT") or onnx.defs.has(op)):
                continue
            found.setdefault(op, []).append(node.name or "<unnamed {}>".format(op))
    return found


def describe_tf_ops(path, ops, input_shape=None):
    """One line naming the TensorFlow ops left in `path` ({op: [node names]}), why and what to try;
    input_shape: the exported graph's input dimensions (None or <= 0 where dynamic), for the example."""
    parts = []
    for op in sorted(ops, key=lambda name: (-len(ops[name]), name)):
        names = ops[op]
        why = TF_OP_ADVICE.get(op)
        parts.append("{} x{} ({}{}){}".format(op, len(names), names[0], ", ..." if len(names) > 1 else "",
                                              ": " + why if why else ""))
    stem, extension = os.path.splitext(path)
    keras = path if extension.lower() in (".keras", ".h5", ".hdf5") else "MODEL.keras"
    dims = [dim if dim and dim > 0 else (1 if index == 0 else 224)
            for index, dim in enumerate(input_shape or (None, 224, 224, 3))]
    try_next = KERAS_VIA_TORCH.format(keras=keras, shape=tuple(dims),
                                      onnx=stem + ".torch.onnx" if keras == path else "MODEL.onnx")
    return ("{}: tf2onnx left TensorFlow ops that are not ONNX, which neither TensorRT nor ONNX Runtime can run: "
            "{}. To try: {}".format(path, "; ".join(parts), try_next))
