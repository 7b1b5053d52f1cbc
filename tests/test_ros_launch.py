"""launch/nano.launch.py and config/*.yaml against the node's parameter table.

`launch`/`launch_ros` are not installable here, so the launch file is parsed (ast), not run:
every parameter it sets and every key of the YAML files it and the tests use must be one the
node declares, with a value the node accepts.
"""
import ast
import os

import pytest

from trt_infer.ros import parameters

yaml = pytest.importorskip("yaml", reason="needs PyYAML to read the configs")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH_FILE = os.path.join(REPO_ROOT, "launch", "nano.launch.py")
NODE_CONFIGS = ["nano.yaml", "detector.yaml", "segmenter.yaml"]
LAUNCH_ARGUMENTS = {"model_config", "params_file", "engine_path", "onnx_path", "camera_topic", "namespace"}


def _launch_tree():
    with open(LAUNCH_FILE) as handle:
        return ast.parse(handle.read(), LAUNCH_FILE)


def _calls(tree, name):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and getattr(node.func, "id", getattr(node.func, "attr", None)) == name]


def _string(node):
    value = node.value if isinstance(node, ast.Constant) else getattr(node, "s", None)  # ast.Str before 3.8
    return value if isinstance(value, str) else None


def _node_parameters(path):
    with open(path) as handle:
        data = yaml.safe_load(handle)
    assert list(data) == ["/**"], "{}: parameters go under '/**: ros__parameters:'".format(path)
    return data["/**"]["ros__parameters"]


def test_launch_file_sets_only_declared_parameters():
    tree = _launch_tree()
    nodes = _calls(tree, "Node")
    assert len(nodes) == 1
    keywords = {keyword.arg: keyword.value for keyword in nodes[0].keywords}
    assert _string(keywords["executable"]) == "trt_infer_node"
    set_names = set()
    for node in ast.walk(keywords["parameters"]):
        if isinstance(node, ast.Dict):
            set_names.update(_string(key) for key in node.keys)
    for node in ast.walk(tree):  # the dict the overrides are built from
        if isinstance(node, ast.Dict) and any(_string(key) == "onnx_path" for key in node.keys):
            set_names.update(_string(key) for key in node.keys)
    assert set_names >= {"engine_path", "onnx_path"}
    undeclared = set_names - set(parameters.declared_names())
    assert not undeclared, "the launch file sets parameters the node does not declare: {}".format(undeclared)


def test_launch_arguments_are_declared_and_used():
    tree = _launch_tree()
    declared = {_string(call.args[0]) for call in _calls(tree, "DeclareLaunchArgument")}
    used = {_string(call.args[0]) for call in _calls(tree, "LaunchConfiguration")}
    used |= {_string(call.args[0]) for call in _calls(tree, "argument")}
    used.discard(None)  # LaunchConfiguration(name) inside the argument() helper
    assert declared == LAUNCH_ARGUMENTS
    assert used == declared


def test_launch_file_points_at_the_configs_the_tests_use():
    constants = {target.id: _string(node.value) for node in _launch_tree().body if isinstance(node, ast.Assign)
                 for target in node.targets if isinstance(target, ast.Name)}
    assert constants["PARAMS_FILE"] == "nano.yaml" and constants["MODEL_CONFIG"] == "detector.yaml"
    for name in (constants["PARAMS_FILE"], constants["MODEL_CONFIG"]):
        assert os.path.isfile(os.path.join(REPO_ROOT, "config", name))


@pytest.mark.parametrize("config", NODE_CONFIGS)
def test_config_keys_are_declared_with_accepted_values(config):
    values = _node_parameters(os.path.join(REPO_ROOT, "config", config))
    for name, value in values.items():
        assert name in parameters.BY_NAME, "{}: {} is not a parameter of the node".format(config, name)
        assert parameters.BY_NAME[name].problem(value) is None, config


@pytest.mark.parametrize("config", ["detector.yaml", "segmenter.yaml"])
def test_model_configs_name_a_spec_that_loads(config):
    from trt_infer.spec import load_spec

    spec_path = _node_parameters(os.path.join(REPO_ROOT, "config", config))["model_spec"]
    spec = load_spec(os.path.join(REPO_ROOT, spec_path))
    assert spec.task in ("ssd", "segmentation") and spec.labels
