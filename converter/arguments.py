"""The arguments of the host sub-commands of `convert` (the build command's are in trt_infer.engine.build).

Light on purpose: the parser is built on every machine, the device included, so this module
imports only argparse and the target table, and no choice depends on what else imports.
Python 3.6 compatible.
"""
from converter import targets


def _add_target(parser):
    parser.add_argument("--target", choices=sorted(targets.PROFILES),
                        help="TensorRT target profile (default: the installed TensorRT's, on a host jetson-nano)")


def _add_shapes(parser):
    parser.add_argument("--input-shape", action="append", default=[], metavar="[NAME:]DIMS",
                        help="static input shape, e.g. image:1,224,224,3 (repeat per input; NAME may be "
                             "left out for a single-input model)")


def _add_export_options(parser):
    parser.add_argument("--opset", type=int, help="ONNX opset to export at (default: the target's)")
    parser.add_argument("--input-names", help="comma-separated new names for the graph inputs, in order")
    parser.add_argument("--inputs-as-nchw", metavar="NAMES",
                        help="expose these comma-separated TF/TFLite inputs as NCHW (tf2onnx folds the transposes)")
    parser.add_argument("--graph-inputs", metavar="TENSORS",
                        help="frozen GraphDef (.pb): comma-separated tensors to convert from, e.g. image_tensor:0 "
                             "(default: found for TF Object Detection API graphs)")
    parser.add_argument("--graph-outputs", metavar="TENSORS",
                        help="frozen GraphDef (.pb): comma-separated tensors to convert to (default: the raw box "
                             "and class heads of TF Object Detection API SSD graphs)")
    _add_shapes(parser)


def _add_verify_options(parser):
    parser.add_argument("--inputs", metavar="NPZ", help=".npz of inputs keyed by input name (default: seeded random)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=1, help="random input sets to compare (default 1)")
    parser.add_argument("--atol", type=float, default=None, help="absolute tolerance (default 1e-3)")
    parser.add_argument("--rtol", type=float, default=None, help="relative tolerance (default 1e-3)")


def _add_fix_options(parser):
    parser.add_argument("--spec", help="model spec YAML (static input size, runtime pre-processing, NMS settings)")
    parser.add_argument("--nms", choices=targets.NMS_MODES, default="keep",
                        help="the graph's NMS: keep it, strip it for the runtime, or replace it by the "
                             "target's plugin (default keep)")


def export_arguments(parser):
    parser.add_argument("source", help="SavedModel folder, frozen GraphDef .pb, .keras/.h5, .tflite, .onnx, "
                                       "TorchScript .pt, or module.py:factory returning (torch module, example input)")
    parser.add_argument("-o", "--output", required=True, help="ONNX file to write")
    _add_target(parser)
    _add_export_options(parser)


def fix_arguments(parser):
    parser.add_argument("onnx")
    parser.add_argument("-o", "--output", help="ONNX file to write (default <stem>.fixed.onnx beside the input)")
    _add_target(parser)
    _add_fix_options(parser)
    _add_shapes(parser)


def check_arguments(parser):
    parser.add_argument("onnx")
    _add_target(parser)
    _add_shapes(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def verify_arguments(parser):
    parser.add_argument("reference", help="the graph before fixing (.onnx), or the source .tflite / .keras model")
    parser.add_argument("fixed", help="the fixed ONNX graph (before any TensorRT plugin was inserted)")
    _add_verify_options(parser)
    parser.add_argument("--spec", help="model spec YAML: feed the fixed graph the spec's normalisation of the "
                                       "inputs (when fix --spec stripped the framework's pre-processing)")
    parser.add_argument("--json", action="store_true")


def all_arguments(parser):
    from trt_infer.engine.build import PRECISIONS

    parser.add_argument("source")
    parser.add_argument("-o", "--output-dir", required=True, help="folder for <stem>.onnx, <stem>.fixed.onnx, "
                                                                  "<stem>.engine")
    _add_target(parser)
    _add_export_options(parser)
    _add_fix_options(parser)
    _add_verify_options(parser)
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16")
    parser.add_argument("--workspace", type=int, metavar="MIB", help="builder workspace (default: the target's)")
    parser.add_argument("--trt-module", help="TensorRT module for the build step (e.g. tensorrt_rtx_bindings "
                                             "on a host); default: tensorrt, skipped where it is not installed")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def inspect_arguments(parser):
    parser.add_argument("onnx")
    _add_target(parser)
    _add_shapes(parser)
    parser.add_argument("--json", action="store_true")
