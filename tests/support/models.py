"""Real trained models and images that ship inside installed packages, converted once per cache.

MediaPipe 0.10.21 (installed with --no-deps) carries TFLite models; scikit-image carries sample
images. Conversions are cached under .cache/test-models keyed by the source file's sha256 and
the converter's own sources, so a change to the converter re-converts.
"""
import hashlib
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE_DIR = os.environ.get("TRT_INFER_TEST_CACHE", os.path.join(REPO_ROOT, ".cache", "test-models"))

MEDIAPIPE_MODELS = {
    "blazeface": "face_detection/face_detection_short_range.tflite",
    "selfie_segmentation": "selfie_segmentation/selfie_segmentation.tflite",
}


def mediapipe_model(name):
    """Path of a TFLite model inside the installed mediapipe package (no import of mediapipe)."""
    import importlib.util

    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("mediapipe==0.10.21 is not installed (tools/setup_env.sh installs it with --no-deps)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "modules", MEDIAPIPE_MODELS[name])
    if not os.path.isfile(path):
        raise RuntimeError("{} not found: mediapipe releases after 0.10.21 ship no models".format(path))
    return path


def sha256_of(paths):
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()[:16]


def _converter_sources():
    folder = os.path.join(REPO_ROOT, "converter")
    found = []
    for root, _, files in os.walk(folder):
        found.extend(os.path.join(root, name) for name in files if name.endswith(".py"))
    return sorted(found)


def tflite_to_onnx(name, opset=13):
    """Plain tf2onnx export of a MediaPipe model (what a user gets before any repair)."""
    source = mediapipe_model(name)
    target = os.path.join(CACHE_DIR, "{}-{}-opset{}.onnx".format(name, sha256_of([source]), opset))
    if not os.path.isfile(target):
        os.makedirs(CACHE_DIR, exist_ok=True)
        partial = target + ".partial.onnx"
        subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", source, "--opset", str(opset),
                        "--output", partial], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.replace(partial, target)
    return target


def converted_for_target(name, target="jetson-nano"):
    """The fixed ONNX graph `convert all --target <target>` produces for a MediaPipe model."""
    source = mediapipe_model(name)
    key = sha256_of([source] + _converter_sources())
    out_dir = os.path.join(CACHE_DIR, "{}-{}-{}".format(name, target, key))
    fixed = os.path.join(out_dir, os.path.splitext(os.path.basename(source))[0] + ".fixed.onnx")
    if not os.path.isfile(fixed):
        subprocess.run([sys.executable, "-m", "converter", "all", source, "--target", target, "-o", out_dir],
                       check=True, cwd=REPO_ROOT)
    return fixed


def sample_image_bgr(name):
    """A scikit-image sample (e.g. 'astronaut', 'chelsea', 'coffee') as a uint8 BGR array."""
    import numpy as np
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        return np.ascontiguousarray(image)
    return np.ascontiguousarray(image[:, :, 2::-1])
