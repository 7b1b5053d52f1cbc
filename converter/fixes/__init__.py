"""`convert fix`: graph repair passes that make an ONNX graph acceptable to a TensorRT target.

Each pass is `fix_x(graph, target, context) -> list of FixReport`: it does one thing to an
onnx-graphsurgeon graph and reports the nodes (or graph inputs) it changed. `run_fixes` runs them
in order, with shape inference, cleanup and toposort after every change, until a whole round
changes nothing. The NMS plugin goes in last, after the graph's numerics can still be checked in
ONNX Runtime (which cannot run plugins).

Target attributes read (converter/targets.py): name, max_opset, input_dtypes, unsupported_ops,
reshape_allowzero_fixed, static_shapes, initializer_inputs, resize_modes,
resize_rejected_coordinate_modes, nms_plugin. Model spec attributes read (trt_infer.spec.ModelSpec,
already validated there): input.name/.shape/.scale/.mean/.std, thresholds, section["background_class"].
"""
import logging

from converter.errors import FixError
from converter.targets import NMS_MODES

__all__ = ["FixReport", "FixError", "run_fixes", "PASS_NAMES", "NMS_MODES"]

logger = logging.getLogger(__name__)
MAX_ROUNDS = 8


class FixReport(object):
    """What one pass did: its name, the node (or input) names it touched and a sentence saying what.

    `changed` is False for findings a pass reports without changing the graph (e.g. a Resize mode
    nothing can repair); those never make `run_fixes` go round again. `warning`: a change that
    alters the model's outputs, logged as a warning instead of as information.
    """

    def __init__(self, pass_name, nodes, message, changed=True, warning=False):
        self.pass_name = pass_name
        self.nodes = list(nodes)
        self.message = message
        self.changed = changed
        self.warning = warning

    def __repr__(self):
        return "FixReport({!r}, {!r}, {!r})".format(self.pass_name, self.nodes, self.message)

    def __str__(self):
        shown = ", ".join(self.nodes[:6]) + (" and {} more".format(len(self.nodes) - 6) if len(self.nodes) > 6 else "")
        return "{}: {} [{}]".format(self.pass_name, self.message, shown)


class FixContext(object):
    """What passes may need besides the graph and the target: the model spec and the NMS choice."""

    def __init__(self, spec=None, nms="keep"):
        if nms not in NMS_MODES:
            raise ValueError("nms={!r}: expected one of {}".format(nms, ", ".join(NMS_MODES)))
        self.spec = spec
        self.nms = nms
        self._notes = []

    def note(self, report):
        """Record a finding that changes nothing; reported once however many rounds run."""
        if not any(seen.pass_name == report.pass_name and seen.nodes == report.nodes for seen in self._notes):
            report.changed = False
            self._notes.append(report)
            logger.warning("%s", report)

    @property
    def notes(self):
        return list(self._notes)


# (pass name, module); each module defines fix_<pass name>. Order matters: ops ONNX shape inference
# cannot read first (HardSwish below opset 14 stops it for the whole graph), then the input side,
# folding before the per-op repairs, opset conversion before the repairs it leaves behind.
PASSES = (
    ("hardswish", "hardswish"),
    ("tflite_custom_ops", "tflite_custom_ops"),
    ("strip_preprocessing", "preprocessing"),
    ("inputs_to_float", "inputs"),
    ("int64_inputs", "inputs"),
    ("static_shapes", "shapes"),
    ("fold_constants", "folding"),
    ("reduce_axes", "reduce_axes"),
    ("convert_opset", "opset"),
    ("reshape_allowzero", "reshape"),
    ("resize_scales", "resize"),
    ("resize_mode", "resize"),
    ("strip_nms", "nms_strip"),
)
FINAL_PASS = ("insert_nms_plugin", "nms_plugin")
PASS_NAMES = tuple(name for name, _ in PASSES) + (FINAL_PASS[0],)


def _load_pass(name, module):
    # Imported on use so that `import converter.fixes` stays cheap for the CLI's help text.
    import importlib

    return getattr(importlib.import_module("converter.fixes." + module), "fix_" + name)


def _log_changes(reports):
    for report in reports:
        logger.log(logging.WARNING if report.warning else logging.INFO, "%s", report)


def run_fixes(model, target, spec=None, nms="keep", passes=None):
    """Repair `model` (an onnx.ModelProto, left untouched) for `target`; returns (new model, reports).

    spec: the ModelSpec (static input shape, runtime pre-processing, NMS thresholds), or None.
    nms: "keep" the graph's NMS, strip it for the "runtime", or replace it by the target's "plugin".
    passes: restrict to these pass names (default: all).
    Raises FixError when the graph cannot be repaired or the passes do not settle.
    """
    import onnx
    import onnx_graphsurgeon as gs
    from converter.fixes.graph_tools import infer_shapes, tidy

    context = FixContext(spec=spec, nms=nms)
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = tidy(infer_shapes(gs.import_onnx(copy)))
    if passes is not None:
        unknown = sorted(set(passes) - set(PASS_NAMES))
        if unknown:
            raise ValueError("unknown fix pass {}; passes: {}".format(", ".join(unknown), ", ".join(PASS_NAMES)))
    selected = [(name, _load_pass(name, module)) for name, module in PASSES if passes is None or name in passes]
    reports = []
    for _ in range(MAX_ROUNDS):
        changed_this_round = []
        for name, fix in selected:
            changes = [report for report in fix(graph, target, context) if report.changed]
            if changes:
                _log_changes(changes)
                reports.extend(changes)
                changed_this_round.append(name)
                graph = tidy(infer_shapes(tidy(graph)))
        if not changed_this_round:
            break
    else:
        raise FixError("the fix passes did not settle after {} rounds; still changing: {}. This is a converter "
                       "bug: please report it with the model".format(MAX_ROUNDS, ", ".join(changed_this_round)))
    if nms == "plugin" and (passes is None or "insert_nms_plugin" in passes):
        plugin_reports = _load_pass(*FINAL_PASS)(graph, target, context)
        _log_changes(plugin_reports)
        reports.extend(plugin_reports)
        graph = tidy(graph)
    fixed = gs.export_onnx(graph)
    # The oldest IR version the opsets allow: older parsers (TensorRT 8.2's) warn about newer ones.
    fixed.ir_version = onnx.helper.find_min_ir_version_for(list(fixed.opset_import), ignore_unknown=True)
    return fixed, reports + context.notes
