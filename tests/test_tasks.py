"""The task table (trt_infer/tasks.py) is the one home of the tasks: every row's module has what the
row declares, a new task is one module plus one row, and no other runtime or tools module decides
behaviour by comparing against task names."""
import ast
import importlib
import json
import os
import sys

import pytest

from tests.support import toy_task
from tests.test_pipeline import classifier_spec, make_backend, two_colour_image  # noqa: F401 (fixture)
from trt_infer import tasks
from trt_infer.errors import SpecError
from trt_infer.pipeline import Pipeline
from trt_infer.result import Result
from trt_infer.schema import Section
from trt_infer.spec import ModelSpec

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def test_every_row_declares_an_importable_module_schema_and_classes():
    names = tasks.task_names()
    assert len(set(names)) == len(names)
    for task in tasks.TASKS:
        module = importlib.import_module(task.module)
        assert isinstance(module.SCHEMA, dict) and module.SCHEMA, task
        assert isinstance(getattr(module, task.postprocessor), type), task
        assert task.outputs and task.publishes in tasks.PUBLISHES and task.doc, task
        if task.gpu_postprocessor is not None:
            assert isinstance(task.gpu_postprocessor_class(), type), task


def test_get_task_names_the_known_tasks():
    assert tasks.get_task("segmentation").gpu_postprocessor == "trt_infer.cuda.segmentation:GpuSegmentation"
    with pytest.raises(SpecError) as error:
        tasks.get_task("yolo")
    assert "'yolo'" in str(error.value)
    for name in tasks.task_names():
        assert name in str(error.value)


def test_a_row_must_say_what_the_node_publishes():
    with pytest.raises(ValueError, match="publishes 'boxes'"):
        tasks.Task("odd", "x", ("a",), "X", "boxes", doc="")


def test_no_schema_key_is_hidden_by_a_dict_attribute():
    """Section keys read as attributes; a key named like a dict method (items, get...) would not."""
    from tools import generate_docs

    for section, schema, _ in generate_docs._spec_sections():
        for key in schema:
            assert not hasattr(dict, key), "{}.{} shadows dict.{}".format(section, key, key)


def test_the_section_is_read_only_and_serialises_like_a_dict():
    spec = classifier_spec()
    assert isinstance(spec.section, Section) and spec.section.top_k == 2
    with pytest.raises(TypeError, match="read-only"):
        spec.section["top_k"] = 3
    with pytest.raises(TypeError, match="read-only"):
        spec.section.top_k = 3
    with pytest.raises(AttributeError, match="top_k"):
        spec.section.topk
    assert json.loads(json.dumps(spec.section)) == {"top_k": 2, "activation": "none"}
    import copy
    assert copy.deepcopy(spec.section) == spec.section


# Digests of the shipped specs as engine sidecars record them (`spec_digest`): a change must be
# deliberate (then update these). They cover the spec's own task section only.
SHIPPED_DIGESTS = {
    "blazeface.yaml": "ec586e1962bf8205948d1501d9b63a38b95717c8474742ad067c4e531f2d632b",
    "selfie_segmentation.yaml": "94d9a2994e8977fdbda8560522c6a3797fb30e5b1c4cf93822f9287cdf642d39",
    "ssd_mobilenet_v1_voc.yaml": "d6d06ce298841e13c51f82db2e322ca7caa2c44de1f9c1008966b54733db7c48",
    "ssd_mobilenet_v2_coco.yaml": "7ac0f5ef2723c6f475ec6da57e875f3e16836bdadbadfb13fe2c1c0d9de33991",
}


@pytest.mark.parametrize("name", sorted(SHIPPED_DIGESTS))
def test_the_digests_of_the_shipped_specs_did_not_change(name):
    pytest.importorskip("yaml", reason="PyYAML reads the model specs")
    from trt_infer.spec import load_spec

    assert load_spec(os.path.join(REPO_ROOT, "config", "models", name)).digest == SHIPPED_DIGESTS[name]


# ------------------------------------------------------------------ a new task: one module, one row
@pytest.fixture
def with_toy_task(monkeypatch):
    monkeypatch.setattr(tasks, "TASKS", tasks.TASKS + (toy_task.ROW,))
    return toy_task.ROW


def toy_spec(**section):
    data = {"name": "toy", "task": "brightest", "input": {"name": "image", "width": 8, "height": 8,
                                                           "scale": 1 / 255.0},
            "outputs": {"levels": "scores"}, "labels": ["red", "green", "blue"]}
    if section:
        data["brightest"] = section
    return ModelSpec(data)


def test_an_unregistered_task_is_refused():
    with pytest.raises(SpecError, match="task: got 'brightest'"):
        toy_spec()


