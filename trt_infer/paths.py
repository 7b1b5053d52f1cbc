"""Where the package's data files (node parameters, model specs, label files under config/) are:
the working directory, the source tree, or the installed package's share/trt_infer folder
(colcon and `pip install` of the ament_python package copy config/ there, see setup.py)."""
import os

PACKAGE = "trt_infer"
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The checkout this module was imported from; None once installed (site-packages has no package.xml).
SOURCE_TREE = _ROOT if os.path.isfile(os.path.join(_ROOT, "package.xml")) else None


def share_directory():
    """The installed package's share/trt_infer folder, or None. The ament index decides when
    ament_index_python imports (as `ros2 launch` does); otherwise the first AMENT_PREFIX_PATH
    entry holding share/trt_infer."""
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
            candidate = os.path.join(prefix, "share", PACKAGE)
            if prefix and os.path.isdir(candidate):
                return candidate
        return None
    try:
        return get_package_share_directory(PACKAGE)
    except (LookupError, OSError, ValueError):  # not in the index (PackageNotFoundError is a KeyError)
        return None


def resolve_path(path):
    """`path` with ~ expanded; a relative path that does not exist from the working directory is
    looked up in the source tree, then in the installed share/trt_infer (so config/models/x.yaml
    works from anywhere after install). Returned unchanged when found nowhere, so the caller's
    error names the path as given."""
    path = os.path.expanduser(path)
    if not path or os.path.isabs(path) or os.path.exists(path):
        return path
    for root in _roots():
        if os.path.exists(os.path.join(root, path)):
            return os.path.join(root, path)
    return path


def _roots():
    """The source tree, then the share folder; the ament index is asked only when needed."""
    if SOURCE_TREE is not None:
        yield SOURCE_TREE
    share = share_directory()
    if share is not None:
        yield share


def same_file(path, other):
    """True when `path` and `other` are one file on disk (the same device and inode), whether named
    directly, through a symlink or by a hard link; False when either does not exist."""
    try:
        return os.path.samefile(path, other)
    except (OSError, ValueError):   # missing, unreadable, or a name with a NUL byte
        return False


def check_output(path, inputs=(), option="-o/--output", folder=False, example="model.onnx", error=None):
    """Raise `error` (default SettingError) unless a command can write `path` (a file; with folder=True
    a folder to write into) without replacing any of `inputs` (paths; folders count by their files).

    The message names `option`, the path and what to pass instead. Files are compared as files
    (os.path.samefile), so a symlink or a hard link to an input is refused like the input itself.
    """
    from trt_infer.errors import SettingError

    error = error or SettingError
    if os.path.isdir(path) and not folder:
        raise error("{} {} is a folder; pass the file to write, e.g. {}".format(
            option, path, os.path.join(path, example)))
    if os.path.exists(path) and folder and not os.path.isdir(path):
        raise error("{} {} is a file, not a folder; pass a folder to write into (it is created if missing), "
                    "e.g. {}".format(option, path, os.path.splitext(path)[0] + "_converted"))
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise error("{} {}: {} is a file, so no folder can be made there; choose a path in a folder".format(
            option, path, parent))
    replaced = overwritten_input(path, inputs)
    if replaced is not None:
        if os.path.islink(path):
            link = ", through a symlink"
        elif os.path.realpath(path) != os.path.realpath(replaced):
            link = ", a hard link"
        else:
            link = ""
        raise error("{} {} is the input {} (the same file{}); write to another path: inputs are never "
                    "overwritten".format(option, path, replaced, link))


def overwritten_input(path, inputs):
    """The first of `inputs` that writing `path` would replace, else None. A folder among the inputs
    stands for every file under it (a SavedModel, a calibration image folder)."""
    for candidate in inputs:
        if not candidate:
            continue
        if os.path.isdir(candidate):
            for folder, _, names in os.walk(candidate):
                for name in names:
                    if same_file(path, os.path.join(folder, name)):
                        return os.path.join(folder, name)
        elif same_file(path, candidate):
            return candidate
    return None
