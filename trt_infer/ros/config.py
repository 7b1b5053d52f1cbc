"""The node's configuration as plain data: parameter values checked against the parameter table.

    values = check_values(startup_values)      # the parameters but the thresholds; StartupError otherwise
    spec = load_model_spec(values["model_spec"])
    threshold_defaults(spec)                   # the thresholds' defaults, declared once the spec is loaded
    config = NodeConfig(all_values, spec)      # every value checked again, absent ones defaulted

    start_values(names, overrides, command_line)   # what the params file and -p set, -p winning
    unknown_parameters(overrides)              # misspelt names, to say once

No rclpy here, so the node's decisions are testable without DDS (and under Python 3.6).
"""
import difflib
import re

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
            problem, _allowed(param), name))
    return param.kind(value)


def _allowed(param):
    """The accepted values in words; a float parameter's range as floats (0.0 .. 1.0), as it is typed."""
    low, high = param.field.minimum, param.field.maximum
    if param.kind is float and low is not None and high is not None:
        return "{!r} .. {!r}".format(float(low), float(high))
    return param.allowed() or param.field.allowed()


# rcl_interfaces/msg/ParameterType numbers, as some rclpy versions print them
PARAMETER_TYPES = ("not set", "bool", "integer", "double", "string", "byte array", "bool array",
                   "integer array", "double array", "string array")
# parameters every rclpy node declares itself (Foxy .. Kilted), and rclpy's QoS override namespace
RCLPY_PARAMETERS = ("use_sim_time", "start_type_description_service")
RCLPY_PREFIXES = ("qos_overrides.",)


def type_names(text):
    """rclpy's messages with the parameter types in words: "Wrong parameter type, expected '3' got
    '2'" -> "... expected 'double' got 'integer'"; also 'Type.DOUBLE', 'PARAMETER_DOUBLE' and
    "type 'DOUBLE'" (values in the message are left alone)."""
    def code(match):
        number = int(match.group(2))
        return "{}'{}'".format(match.group(1), PARAMETER_TYPES[number] if number < len(PARAMETER_TYPES) else number)

    def name(match):
        return "{}'{}'".format(match.group(1), match.group(2).replace("_", " ").lower())

    names = "|".join(word.upper().replace(" ", "_") for word in PARAMETER_TYPES)
    text = re.sub(r"((?:expected|got) )'(\d+)'", code, str(text))
    return re.sub(r"((?:expected|got|type) )'(?:Type\.|PARAMETER_)?({})'".format(names), name, text)


def start_values(names, overrides, command_line):
    """The start-up values of the parameters `names`: rclpy's overrides (name -> value: the params
    files and -p, as rcl merged them), and the `-p` values of `command_line` ((name, value) in order)
    where rcl dropped them. rcl keeps a params file's value when a -p gives another type
    (`-p score_threshold:=abc` over `score_threshold: 0.5`); the user meant the -p, so it is what
    gets checked. Names without a value are left out."""
    values = dict((name, overrides[name]) for name in names if name in overrides)
    for name, value in command_line:
        if name in names and name in values and type(values[name]) is not type(value):
            values[name] = value
        elif name in names and name not in values:
            values[name] = value
    return values


def unknown_parameters(names):
    """One line for the parameter names (from the params file or -p) that the node does not have,
    with the closest known name; None when all are known (or rclpy's own)."""
    known = table.declared_names()
    unknown = sorted(set(name for name in names if name not in known and name not in RCLPY_PARAMETERS
                         and not name.startswith(RCLPY_PREFIXES)))
    if not unknown:
        return None
    described = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        described.append("{} (did you mean {}?)".format(name, close[0]) if close else name)
    return "parameter{} {} {} not a parameter of the node and {} ignored; fix the params file or -p (parameters: " \
           "{})".format("s" if len(unknown) > 1 else "", ", ".join(described), "are" if len(unknown) > 1 else "is",
                        "are" if len(unknown) > 1 else "is", ", ".join(known))


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
