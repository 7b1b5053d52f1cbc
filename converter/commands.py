"""What the host sub-commands of `convert` do: export, fix, check, verify, inspect, all.

Host only (modern Python, onnx and friends, imported by each command as it runs); converter/cli.py
declares the commands and runs these functions. Each returns the exit status: 0 ok, 1 a check or
verify that ran and failed. Messages are log records; tables and JSON go to stdout.
"""
import logging
import os
import time

from converter import targets
from converter.cli import EXIT_FAILED, EXIT_OK
from converter.errors import ConversionError, FixError
from trt_infer import paths
from trt_infer.errors import ModelLoadError, SettingError

logger = logging.getLogger(__name__)


def _fixed_inputs(spec, reports):
    """After strip_preprocessing the fixed graph expects normalised input: verify feeds it that."""
    if spec is None or not any(report.pass_name == "strip_preprocessing" for report in reports):
        return None
    from converter.verify import spec_normaliser

    return spec_normaliser(spec.input)


def _target(args):
    if getattr(args, "target", None):
        return targets.get_target(args.target)
    return targets.default_target()


def _shapes(args):
    from converter.export import parse_shapes

    return parse_shapes(args.input_shape)


def _stem(source):
    path = source.rpartition(":")[0] if ".py:" in source else source.rstrip("/" + os.sep)
    name = os.path.basename(path)
    return name if os.path.isdir(path) else os.path.splitext(name)[0]


def _must_exist(path):
    if not os.path.exists(path):
        raise FileNotFoundError("{} does not exist".format(path))


def _run_export(args, target, output):
    from converter.export import export

    return export(args.source, output, target,
                  input_names=args.input_names.split(",") if args.input_names else None,
                  input_shapes=_shapes(args),
                  inputs_as_nchw=args.inputs_as_nchw.split(",") if args.inputs_as_nchw else None,
                  opset=args.opset, graph_inputs=_names(args.graph_inputs), graph_outputs=_names(args.graph_outputs))


def _names(text):
    return [name for name in text.split(",") if name] if text else None


def run_export(args):
    target = _target(args)
    output = _run_export(args, target, args.output)
    logger.info("wrote %s", output)
    return EXIT_OK


def _load_onnx(path):
    from converter.model_files import load_onnx

    return load_onnx(path)


def _with_shapes(model, shapes):
    if shapes:
        from converter.export import apply_input_shapes
        apply_input_shapes(model, shapes)
    return model


def _load_spec(args):
    if not getattr(args, "spec", None):
        return None
    from trt_infer.spec import load_spec
    return load_spec(args.spec)


def _run_fixes(model, target, spec, nms, passes=None):
    from converter.fixes import run_fixes

    return run_fixes(model, target, spec=spec, nms=nms, passes=passes)


def _check_output(path, inputs, option="-o/--output"):
    paths.check_output(path, inputs, option=option, error=ConversionError)


def _save_new(model, path, inputs):
    import onnx

    _check_output(path, inputs)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    onnx.save(model, path)
    return path


def _refuse_tf_ops(model, path):
    """A graph with TensorFlow ops tf2onnx left cannot be repaired (onnx-graphsurgeon cannot even read
    their attributes): say so before the passes run."""
    from converter.model_files import describe_tf_ops, tf_ops_left

    left = tf_ops_left(model)
    if left:
        raise FixError(describe_tf_ops(path, left))


def run_fix(args):
    target = _target(args)
    output = args.output or os.path.splitext(args.onnx)[0] + ".fixed.onnx"
    inputs = [args.onnx, getattr(args, "spec", None)]
    _check_output(output, inputs, "-o/--output" if args.output else "the default output (choose one with -o)")
    model = _with_shapes(_load_onnx(args.onnx), _shapes(args))
    _refuse_tf_ops(model, args.onnx)
    fixed, reports = _run_fixes(model, target, _load_spec(args), args.nms)   # run_fixes logs each report
    _save_new(fixed, output, inputs)
    logger.info("wrote %s (%d change(s)); run `convert check %s --target %s` next",
                output, len(reports), output, target.name)
    return EXIT_OK


