"""The node's command line as rcl reads it (`--ros-args -p NAME:=VALUE --params-file FILE ...`),
checked before rclpy.init, whose RCLError would otherwise be a traceback.

    problem = argument_problem(sys.argv)        # None, or one line naming the argument and the fix
    command_line_parameters(sys.argv, "trt_infer")   # [(name, value)] of the -p overrides, in order
    rcl_error_line(str(rcl_error))              # rcl's message without its source locations

No rclpy here: testable without DDS (and under Python 3.6).
"""
import os
import re

# rcl's flags that take the next argument as their value (rcl/arguments.h)
_VALUE_FLAGS = ("-p", "--param", "--params-file", "-r", "--remap", "-e", "--enclave", "--log-level",
                "--log-config-file", "--log-file-name")
_EMPTY_VALUE_FIX = "for an empty string quote it for rcl too: -p \"{0}:=''\"; else give a value: -p {0}:=VALUE"


def ros_arguments(args):
    """(flag, value) of every value-taking rcl flag in `args` (value None when it is missing),
    from each `--ros-args` to the next `--`."""
    pairs, inside, index = [], False, 0
    args = list(args or [])
    while index < len(args):
        arg = args[index]
        if arg == "--ros-args":
            inside = True
        elif arg == "--":
            inside = False
        elif inside and arg in _VALUE_FLAGS:
            value = args[index + 1] if index + 1 < len(args) else None
            pairs.append((arg, value))
            index += 1
        index += 1
    return pairs


def argument_problem(args):
    """Why rcl would refuse `args`, in one line naming the argument and the fix, for the mistakes
    users make (a params file that is not there, a -p without value); None when none is found
    (rcl may still refuse them: rcl_error_line words that)."""
    for flag, value in ros_arguments(args):
        if value is None:
            return "{} needs a value after it".format(flag)
        if flag == "--params-file" and not os.path.isfile(value):
            return "--params-file {}: no such file (relative paths are read from the working directory {}); " \
                   "give the path of the params YAML, e.g. --params-file config/detector.yaml".format(
                       value, os.getcwd())
        if flag in ("-p", "--param"):
            name, assign, rest = value.partition(":=")
            if not assign:
                return "{} {}: not NAME:=VALUE; write e.g. -p score_threshold:=0.6".format(flag, value)
            if rest == "":
                return "{} {}: the value is empty, which rcl cannot parse; {}".format(
                    flag, value, _EMPTY_VALUE_FIX.format(name.split(":")[-1]))
    return None


def command_line_parameters(args, node_name):
    """[(name, value)] of the `-p NAME:=VALUE` (and `-p NODE:NAME:=VALUE` for `node_name`) overrides
    in `args`, values read as YAML as rcl reads them (a string where YAML fails)."""
    import yaml

    found = []
    for flag, value in ros_arguments(args):
        if flag not in ("-p", "--param") or not value or ":=" not in value:
            continue
        target, _, text = value.partition(":=")
        node, _, name = target.rpartition(":")
        if node and node.lstrip("/") != node_name:
            continue
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            parsed = text
        found.append((name, parsed))
    return found


def rcl_error_line(message):
    """rcl's error message as one line for users: without its ", at file.c:NN" source locations."""
    text = re.sub(r",? at [^ ,]+\.c(pp)?:\d+", "", str(message)).strip()
    return " ".join(text.split())
