"""One error hierarchy for the runtime: callers catch `TrtInferError`.

Every error says what was wrong, where (file, tensor, key path, parameter) and what to do. The
built-in base next to `TrtInferError` (ValueError for bad input, RuntimeError for a failed
operation) keeps `except ValueError` callers of older releases working.
"""


class TrtInferError(Exception):
    """Base of every error the runtime raises on purpose."""


class SpecError(TrtInferError, ValueError):
    """A model spec is wrong; the message names the file, the key path, the value and what is allowed."""

    def __init__(self, path, message, source=None):
        self.path = path
        self.source = source
        where = "{}: {}".format(source, path) if source else path
        super(SpecError, self).__init__("{}: {}".format(where, message))


class SettingError(TrtInferError, ValueError):
    """An option has a value that is not allowed; the message names the option and the allowed values."""


class MissingDependencyError(TrtInferError, ImportError):
    """A library this path needs (TensorRT, pycuda, ONNX Runtime, vision_msgs) does not import here."""


class ModelLoadError(TrtInferError, ValueError):
    """A model file cannot be loaded (corrupt, unknown kind, or an op the runtime lacks)."""


class ModelNotFoundError(ModelLoadError, FileNotFoundError):
    """A model or engine file does not exist; the message says how to make it."""


class ModelMismatchError(TrtInferError, ValueError):
    """The model file does not match its spec (names, shapes or dtypes)."""


class ImageError(TrtInferError, ValueError):
    """A frame that cannot be viewed as an image; `kind` groups errors for log-once reporting."""

    def __init__(self, kind, message):
        super(ImageError, self).__init__(message)
        self.kind = kind


class EngineError(TrtInferError, RuntimeError):
    """A TensorRT engine cannot be used; the message names the file and the command that rebuilds it."""


class EngineMismatchError(EngineError):
    """The engine was built for another TensorRT version or GPU."""


class EngineLoadError(EngineError):
    """The engine file cannot be read or deserialized."""


class BuildError(TrtInferError, RuntimeError):
    """An engine could not be built; the message says what, where and what to do."""


class CalibrationError(BuildError):
    """INT8 calibration cannot run; the message names the folder, file or setting and what to do."""


class StartupError(TrtInferError):
    """The node cannot start; the message names the file or parameter and the fix."""
