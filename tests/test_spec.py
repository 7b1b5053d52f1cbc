"""Model spec loading and validation: messages name the file, key path, bad value and allowed values."""
import copy
import os

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML reads the model specs")

from trt_infer.schema import SpecError  # noqa: E402
from trt_infer.spec import ModelSpec, Thresholds, load_spec  # noqa: E402

SELFIE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "config", "models", "selfie_segmentation.yaml")

BASE = {
    "name": "tiny",
    "task": "segmentation",
    "input": {"name": "image", "width": 64, "height": 32, "layout": "NHWC"},
    "outputs": {"logits": "scores"},
    "labels": ["background", "thing"],
    "segmentation": {"activation": "argmax", "logits_layout": "NCHW"},
}


def spec_with(change):
    data = copy.deepcopy(BASE)
    change(data)
    return data


def write_spec(folder, data, name="model.yaml"):
    path = os.path.join(str(folder), name)
    with open(path, "w") as handle:
        yaml.safe_dump(data, handle)
    return path


def test_shipped_selfie_spec_loads_with_its_labels_and_palette():
    spec = load_spec(SELFIE)
    assert spec.task == "segmentation" and spec.path == SELFIE
    assert spec.labels == ["background", "person"]
    assert spec.palette.shape == (2, 3) and spec.palette.dtype.name == "uint8"
    assert spec.input.shape == (1, spec.input.height, spec.input.width, 3)
    assert spec.section.activation == "probability" and spec.section["activation"] == "probability"
    assert not hasattr(spec, "ssd") and not hasattr(spec, "segmentation")
    assert len(spec.digest) == 64


def test_defaults_are_filled_in():
    spec = ModelSpec(BASE)
    assert (spec.input.color_order, spec.input.resize, spec.input.dtype) == ("RGB", "stretch", "float32")
    assert spec.input.mean == (0.0, 0.0, 0.0) and spec.input.std == (1.0, 1.0, 1.0)
    assert spec.thresholds.as_dict() == {"score": 0.5, "nms_iou": 0.45, "max_detections": 100}
    assert spec.palette is None and spec.description == ""


def test_labels_file_is_resolved_relative_to_the_spec_not_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "labels").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "labels" / "things.txt").write_text(u"background\nthing\n\n")
    path = write_spec(tmp_path / "models", spec_with(lambda d: d.update(labels="../labels/things.txt")))
    monkeypatch.chdir(str(tmp_path))  # from here "../labels/things.txt" does not exist
    assert load_spec(path).labels == ["background", "thing"]


def test_missing_labels_file_names_the_resolved_path_and_the_spec(tmp_path):
    path = write_spec(tmp_path, spec_with(lambda d: d.update(labels="nowhere.txt")))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert path in message and "labels" in message and os.path.join(str(tmp_path), "nowhere.txt") in message


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(colour="red"), ["colour", "unknown key", "labels", "palette"]),
    (lambda d: d["input"].update(widht=3), ["input.widht", "unknown key", "width"]),
    (lambda d: d["input"].update(layout="NWHC"), ["input.layout", "'NWHC'", "'NCHW'", "'NHWC'"]),
    (lambda d: d["input"].pop("name"), ["input.name", "missing"]),
    (lambda d: d["input"].update(width="64"), ["input.width", "'64'", "integer"]),
    (lambda d: d["input"].update(height=0), ["input.height", "0", ">= 1"]),
    (lambda d: d["input"].update(mean=[1, 2]), ["input.mean", "3 values"]),
    (lambda d: d["input"].update(std=[1, 0, 1]), ["input.std", "must not be 0"]),
    (lambda d: d["input"].update(resize="crop"), ["input.resize", "'letterbox'", "'stretch'"]),
    (lambda d: d["input"].update(dtype="int8"), ["input.dtype", "'float16'"]),
    (lambda d: d.update(task="detect"), ["task", "'detect'", "'ssd'", "'segmentation'"]),
    (lambda d: d.update(thresholds={"score": 1.5}), ["thresholds.score", "1.5", "between 0 and 1"]),
    (lambda d: d.update(thresholds={"max_detections": 0}), ["thresholds.max_detections", "between 1 and 10000"]),
    (lambda d: d.update(outputs={}), ["outputs.logits", "missing"]),
    (lambda d: d["outputs"].update(boxes="b"), ["outputs.boxes", "unknown output role", "logits"]),
    (lambda d: d.update(palette=[[0, 0, 300]]), ["palette[0][2]", "300", "between 0 and 255"]),
    (lambda d: d.update(labels=[1, 2]), ["labels", "list of strings"]),
    (lambda d: d["segmentation"].update(activation="softmax"), ["segmentation.activation", "'probability'"]),
    (lambda d: d["segmentation"].update(bogus=1), ["segmentation.bogus", "unknown key"]),
    (lambda d: d.update(classification={"top_k": 3}), ["classification", "task is 'segmentation'"]),
])
def test_errors_name_key_path_value_and_allowed_values(change, expected):
    with pytest.raises(SpecError) as error:
        ModelSpec(spec_with(change))
    for text in expected:
        assert text in str(error.value)


