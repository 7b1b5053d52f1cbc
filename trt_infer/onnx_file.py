"""Is a file an ONNX model at all? A check of the file's outer protobuf layer, without onnx.

An empty, truncated or foreign file otherwise reaches the user as protobuf's DecodeError, as
"opset 1" (an empty file parses as an empty ModelProto) or, in TensorRT's parser, as a network
without outputs. This walks the top-level fields of the ModelProto (ir_version, graph,
opset_import, ...) by their wire format, checks every length against the file size, and needs the
fields every model has. It reads only the field headers (seeking over the graph), so it is cheap
for a 2 GB file, and it needs nothing but the standard library: it runs before TensorRT's parser
on the device (Python 3.6) and before onnx.load on the host. Corruption deeper inside the graph is
left to the parser that reads it.
"""
import os

from trt_infer.errors import ModelLoadError, ModelNotFoundError

# ModelProto's fields (onnx/onnx.proto) -> (name, protobuf wire type); 0 varint, 2 length-delimited
MODEL_FIELDS = {1: ("ir_version", 0), 2: ("producer_name", 2), 3: ("producer_version", 2), 4: ("domain", 2),
                5: ("model_version", 0), 6: ("doc_string", 2), 7: ("graph", 2), 8: ("opset_import", 2),
                14: ("metadata_props", 2), 20: ("training_info", 2), 25: ("functions", 2),
                26: ("configuration", 2)}
REQUIRED = ("ir_version", "graph", "opset_import")
MAX_FIELD = 99        # fields ONNX may add later are accepted; a larger number is another kind of file
FIX = "copy the complete file again or export it again (convert export)"
_FIXED_SIZES = {1: 8, 5: 4}          # wire types 1 (64-bit) and 5 (32-bit)


class _Corrupt(Exception):
    """Where the walk stopped: `truncated` (the file ends inside a field) or bytes that are no field."""

    def __init__(self, offset, truncated, what=""):
        Exception.__init__(self, what)
        self.offset = offset
        self.truncated = truncated
        self.what = what


def _varint(handle, offset):
    """(value, next offset) of the varint at `offset`; _Corrupt when it runs past the end or 10 bytes."""
    value = shift = 0
    for index in range(10):
        byte = handle.read(1)
        if not byte:
            raise _Corrupt(offset, True, "a field header")
        value |= (ord(byte) & 0x7F) << shift
        shift += 7
        if not ord(byte) & 0x80:
            return value, offset + index + 1
    raise _Corrupt(offset, False)


def top_level_fields(path):
    """The names of the ModelProto fields in `path`, in file order; _Corrupt at the first bad byte."""
    size = os.path.getsize(path)
    names = []
    with open(path, "rb") as handle:
        offset = 0
        while offset < size:
            key, after = _varint(handle, offset)
            number, wire = key >> 3, key & 7
            name, expected = MODEL_FIELDS.get(number, ("field {}".format(number), wire))
            if not 0 < number <= MAX_FIELD or wire not in (0, 1, 2, 5) or wire != expected:
                raise _Corrupt(offset, False)
            if wire == 0:
                _, offset = _varint(handle, after)
            else:
                length, after = _varint(handle, after) if wire == 2 else (_FIXED_SIZES[wire], after)
                if after + length > size:
                    raise _Corrupt(offset, True, "its {} (bytes {} to {})".format(name, after, after + length))
                offset = after + length
                handle.seek(offset)
            names.append(name)
    return names


def check_onnx_file(path):
    """Raise ModelNotFoundError / ModelLoadError (one line: the file, what is wrong, what to do) unless
    `path` looks like a complete ONNX model."""
    if not os.path.isfile(path):
        raise ModelNotFoundError("{} does not exist".format(path) if not os.path.exists(path) else
                                 "{} is not a file; pass the ONNX model file".format(path))
    try:
        size = os.path.getsize(path)
        if size == 0:
            raise ModelLoadError("{} is empty (0 bytes), not an ONNX model; {}".format(path, FIX))
        names = top_level_fields(path)
    except _Corrupt as error:
        if error.truncated:
            raise ModelLoadError("{} is truncated: the file ends at byte {}, inside {}; {}".format(
                path, size, error.what, FIX))
        raise ModelLoadError("{} is not an ONNX model (byte {} of {} starts no ModelProto field); {}".format(
            path, error.offset, size, FIX))
    except (IOError, OSError) as error:
        raise ModelLoadError("{} cannot be read: {}".format(path, error.strerror or error))
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise ModelLoadError("{} is not a complete ONNX model: it has no {} ({} bytes, truncated or not ONNX); "
                             "{}".format(path, " or ".join(missing), size, FIX))
