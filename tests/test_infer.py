"""`infer`: MediaPipe's real BlazeFace and selfie models on scikit-image photos, from image files to
JSON lines, overlays and one-line errors, checked against the Pipeline run in-process.

The ONNX files come from tests/support/models.py (converted with tf2onnx on the host, cached under
.cache/test-models); under Python 3.6, which has no tf2onnx, the cached conversions are used when a
host run left them, and the tests that need them skip otherwise.
"""
import glob
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="infer runs the models with ONNX Runtime here")
pytest.importorskip("yaml", reason="model specs are YAML")
cv2 = pytest.importorskip("cv2", reason="images are read and written with OpenCV")

from tests.support import models  # noqa: E402
from trt_infer import infer  # noqa: E402
from trt_infer.backends import load_backend  # noqa: E402
from trt_infer.pipeline import Pipeline  # noqa: E402
from trt_infer.spec import load_spec  # noqa: E402

SPECS = {name: os.path.join(models.REPO_ROOT, "config", "models", name + ".yaml")
         for name in ("blazeface", "selfie_segmentation")}
CACHED = {"blazeface": "blazeface-*-opset13.onnx",
          "selfie_segmentation": os.path.join("selfie_segmentation-jetson-nano-*", "selfie_segmentation.fixed.onnx")}


def model_path(name):
    """BlazeFace as tf2onnx exports it, the selfie model as `convert all --target jetson-nano` fixes it."""
    if importlib.util.find_spec("tf2onnx") is not None:
        return models.tflite_to_onnx(name) if name == "blazeface" else models.converted_for_target(name)
    found = sorted(glob.glob(os.path.join(models.CACHE_DIR, CACHED[name])), key=os.path.getmtime)
    if not found:
        pytest.skip("no tf2onnx here to convert the MediaPipe {} model and no cached conversion in {}".format(
            name, models.CACHE_DIR))
    return found[-1]


def photo(tmp_path, name):
    """A scikit-image sample written as PNG: (path, BGR array)."""
    if importlib.util.find_spec("skimage") is None:
        pytest.skip("test photos come from scikit-image, which is not installed here")
    image = models.sample_image_bgr(name)
    path = str(tmp_path / (name + ".png"))
    assert cv2.imwrite(path, image)
    return path, image


