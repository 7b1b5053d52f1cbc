"""`convert build` for real: TensorRT-RTX (TensorRT 10 API) parses and builds engines from real ONNX.

TensorRT-RTX's ahead-of-time builder runs on CPU-only machines, so these tests parse and build
MediaPipe's BlazeFace (TFLite -> ONNX with tf2onnx) and small onnx.helper graphs, and check the
sidecar the runtime relies on. The BlazeFace build takes about 1 s on a 2-core machine.
"""
import argparse
import hashlib
import json
import logging
import os
import shutil

import numpy as np
import pytest

from trt_infer.engine import build
from trt_infer.engine import cache as engine_cache
from trt_infer.engine.gpu import gpu_identity

RTX = "tensorrt_rtx_bindings"


@pytest.fixture(scope="module")
def rtx():
    return pytest.importorskip(RTX, reason="TensorRT-RTX bindings (tensorrt-rtx-cu13-bindings) are not installed")


def tiny_onnx(folder, dynamic=False, name="tiny.onnx", op="Conv"):
    """Conv(3->8, 3x3) + Relu + GlobalAveragePool on a 1x3x32x32 'image' (N/H/W symbolic if dynamic)."""
    onnx = pytest.importorskip("onnx", reason="needs the onnx package")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(0)
    dims = ["N", 3, "H", "W"] if dynamic else [1, 3, 32, 32]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)
    out_dims = ["N", 8, 1, 1] if dynamic else [1, 8, 1, 1]
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, out_dims)
    weights = numpy_helper.from_array(rng.randn(8, 3, 3, 3).astype(np.float32), "weights")
    bias = numpy_helper.from_array(rng.randn(8).astype(np.float32), "bias")
    nodes = [helper.make_node(op, ["image", "weights", "bias"], ["conv"], name="stem_conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv"], ["relu"], name="stem_relu"),
             helper.make_node("GlobalAveragePool", ["relu"], ["features"], name="pool")]
    graph = helper.make_graph(nodes, "tiny", [image], [features], [weights, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    path = os.path.join(str(folder), name)
    onnx.save(model, path)
    return path


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def messages(caplog):
    return [record.getMessage() for record in caplog.records]


def test_blazeface_parses_and_builds_with_a_sidecar(rtx, tmp_path, caplog):
    from tests.support.models import tflite_to_onnx

    onnx_path = tflite_to_onnx("blazeface")
    before = sha256(onnx_path)
    engine = str(tmp_path / "blazeface.engine")
    with caplog.at_level(logging.INFO, logger="trt_infer.engine.build"):
        sidecar = build.build_engine(onnx_path, engine, trt_module=rtx)
    lines = messages(caplog)
    assert sha256(onnx_path) == before                               # the input is never written
    assert os.path.getsize(engine) == sidecar["engine_bytes"] > 100000
    with open(engine_cache.sidecar_path(engine)) as handle:
        assert json.load(handle) == sidecar
    parts = sidecar["key_parts"]
    assert parts["onnx_sha256"] == before and parts["tensorrt_version"] == rtx.__version__
    assert parts["input_shapes"] == {"input": [1, 128, 128, 3]} and parts["precision"] == "fp16"
    assert sidecar["key"] == engine_cache.cache_key(parts)
    assert sidecar["build_options"]["effective_precision"] == "auto"    # RTX has no FP16 flag
    assert any("no FP16 builder flag" in line for line in lines)
    assert any("Building engine" in line for line in lines)             # IProgressMonitor phases
    assert engine_cache.check_engine(engine, rtx.__version__, {"name": None, "compute_capability": None}) == sidecar
    with pytest.raises(engine_cache.EngineMismatchError, match="TensorRT 8.2.1.8"):
        engine_cache.check_engine(engine, "8.2.1.8", {"name": None, "compute_capability": None})


def test_dynamic_input_needs_a_profile_and_builds_with_one(rtx, tmp_path):
    onnx_path = tiny_onnx(tmp_path, dynamic=True)
    engine = str(tmp_path / "dynamic.engine")
    with pytest.raises(build.BuildError, match=r"input 'image' has dynamic shape \(-1, 3, -1, -1\).*"
                                               r"--profile image:MIN/OPT/MAX "
                                               r"\(e.g. image:1x3x320x320/1x3x320x320/1x3x320x320\)"):
        build.build_engine(onnx_path, engine, trt_module=rtx)
    with pytest.raises(build.BuildError, match=r"profile shape \(1, 4, 32, 32\) for input 'image' does not fit"):
        build.build_engine(onnx_path, engine, trt_module=rtx,
                           profiles={"image": ((1, 4, 32, 32),) * 3})
    profile = ((1, 3, 32, 32), (1, 3, 64, 48), (2, 3, 128, 128))
    sidecar = build.build_engine(onnx_path, engine, trt_module=rtx, profiles={"image": profile})
    assert sidecar["build_options"]["profiles"] == {"image": [list(shape) for shape in profile]}
    assert sidecar["key_parts"]["input_shapes"] == {"image": [1, 3, 64, 48]}
    assert "--profile image:1x3x32x32/1x3x64x48/2x3x128x128" in engine_cache.rebuild_command(engine, sidecar)


def test_parse_errors_name_the_node(rtx, tmp_path):
    onnx_path = tiny_onnx(tmp_path, op="NoSuchConv")
    with pytest.raises(build.BuildError) as error:
        build.build_engine(onnx_path, str(tmp_path / "bad.engine"), trt_module=rtx)
    message = str(error.value)
    assert onnx_path in message and "'stem_conv'" in message and "(NoSuchConv)" in message
    assert "convert check --target" in message
    assert not os.path.exists(str(tmp_path / "bad.engine"))


@pytest.mark.filterwarnings("ignore:.*Timing cache operations are no-ops")   # RTX keeps the API, not the cache
def test_timing_cache_is_written_then_read(rtx, tmp_path, caplog):
    onnx_path = tiny_onnx(tmp_path)
    cache = str(tmp_path / "timing.cache")
    build.build_engine(onnx_path, str(tmp_path / "a.engine"), trt_module=rtx, timing_cache=cache)
    assert os.path.getsize(cache) > 0
    with caplog.at_level(logging.INFO, logger="trt_infer.engine.build"):
        build.build_engine(onnx_path, str(tmp_path / "b.engine"), trt_module=rtx, timing_cache=cache)
    assert any(line.startswith("timing cache: " + cache) for line in messages(caplog))


def test_int8_is_refused_with_a_reason(rtx, tmp_path):
    with pytest.raises(build.BuildError, match="INT8 refused: .*no INT8 builder flag.*Q/DQ"):
        build.build_engine(tiny_onnx(tmp_path), str(tmp_path / "x.engine"), precision="int8", trt_module=rtx)


def test_cli_builds_next_to_the_onnx_with_the_module_from_the_environment(rtx, tmp_path, monkeypatch, caplog):
    onnx_path = tiny_onnx(tmp_path)
    monkeypatch.setenv("TRT_INFER_TENSORRT_MODULE", RTX)
    parser = build.add_arguments(argparse.ArgumentParser())
    assert build.run(parser.parse_args([onnx_path, "--precision", "fp32", "--workspace", "64"])) == 0
    sidecar = engine_cache.read_sidecar(str(tmp_path / "tiny.fp32.engine"))
    assert sidecar["build_options"]["workspace_mib"] == 64 and sidecar["build_options"]["tensorrt_module"] == RTX
    assert build.run(parser.parse_args([onnx_path, "-o", onnx_path])) == 2   # usage: the output is the input
    assert any(record.levelno == logging.ERROR and "would overwrite an ONNX file" in record.getMessage()
               for record in caplog.records)


def test_engine_cache_builds_once_then_reuses(rtx, tmp_path, caplog):
    onnx_path = tiny_onnx(tmp_path)
    cache_dir = str(tmp_path / "engines")
    with pytest.raises(FileNotFoundError, match="ros2 run trt_infer convert build .*tiny.onnx -o .*engines"):
        engine_cache.cached_engine(onnx_path, cache_dir, trt_module=rtx)
    caplog.set_level(logging.DEBUG, logger="trt_infer")
    first = engine_cache.cached_engine(onnx_path, cache_dir, build_if_missing=True, trt_module=rtx)
    assert any(line.startswith("building ") for line in messages(caplog))
    built_at = os.path.getmtime(first)
    caplog.clear()
    assert engine_cache.cached_engine(onnx_path, cache_dir, build_if_missing=True, trt_module=rtx) == first
    assert messages(caplog) == [] and os.path.getmtime(first) == built_at          # never "rebuild every launch"
    other = engine_cache.cached_engine(onnx_path, cache_dir, precision="fp32", build_if_missing=True,
                                       trt_module=rtx)
    assert other != first and sorted(os.listdir(cache_dir)) == sorted(
        os.path.basename(path) + suffix for path in (first, other) for suffix in ("", ".json"))
    changed = str(tmp_path / "copy" / "tiny.onnx")
    os.makedirs(os.path.dirname(changed))
    shutil.copy(onnx_path, changed)
    assert engine_cache.cached_engine(changed, cache_dir, trt_module=rtx) == first   # same content, same key


def test_engine_cache_names_the_engine_by_the_spec_input_and_records_its_digest(rtx, tmp_path):
    from trt_infer.spec import ModelSpec

    spec = ModelSpec({"name": "tiny", "task": "classification", "outputs": {"scores": "features"},
                      "input": {"name": "image", "width": 48, "height": 40, "layout": "NCHW"}})
    onnx_path = tiny_onnx(tmp_path, dynamic=True)
    engine = engine_cache.cached_engine(onnx_path, str(tmp_path / "engines"), build_if_missing=True, spec=spec,
                                        trt_module=rtx)
    sidecar = engine_cache.read_sidecar(engine)
    parts = engine_cache.key_parts(engine_cache.sha256_file(onnx_path), rtx.__version__, gpu_identity(),
                                   "fp16", {"image": (1, 3, 40, 48)})
    assert os.path.basename(engine) == engine_cache.engine_file_name(onnx_path, engine_cache.cache_key(parts), "fp16")
    assert sidecar["key_parts"] == parts and sidecar["key"] == engine_cache.cache_key(parts)
    assert sidecar["spec_digest"] == spec.digest


@pytest.mark.tensorrt
def test_real_tensorrt_builds_the_tiny_graph(tmp_path):
    trt = pytest.importorskip("tensorrt", reason="needs the real tensorrt package (JetPack / TensorRT wheel)")
    engine = str(tmp_path / "tiny.engine")
    sidecar = build.build_engine(tiny_onnx(tmp_path), engine, precision="fp16")
    assert sidecar["key_parts"]["tensorrt_version"] == trt.__version__
    assert sidecar["build_options"]["effective_precision"] in ("fp16", "fp32")
    assert sidecar["key_parts"]["gpu_name"] is not None and os.path.getsize(engine) == sidecar["engine_bytes"]
