"""`convert` (`ros2 run trt_infer convert`, `python -m converter`): export, fix, check, verify, build,
all, inspect.

Every sub-command is declared as data in COMMANDS (the shape of Polygraphy's tool registry): its
name, help, the function adding its arguments, the function running it, the modules it needs
and where it runs. Building the parser imports only the light argument modules, so `convert
--help` and `convert build` work on a device with nothing but TensorRT and numpy; a command whose
modules are missing here says so in one uniform message (exit 2). `convert build` is the
runtime's build command (trt_infer.engine.build), unchanged. Python 3.6 compatible.
"""
import argparse
import importlib
import importlib.util
import logging

from trt_infer import cli_logging
from trt_infer.errors import TrtInferError

# 0 ok; 1 a check, verify, step of `all` or build that ran and failed; 2 bad input or usage, nothing
# written (docs/converting.md, "Exit status"). Exceptions are exit 2: the converter's and the
# runtime's error classes say what was wrong with which file or option.
EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2
HOST, DEVICE = "host", "device"
# Where a command runs, and how to get what it needs there.
PLACES = {
    HOST: "the host PC: pip install -r tools/requirements-host.txt",
    DEVICE: ("the device that will run the engine, with TensorRT and numpy (on a Jetson both come with "
             "JetPack: sudo apt install python3-libnvinfer python3-numpy)"),
}

logger = logging.getLogger(__name__)


class Command(object):
    """One sub-command. `arguments` and `runs` are "module:function" names, imported only when used;
    `needs` are the modules it imports to run; `where` is HOST or DEVICE."""

    def __init__(self, name, summary, arguments, runs, needs=(), where=HOST):
        self.name = name
        self.summary = summary
        self.arguments = arguments
        self.runs = runs
        self.needs = tuple(needs)
        self.where = where

    def add_arguments(self, parser):
        _resolve(self.arguments)(parser)
        cli_logging.add_logging_arguments(parser)

    def run(self, args):
        return _resolve(self.runs)(args)

    def __repr__(self):
        return "Command({!r}, runs={!r}, needs={!r}, where={!r})".format(self.name, self.runs, self.needs, self.where)


COMMANDS = (
    Command("export", "TF SavedModel / Keras / PyTorch / TFLite / ONNX -> ONNX",
            "converter.arguments:export_arguments", "converter.commands:run_export", needs=("onnx",)),
    Command("fix", "repair an ONNX graph for the target (graph passes)",
            "converter.arguments:fix_arguments", "converter.commands:run_fix", needs=("onnx", "onnx_graphsurgeon")),
    Command("check", "would the target's TensorRT accept this graph? exit 1 if not",
            "converter.arguments:check_arguments", "converter.commands:run_check", needs=("onnx",)),
    Command("verify", "ONNX Runtime: reference vs fixed graph, per-output errors",
            "converter.arguments:verify_arguments", "converter.commands:run_verify", needs=("onnx", "onnxruntime")),
    Command("build", "ONNX -> TensorRT engine + sidecar (on the device)",
            "trt_infer.engine.build:add_arguments", "trt_infer.engine.build:run", needs=("numpy",), where=DEVICE),
    Command("all", "export -> fix -> check -> verify -> build, one summary table",
            "converter.arguments:all_arguments", "converter.commands:run_all",
            needs=("onnx", "onnx_graphsurgeon", "onnxruntime")),
    Command("inspect", "inputs, outputs, opset, op histogram and the target check",
            "converter.arguments:inspect_arguments", "converter.commands:run_inspect", needs=("onnx",)),
)
COMMANDS_BY_NAME = dict((command.name, command) for command in COMMANDS)


def _resolve(reference):
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)


def build_parser():
    parser = argparse.ArgumentParser(prog="convert", description="Framework model -> ONNX for a TensorRT "
                                     "target -> engine. Never overwrites its input files.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in COMMANDS:
        command.add_arguments(subparsers.add_parser(command.name, help=command.summary))
    return parser


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_modules(command):
    """The modules `command` needs that are not installed here, in its order."""
    return [module for module in command.needs if not _installed(module)]


def missing_message(command, missing):
    """The one message for a command that cannot run here: what is missing, where it runs, what to do."""
    return "{} {} not installed here; `convert {}` runs on {}".format(
        ", ".join(missing), "is" if len(missing) == 1 else "are", command.name, PLACES[command.where])


def main(argv=None):
    args = build_parser().parse_args(argv)
    command = COMMANDS_BY_NAME[args.command]
    cli_logging.configure("convert " + command.name, verbose=args.verbose, quiet=args.quiet)
    missing = missing_modules(command)
    if missing:
        logger.error("%s", missing_message(command, missing))
        return EXIT_ERROR
    try:
        return command.run(args)
    except ImportError as error:
        # A module only some inputs need (tf2onnx for a SavedModel, torch for a .pt) and not installed.
        absent = (getattr(error, "name", None) or "").partition(".")[0]
        if absent and not _installed(absent):
            logger.error("%s", missing_message(command, [absent]))
        else:
            logger.error("%s", error)
        return EXIT_ERROR
    except (TrtInferError, ValueError, OSError, RuntimeError) as error:
        # ConversionError is a ValueError; missing files are OSErrors; onnx and onnxruntime raise
        # ValueErrors and RuntimeErrors of their own.
        logger.error("%s", error)
        return EXIT_ERROR
