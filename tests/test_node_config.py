"""The node's configuration without rclpy: parameter values checked against the one parameter
table, the threshold parameters derived from the spec's threshold schema. Runs under Python 3.6."""
import os

import pytest

from tests.conftest import REPO_ROOT
from trt_infer.errors import StartupError, TrtInferError
from trt_infer.ros import config as node_config
from trt_infer.ros import parameters
from trt_infer.schema import validate
from trt_infer.spec import THRESHOLDS_SCHEMA, load_spec

BLAZEFACE = os.path.join(REPO_ROOT, "config", "models", "blazeface.yaml")


@pytest.fixture(scope="module")
def spec():
    return load_spec(BLAZEFACE)


def test_threshold_parameters_take_kind_and_limits_from_the_spec_schema():
    for name, key in parameters.THRESHOLD_PARAMETERS.items():
        param, field = parameters.BY_NAME[name], THRESHOLDS_SCHEMA[key]
        assert param.field is field
        assert param.kind is field.kind and param.default == parameters.FROM_SPEC and param.runtime
    assert parameters.BY_NAME["max_detections"].allowed() == "{} .. {}".format(
        THRESHOLDS_SCHEMA["max_detections"].minimum, THRESHOLDS_SCHEMA["max_detections"].maximum)


@pytest.mark.parametrize("name, key, values", [
    ("score_threshold", "score", [-0.01, 0.0, 0.5, 1.0, 1.01]),
    ("nms_iou_threshold", "nms_iou", [-1.0, 0.0, 1.0, 2.0]),
    ("max_detections", "max_detections", [0, 1, 100, 10000, 10001]),
])
def test_the_node_and_the_spec_accept_the_same_threshold_values(name, key, values):
    for value in values:
        node_ok = parameters.BY_NAME[name].problem(value) is None
        try:
            validate({key: value}, THRESHOLDS_SCHEMA, "thresholds")
            spec_ok = True
        except ValueError:
            spec_ok = False
        assert node_ok == spec_ok, (name, value)


def test_every_parameter_has_a_field_and_a_description():
    for param in parameters.PARAMETERS:
        assert param.field.kind is param.kind and param.description, param.name


@pytest.mark.parametrize("name, value, words", [
    ("backend", "cuda", ["backend", "'cuda'", "auto, tensorrt, onnxruntime", "-p backend:="]),
    ("score_threshold", 1.5, ["score_threshold", "1.5", "between 0 and 1", "params file"]),
    ("input_depth", 0, ["input_depth", "between 1 and 100", "1 .. 100"]),
    ("compressed_input", "yes", ["compressed_input", "'yes'", "must be bool", "true/false"]),
])
def test_a_bad_value_is_a_startup_error_naming_parameter_value_allowed_and_fix(name, value, words):
    with pytest.raises(StartupError) as caught:
        node_config.check_value(name, value)
    for word in words:
        assert word in str(caught.value)
    assert isinstance(caught.value, TrtInferError)


def test_an_integer_for_a_float_parameter_becomes_a_float():
    value = node_config.check_value("statistics_period", 2)
    assert value == 2.0 and isinstance(value, float)


def test_startup_names_leave_out_the_thresholds_declared_after_the_spec():
    names = node_config.startup_names()
    assert "model_spec" in names and not set(parameters.THRESHOLD_PARAMETERS) & set(names)
    assert set(names) | set(parameters.THRESHOLD_PARAMETERS) == set(parameters.declared_names())
    assert set(node_config.PATH_PARAMETERS) <= set(names)


def test_config_defaults_come_from_the_table_and_thresholds_from_the_spec(spec):
    config = node_config.NodeConfig({"model_spec": BLAZEFACE}, spec)
    assert config.backend == "auto" and config.input_depth == 1 and config.publish_overlay is True
    assert config.score_threshold == spec.thresholds.score
    assert config.thresholds == {"score": spec.thresholds.score, "nms_iou": spec.thresholds.nms_iou,
                                 "max_detections": spec.thresholds.max_detections}
    assert node_config.threshold_defaults(spec)["max_detections"] == spec.thresholds.max_detections
    with pytest.raises(AttributeError):
        config.no_such_parameter


