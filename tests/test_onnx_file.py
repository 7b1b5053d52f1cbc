"""trt_infer.onnx_file: an ONNX file's outer protobuf layer checked without onnx (Python 3.6, the device),
on bytes written by hand, and against onnx's own files where onnx imports."""
import os

import pytest

from trt_infer.errors import ModelLoadError, ModelNotFoundError
from trt_infer.onnx_file import check_onnx_file, top_level_fields

# ir_version 7, graph {name: "g"}, opset_import {version: 13}, then producer_name "x" after them
MINIMAL = b"\x08\x07" b"\x3a\x03\x12\x01g" b"\x42\x02\x10\x0d"
FIX = "copy the complete file again or export it again (convert export)"


def write(tmp_path, data, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_a_minimal_model_has_its_fields_in_file_order(tmp_path):
    path = write(tmp_path, MINIMAL + b"\x12\x01x")
    assert top_level_fields(path) == ["ir_version", "graph", "opset_import", "producer_name"]
    check_onnx_file(path)


@pytest.mark.parametrize("data, message", [
    (b"", "{} is empty (0 bytes), not an ONNX model; " + FIX),
    (b"hello", "{} is not an ONNX model (byte 2 of 5 starts no ModelProto field); " + FIX),
    (b"\x89PNG\r\n\x1a\n", "{} is not an ONNX model (byte 0 of 8 starts no ModelProto field); " + FIX),
    (MINIMAL[:5], "{} is truncated: the file ends at byte 5, inside its graph (bytes 4 to 7); " + FIX),
    (MINIMAL[:3], "{} is truncated: the file ends at byte 3, inside a field header; " + FIX),
    (MINIMAL[:7], "{} is not a complete ONNX model: it has no opset_import (7 bytes, truncated or not ONNX); " + FIX),
    (b"\x08\x07", "{} is not a complete ONNX model: it has no graph or opset_import (2 bytes, truncated or not "
                  "ONNX); " + FIX),
])
def test_a_broken_file_is_one_line_naming_it(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(ModelLoadError) as raised:
        check_onnx_file(path)
    assert str(raised.value) == message.format(path) and "\n" not in str(raised.value)


def test_a_missing_file_or_a_folder(tmp_path):
    with pytest.raises(ModelNotFoundError, match="missing.onnx does not exist"):
        check_onnx_file(str(tmp_path / "missing.onnx"))
    with pytest.raises(ModelNotFoundError, match="is not a file; pass the ONNX model file"):
        check_onnx_file(str(tmp_path))


def test_every_model_onnx_ships_passes_and_every_cut_of_one_fails(tmp_path):
    onnx = pytest.importorskip("onnx", reason="onnx's test models (absent in the Python 3.6 venv)")
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    models = [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names
              if name.endswith(".onnx")]
    assert models
    for path in models:
        check_onnx_file(path)
    with open(max(models, key=os.path.getsize), "rb") as handle:
        data = handle.read()
    for size in (1, 2, 10, len(data) // 3, len(data) // 2, len(data) - 1):
        with pytest.raises(ModelLoadError):
            check_onnx_file(write(tmp_path, data[:size], "cut.onnx"))