def test_error_from_a_file_names_the_file(tmp_path):
    path = write_spec(tmp_path, spec_with(lambda d: d["input"].update(layout="CHW")))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    assert str(error.value).startswith(path + ": input.layout: got 'CHW'")
    assert error.value.path == "input.layout" and error.value.source == path


def test_unreadable_or_invalid_yaml_names_the_file(tmp_path):
    missing = os.path.join(str(tmp_path), "absent.yaml")
    with pytest.raises(SpecError) as error:
        load_spec(missing)
    assert missing in str(error.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text(u"name: [unclosed\n")
    with pytest.raises(SpecError) as error:
        load_spec(str(broken))
    assert str(broken) in str(error.value) and "YAML" in str(error.value)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text(u"just text\n")
    with pytest.raises(SpecError) as error:
        load_spec(str(scalar))
    assert "expected a mapping" in str(error.value)


def test_digest_follows_content_not_description_or_file():
    same = ModelSpec(spec_with(lambda d: d.update(description="other words")), path="elsewhere.yaml")
    assert same.digest == ModelSpec(BASE).digest
    assert ModelSpec(spec_with(lambda d: d["input"].update(width=65))).digest != ModelSpec(BASE).digest
    assert ModelSpec(spec_with(lambda d: d.update(labels=["a", "b"]))).digest != ModelSpec(BASE).digest


def test_thresholds_change_at_run_time_and_stay_valid():
    thresholds = Thresholds({"score": 0.3})
    thresholds.update(score=0.7, nms_iou=None)
    assert thresholds.score == 0.7 and thresholds["score"] == 0.7 and thresholds.nms_iou == 0.45
    with pytest.raises(SpecError) as error:
        thresholds.update(score=0.2, nms_iou=2.0)
    assert "thresholds.nms_iou" in str(error.value)
    assert thresholds.as_dict() == {"score": 0.7, "nms_iou": 0.45, "max_detections": 100}
    with pytest.raises(AttributeError):
        thresholds.iou


def test_label_lookup_falls_back_to_the_index():
    spec = ModelSpec(BASE)
    assert spec.label(1) == "thing" and spec.label(7) == "7"


NOT_UTF8 = [
    (u"name: caf\u00e9\n".encode("latin-1"), "iconv -f latin1"),
    (u"name: caf\u00e9\n".encode("utf-16"), "UTF-16"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a text file"),
]


@pytest.mark.parametrize("content, words", NOT_UTF8, ids=["latin1", "utf16", "binary"])
def test_a_spec_that_is_not_utf8_is_one_error_naming_the_file_and_the_fix(tmp_path, content, words):
    path = tmp_path / "model.yaml"
    path.write_bytes(content)
    with pytest.raises(SpecError) as error:
        load_spec(str(path))
    message = str(error.value)
    assert message.startswith(str(path)) and ("must be UTF-8" in message or "not a text file" in message)
    assert words in message and "\n" not in message


@pytest.mark.parametrize("content, words", NOT_UTF8, ids=["latin1", "utf16", "binary"])
def test_a_labels_file_that_is_not_utf8_is_one_error_naming_the_file_and_the_fix(tmp_path, content, words):
    (tmp_path / "labels.txt").write_bytes(content)
    path = write_spec(tmp_path, spec_with(lambda d: d.update(labels="labels.txt")))
    with pytest.raises(SpecError) as error:
        load_spec(path)
    message = str(error.value)
    assert path in message and str(tmp_path / "labels.txt") in message and words in message


UTF8_LABELS_UNDER_C_LOCALE = """
import sys
from trt_infer.spec import load_spec
print(ascii(load_spec(sys.argv[1]).labels))
"""


def test_utf8_files_are_read_as_utf8_whatever_the_locale(tmp_path):
    # Python 3.6 under LANG=C decodes open()'s text as ASCII; the spec must not depend on the locale.
    import subprocess
    import sys

    (tmp_path / "labels.txt").write_bytes(u"caf\u00e9\n\u00fcber\n".encode("utf-8"))
    path = write_spec(tmp_path, spec_with(lambda d: d.update(labels="labels.txt", description=u"\u00e9t\u00e9")))
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONCOERCECLOCALE="0", PYTHONUTF8="0",
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", UTF8_LABELS_UNDER_C_LOCALE, path], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == ascii([u"caf\u00e9", u"\u00fcber"])
