"""The TF Object Detection API and YOLO detector fixtures of ../shared/fixtures/detectors (real exporters,
random weights; its README says how each was made). Tests that need them skip where they are absent.

TRT_INFER_DETECTOR_FIXTURES points elsewhere (a checkout whose ../shared lies in another place).
"""
import os

from tests.support.models import REPO_ROOT

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