def run_check(args):
    from converter.check import check_model
    from converter.report import check_table, to_json

    target = _target(args)
    report = check_model(_load_onnx(args.onnx), target, _shapes(args))
    print(to_json(report.as_dict()) if args.json else check_table(report))
    return EXIT_OK if report.passed else EXIT_FAILED


def _tolerances(args):
    from converter.verify import DEFAULT_ATOL, DEFAULT_RTOL

    return (DEFAULT_ATOL if args.atol is None else args.atol), (DEFAULT_RTOL if args.rtol is None else args.rtol)


def run_verify(args):
    from converter.report import to_json, verify_table
    from converter.verify import verify

    _must_exist(args.reference)
    _must_exist(args.fixed)
    atol, rtol = _tolerances(args)
    spec = _load_spec(args)
    normaliser = None
    if spec is not None:
        from converter.verify import spec_normaliser
        normaliser = spec_normaliser(spec.input)
    result = verify(args.reference, args.fixed, inputs=args.inputs, seed=args.seed, runs=args.runs,
                    atol=atol, rtol=rtol, fixed_inputs=normaliser)
    print(to_json(result.as_dict()) if args.json else verify_table(result))
    return EXIT_OK if result.passed else EXIT_FAILED


def run_inspect(args):
    from converter.inspect_model import inspect_json, inspect_model, inspect_text
    from converter.report import to_json

    info = inspect_model(_load_onnx(args.onnx), _target(args), _shapes(args))
    print(to_json(inspect_json(info)) if args.json else inspect_text(info, args.onnx))
    return EXIT_OK if info["check"].passed else EXIT_FAILED


def tensorrt_module_for_build(requested):
    """The TensorRT module name `all` builds with, or None where none imports (a host)."""
    import importlib

    name = requested or os.environ.get("TRT_INFER_TENSORRT_MODULE") or "tensorrt"
    try:
        importlib.import_module(name)
    except ImportError:
        if requested:
            raise ValueError("--trt-module {}: the module does not import here".format(requested))
        return None
    return name


def run_all(args):
    """export -> fix -> check -> verify -> build into OUTDIR; one summary table; exit 1 if a step failed."""
    from converter.report import summary_table, to_json

    target = _target(args)
    spec = _load_spec(args)
    stem = os.path.join(args.output_dir, _stem(args.source))
    _check_all_paths(args, stem)
    steps = []

    def step(name, status, detail, started):
        steps.append((name, status, "{} ({:.1f} s)".format(detail, time.time() - started)))
        logger.info("all: %s: %s - %s", name, status, detail)

    def print_summary():
        if args.json:
            print(to_json({"target": target.name, "steps": [dict(zip(("step", "status", "detail"), row))
                                                              for row in steps]}))
        else:
            print(summary_table(steps))

    started = time.time()
    try:
        exported = _run_export(args, target, stem + ".onnx")
        step("export", "ok", exported, started)
        started = time.time()
        fixed_path, verify_path, reports = _fix_for_all(args, target, spec, exported, stem)
    except (ModelLoadError, SettingError):
        raise                       # a bad input file or option: exit status 2, not a failed step
    except (ValueError, OSError, RuntimeError) as error:
        # The step that raised is the one after the last recorded; its message says what to change.
        step("fix" if steps else "export", "FAILED", str(error), started)
        print_summary()
        return EXIT_FAILED
    step("fix", "ok", "{} change(s) -> {}".format(len(reports), fixed_path), started)

    started = time.time()
    from converter.check import check_model
    from converter.report import check_table
    report = check_model(_load_onnx(fixed_path), target)
    if not report.passed:
        logger.info("%s", check_table(report))
    step("check", "ok" if report.passed else "FAILED",
         "{} error(s), {} warning(s) for {}".format(len(report.errors), len(report.findings) - len(report.errors),
                                                    target.name), started)

    started = time.time()
    verified = _verify_for_all(args, exported, verify_path, step, started, _fixed_inputs(spec, reports))
    steps_ok = report.passed and verified

    started = time.time()
    module = tensorrt_module_for_build(args.trt_module)
    if module is None:
        step("build", "skipped", "no TensorRT installed here; on the device run: convert build {} --precision {}"
             .format(os.path.basename(fixed_path), args.precision), started)
    elif not report.passed:
        step("build", "skipped", "the graph does not pass check for {}".format(target.name), started)
    else:
        from trt_infer.engine.build import build_engine
        from trt_infer.errors import BuildError
        try:
            build_engine(fixed_path, stem + ".engine", precision=args.precision,
                         workspace_mib=args.workspace or target.default_workspace_mib, spec=spec,
                         trt_module=module)
            step("build", "ok", "{} with {}".format(stem + ".engine", module), started)
        except BuildError as error:
            logger.error("build: %s", error)
            step("build", "FAILED", str(error).splitlines()[0], started)
            steps_ok = False

    print_summary()
    return EXIT_OK if steps_ok else EXIT_FAILED


