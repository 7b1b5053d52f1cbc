"""trt_infer.engine.build's TensorRT 8.2 path and its decisions, runnable under Python 3.6 without TensorRT.

FakeTrt82Builder (tests/support/fake_tensorrt.FakeTrtBuilder) stands in for the tensorrt 8.2
module's builder side (what JetPack 4 has: the EXPLICIT_BATCH flag, max_workspace_size, no
progress monitor, parser errors without node names, create_timing_cache taking a buffer, and
calibrator callbacks whose exceptions abort 8.2 and are swallowed from 8.5). It proves which
branch build.py takes on 8.2, not TensorRT; the real builds are in tests/test_build_rtx.py
(TensorRT-RTX) and run on real TensorRT where it imports.
"""
import argparse
import logging
import os
import threading

import numpy as np
import pytest

from tests.support.fake_tensorrt import FakePycuda, FakeTrtBuilder, FakeTrtTerminate
from trt_infer.engine import build, calibration
from trt_infer.engine import cache as engine_cache
from trt_infer.errors import SettingError

FakeTrt82Builder = FakeTrtBuilder
NANO = {"name": "NVIDIA Tegra X1", "compute_capability": "5.3"}
XAVIER = {"name": "Xavier", "compute_capability": "7.2"}


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "model.onnx"
    # The smallest complete ModelProto, written without onnx (absent on Python 3.6): ir_version 7, a
    # graph named "g", opset 13. Only build's file check reads it; the fake parser does not.
    path.write_bytes(b"\x08\x07" b"\x3a\x03\x12\x01g" b"\x42\x02\x10\x0d")
    return str(path)


def test_the_8_2_path_explicit_batch_workspace_fp16_and_sidecar(onnx_file, tmp_path, caplog):
    trt = FakeTrt82Builder()
    engine = str(tmp_path / "model.engine")
    with caplog.at_level(logging.INFO, logger="trt_infer.engine.build"):
        sidecar = build.build_engine(onnx_file, engine, trt_module=trt, gpu=NANO)
    lines = [record.getMessage() for record in caplog.records]
    assert trt.events[:3] == ["plugins", ("network flags", 1), ("parsed", os.path.abspath(onnx_file))]
    assert trt.config.max_workspace_size == 256 << 20 and trt.config.flags == ["FP16"]
    with open(engine, "rb") as handle:
        assert handle.read() == b"PLAN-8.2:FP16"
    assert sidecar == engine_cache.read_sidecar(engine)
    assert sidecar["key_parts"] == {"onnx_sha256": engine_cache.sha256_file(onnx_file), "tensorrt_version": "8.2.1.8",
                                    "gpu_name": "NVIDIA Tegra X1", "compute_capability": "5.3", "precision": "fp16",
                                    "input_shapes": {"input": [1, 3, 300, 300]}}
    assert sidecar["build_options"]["effective_precision"] == "fp16"
    assert any("Killed" in line and "swap" in line for line in lines)      # the OOM hint comes before the build
    assert lines.index(build.MEMORY_HINT) < len(lines) - 1 and lines[-1].startswith("wrote " + engine)


def test_fp16_falls_back_to_fp32_where_the_gpu_has_no_fast_fp16(onnx_file, tmp_path, caplog):
    trt = FakeTrt82Builder(fast_fp16=False)
    with caplog.at_level(logging.INFO, logger="trt_infer.engine.build"):
        sidecar = build.build_engine(onnx_file, str(tmp_path / "m.engine"), trt_module=trt, gpu=NANO)
    assert trt.config.flags == [] and sidecar["build_options"]["effective_precision"] == "fp32"
    assert ("trt_infer.engine.build", logging.WARNING, "NVIDIA Tegra X1 has no fast FP16; building FP32 instead") \
        in caplog.record_tuples


