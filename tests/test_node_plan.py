"""The node's start-up decisions without rclpy: which backend it loads and why, which topics,
message types and QoS it creates. Runs under Python 3.6."""
import logging
import os

import pytest

from tests.conftest import REPO_ROOT
from trt_infer.errors import StartupError
from trt_infer.ros.config import NodeConfig
from trt_infer.ros.plan import choose_backend, publisher_plan, without_tensorrt
from trt_infer.spec import load_spec


@pytest.fixture(scope="module")
def spec():
    return load_spec(os.path.join(REPO_ROOT, "config", "models", "blazeface.yaml"))


@pytest.fixture
def files(tmp_path):
    onnx, engine = tmp_path / "model.onnx", tmp_path / "model.engine"
    onnx.write_bytes(b"onnx")
    engine.write_bytes(b"engine")
    return str(onnx), str(engine)


def never():
    raise AssertionError("TensorRT was probed although the choice does not depend on it")


def config(spec, **values):
    return NodeConfig(values, spec)


def test_auto_with_only_onnx_runs_onnx_runtime_without_probing_tensorrt(spec, files, caplog):
    onnx, _ = files
    with caplog.at_level(logging.INFO, logger="trt_infer.ros.plan"):
        choice = choose_backend(config(spec, onnx_path=onnx), never)
    assert (choice.kind, choice.model, choice.from_cache) == ("onnxruntime", onnx, False)
    assert "no engine_path" in choice.reason and onnx in choice.reason
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [(logging.INFO, choice.reason)]


def test_auto_uses_the_engine_when_tensorrt_imports(spec, files):
    onnx, engine = files
    choice = choose_backend(config(spec, onnx_path=onnx, engine_path=engine), lambda: True)
    assert (choice.kind, choice.model, choice.from_cache) == ("tensorrt", engine, False)


def test_auto_without_tensorrt_falls_back_to_onnx_runtime_with_a_warning(spec, files, caplog):
    onnx, engine = files
    with caplog.at_level(logging.INFO, logger="trt_infer"):
        choice = choose_backend(config(spec, onnx_path=onnx, engine_path=engine), lambda: False)
    assert (choice.kind, choice.model) == ("onnxruntime", onnx)
    assert [record.levelno for record in caplog.records] == [logging.WARNING]
    message = caplog.records[0].getMessage()
    assert "TensorRT does not import" in message and engine in message and onnx in message
    assert "warning" not in message.lower()


def test_auto_without_tensorrt_and_without_onnx_says_what_to_set(spec, files):
    _, engine = files
    with pytest.raises(StartupError, match="backend auto needs onnx_path") as caught:
        choose_backend(config(spec, engine_path=engine), lambda: False)
    assert "-p onnx_path:=" in str(caught.value)


def test_onnxruntime_needs_an_existing_onnx_file(spec, tmp_path):
    with pytest.raises(StartupError, match="backend onnxruntime needs onnx_path"):
        choose_backend(config(spec, backend="onnxruntime"), never)
    missing = str(tmp_path / "missing" / "model.onnx")
    with pytest.raises(StartupError) as caught:
        choose_backend(config(spec, backend="onnxruntime", onnx_path=missing), never)
    for words in ("onnx_path", missing, "convert"):
        assert words in str(caught.value)


def test_tensorrt_without_an_engine_file_takes_the_engine_cache(spec, files, tmp_path):
    onnx, _ = files
    missing_engine = str(tmp_path / "absent.engine")
    choice = choose_backend(config(spec, backend="tensorrt", onnx_path=onnx, engine_path=missing_engine,
                                   build_if_missing=True), never)
    assert (choice.kind, choice.model, choice.from_cache) == ("tensorrt", None, True)
    assert choice.cache_dir == os.path.dirname(onnx)
    assert missing_engine in choice.reason and "built there if missing" in choice.reason
    cache = str(tmp_path / "cache")
    assert choose_backend(config(spec, backend="tensorrt", onnx_path=onnx, cache_dir=cache), never).cache_dir == cache


