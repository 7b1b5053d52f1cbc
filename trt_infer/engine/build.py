"""ONNX -> TensorRT engine, on the device that will run it; the build command.

`python -m trt_infer.engine.build MODEL.onnx -o MODEL.engine ...` is the build command;
`convert build` and `ros2 run trt_infer convert build` run the same `add_arguments` and `run`.
Runs on the Jetson Nano's Python 3.6 with TensorRT 8.2 as well as on TensorRT 10: it needs only
`tensorrt` and numpy (pycuda only to calibrate INT8). Every API difference goes through
trt_infer.backends.tensorrt_api, chosen by capability. The engine is written with the JSON
sidecar that the runtime checks (trt_infer.engine.cache). The ONNX input is never written.

On the host, TRT_INFER_TENSORRT_MODULE=tensorrt_rtx_bindings (or trt_module=...) builds with
TensorRT-RTX, which parses and builds ahead of time without a GPU.
"""
import argparse
import logging
import os
import sys
import threading
import time

from trt_infer import paths
from trt_infer.backends import tensorrt_api
from trt_infer.engine import cache
from trt_infer.engine.gpu import gpu_identity
from trt_infer.errors import BuildError, ModelNotFoundError, SettingError, TrtInferError
from trt_infer.onnx_file import check_onnx_file

logger = logging.getLogger(__name__)
# TensorRT's own messages, at their severity. Its INFO lines (hundreds per build) are detail:
# they show where this logger is set lower, as the build command's --verbose does.
tensorrt_logger = logging.getLogger(__name__ + ".tensorrt")
if tensorrt_logger.level == logging.NOTSET:
    tensorrt_logger.setLevel(logging.WARNING)

# 0 built; 1 TensorRT could not parse or build the model (or calibrate it); 2 bad input or usage
EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
PROG = "convert build"

PRECISIONS = ("fp32", "fp16", "int8")
DEFAULT_WORKSPACE_MIB = 256   # fits a 4 GB Jetson Nano next to the OS and the camera pipeline
TICK_SECONDS = 15.0

MEMORY_HINT = ("if the build is 'Killed' or runs out of memory (the Nano shares 4 GB between CPU and GPU): "
               "use a smaller --workspace (e.g. 128), --precision fp16, close other applications "
               "(a desktop session takes about 1 GB), and add swap "
               "(sudo fallocate -l 4G /swapfile && sudo chmod 600 /swapfile && sudo mkswap /swapfile "
               "&& sudo swapon /swapfile)")


def _shape_text(shape):
    return "x".join(str(dim) for dim in shape)


def parse_profile(text):
    """'input:1x3x224x224/1x3x320x320/1x3x640x640' (min/opt/max) or 'input:1x3x320x320' -> (name, shapes)."""
    name, sep, shapes = text.rpartition(":")
    try:
        parsed = [tuple(int(dim) for dim in part.split("x")) for part in shapes.split("/")]
    except ValueError:
        parsed = []
    if not sep or not name or len(parsed) not in (1, 3) or len(set(len(shape) for shape in parsed)) != 1:
        raise argparse.ArgumentTypeError(
            "profile {!r}: expected NAME:MIN/OPT/MAX or NAME:SHAPE with shapes like 1x3x320x320".format(text))
    if len(parsed) == 1:
        parsed = parsed * 3
    return name, tuple(parsed)


def add_arguments(parser):
    """Arguments of the build command (`convert build` adds them to its sub-command)."""
    parser.add_argument("onnx", help="ONNX model to build (never modified)")
    parser.add_argument("-o", "--output", help="engine file to write (default: <onnx stem>.<precision>.engine "
                                               "next to the ONNX file); <output>.json gets the sidecar")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16",
                        help="fp16 falls back to fp32 where the GPU has no fast FP16; int8 needs fast INT8 "
                             "(not on the Jetson Nano) and calibration images or a calibration cache")
    parser.add_argument("--workspace", type=int, default=DEFAULT_WORKSPACE_MIB, metavar="MIB",
                        help="builder workspace limit in MiB (default %(default)s, suited to a 4 GB Nano)")
    parser.add_argument("--spec", help="model spec YAML: input size for dynamic inputs, pre-processing for "
                                       "INT8 calibration, digest in the sidecar")
    parser.add_argument("--calib-images", help="folder of images for INT8 entropy calibration")
    parser.add_argument("--calib-cache", help="INT8 calibration cache to read (if present) and write")
    parser.add_argument("--timing-cache", help="timing cache file to read (if present) and update; speeds up rebuilds")
    parser.add_argument("--profile", action="append", type=parse_profile, default=[], metavar="NAME:MIN/OPT/MAX",
                        help="optimization profile of a dynamic input, e.g. input:1x3x224x224/1x3x320x320/1x3x640x640")
    parser.add_argument("--trt-module", help="TensorRT Python module to use (default: $TRT_INFER_TENSORRT_MODULE "
                                             "or tensorrt); tensorrt_rtx_bindings builds with TensorRT-RTX")
    return parser