def test_config_values_override_and_are_checked(spec):
    config = node_config.NodeConfig({"model_spec": BLAZEFACE, "score_threshold": 1, "max_detections": 7}, spec)
    assert config.thresholds == {"score": 1.0, "nms_iou": spec.thresholds.nms_iou, "max_detections": 7}
    with pytest.raises(StartupError, match="max_detections"):
        node_config.NodeConfig({"model_spec": BLAZEFACE, "max_detections": 10001}, spec)
    with pytest.raises(StartupError, match="score_treshold is not a parameter"):
        node_config.NodeConfig({"score_treshold": 0.5}, spec)


def test_model_spec_must_be_set_and_load():
    with pytest.raises(StartupError, match="model_spec is not set"):
        node_config.load_model_spec("")
    with pytest.raises(StartupError, match="nothing.yaml") as caught:
        node_config.load_model_spec("config/models/nothing.yaml")
    assert "cannot read the model spec" in str(caught.value)
    assert node_config.load_model_spec(BLAZEFACE).task == "ssd"


def test_runtime_changes_are_checked_by_the_same_table():
    assert node_config.runtime_changes({"score_threshold": 1, "use_sim_time": True}) == (
        {"score_threshold": 1.0}, None)
    updates, reason = node_config.runtime_changes({"score_threshold": 1.5})
    assert updates is None and "score_threshold" in reason and "between 0 and 1" in reason
    updates, reason = node_config.runtime_changes({"class_id_format": "label", "model_spec": "other.yaml"})
    assert updates is None and "read-only" in reason and "model_spec" in reason
    assert node_config.threshold_values({"max_detections": 3, "class_id_format": "label"}) == {"max_detections": 3}


def test_config_update_applies_accepted_changes(spec):
    config = node_config.NodeConfig({}, spec)
    config.update({"class_id_format": "label", "score_threshold": 0.9})
    assert config.class_id_format == "label" and config.thresholds["score"] == 0.9


@pytest.mark.parametrize("text, expected", [
    ("Wrong parameter type, expected '3' got '2'", "Wrong parameter type, expected 'double' got 'integer'"),
    ("Wrong parameter type, expected 'Type.DOUBLE' got 'Type.STRING'",
     "Wrong parameter type, expected 'double' got 'string'"),
    ("Trying to set parameter 'max_detections' to '1' of type 'DOUBLE', expecting type 'INTEGER'",
     "Trying to set parameter 'max_detections' to '1' of type 'double', expecting type 'integer'"),
    ("expected 'PARAMETER_STRING_ARRAY' got '9'", "expected 'string array' got 'string array'"),
])
def test_rclpy_type_codes_are_translated_and_values_left_alone(text, expected):
    assert node_config.type_names(text) == expected


def test_a_command_line_value_that_rcl_dropped_for_its_type_is_the_one_checked():
    # rcl keeps the params file's 0.5 when -p gives a string: the user meant the -p
    overrides = {"score_threshold": 0.5, "model_spec": "a.yaml"}
    values = node_config.start_values(["score_threshold", "model_spec", "backend"], overrides,
                                      [("score_threshold", "abc")])
    assert values == {"score_threshold": "abc", "model_spec": "a.yaml"}
    with pytest.raises(StartupError) as caught:
        node_config.check_value("score_threshold", values["score_threshold"])
    assert "score_threshold must be float, got 'abc'" in str(caught.value)
    # an integer for a float parameter is accepted (rclpy alone would refuse it)
    values = node_config.start_values(["score_threshold"], overrides, [("score_threshold", 1)])
    assert node_config.check_value("score_threshold", values["score_threshold"]) == 1.0
    # same type: rcl applied it already; names that are not asked for are left out
    assert node_config.start_values(["backend"], {"backend": "onnxruntime"}, [("backend", "auto")]) == {
        "backend": "onnxruntime"}


def test_misspelt_parameters_are_named_once_with_the_closest_name():
    line = node_config.unknown_parameters(["scor_threshold", "model_spec", "scor_threshold", "use_sim_time",
                                           "qos_overrides./image.subscription.depth"])
    assert line.startswith("parameter scor_threshold (did you mean score_threshold?) is not a parameter")
    assert line.count("scor_threshold") == 1 and "\n" not in line
    assert node_config.unknown_parameters(["model_spec", "use_sim_time", "start_type_description_service"]) is None
    two = node_config.unknown_parameters(["zzz", "onx_path"])
    assert two.startswith("parameters onx_path (did you mean onnx_path?), zzz are not")
