"""Log records of a command-line tool to stderr, with -v/--verbose and -q/--quiet.

Results (tables, JSON) go to stdout; everything said along the way is a log record of the module
that says it (`logging.getLogger(__name__)`). INFO lines print as they are; warnings and errors
get "<prog>: warning: " / "<prog>: error: " in front, so message texts carry no severity words.
"""
import logging
import sys

PACKAGES = ("trt_infer", "converter")


def add_logging_arguments(parser):
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true",
                       help="also print debugging detail, TensorRT's own INFO and VERBOSE lines included")
    group.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    return parser


class _Formatter(logging.Formatter):
    def __init__(self, prog):
        logging.Formatter.__init__(self)
        self.prog = prog

    def format(self, record):
        text = logging.Formatter.format(self, record)
        if record.levelno >= logging.WARNING:
            return "{}: {}: {}".format(self.prog, record.levelname.lower(), text)
        return text


class StderrHandler(logging.Handler):
    """Writes to the sys.stderr of the moment (tests swap it), one record per line."""

    def emit(self, record):
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001  logging.Handler.emit convention: report, never raise
            self.handleError(record)


def configure(prog, verbose=False, quiet=False):
    """Send the records of this project's loggers to stderr at the level -v/-q ask for.

    Calling it again (the same process running a second command) replaces the handler.
    """
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if isinstance(handler, StderrHandler)]:
        root.removeHandler(handler)
    handler = StderrHandler()
    handler.setFormatter(_Formatter(prog))
    root.addHandler(handler)
    for name in PACKAGES:
        logging.getLogger(name).setLevel(level)
    return handler