def default_engine_path(onnx_path, precision):
    return "{}.{}.engine".format(os.path.splitext(onnx_path)[0], precision)


def run(args):
    """Run the build command on parsed arguments; returns the exit status (EXIT_OK, EXIT_FAILED, EXIT_ERROR)."""
    tensorrt_logger.setLevel(logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING)
    spec = None
    try:
        if args.spec:
            from trt_infer.spec import load_spec
            spec = load_spec(args.spec)
        engine_path = args.output or default_engine_path(args.onnx, args.precision)
        build_engine(args.onnx, engine_path, precision=args.precision, workspace_mib=args.workspace, spec=spec,
                     calibration_dir=args.calib_images, calibration_cache=args.calib_cache,
                     timing_cache=args.timing_cache, profiles=dict(args.profile) or None,
                     trt_module=args.trt_module)
    except BuildError as error:
        logger.error("%s", error)
        return EXIT_FAILED
    except (TrtInferError, ImportError, ValueError, IOError, OSError) as error:
        # a missing or unreadable ONNX file, an output that would replace an input, a spec error,
        # no TensorRT module, a path that cannot be written
        logger.error("%s", error)
        return EXIT_ERROR
    return EXIT_OK


def build_parser(prog=PROG):
    from trt_infer.cli_logging import add_logging_arguments

    parser = argparse.ArgumentParser(prog=prog, description="ONNX -> TensorRT engine + JSON sidecar, built on "
                                                            "the device that will run it. Never modifies the ONNX.")
    return add_logging_arguments(add_arguments(parser))


def main(argv=None):
    """`python -m trt_infer.engine.build ...`: exit 0 built, 1 the build failed, 2 bad input or arguments."""
    from trt_infer import cli_logging

    args = build_parser().parse_args(argv)
    cli_logging.configure(PROG, verbose=args.verbose, quiet=args.quiet)
    return run(args)


# TensorRT ILogger severity name -> logging level
TENSORRT_LEVELS = {"INTERNAL_ERROR": logging.CRITICAL, "ERROR": logging.ERROR, "WARNING": logging.WARNING,
                   "INFO": logging.INFO, "VERBOSE": logging.DEBUG}


def _collecting_logger(trt):
    """A TensorRT logger that forwards to Python logging and keeps errors for the BuildError message."""

    class CollectingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors = []

        def log(self, severity, message):
            name = getattr(severity, "name", str(severity))
            level = TENSORRT_LEVELS.get(name, logging.INFO)
            if level >= logging.ERROR:
                self.errors.append(message)
            if tensorrt_logger.isEnabledFor(level):
                tensorrt_logger.log(level, "[TensorRT] %s", message)

    return CollectingLogger()


def _progress_monitor(trt):
    """An IProgressMonitor that logs top-level phases (TensorRT >= 10.0: the 8.x bindings have none,
    NVIDIA/TensorRT python/src/infer/pyCore.cpp on release/8.6 vs release/10.0)."""

    class PhaseLogger(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.started = time.time()

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:
                logger.info("  [%6.1f s] %s (%s steps)", time.time() - self.started, phase_name, num_steps)

        def step_complete(self, phase_name, step):
            return True

        def phase_finish(self, phase_name):
            pass

    return PhaseLogger()


class _Ticker(object):
    """Elapsed-time lines while TensorRT < 10 builds silently (a Nano build takes minutes)."""

    def __init__(self, interval=None):
        self.interval = TICK_SECONDS if interval is None else interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="build-ticker")
        self.thread.daemon = True
        self.started = time.time()

    def _run(self):
        while not self.stopped.wait(self.interval):
            logger.info("  still building... %.0f s elapsed", time.time() - self.started)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopped.set()
        self.thread.join()