def run_main(capsys, *argv):
    code = infer.main([str(word) for word in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_lines(out):
    return [json.loads(line) for line in out.splitlines()]


def in_process(name, image):
    with load_backend(model_path(name)) as backend:
        return Pipeline(load_spec(SPECS[name]), backend)(image)


@pytest.mark.slow
def test_blazeface_json_line_per_image_in_image_pixels(tmp_path, capsys):
    astronaut, astronaut_image = photo(tmp_path, "astronaut")
    coffee, _ = photo(tmp_path, "coffee")
    code, out, err = run_main(capsys, model_path("blazeface"), "--spec", SPECS["blazeface"], astronaut, coffee,
                              "--json")
    assert code == 0, err
    records = json_lines(out)
    assert [record["image"] for record in records] == [astronaut, coffee]
    assert (records[0]["width"], records[0]["height"]) == (512, 512)
    assert (records[1]["width"], records[1]["height"]) == (600, 400)
    assert set(records[0]) == {"image", "width", "height", "detections"}
    expected = in_process("blazeface", astronaut_image).detections
    faces = records[0]["detections"]
    assert len(faces) == len(expected) == 1
    assert set(faces[0]) == {"box", "score", "class_id", "label"}
    assert faces[0]["label"] == "face" and faces[0]["class_id"] == 0
    np.testing.assert_allclose(faces[0]["box"], expected.boxes[0], atol=1e-3)
    assert abs(faces[0]["score"] - float(expected.scores[0])) < 1e-5
    x1, y1, x2, y2 = faces[0]["box"]
    assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 512 and x2 - x1 > 40  # the face is large, in image pixels


@pytest.mark.slow
def test_selfie_adds_mask_fractions_that_match_the_mask(tmp_path, capsys):
    astronaut, image = photo(tmp_path, "astronaut")
    code, out, err = run_main(capsys, model_path("selfie_segmentation"), "--spec", SPECS["selfie_segmentation"],
                              astronaut, "--json")
    assert code == 0, err
    (record,) = json_lines(out)
    assert record["detections"] == []
    fractions = record["mask"]["fractions"]
    assert set(fractions) == {"background", "person"}
    assert abs(sum(fractions.values()) - 1.0) < 1e-9
    mask = in_process("selfie_segmentation", image).image_mask
    assert mask.shape == (512, 512)
    assert abs(fractions["person"] - float(np.mean(mask == 1))) < 1e-9
    assert 0.3 < fractions["person"] < 0.8  # the astronaut fills about half the photo


@pytest.mark.slow
def test_out_writes_an_overlay_per_image(tmp_path, capsys):
    astronaut, image = photo(tmp_path, "astronaut")
    out_dir = tmp_path / "overlays"
    code, out, err = run_main(capsys, model_path("blazeface"), "--spec", SPECS["blazeface"], astronaut,
                              "--out", out_dir)
    assert code == 0, err
    assert out.splitlines()[0] == "{}: 512x512, 1 detection".format(astronaut)
    assert out.splitlines()[1].startswith("  face 0.")
    written = cv2.imread(str(out_dir / "astronaut.png"))
    assert written is not None and written.shape == image.shape
    assert np.any(written != image)  # the box is drawn
    assert "wrote {}".format(out_dir / "astronaut.png") in err


def test_python_m_prints_pure_json_lines_on_a_blank_image(tmp_path):
    blank = str(tmp_path / "blank.png")
    cv2.imwrite(blank, np.full((240, 320, 3), 128, np.uint8))
    env = dict(os.environ, PYTHONPATH=models.REPO_ROOT)
    completed = subprocess.run([sys.executable, "-m", "trt_infer.infer", model_path("blazeface"), "--spec",
                                SPECS["blazeface"], blank, blank, "--json", "-q"], cwd=models.REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert json_lines(completed.stdout) == [{"image": blank, "width": 320, "height": 240, "detections": []}] * 2


def test_missing_model_is_one_error_line_and_exit_2(tmp_path, capsys):
    code, out, err = run_main(capsys, tmp_path / "absent.onnx", "--spec", SPECS["blazeface"], tmp_path / "a.png")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("infer: error: model file not found: ") and "convert all" in err


def test_unreadable_image_is_one_error_line_after_the_good_ones(tmp_path, capsys):
    good = str(tmp_path / "good.png")
    cv2.imwrite(good, np.zeros((64, 64, 3), np.uint8))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    code, out, err = run_main(capsys, model_path("blazeface"), "--spec", SPECS["blazeface"], good, broken,
                              "--json")
    assert code == 2
    assert [record["image"] for record in json_lines(out)] == [good]
    assert err == "infer: error: cannot decode {} as an image (OpenCV reads PNG, JPEG, BMP, TIFF, ...)\n".format(
        broken)


def test_spec_of_another_model_is_one_error_line(tmp_path, capsys):
    image = str(tmp_path / "image.png")
    cv2.imwrite(image, np.zeros((64, 64, 3), np.uint8))
    code, out, err = run_main(capsys, model_path("selfie_segmentation"), "--spec", SPECS["blazeface"], image)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("infer: error: spec ") and "'input' is not an input of the model" in err


def test_backend_choices_and_required_spec_are_usage_errors(capsys):
    with pytest.raises(SystemExit) as stop:
        infer.main(["model.onnx", "--spec", "s.yaml", "image.png", "--backend", "cuda"])
    assert stop.value.code == 2 and "invalid choice: 'cuda'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        infer.main(["model.onnx", "image.png"])
    assert stop.value.code == 2 and "--spec" in capsys.readouterr().err


def test_mask_fractions_name_every_label_and_present_class():
    spec = load_spec(SPECS["selfie_segmentation"])
    mask = np.array([[0, 1, 1, 1]], np.uint8)
    assert infer.mask_fractions(mask, spec) == {"background": 0.25, "person": 0.75}
    assert infer.mask_fractions(np.zeros((2, 2), np.uint8), spec) == {"background": 1.0, "person": 0.0}