def test_a_registered_task_loads_validates_and_runs_in_the_pipeline(with_toy_task, make_backend):  # noqa: F811
    spec = toy_spec(gain=2.0)
    assert spec.task == "brightest" and spec.section.gain == 2.0
    with pytest.raises(SpecError, match="brightest.gain: got 0"):
        toy_spec(gain=0)
    with pytest.raises(SpecError, match="section for task 'classification'"):
        ModelSpec({"name": "toy", "task": "brightest", "input": {"name": "image", "width": 8, "height": 8},
                   "outputs": {"levels": "scores"}, "classification": {"top_k": 1}})
    # the classifier test model outputs the mean of each channel (RGB): green is brightest on the right
    pipeline = Pipeline(spec, make_backend("classifier", spec), processing="cpu")
    image = two_colour_image()
    image[:, :image.shape[1] // 2] = (0, 0, 0)
    result = pipeline(image)
    assert isinstance(result, Result) and set(result.timings) >= {"postprocess", "total"}
    (class_id, score), = result.classes
    assert spec.label(class_id) == "green" and score == pytest.approx(1.0, abs=0.02)


def test_a_registered_task_leaves_the_digests_of_other_specs_unchanged(with_toy_task):
    pytest.importorskip("yaml", reason="PyYAML reads the model specs")
    from trt_infer.spec import load_spec

    for name, digest in SHIPPED_DIGESTS.items():
        assert load_spec(os.path.join(REPO_ROOT, "config", "models", name)).digest == digest


def test_a_registered_task_appears_in_the_generated_docs(with_toy_task):
    pytest.importorskip("onnx", reason="the docs generator reads converter.fixes (host .venv)")
    from tools import generate_docs

    outputs = generate_docs.task_outputs_block()
    assert "| `brightest` | `levels` |" in outputs and "tests/support/toy_task.py` `BrightestPostprocessor`" in outputs
    registry = generate_docs.blocks()
    assert "`brightest`" in registry["spec-top"]()
    block = registry["spec-brightest"]()
    assert block.startswith("## brightest\n") and toy_task.ROW.doc in block
    assert "| `brightest.gain` | float | `1.0` | number (must be > 0) | factor applied to the best score |" in block
    assert "spec-brightest" in generate_docs.required_blocks()[generate_docs.SPEC_DOC]


# ------------------------------------------------------------------ the table is the only home
def _text(node):
    if isinstance(node, ast.Index):  # Python < 3.9 wraps subscripts
        node = node.value
    if sys.version_info < (3, 8) and isinstance(node, ast.Str):
        return node.s
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _task_literals(node, names):
    """Task names written as literals in a comparison, a subscript or a collection."""
    if isinstance(node, ast.Compare):
        candidates = [node.left] + list(node.comparators)
    elif isinstance(node, ast.Subscript):
        candidates = [node.slice]
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        candidates = node.elts
    elif isinstance(node, ast.Dict):
        candidates = [key for key in node.keys if key is not None]
    else:
        return []
    found = []
    for candidate in candidates:
        elements = candidate.elts if isinstance(candidate, (ast.Tuple, ast.List, ast.Set)) else [candidate]
        found.extend(text for text in map(_text, elements) if text in names)
    return found


def _own_files():
    """tasks.py and, per row, its post-processing module and GPU post-processor module."""
    modules = ["trt_infer.tasks"]
    for task in tasks.TASKS:
        modules.append(task.module)
        if task.gpu_postprocessor:
            modules.append(task.gpu_postprocessor.split(":")[0])
    return set(os.path.join(*module.split(".")) + ".py" for module in modules)


def offending_files():
    # "classification" also names what a node publishes (a row's `publishes`, the node's output role),
    # so only task names that are not also output kinds can be told apart by their text
    names = set(tasks.task_names()) - set(tasks.PUBLISHES)
    own = _own_files()
    offending = {}
    for folder in ("trt_infer", "tools"):
        for root, _, files in os.walk(os.path.join(REPO_ROOT, folder)):
            for name in sorted(files):
                if not name.endswith(".py"):
                    continue
                relative = os.path.relpath(os.path.join(root, name), REPO_ROOT)
                if relative in own:
                    continue
                with open(os.path.join(root, name)) as handle:
                    tree = ast.parse(handle.read(), relative)
                hits = sorted(set(literal for node in ast.walk(tree) for literal in _task_literals(node, names)))
                if hits:
                    offending[relative] = hits
    return offending


def test_no_module_outside_the_table_decides_by_task_name():
    offending = offending_files()
    assert not offending, ("task names compared or listed outside trt_infer/tasks.py; read the row "
                           "(get_task(spec.task)) instead: {}".format(offending))


def test_the_scan_finds_a_comparison_against_a_task_name():
    names = set(tasks.task_names())
    tree = ast.parse('if spec.task == "segmentation" or task in ("ssd", "x"):\n    fields["classification"]\n')
    found = sorted(set(literal for node in ast.walk(tree) for literal in _task_literals(node, names)))
    assert found == ["classification", "segmentation", "ssd"]