def test_int8_is_refused_on_the_nano(onnx_file, tmp_path):
    with pytest.raises(build.BuildError, match=r"INT8 refused: NVIDIA Tegra X1 \(compute capability 5.3\) has no "
                                               r"fast INT8.*--precision fp16"):
        build.build_engine(onnx_file, str(tmp_path / "m.engine"), precision="int8", trt_module=FakeTrt82Builder(),
                           gpu=NANO)
    assert not os.path.exists(str(tmp_path / "m.engine"))


def test_int8_with_a_calibration_cache_needs_no_images_or_gpu_copies(onnx_file, tmp_path):
    cache = tmp_path / "calib.cache"
    cache.write_bytes(b"TRT-8201-EntropyCalibration2\ninput: 3c010a14\n")
    trt = FakeTrt82Builder(fast_int8=True)
    sidecar = build.build_engine(onnx_file, str(tmp_path / "m.engine"), precision="int8", trt_module=trt,
                                 gpu=XAVIER, calibration_cache=str(cache))
    assert trt.config.flags == ["INT8", "FP16"] and sidecar["build_options"]["effective_precision"] == "int8+fp16"
    calibrator = trt.config.int8_calibrator
    assert calibrator.read_calibration_cache() == cache.read_bytes() and calibrator.get_batch(["input"]) is None


def test_int8_without_images_or_cache_is_a_build_error(onnx_file, tmp_path):
    with pytest.raises(build.BuildError, match="INT8 calibration needs the model spec"):
        build.build_engine(onnx_file, str(tmp_path / "m.engine"), precision="int8",
                           trt_module=FakeTrt82Builder(fast_int8=True), gpu=XAVIER)


def test_dynamic_inputs_get_a_profile_from_the_spec(onnx_file, tmp_path):
    from trt_infer.spec import ModelSpec

    spec = ModelSpec({"name": "m", "task": "classification", "outputs": {"scores": "prob"},
                      "input": {"name": "input", "width": 224, "height": 160, "layout": "NCHW"}})
    trt = FakeTrt82Builder(inputs=(("input", (-1, 3, -1, -1)),))
    sidecar = build.build_engine(onnx_file, str(tmp_path / "m.engine"), trt_module=trt, gpu=NANO, spec=spec)
    (profile,) = trt.config.profiles
    assert profile.shapes == {"input": ((1, 3, 160, 224),) * 3}
    assert sidecar["key_parts"]["input_shapes"] == {"input": [1, 3, 160, 224]}
    assert sidecar["spec_digest"] == spec.digest


def test_parse_errors_name_the_node_and_the_fix(onnx_file, tmp_path):
    trt = FakeTrt82Builder(parse_errors=[("Attribute not found: allowzero", 17)])
    with pytest.raises(build.BuildError) as error:
        build.build_engine(onnx_file, str(tmp_path / "m.engine"), trt_module=trt, gpu=NANO)
    message = str(error.value)
    assert "node #17: Attribute not found: allowzero" in message and "convert fix --target jetson-nano" in message


def test_missing_plugin_hint():
    message = build.describe_parse_errors("m.onnx", [{"desc": "getPluginCreator could not find plugin "
                                                               "EfficientNMS_TRT version 1", "node": 40,
                                                      "node_name": "nms", "op": "EfficientNMS_TRT"}])
    assert "node #40 'nms' (EfficientNMS_TRT): getPluginCreator" in message and "plugin op" in message


def test_a_failed_build_explains_workspace_and_memory(onnx_file, tmp_path, caplog):
    trt = FakeTrt82Builder(fail_with="Could not find any implementation for node Conv_12.")
    with pytest.raises(build.BuildError) as error:
        build.build_engine(onnx_file, str(tmp_path / "m.engine"), workspace_mib=16, trt_module=trt, gpu=NANO)
    message = str(error.value)
    assert "Could not find any implementation for node Conv_12." in message
    assert "workspace (16 MiB)" in message and "--workspace 32" in message and "swap" in message
    # TensorRT's own error went on to Python logging at its severity, on the TensorRT logger
    assert ("trt_infer.engine.build.tensorrt", logging.ERROR,
            "[TensorRT] Could not find any implementation for node Conv_12.") in caplog.record_tuples


