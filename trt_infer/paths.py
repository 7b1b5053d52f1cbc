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
