"""trt_infer.engine.cache and .gpu: key parts, sidecar round trip, mismatch and missing-sidecar messages.

Pure Python (runs under Python 3.6); the build-if-missing path with a real builder is in
tests/test_build_rtx.py.
"""
import json
import logging
import os

import pytest

from trt_infer.engine import cache as engine_cache
from trt_infer.engine import gpu as engine_gpu

NANO = {"name": "NVIDIA Tegra X1", "compute_capability": "5.3"}
ORIN = {"name": "Orin", "compute_capability": "8.7"}
UNKNOWN = {"name": None, "compute_capability": None}


def parts(**changes):
    values = dict(onnx_sha256="ab" * 32, trt_version="8.2.1.8", gpu=NANO, precision="fp16",
                  input_shapes={"input": (1, 3, 300, 300)})
    values.update(changes)
    return engine_cache.key_parts(values["onnx_sha256"], values["trt_version"], values["gpu"], values["precision"],
                                  values["input_shapes"])


@pytest.mark.parametrize("change", [
    {"onnx_sha256": "cd" * 32}, {"trt_version": "8.2.3.0"}, {"gpu": ORIN},
    {"gpu": {"name": "NVIDIA Tegra X1", "compute_capability": "6.2"}}, {"precision": "fp32"},
    {"input_shapes": {"input": (1, 3, 320, 320)}}])
def test_every_key_part_changes_the_key(change):
    assert engine_cache.cache_key(parts(**change)) != engine_cache.cache_key(parts())


def test_the_key_ignores_how_shapes_were_spelt():
    assert engine_cache.cache_key(parts(input_shapes={"input": [1, 3, 300, 300]})) == engine_cache.cache_key(parts())


def write(tmp_path, key_parts=None, options=None):
    path = str(tmp_path / "ssd.engine")
    sidecar = engine_cache.make_sidecar(key_parts or parts(), options or {
        "precision": "fp16", "workspace_mib": 256, "spec_path": "config/models/ssd.yaml",
        "profiles": {}}, spec_digest="f" * 64, onnx_path="models/ssd.fixed.onnx", tool_versions={"tensorrt": "8.2.1.8"})
    written = engine_cache.write_engine(path, b"\x01plan bytes", sidecar)
    return path, written


def test_sidecar_round_trip_and_contents(tmp_path):
    path, written = write(tmp_path)
    assert sorted(os.listdir(str(tmp_path))) == ["ssd.engine", "ssd.engine.json"]      # no partial files left
    loaded = engine_cache.read_sidecar(path)
    assert loaded == written and loaded["engine_bytes"] == 11 and loaded["key"] == engine_cache.cache_key(parts())
    assert loaded["spec_digest"] == "f" * 64 and loaded["built_at"].endswith("Z")
    assert loaded["tool_versions"]["tensorrt"] == "8.2.1.8" and "python" in loaded["tool_versions"]


def test_matching_engine_passes(tmp_path):
    path, written = write(tmp_path)
    assert engine_cache.check_engine(path, "8.2.1.8", NANO) == written


def test_another_tensorrt_version_is_refused_with_both_versions_and_the_command(tmp_path):
    path, _ = write(tmp_path)
    with pytest.raises(engine_cache.EngineMismatchError) as error:
        engine_cache.check_engine(path, "10.3.0.30", NANO)
    message = str(error.value)
    assert "built with TensorRT 8.2.1.8 on NVIDIA Tegra X1" in message
    assert "runs TensorRT 10.3.0.30 on NVIDIA Tegra X1" in message and "(TensorRT version differ)" in message
    assert ("ros2 run trt_infer convert build models/ssd.fixed.onnx -o {} --precision fp16 --workspace 256 "
            "--spec config/models/ssd.yaml".format(path)) in message


def test_another_gpu_is_refused(tmp_path):
    path, _ = write(tmp_path)
    with pytest.raises(engine_cache.EngineMismatchError, match=r"on Orin \(compute capability 8.7\).*"
                                                               r"GPU and compute capability differ"):
        engine_cache.check_engine(path, "8.2.1.8", ORIN)


def test_an_unknown_gpu_on_either_side_is_not_compared(tmp_path):
    path, _ = write(tmp_path, key_parts=parts(gpu=UNKNOWN))
    assert engine_cache.check_engine(path, "8.2.1.8", NANO) is not None
    path, _ = write(tmp_path)
    assert engine_cache.check_engine(path, "8.2.1.8", UNKNOWN) is not None


def test_missing_sidecar_is_one_warning_record(tmp_path, caplog, recwarn):
    path = str(tmp_path / "bare.engine")
    with open(path, "wb") as handle:
        handle.write(b"plan")
    with caplog.at_level(logging.WARNING, logger="trt_infer.engine.cache"):
        assert engine_cache.check_engine(path, "8.2.1.8", NANO) is None
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.name == "trt_infer.engine.cache"
    message = record.getMessage()
    assert "no sidecar bare.engine.json" in message and "convert build <model.onnx> -o " + path in message
    assert not message.lower().startswith("warning") and len(recwarn) == 0     # one channel: the log


def test_a_sidecar_that_is_not_json_is_an_error(tmp_path):
    path, _ = write(tmp_path)
    with open(engine_cache.sidecar_path(path), "w") as handle:
        handle.write("{ truncated")
    with pytest.raises(engine_cache.EngineMismatchError, match="sidecar is not valid JSON"):
        engine_cache.check_engine(path, "8.2.1.8", NANO)


def test_engine_file_name_carries_precision_and_key():
    name = engine_cache.engine_file_name("models/ssd.fixed.onnx", "0123456789abcdef" * 4, "fp16")
    assert name == "ssd.fixed.fp16.0123456789abcdef.engine"


def test_gpu_identity_is_well_formed_with_or_without_a_driver():
    gpu = engine_gpu.gpu_identity()
    assert set(gpu) == {"name", "compute_capability"}
    if gpu["name"] is not None:
        major, minor = gpu["compute_capability"].split(".")
        assert major.isdigit() and minor.isdigit()
    else:
        assert gpu["compute_capability"] is None


def test_sidecar_is_plain_json(tmp_path):
    path, _ = write(tmp_path)
    with open(engine_cache.sidecar_path(path)) as handle:
        text = handle.read()
    assert json.loads(text)["format"] == engine_cache.SIDECAR_FORMAT and text.endswith("\n")


def unwritable_folder(tmp_path, how):
    if how == "below a file":
        (tmp_path / "a_file").write_text(u"not a folder")
        return str(tmp_path / "a_file" / "engines")
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    return str(folder)


@pytest.mark.parametrize("how", ["below a file", "read-only folder"])
def test_an_unwritable_cache_dir_is_refused_before_building(tmp_path, monkeypatch, how):
    import types

    from trt_infer.engine import build as engine_build
    from trt_infer.errors import EngineError

    def build_engine(*args, **kwargs):
        raise AssertionError("the engine was built before cache_dir was checked")

    monkeypatch.setattr(engine_build, "build_engine", build_engine)
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(b"onnx bytes")
    cache_dir = unwritable_folder(tmp_path, how)
    with pytest.raises(EngineError) as error:
        engine_cache.cached_engine(str(onnx_path), cache_dir, build_if_missing=True,
                                   trt_module=types.SimpleNamespace(__version__="8.2.1.8"), gpu=NANO)
    message = str(error.value)
    assert message.startswith("cache_dir " + cache_dir) and "-p cache_dir:=" in message and "\n" not in message