class FakeSeverity(object):
    def __init__(self, name):
        self.name = name


def test_tensorrt_messages_reach_logging_at_their_severity(caplog):
    trt_logger = build._collecting_logger(FakeTrt82Builder())
    build.tensorrt_logger.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG, logger="trt_infer.engine.build.tensorrt"):
            for name in ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"):
                trt_logger.log(FakeSeverity(name), name.lower() + " text")
    finally:
        build.tensorrt_logger.setLevel(logging.WARNING)
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.CRITICAL, "[TensorRT] internal_error text"), (logging.ERROR, "[TensorRT] error text"),
        (logging.WARNING, "[TensorRT] warning text"), (logging.INFO, "[TensorRT] info text"),
        (logging.DEBUG, "[TensorRT] verbose text")]
    assert trt_logger.errors == ["internal_error text", "error text"]


def test_tensorrt_info_lines_are_dropped_unless_verbose(caplog):
    trt_logger = build._collecting_logger(FakeTrt82Builder())
    with caplog.at_level(logging.DEBUG, logger="trt_infer.engine.build"):
        trt_logger.log(FakeSeverity("INFO"), "[MemUsageChange] Init CUDA")
        trt_logger.log(FakeSeverity("WARNING"), "onnx2trt_utils.cpp: INT64 weights cast down")
    assert [record.getMessage() for record in caplog.records] == [
        "[TensorRT] onnx2trt_utils.cpp: INT64 weights cast down"]