def test_auto_with_build_if_missing_and_tensorrt_takes_the_engine_cache(spec, files):
    onnx, _ = files
    choice = choose_backend(config(spec, onnx_path=onnx, build_if_missing=True), lambda: True)
    assert (choice.kind, choice.from_cache) == ("tensorrt", True)


def test_the_engine_cache_needs_an_existing_onnx_file(spec, tmp_path):
    missing = str(tmp_path / "model.onnx")
    with pytest.raises(StartupError) as caught:
        choose_backend(config(spec, backend="tensorrt", onnx_path=missing, build_if_missing=True), never)
    assert "onnx_path" in str(caught.value) and missing in str(caught.value)


def test_tensorrt_without_engine_or_onnx_names_the_build_command(spec, tmp_path):
    engine = str(tmp_path / "absent.engine")
    with pytest.raises(StartupError) as caught:
        choose_backend(config(spec, backend="tensorrt", engine_path=engine), never)
    assert engine in str(caught.value) and "convert build" in str(caught.value)


def test_detections_plan(spec):
    plan = publisher_plan("detections", config(spec))
    assert [(p.role, p.topic, p.message, p.qos) for p in plan.publications] == [
        ("detections", "detections", "vision_msgs/Detection2DArray", "result"),
        ("overlay", "overlay", "sensor_msgs/Image", "result"),
        ("statistics", "statistics", "diagnostic_msgs/DiagnosticStatus", "result"),
        ("diagnostics", "/diagnostics", "diagnostic_msgs/DiagnosticArray", "result"),
    ]
    assert plan.needs_vision_msgs and plan.counters == ["overlay_published"]
    assert (plan.labels.topic, plan.labels.message, plan.labels.qos) == ("label_info", "vision_msgs/LabelInfo",
                                                                        "latched")
    assert (plan.labels_fallback.topic, plan.labels_fallback.message) == ("labels", "std_msgs/String")
    assert plan.subscription == ("image", "sensor_msgs/Image", "best_effort", 1, False)


def test_classification_plan(spec):
    plan = publisher_plan("classification", config(spec))
    assert plan.topics()[0] == "classification" and plan.publications[0].message == "vision_msgs/Classification"
    assert plan.needs_vision_msgs and "detections" not in plan.topics()


def test_mask_plan_needs_no_vision_msgs_and_counts_colour_masks(spec):
    plan = publisher_plan("mask", config(spec))
    assert plan.topics() == ["segmentation/mask", "segmentation/color", "overlay", "statistics", "/diagnostics"]
    assert [p.role for p in plan.publications[:2]] == ["mask", "color"]
    assert not plan.needs_vision_msgs and plan.counters == ["color_published", "overlay_published"]


def test_subscription_follows_the_input_parameters(spec):
    plan = publisher_plan("detections", config(spec, compressed_input=True, input_reliability="reliable",
                                               input_depth=3))
    assert plan.subscription == ("image/compressed", "sensor_msgs/CompressedImage", "reliable", 3, True)


def test_an_unknown_result_kind_is_refused(spec):
    with pytest.raises(ValueError, match="detections, classification, mask"):
        publisher_plan("boxes", config(spec))


def test_tensorrt_that_does_not_import_names_the_engine_and_onnx_runtime(spec, files, tmp_path):
    onnx, engine = files
    choice = choose_backend(config(spec, backend="tensorrt", engine_path=engine, onnx_path=onnx), never)
    message = without_tensorrt(choice, onnx, "No module named 'tensorrt'")
    assert message.startswith("backend tensorrt: TensorRT does not import here (No module named 'tensorrt')")
    assert "the engine " + engine in message and "-p backend:=onnxruntime" in message
    assert "-p onnx_path:=" not in message  # it is set already
    cached = choose_backend(config(spec, backend="tensorrt", onnx_path=onnx, build_if_missing=True), never)
    message = without_tensorrt(cached, onnx, "No module named 'tensorrt'")
    assert "the engine of {} from the engine cache in {}".format(onnx, os.path.dirname(onnx)) in message
    only_engine = choose_backend(config(spec, backend="tensorrt", engine_path=engine), never)
    assert "-p backend:=onnxruntime -p onnx_path:=model.onnx" in without_tensorrt(only_engine, "", "reason")
