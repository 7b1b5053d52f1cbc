"""`check` fails on what the real exporters produce for the Nano and passes once `fix` has run."""
import pytest

from tests.test_fixes_common import cached_onnx

onnx = pytest.importorskip("onnx")
from converter.check import check_model  # noqa: E402
from converter.fixes import run_fixes  # noqa: E402
from converter.targets import get_target  # noqa: E402
from tests.support.models import tflite_to_onnx  # noqa: E402
from tests.test_fixes_graph import _keras_unet, _tf_uint8_classifier, _torch_default_export  # noqa: E402
from tests.test_fixes_nms import _tf_detector  # noqa: E402

NANO = get_target("jetson-nano")
MODELS = {
    "selfie_segmentation": lambda: onnx.load(tflite_to_onnx("selfie_segmentation")),
    "keras_unet": lambda: cached_onnx(_keras_unet),
    "torch_default_export": lambda: cached_onnx(_torch_default_export),
    "tf_uint8_classifier": lambda: cached_onnx(_tf_uint8_classifier),
    "tf_detector": lambda: cached_onnx(_tf_detector),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fixed_graph_passes_the_nano_check(name):
    model = MODELS[name]()
    assert not check_model(model, NANO).passed
    fixed, reports = run_fixes(model, NANO, nms="runtime")
    assert reports
    report = check_model(fixed, NANO)
    assert report.passed, report.findings


def test_blazeface_passes_before_and_after():
    model = onnx.load(tflite_to_onnx("blazeface"))
    assert check_model(model, NANO).passed
    fixed, reports = run_fixes(model, NANO)
    assert reports == [] and check_model(fixed, NANO).passed