def test_elapsed_time_lines_where_there_is_no_progress_monitor(onnx_file, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(build, "TICK_SECONDS", 0.01)
    ticked = threading.Event()
    lines = []

    class Watcher(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())
            if "still building" in record.getMessage():
                ticked.set()

    watcher = Watcher()
    build.logger.addHandler(watcher)
    trt = FakeTrt82Builder(while_building=lambda: ticked.wait(30))
    try:
        with caplog.at_level(logging.INFO, logger="trt_infer.engine.build"):
            build.build_engine(onnx_file, str(tmp_path / "m.engine"), trt_module=trt, gpu=NANO)
    finally:
        build.logger.removeHandler(watcher)
    assert ticked.is_set() and any(line.strip().endswith("s elapsed") for line in lines)


def test_never_overwrites_the_onnx_input(onnx_file):
    with pytest.raises(SettingError, match="would overwrite an ONNX file"):
        build.build_engine(onnx_file, onnx_file, trt_module=FakeTrt82Builder(), gpu=NANO)


@pytest.mark.parametrize("text, expected", [
    ("input:1x3x224x224/1x3x320x320/1x3x640x640", ("input", ((1, 3, 224, 224), (1, 3, 320, 320), (1, 3, 640, 640)))),
    ("serving:0/images:1x3x64x64", ("serving:0/images", ((1, 3, 64, 64),) * 3)),
])
def test_parse_profile(text, expected):
    assert build.parse_profile(text) == expected


@pytest.mark.parametrize("text", ["input", "input:1x3/1x3x4x4/1x3x4x4", "input:1x3x4x4/1x3x4x4", ":1x3", "input:axb"])
def test_parse_profile_rejects_malformed(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected NAME:MIN/OPT/MAX"):
        build.parse_profile(text)


def test_profile_for_an_unknown_input_is_an_error():
    with pytest.raises(build.BuildError, match="profile for 'images', but the network's inputs are 'input'"):
        build.resolve_profiles([("input", (1, 3, -1, -1))], profiles={"images": ((1, 3, 8, 8),) * 3})


def test_cli_reports_a_missing_onnx(tmp_path, caplog):
    args = build.add_arguments(argparse.ArgumentParser()).parse_args([str(tmp_path / "missing.onnx")])
    assert build.run(args) == 2
    (record,) = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert record.levelno == logging.ERROR and record.getMessage().startswith("ONNX file not found: ")


def test_the_build_command_prints_errors_with_its_name_and_exits_2_for_bad_input(tmp_path, capsys):
    assert build.main([str(tmp_path / "missing.onnx"), "-q"]) == 2
    assert capsys.readouterr().err == "convert build: error: ONNX file not found: {}\n".format(
        tmp_path / "missing.onnx")
    with pytest.raises(SystemExit) as exit_info:
        build.main([str(tmp_path / "m.onnx"), "--precision", "int4"])
    assert exit_info.value.code == 2 and "invalid choice: 'int4'" in capsys.readouterr().err


# --- INT8 calibration data: the runtime's own pre-processing over a folder of images ---

class FakeDevice(object):
    """Stands in for pycuda device memory: records what get_batch hands to TensorRT."""

    def __init__(self):
        self.uploads = []
        self.closed = False

    def upload(self, array):
        self.uploads.append(array.copy())
        return 0xC0FFEE

    def close(self):
        self.closed = True


def test_calibrator_feeds_preprocessed_batches_and_writes_the_cache(tmp_path, caplog):
    cv2 = pytest.importorskip("cv2", reason="needs OpenCV to read calibration images")
    from trt_infer.spec import ModelSpec

    rng = np.random.RandomState(3)
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(5):
        cv2.imwrite(str(folder / "{}.png".format(index)), rng.randint(0, 256, (48, 64, 3)).astype(np.uint8))
    (folder / "notes.txt").write_text(u"not an image")
    spec = ModelSpec({"name": "m", "task": "classification", "outputs": {"scores": "prob"},
                      "input": {"name": "input", "width": 32, "height": 24, "layout": "NCHW", "color_order": "BGR",
                                "scale": 1.0, "mean": [0, 0, 0], "std": [255, 255, 255]}})
    devices = []
    cache = str(tmp_path / "calib.cache")
    with caplog.at_level(logging.INFO, logger="trt_infer.engine.calibration"):
        calibrator = calibration.make_calibrator(FakeTrt82Builder, spec, str(folder), cache, batch_size=2,
                                                 device_factory=lambda: devices.append(FakeDevice()) or devices[-1])
    assert caplog.messages == ["INT8 calibration: 5 images from {}".format(folder)]
    assert calibrator.read_calibration_cache() is None
    assert calibrator.get_batch(["input"]) == [0xC0FFEE] and calibrator.get_batch(["input"]) == [0xC0FFEE]
    assert calibrator.get_batch(["input"]) is None          # 5 images make two full batches of 2
    first = devices[0].uploads[0]
    assert first.shape == (2, 3, 24, 32) and first.dtype == np.float32
    image = cv2.imread(str(folder / "0.png"))
    expected = cv2.resize(image, (32, 24), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1) / 255.0
    np.testing.assert_allclose(first[0], expected, atol=1e-5)
    calibrator.write_calibration_cache(b"TRT-8201-EntropyCalibration2\n")
    calibrator.close()
    assert devices[0].closed and calibration.read_cache(cache) == b"TRT-8201-EntropyCalibration2\n"


def test_calibration_without_images_or_cache_says_what_to_give(tmp_path):
    with pytest.raises(calibration.CalibrationError, match="needs the model spec"):
        calibration.make_calibrator(FakeTrt82Builder, None, str(tmp_path), None)
    with pytest.raises(calibration.CalibrationError, match="no images"):
        calibration.list_images(str(tmp_path))


# --- INT8 calibration inside the build: errors, the CUDA context, the timing cache on 8.2 ---

def calibration_setup(tmp_path, bad_image=None):
    cv2 = pytest.importorskip("cv2", reason="needs OpenCV to read calibration images")
    from trt_infer.spec import ModelSpec

    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(4):
        cv2.imwrite(str(folder / "{}.png".format(index)), np.full((24, 32, 3), 40 * index, np.uint8))
    if bad_image is not None:
        (folder / bad_image).write_bytes(b"not a png")
    spec = ModelSpec({"name": "m", "task": "classification", "outputs": {"scores": "prob"},
                      "input": {"name": "input", "width": 32, "height": 24, "layout": "NCHW"}})
    return spec, str(folder)


@pytest.mark.parametrize("version", ["8.2.1.8", "8.5.2.2", "8.6.1.6"])
def test_a_failing_calibration_batch_is_a_calibration_error_after_the_build(onnx_file, tmp_path, monkeypatch,
                                                                            version):
    pycuda = FakePycuda(integrated=False).install(monkeypatch)
    spec, folder = calibration_setup(tmp_path, bad_image="1_broken.png")   # the third of five images
    trt = FakeTrtBuilder(fast_int8=True, version=version, inputs=(("input", (1, 3, 24, 32)),))
    engine = str(tmp_path / "m.engine")
    try:
        with pytest.raises(calibration.CalibrationError, match=r"1_broken.png: OpenCV cannot read this image"):
            build.build_engine(onnx_file, engine, precision="int8", trt_module=trt, gpu=XAVIER, spec=spec,
                               calibration_dir=folder, calibration_cache=str(tmp_path / "calib.cache"))
    except FakeTrtTerminate as abort:   # 8.2 would have aborted the process here
        pytest.fail("the calibrator let an exception reach TensorRT {}: {}".format(version, abort))
    assert trt.stderr == [] and trt.calibration_batches == 2      # nothing escaped; stopped at the bad image
    assert not os.path.exists(engine) and not os.path.exists(str(tmp_path / "calib.cache"))
    assert pycuda.exit_problems() == [] and pycuda.live == {}


def test_an_error_before_the_build_leaves_no_cuda_context_pushed(onnx_file, tmp_path, monkeypatch):
    pycuda = FakePycuda(integrated=False).install(monkeypatch)
    spec, folder = calibration_setup(tmp_path)

    def unreadable(config, path):
        raise IOError("{}: Permission denied".format(path))

    monkeypatch.setattr(build, "_load_timing_cache", unreadable)
    with pytest.raises(IOError, match="Permission denied"):
        build.build_engine(onnx_file, str(tmp_path / "m.engine"), precision="int8", gpu=XAVIER, spec=spec,
                           trt_module=FakeTrtBuilder(fast_int8=True), calibration_dir=folder,
                           timing_cache=str(tmp_path / "timing.cache"))
    assert pycuda.exit_problems() == []


def test_int8_calibration_runs_every_batch_in_the_primary_context(onnx_file, tmp_path, monkeypatch):
    pycuda = FakePycuda(integrated=False).install(monkeypatch)
    spec, folder = calibration_setup(tmp_path)
    trt = FakeTrtBuilder(fast_int8=True, inputs=(("input", (1, 3, 24, 32)),))
    build.build_engine(onnx_file, str(tmp_path / "m.engine"), precision="int8", trt_module=trt, gpu=XAVIER,
                       spec=spec, calibration_dir=folder, calibration_cache=str(tmp_path / "calib.cache"))
    assert trt.calibration_batches == 4 and trt.stderr == []
    assert (tmp_path / "calib.cache").read_bytes().startswith(b"TRT-8201-EntropyCalibration2")
    assert pycuda.exit_problems() == [] and pycuda.live == {} and pycuda.leaked == []


def test_the_timing_cache_is_read_and_written_through_8_2s_create_timing_cache(onnx_file, tmp_path):
    timing = tmp_path / "timing.cache"
    trt = FakeTrt82Builder()
    build.build_engine(onnx_file, str(tmp_path / "a.engine"), trt_module=trt, gpu=NANO, timing_cache=str(timing))
    assert timing.read_bytes() == b"+timings"                  # a new cache starts from an empty buffer
    trt = FakeTrt82Builder()
    build.build_engine(onnx_file, str(tmp_path / "b.engine"), trt_module=trt, gpu=NANO, timing_cache=str(timing))
    assert timing.read_bytes() == b"+timings+timings" and trt.config.timing_cache.data == b"+timings"
