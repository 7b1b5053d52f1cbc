"""One error hierarchy for the host converter: callers catch `ConversionError`.

`convert` maps it to exit status 2 (bad input or usage); a check or verify that ran and found
problems is not an error but a result (exit status 1).
"""


class ConversionError(ValueError):
    """Base of every error the converter raises on purpose; the message says what, where and what to do."""


class UnknownTarget(ConversionError):
    """A target profile name that does not exist."""


class ExportError(ConversionError):
    """A framework model cannot be exported to ONNX."""


class FixError(ConversionError):
    """A graph cannot be repaired automatically."""


class VerifyError(ConversionError):
    """Two models cannot be compared (inputs, shapes, files)."""
