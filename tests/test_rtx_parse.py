"""Every graph the converter produces for trt10 parses and builds in TensorRT-RTX (TensorRT 10 API).

TensorRT-RTX's ONNX parser and ahead-of-time builder run without a GPU. Each model goes through
`convert all --target trt10 --trt-module tensorrt_rtx_bindings` (the build step included), and the
fixed graph is parsed and built again here straight through the TensorRT 10 API, independently of
trt_infer.engine.build. TensorRT-RTX ships no plugin library, so graphs with EfficientNMS_TRT are not built
here; the detector goes through with runtime NMS.
"""
import os

import pytest

pytest.importorskip("onnx", reason="the converter's host tools need onnx (absent in the Python 3.6 venv)")
trt = pytest.importorskip("tensorrt_rtx_bindings", reason="TensorRT-RTX (tensorrt-rtx-cu13-bindings) not installed")

from converter.cli import main  # noqa: E402
from tests.support.models import mediapipe_model  # noqa: E402
from tests.test_field_failures import (TORCH_INPUT, build_detector, build_torch_default_export, build_unet,  # noqa: E402
                                       cached)

pytestmark = pytest.mark.slow


def parse_and_build(onnx_path):
    """(serialized engine size, parser errors); errors name the node the parser stopped at."""
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(onnx_path):
        errors = [parser.get_error(index) for index in range(parser.num_errors)]
        return 0, ["{} (node {})".format(error.desc(), error.node_name()) for error in errors]
    config = builder.create_builder_config()
    engine = builder.build_serialized_network(network, config)
    return (engine.nbytes if engine is not None else 0), []


def test_parse_and_build_reports_parser_errors_with_node_names(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"], name="mystery")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    path = str(tmp_path / "bad.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    size, errors = parse_and_build(path)
    assert size == 0 and errors and "mystery" in " ".join(errors)


SOURCES = {
    "unet": lambda: cached(build_unet, ".keras"),
    "detector": lambda: cached(build_detector, ""),
    "torch": lambda: cached(build_torch_default_export, ".onnx"),
    "blazeface": lambda: mediapipe_model("blazeface"),
    "selfie_segmentation": lambda: mediapipe_model("selfie_segmentation"),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_trt10_graphs_parse_and_build_in_tensorrt_rtx(name, tmp_path, capsys):
    source = SOURCES[name]()
    arguments = ["all", source, "--target", "trt10", "--trt-module", "tensorrt_rtx_bindings", "-o", str(tmp_path)]
    if name == "detector":
        arguments += ["--nms", "runtime"]
    if name == "unet":
        arguments += ["--input-shape", "image:1,32,32,3"]
    if name == "torch":    # torch's default export (dynamic batch, opset 20) passed through as ONNX
        arguments += ["--input-shape", "image:" + ",".join(str(dim) for dim in TORCH_INPUT)]
    status = main(arguments)
    summary = capsys.readouterr().out
    assert status == 0, summary
    stem = os.path.splitext(os.path.basename(source.rstrip("/")))[0]
    fixed = str(tmp_path / (stem + ".fixed.onnx"))
    assert os.path.isfile(str(tmp_path / (stem + ".engine")))
    assert os.path.isfile(str(tmp_path / (stem + ".engine.json")))
    size, errors = parse_and_build(fixed)
    assert not errors and size > 0