def _parse(trt, network, logger, onnx_path):
    parser = trt.OnnxParser(network, logger)
    if hasattr(parser, "parse_from_file"):
        ok = parser.parse_from_file(os.path.abspath(onnx_path))
    else:
        with open(onnx_path, "rb") as handle:
            ok = parser.parse(handle.read())
    if not ok:
        raise BuildError(describe_parse_errors(onnx_path, tensorrt_api.parser_errors(parser)))
    return parser


def describe_parse_errors(onnx_path, errors):
    """Parser errors -> one message with node index/name/op and the fix to try."""
    lines = ["{}: TensorRT's ONNX parser rejected the model:".format(onnx_path)]
    for error in errors:
        where = []
        if error.get("node") is not None and error["node"] >= 0:
            where.append("node #{}".format(error["node"]))
        if error.get("node_name"):
            where.append(repr(error["node_name"]))
        if error.get("op"):
            where.append("({})".format(error["op"]))
        lines.append("  {}{}".format(" ".join(where) + ": " if where else "", error["desc"]))
    text = " ".join(error["desc"] for error in errors).lower()
    if "plugin" in text or "_trt" in text:
        lines.append("hint: a plugin op (e.g. EfficientNMS_TRT) was not found: this TensorRT's libnvinfer_plugin "
                     "lacks it, or the graph targets another TensorRT; check with "
                     "`convert check --target <target>` or rebuild the graph without the plugin "
                     "(runtime NMS)")
    if "allowzero" in text:
        lines.append("hint: TensorRT < 8.4.2 needs Reshape's allowzero at opset >= 14: "
                     "run `convert fix --target jetson-nano`")
    if "importer" in text or "unsupported" in text or "opset" in text:
        lines.append("hint: run `convert check --target <target>` for the ops this TensorRT lacks and the "
                     "`convert fix` passes that repair them")
    if len(lines) == len(errors) + 1:
        lines.append("hint: run `convert check --target <target>` on the ONNX file for the target's rules")
    return "\n".join(lines)


def _example_shape(shape):
    """A concrete shape for messages: batch 1, other dynamic dimensions 320."""
    return [dim if dim >= 0 else (1 if index == 0 else 320) for index, dim in enumerate(shape)]


def resolve_profiles(inputs, profiles=None, spec=None, input_shapes=None):
    """{name: (min, opt, max)} for every dynamic network input (inputs: [(name, shape)]).

    Sources in order: explicit profiles, input_shapes (fixed), the spec's input size.
    """
    profiles = dict(profiles or {})
    known = set(name for name, _ in inputs)
    for name in list(profiles) + list(input_shapes or {}):
        if name not in known:
            raise BuildError("profile for {!r}, but the network's inputs are {}".format(
                name, ", ".join(repr(other) for other in sorted(known))))
    resolved = {}
    for name, shape in inputs:
        if all(dim >= 0 for dim in shape):
            continue
        if name in profiles:
            chosen = profiles[name]
        elif input_shapes and name in input_shapes:
            chosen = (tuple(input_shapes[name]),) * 3
        elif spec is not None and spec.input.name == name:
            chosen = (spec.input.shape,) * 3
        else:
            raise BuildError(
                "input {!r} has dynamic shape {} and no optimization profile: give --profile "
                "{}:MIN/OPT/MAX (e.g. {}:{}) or a --spec whose input names it".format(
                    name, tuple(shape), name, name, "/".join([_shape_text(_example_shape(shape))] * 3)))
        for candidate in chosen:
            if len(candidate) != len(shape) or any(fixed >= 0 and fixed != dim for fixed, dim in zip(shape, candidate)):
                raise BuildError("profile shape {} for input {!r} does not fit its shape {} (-1 = dynamic)".format(
                    tuple(candidate), name, tuple(shape)))
        resolved[name] = tuple(tuple(int(dim) for dim in candidate) for candidate in chosen)
    return resolved


