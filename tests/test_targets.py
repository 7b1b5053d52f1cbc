"""Target profiles: the facts of the reference tables, selectable by name, default by TensorRT version."""
import logging
import sys
import types

import pytest

from converter import targets
from converter.targets import CAST_DOWN, OK, REJECTED


def test_profiles_are_selectable_by_name_and_unknown_names_list_the_choices():
    assert set(targets.PROFILES) == {"jetson-nano", "trt8.6", "trt10"}
    assert targets.get_target("trt10").name == "trt10"
    with pytest.raises(targets.UnknownTarget) as error:
        targets.get_target("jetson-tx2")
    assert "jetson-nano" in str(error.value) and "trt10" in str(error.value)


def test_jetson_nano_profile_encodes_tensorrt_8_2():
    nano = targets.get_target("jetson-nano")
    assert nano.tensorrt[1] == "8.2" and nano.sm == "5.3"
    assert nano.max_opset == 13 and nano.export_opset == 13
    assert "fp16" in nano.precisions and not nano.supports_int8 and "INT8" in nano.no_int8_reason
    assert nano.default_workspace_mib == 256
    assert nano.dtype_rule("UINT8") == REJECTED and nano.dtype_rule("INT64") == CAST_DOWN
    assert nano.dtype_rule("FLOAT") == OK and nano.dtype_rule("STRING") == REJECTED
    assert "uint8" not in nano.input_dtypes and "int64" not in nano.input_dtypes
    assert {"NonZero", "Mod", "OneHot", "SequenceAt", "QLinearConv"} <= set(nano.unsupported_ops)
    assert "EfficientNMS_TRT" in nano.plugins and nano.nms_plugin == "EfficientNMS_TRT"
    assert nano.initializer_inputs["Conv"] == {1: "weights", 2: "bias"}
    assert nano.initializer_inputs["Resize"] == {2: "scales"}
    assert set(nano.resize_modes) == {"nearest", "linear"}
    assert nano.reshape_allowzero_required and not nano.reshape_allowzero_fixed
    assert nano.static_shapes


def test_later_targets_accept_what_tensorrt_added_since_8_2():
    trt86, trt10 = targets.get_target("trt8.6"), targets.get_target("trt10")
    for target in (trt86, trt10):
        assert target.dtype_rule("UINT8") == OK and target.supports_int8
        assert "NonZero" not in target.unsupported_ops and "SequenceAt" in target.unsupported_ops
        assert target.reshape_allowzero_fixed and "cubic" in target.resize_modes
    assert trt10.dtype_rule("INT64") == OK and trt86.dtype_rule("INT64") == CAST_DOWN
    assert trt10.export_opset == 17 and trt10.max_opset >= 17
    assert "ReduceMean" in trt10.initializer_inputs and "Conv" not in trt10.initializer_inputs


# onnx/onnx-tensorrt docs/operators.md per GA tag (release/8.2-GA, 8.5-GA, 8.6-GA, 10.0-GA): Y/N per op.
# trt8.6 covers TensorRT 8.5 too, so an op counts as supported there only when 8.5 imports it.
OPERATORS_MD = {
    "Shrink": ("N", "Y", "Y", "Y"), "Xor": ("N", "Y", "Y", "Y"), "NonZero": ("N", "Y", "Y", "Y"),
    "RoiAlign": ("N", "Y", "Y", "Y"), "GridSample": ("N", "Y", "Y", "Y"), "IsInf": ("N", "N", "Y", "Y"),
    "Mod": ("N", "N", "Y", "Y"), "OneHot": ("N", "N", "Y", "Y"), "Hardmax": ("N", "N", "N", "Y"),
    "Compress": ("N", "N", "N", "N"), "Unique": ("N", "N", "N", "N"), "MaxUnpool": ("N", "N", "N", "N"),
}


@pytest.mark.parametrize("op", sorted(OPERATORS_MD))
def test_unsupported_ops_follow_onnx_tensorrt_operators_md(op):
    nano8_2, trt8_5, trt8_6, trt10_0 = OPERATORS_MD[op]
    expected = {"jetson-nano": nano8_2 == "N", "trt8.6": "N" in (trt8_5, trt8_6), "trt10": trt10_0 == "N"}
    found = dict((name, op in targets.get_target(name).unsupported_ops) for name in expected)
    assert found == expected


@pytest.mark.parametrize("version,expected", [("8.0.1.6", "jetson-nano"), ("8.2.1.8", "jetson-nano"),
                                              ("8.5.2", "trt8.6"), ("8.6.1", "trt8.6"), ("10.3.0", "trt10")])
def test_detected_tensorrt_version_selects_the_profile(version, expected):
    assert targets.target_for_tensorrt_version(version).name == expected


def test_too_old_or_unreadable_versions_are_refused():
    with pytest.raises(targets.UnknownTarget):
        targets.target_for_tensorrt_version("7.1.3")
    with pytest.raises(targets.UnknownTarget):
        targets.target_for_tensorrt_version("unknown")


def test_default_is_the_installed_tensorrt_on_a_device(monkeypatch, caplog):
    # A stand-in `tensorrt` module carrying only a version string: what a device's import looks like.
    monkeypatch.setitem(sys.modules, "tensorrt", types.SimpleNamespace(__version__="10.3.0.30"))
    with caplog.at_level(logging.INFO, logger="converter.targets"):
        assert targets.default_target().name == "trt10"
    messages = caplog.messages
    assert "10.3.0.30" in messages[0]


def test_default_on_a_host_is_jetson_nano_with_a_message(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "tensorrt", None)   # makes `import tensorrt` fail
    with caplog.at_level(logging.INFO, logger="converter.targets"):
        assert targets.default_target().name == "jetson-nano"
    messages = caplog.messages
    assert "no TensorRT" in messages[0] and "--target" in messages[0]
