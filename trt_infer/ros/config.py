"""The node's configuration as plain data: parameter values checked against the parameter table.

    values = check_values(startup_values)      # the parameters but the thresholds; StartupError otherwise
    spec = load_model_spec(values["model_spec"])
    threshold_defaults(spec)                   # the thresholds' defaults, declared once the spec is loaded
    config = NodeConfig(all_values, spec)      # every value checked again, absent ones defaulted

No rclpy here, so the node's decisions are testable without DDS (and under Python 3.6).
"""
from trt_infer.errors import SpecError, StartupError
from trt_infer.ros import parameters as table

# parameters holding file or folder paths (resolved against the installed share folder)
PATH_PARAMETERS = ("model_spec", "engine_path", "onnx_path", "cache_dir")


def startup_names():
    """The parameters declared before the spec is loaded (all but the thresholds)."""
    return [param.name for param in table.PARAMETERS if param.default != table.FROM_SPEC]


def check_value(name, value):
    """`value` as the parameter's kind (an int given for a float parameter becomes a float), or a
    StartupError saying which parameter, the value, what is allowed and how to set it."""
    param = table.BY_NAME[name]
    problem = param.problem(value)
    if problem:
        raise StartupError("parameter {}; allowed: {}; set it in the params file or with -p {}:=VALUE".format(
            problem, param.allowed() or param.field.allowed(), name))
    return param.kind(value)


def check_values(values):
    """`values` (name -> value) checked parameter by parameter with check_value."""
    return dict((name, check_value(name, value)) for name, value in values.items())


def load_model_spec(path):
    """The ModelSpec of the model_spec parameter; StartupError when it is unset or does not load."""
    from trt_infer.spec import load_spec

    if not path:
        raise StartupError("parameter model_spec is not set: give the model spec YAML (config/models/*.yaml) "
                           "in the params file or with -p model_spec:=path")
    try:
        return load_spec(path)
    except SpecError as error:
        raise StartupError("bad model spec: {}".format(error))


def threshold_defaults(spec):
    """The threshold parameters' defaults: the spec's `thresholds` values."""
    return dict((name, table.BY_NAME[name].kind(spec.thresholds[key]))
                for name, key in table.THRESHOLD_PARAMETERS.items())


def threshold_values(values):
    """Pipeline.set_thresholds keywords (score, nms_iou, max_detections) of the threshold
    parameters among `values`."""
    return dict((key, values[name]) for name, key in table.THRESHOLD_PARAMETERS.items() if name in values)


def runtime_changes(changes):
    """Check a `ros2 param set` request (name -> value): (updates, None) when every change is
    acceptable, else (None, reason). Names outside the table (use_sim_time...) are not ours."""
    updates = {}
    for name, value in changes.items():
        param = table.BY_NAME.get(name)
        if param is None:
            continue
        if not param.runtime:
            return None, "{} is read-only at run time; set it in the params file and restart".format(name)
        problem = param.problem(value)
        if problem:
            return None, problem
        updates[name] = param.kind(value)
    return updates, None


class NodeConfig(object):
    """Every parameter's value as an attribute (config.backend, config.score_threshold, ...), all
    checked against the table, plus the loaded spec. Absent parameters take the table's default
    (the spec's value for the thresholds)."""

    def __init__(self, values, spec):
        unknown = sorted(set(values) - set(table.BY_NAME))
        if unknown:
            raise StartupError("parameter {} is not a parameter of the node; known: {}".format(
                unknown[0], ", ".join(table.declared_names())))
        complete = dict((name, default) for name, default in
                        ((param.name, param.default) for param in table.PARAMETERS) if default != table.FROM_SPEC)
        complete.update(threshold_defaults(spec))
        complete.update(values)
        self.values = check_values(complete)
        self.spec = spec

    def __getattr__(self, name):
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError("NodeConfig has no {!r}; parameters: {}".format(name, ", ".join(sorted(values))))

    @property
    def thresholds(self):
        """score, nms_iou, max_detections as the pipeline takes them."""
        return threshold_values(self.values)

    def update(self, updates):
        """Apply changes already accepted by runtime_changes."""
        self.values.update(check_values(updates))