def _choose_precision(trt, builder, config, precision, gpu, quiet=False):
    """Set the precision flags the platform supports; returns the precision actually enabled."""
    if precision == "fp32":
        return "fp32"
    if precision == "int8":
        if tensorrt_api.platform_has(builder, "fast_int8") is False:
            raise BuildError(
                "INT8 refused: {} (compute capability {}) has no fast INT8 (the Jetson Nano's Maxwell GPU, "
                "SM 5.3, has none; INT8 would run slower than FP16). Use --precision fp16.".format(
                    gpu.get("name") or "this GPU", gpu.get("compute_capability") or "unknown"))
        if tensorrt_api.builder_flag(trt, "INT8") is None or not hasattr(trt, "IInt8EntropyCalibrator2"):
            raise BuildError("INT8 refused: this TensorRT ({} {}) has no INT8 builder flag or entropy calibrator "
                             "(TensorRT-RTX / TensorRT 11 quantize explicitly with Q/DQ nodes in the ONNX); "
                             "use --precision fp16".format(trt.__name__, tensorrt_api.trt_version(trt)))
        config.set_flag(tensorrt_api.builder_flag(trt, "INT8"))
        fp16 = _choose_precision(trt, builder, config, "fp16", gpu, quiet=True)
        return "int8+fp16" if fp16 == "fp16" else "int8"
    flag = tensorrt_api.builder_flag(trt, "FP16")
    if flag is None:
        if not quiet:
            logger.info("this TensorRT (%s) has no FP16 builder flag; it picks kernel precisions itself from the "
                        "graph's types, so the build runs without the flag", trt.__name__)
        return "auto"
    if tensorrt_api.platform_has(builder, "fast_fp16") is False:
        if not quiet:
            logger.warning("%s has no fast FP16; building FP32 instead", gpu.get("name") or "this GPU")
        return "fp32"
    config.set_flag(flag)
    return "fp16"


def _load_timing_cache(config, path):
    if not path or not hasattr(config, "create_timing_cache"):
        if path:
            logger.warning("this TensorRT has no timing cache API; --timing-cache ignored")
        return None
    data = b""
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            data = handle.read()
        logger.info("timing cache: %s (%d bytes)", path, len(data))
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, False)
    return cache


def _save_timing_cache(config, path):
    serialized = config.get_timing_cache().serialize()
    partial = path + ".partial"
    with open(partial, "wb") as handle:
        handle.write(memoryview(serialized))
    os.replace(partial, path)


def _check_paths(onnx_path, engine_path, spec=None, calibration_dir=None, calibration_cache=None,
                 timing_cache=None):
    """Before TensorRT starts: the ONNX file is one, and nothing the build writes (engine, sidecar,
    calibration cache, timing cache) replaces a file it reads, through a link either. The caches are
    read and rewritten on purpose, so each is only checked against the other inputs."""
    if not os.path.isfile(onnx_path):
        raise ModelNotFoundError("ONNX file not found: {}".format(onnx_path))
    check_onnx_file(onnx_path)
    if engine_path.lower().endswith(".onnx"):
        raise SettingError("engine path {} would overwrite an ONNX file; choose an .engine path with -o".format(
            engine_path))
    inputs = [onnx_path, None if spec is None else spec.path, calibration_dir]
    for written, option in ((engine_path, "-o/--output"), (cache.sidecar_path(engine_path), "the sidecar of -o")):
        paths.check_output(written, inputs + [calibration_cache, timing_cache], option=option,
                           example="model.engine")
    if calibration_cache:
        paths.check_output(calibration_cache, inputs, option="--calib-cache", example="model.calib")
    if timing_cache:
        paths.check_output(timing_cache, inputs + [calibration_cache], option="--timing-cache",
                           example="model.timing")