ALL_OUTPUTS = (".onnx", ".fixed.onnx", ".noplugin.onnx", ".engine", ".engine.json")


def _check_all_paths(args, stem):
    """Before any step runs: the source reads as its format, and no file `all` writes is one of its inputs."""
    from converter.export import check_source, source_file

    inputs = [source_file(args.source), args.spec, args.inputs]
    paths.check_output(args.output_dir, inputs, option="-o/--output-dir", folder=True, error=SettingError)
    for suffix in ALL_OUTPUTS:
        paths.check_output(stem + suffix, inputs, option="-o/--output-dir {}: the output".format(args.output_dir),
                           error=SettingError)
    check_source(args.source)


def _fix_for_all(args, target, spec, exported, stem):
    """Fix the exported graph. With an NMS plugin, the graph from just before the plugin goes in is
    kept as <stem>.noplugin.onnx: ONNX Runtime cannot run plugins, so verify compares that one."""
    from converter.fixes import PASS_NAMES

    model = _load_onnx(exported)
    fixed_path = stem + ".fixed.onnx"
    plugin = args.nms not in ("keep", "runtime")
    passes = [name for name in PASS_NAMES if name != "insert_nms_plugin"] if plugin else None
    fixed, reports = _run_fixes(model, target, spec, args.nms, passes)
    if not plugin:
        return _save_new(fixed, fixed_path, [exported]), fixed_path, reports
    verify_path = _save_new(fixed, stem + ".noplugin.onnx", [exported])
    with_plugin, plugin_reports = _run_fixes(fixed, target, spec, args.nms, ["insert_nms_plugin"])
    return _save_new(with_plugin, fixed_path, [exported]), verify_path, reports + plugin_reports


def _verify_for_all(args, exported, fixed, step, started, fixed_inputs=None):
    """Verify against the exported graph and, for TFLite/Keras sources, against the source model in its
    own framework too (the only reference where ONNX Runtime cannot run the export, e.g. TFLite custom
    ops). Returns False only when numbers disagree; a reference that cannot run is reported, not failed."""
    from converter.verify import VerifyError, verify

    atol, rtol = _tolerances(args)
    references = [exported]
    if os.path.splitext(args.source)[1].lower() in (".tflite", ".keras", ".h5", ".hdf5"):
        references.append(args.source)
    problems, compared, agreed = [], 0, True
    for reference in references:
        try:
            result = verify(reference, fixed, inputs=args.inputs, seed=args.seed, runs=args.runs, atol=atol, rtol=rtol,
                            fixed_inputs=fixed_inputs)
        except VerifyError as error:
            logger.warning("all: verify: %s cannot be the reference: %s", os.path.basename(reference), error)
            problems.append(str(error))
            continue
        compared += 1
        agreed = agreed and result.passed
        worst = max([row.max_abs for row in result.outputs] or [float("nan")])
        step("verify", "ok" if result.passed else "FAILED",
             "vs {}: {} output(s), max abs err {:.3g} (atol {:g}, rtol {:g})".format(
                 os.path.basename(reference), len(result.outputs), worst, atol, rtol), started)
        started = time.time()
    if not compared:
        step("verify", "skipped", "; ".join(problems), started)
    return agreed
