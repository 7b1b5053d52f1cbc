"""The TF Object Detection API and YOLO detector fixtures of ../shared/fixtures/detectors (real exporters,
random weights; its README says how each was made). Tests that need them skip where they are absent.

TRT_INFER_DETECTOR_FIXTURES points elsewhere (a checkout whose ../shared lies in another place).
"""
import glob
import importlib.util
import os

from tests.support.models import CACHE_DIR, REPO_ROOT, _converter_sources, sha256_of

FIXTURES_DIR = os.environ.get("TRT_INFER_DETECTOR_FIXTURES",
                              os.path.join(os.path.dirname(REPO_ROOT), "shared", "fixtures", "detectors"))


def fixture_file(*parts):
    """The path of a fixture file or folder; pytest.skip saying where it was looked for when absent."""
    import pytest

    path = os.path.join(FIXTURES_DIR, *parts)
    if not os.path.exists(path):
        pytest.skip("detector fixture {} is absent (looked in {}; set TRT_INFER_DETECTOR_FIXTURES)".format(
            os.path.join(*parts), FIXTURES_DIR))
    return path


def reference(name):
    """The fixture's reference_astronaut.npz as a dict of arrays (TensorFlow's own run on astronaut)."""
    import numpy as np

    with np.load(fixture_file(name, "reference_astronaut.npz"), allow_pickle=False) as data:
        return dict((key, data[key]) for key in data.files)


def tf1_ssd_export():
    """The TF1 SSD fixture's frozen graph after `convert export` with the tensors found automatically
    (image_tensor:0 -> raw heads), cached by its and the converter's sources. Without tf2onnx (the
    Python 3.6 venv) a cached export from a host run is used, or the test skips."""
    import pytest

    source = fixture_file("tf1_ssd_mobilenet_v2_coco", "frozen_inference_graph.pb")
    if importlib.util.find_spec("tf2onnx") is None:
        found = sorted(glob.glob(os.path.join(CACHE_DIR, "tf1_ssd_mobilenet_v2_coco-*.onnx")), key=os.path.getmtime)
        if not found:
            pytest.skip("no tf2onnx here to export the TF1 SSD fixture and no cached export in {}".format(CACHE_DIR))
        return found[-1]
    from converter.export import export
    from converter.targets import get_target

    target = os.path.join(CACHE_DIR, "tf1_ssd_mobilenet_v2_coco-{}.onnx".format(
        sha256_of([source] + _converter_sources())))
    if not os.path.isfile(target):
        os.makedirs(CACHE_DIR, exist_ok=True)
        export(source, target, get_target("jetson-nano"))
    return target