def build_engine(onnx_path, engine_path, precision="fp16", workspace_mib=DEFAULT_WORKSPACE_MIB, spec=None,
                 calibration_dir=None, calibration_cache=None, timing_cache=None, profiles=None,
                 trt_module=None, gpu=None, input_shapes=None):
    """Build `engine_path` (+ `<engine_path>.json` sidecar) from `onnx_path`; returns the sidecar.

    precision: fp32 | fp16 | int8. profiles: {input name: (min, opt, max)} for dynamic inputs
    (else input_shapes {name: shape}, else the spec's input size). gpu: {"name",
    "compute_capability"} recorded in the sidecar (default: detected through the CUDA driver).
    """
    if precision not in PRECISIONS:
        raise BuildError("precision {!r}; allowed: {}".format(precision, ", ".join(PRECISIONS)))
    _check_paths(onnx_path, engine_path, spec, calibration_dir, calibration_cache, timing_cache)
    trt = tensorrt_api.import_tensorrt(trt_module)
    gpu = gpu if gpu is not None else gpu_identity()
    trt_logger = _collecting_logger(trt)
    trt.init_libnvinfer_plugins(trt_logger, "")
    builder = trt.Builder(trt_logger)
    network = builder.create_network(tensorrt_api.network_flags(trt, builder))
    parser = _parse(trt, network, trt_logger, onnx_path)   # owns the weights the network points at
    inputs = [(network.get_input(i).name, tuple(int(d) for d in network.get_input(i).shape))
              for i in range(network.num_inputs)]

    config = builder.create_builder_config()
    tensorrt_api.set_workspace(trt, config, workspace_mib << 20)
    effective = _choose_precision(trt, builder, config, precision, gpu)
    resolved = resolve_profiles(inputs, profiles, spec, input_shapes)
    if resolved:
        profile = builder.create_optimization_profile()
        for name, (low, opt, high) in sorted(resolved.items()):
            profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)
        if precision == "int8" and hasattr(config, "set_calibration_profile"):
            config.set_calibration_profile(profile)
    calibrator = None
    if precision == "int8":
        from trt_infer.engine.calibration import make_calibrator
        calibrator = make_calibrator(trt, spec, calibration_dir, calibration_cache)
        config.int8_calibrator = calibrator
    try:
        _load_timing_cache(config, timing_cache)
        logger.info("building %s from %s with %s %s (%s, workspace %d MiB)%s",
                    engine_path, onnx_path, trt.__name__, tensorrt_api.trt_version(trt), effective, workspace_mib,
                    "" if gpu.get("name") is None else " for {} (SM {})".format(gpu["name"],
                                                                               gpu["compute_capability"]))
        logger.info("%s", MEMORY_HINT)
        started = time.time()
        if tensorrt_api.has_progress_monitor(trt, config):
            config.progress_monitor = _progress_monitor(trt)
            serialized = builder.build_serialized_network(network, config)
        else:
            with _Ticker():
                serialized = builder.build_serialized_network(network, config)
    except MemoryError:
        raise BuildError("{}: out of host memory while building; {}".format(onnx_path, MEMORY_HINT))
    finally:
        if calibrator is not None:
            calibrator.close()   # pops the CUDA context the calibrator pushed, on every way out
    if calibrator is not None:
        calibrator.raise_error()
    del parser  # only now: the network referred to the parser's weights until the build returned
    seconds = time.time() - started
    if serialized is None:
        raise BuildError(describe_build_failure(onnx_path, trt_logger.errors, workspace_mib))
    if timing_cache and hasattr(config, "get_timing_cache"):
        _save_timing_cache(config, timing_cache)

    shapes = dict((name, resolved[name][1] if name in resolved else shape) for name, shape in inputs)
    parts = cache.key_parts(cache.sha256_file(onnx_path), tensorrt_api.trt_version(trt), gpu, precision, shapes)
    options = {
        "precision": precision, "effective_precision": effective, "workspace_mib": workspace_mib,
        "profiles": dict((name, [list(shape) for shape in triple]) for name, triple in resolved.items()),
        "spec_path": None if spec is None or spec.path is None else str(spec.path),
        "calibration_cache": calibration_cache, "timing_cache": timing_cache, "tensorrt_module": trt.__name__,
        "build_seconds": round(seconds, 3),
    }
    sidecar = cache.make_sidecar(parts, options, spec_digest=None if spec is None else spec.digest,
                                 onnx_path=onnx_path, tool_versions=cache.tool_versions(trt))
    sidecar = cache.write_engine(engine_path, serialized, sidecar)
    logger.info("wrote %s (%.1f MB) and %s in %.1f s", engine_path, sidecar["engine_bytes"] / 1e6,
                os.path.basename(cache.sidecar_path(engine_path)), seconds)
    return sidecar


def describe_build_failure(onnx_path, errors, workspace_mib):
    text = " ".join(errors)
    lines = ["{}: TensorRT could not build an engine.".format(onnx_path)]
    lines.extend("  " + error for error in errors[-5:])
    if "Could not find any implementation" in text or "memory" in text.lower():
        lines.append("hint: the workspace ({} MiB) may be too small for a layer, or memory ran out: try "
                     "--workspace {} if memory allows; {}".format(workspace_mib, workspace_mib * 2, MEMORY_HINT))
    elif "plugin" in text.lower():
        lines.append("hint: a plugin is missing from this TensorRT's libnvinfer_plugin; rebuild the graph "
                     "without it (runtime NMS) or for this target (`convert fix --target ...`)")
    else:
        lines.append("hint: {}".format(MEMORY_HINT))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
