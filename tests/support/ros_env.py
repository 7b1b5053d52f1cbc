"""The environment a test process needs for real ROS 2 (rclpy + Fast DDS) and one vision_msgs layout.

    env = ros_environment("foxy")          # or "galactic", "humble" (the default)
    with start_module("tests.support.ros_probe", "receive", ..., env=env) as listener:
        ...
        listener.wait(timeout=15)
    listener.output

`ros_environment` returns a copy of os.environ in which:
- AMENT_PREFIX_PATH = <layout prefix>:.venv, so ament_index knows the layout's vision_msgs package;
- PYTHONPATH starts with the layout's site-packages (and the repository root), and no other layout's;
- LD_LIBRARY_PATH holds the layout's and the ROS wheels' library folders. This is what really
  selects the layout: rosidl_typesupport_c dlopen()s `libvision_msgs__rosidl_typesupport_fastrtps_c.so`
  by bare name, and the dynamic loader reads LD_LIBRARY_PATH only when a process starts (an RPATH
  could not serve that dlopen, so the layouts have none and a process without this path fails
  at its first vision_msgs message). The wheels' start-up re-exec, which would compute the same
  path, is skipped;
- ROS_DOMAIN_ID is a domain no other call on this machine holds (a lock file per id, held by this
  process), ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and RMW_IMPLEMENTATION=rmw_fastrtps_cpp,
  so concurrent test runs never hear each other.
The layouts are built by tools/build_vision_msgs.sh into .venv/vision_msgs/<layout>.
A process imports one vision_msgs only: select the layout per process (never per thread, nor by
editing sys.path inside a running interpreter).
"""
import collections
import glob
import itertools
import os
import signal
import subprocess
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV = os.path.join(REPO_ROOT, ".venv")
LAYOUTS = ("foxy", "galactic", "humble")
DEFAULT_LAYOUT = "humble"
LAYOUT_VARIABLE = "TRT_INFER_VISION_MSGS_LAYOUT"

# Domain ids 0..101 are the ones whose DDS ports never collide with Linux's ephemeral port range;
# 0 is everybody's default, so tests keep to 1..101.
_DOMAIN_IDS = range(1, 102)
_MAX_HELD_DOMAINS = 16  # beyond this many calls a process gives up its oldest domain's lock
_held_domains = collections.OrderedDict()  # domain id -> open, locked file
_calls = itertools.count()


def layout_prefix(layout=None):
    """Install prefix of a built vision_msgs layout; a clear error when unknown or not built."""
    layout = layout or DEFAULT_LAYOUT
    if layout not in LAYOUTS:
        raise ValueError("unknown vision_msgs layout %r: choose one of %s" % (layout, ", ".join(LAYOUTS)))
    prefix = os.path.join(VENV, "vision_msgs", layout)
    if not os.path.isfile(os.path.join(prefix, ".build-stamp")):
        raise RuntimeError(
            "vision_msgs layout %r is not built (no %s): run `bash tools/build_vision_msgs.sh %s` "
            "(tools/setup_env.sh does it for all layouts)" % (layout, os.path.relpath(prefix, REPO_ROOT), layout))
    return prefix


def _site_packages(prefix):
    found = glob.glob(os.path.join(prefix, "lib", "python3*", "site-packages"))
    if not found:
        raise RuntimeError("no lib/python3*/site-packages under %s: rebuild it with tools/build_vision_msgs.sh"
                           % prefix)
    return found[0]


def _ros_wheel_library_dirs():
    """What the ROS wheels' bootstrapper (ros_wheels_bootstrapper) puts on LD_LIBRARY_PATH."""
    return [os.path.join(VENV, "lib")] + sorted(
        glob.glob(os.path.join(VENV, "lib", "python3*", "site-packages", "ros_*.libs")))


def _join_paths(first, existing, drop_under=None):
    """`first` then the entries of the os.pathsep list `existing`, without duplicates or dropped ones."""
    kept = [part for part in (existing or "").split(os.pathsep)
            if part and not (drop_under and part.startswith(drop_under + os.sep))]
    parts = []
    for part in list(first) + kept:
        if part not in parts:
            parts.append(part)
    return os.pathsep.join(parts)


def _lock_directory():
    directory = os.path.join(tempfile.gettempdir(), "trt_infer-ros-domains")
    if not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
    return directory


def claim_domain_id():
    """A ROS_DOMAIN_ID that no other caller on this machine holds; held until this process exits."""
    import fcntl  # POSIX only, like the ROS wheels themselves

    directory = _lock_directory()
    start = os.getpid() * 31 + next(_calls)
    for offset in range(len(_DOMAIN_IDS)):
        domain_id = _DOMAIN_IDS[(start + offset) % len(_DOMAIN_IDS)]
        if domain_id in _held_domains:
            continue
        lock = open(os.path.join(directory, "%d.lock" % domain_id), "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _held_domains[domain_id] = lock
        while len(_held_domains) > _MAX_HELD_DOMAINS:
            _held_domains.popitem(last=False)[1].close()
        return domain_id
    raise RuntimeError(
        "all ROS domain ids %d..%d are held by test runs on this machine (lock files in %s): "
        "wait for them to finish" % (_DOMAIN_IDS[0], _DOMAIN_IDS[-1], directory))


def ros_environment(layout=None):
    """A copy of os.environ for a process that uses rclpy and the given vision_msgs layout."""
    layout = layout or DEFAULT_LAYOUT
    prefix = layout_prefix(layout)
    layouts_root = os.path.join(VENV, "vision_msgs")
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = _join_paths([prefix, VENV], env.get("AMENT_PREFIX_PATH"), drop_under=layouts_root)
    env["PYTHONPATH"] = _join_paths([_site_packages(prefix), REPO_ROOT], env.get("PYTHONPATH"), drop_under=layouts_root)
    env["LD_LIBRARY_PATH"] = _join_paths(
        [os.path.join(prefix, "lib")] + _ros_wheel_library_dirs(), env.get("LD_LIBRARY_PATH"), drop_under=layouts_root)
    # The library path above is complete, so the wheels' re-exec of every interpreter can be skipped.
    env["_ROS_WHEELS_BOOTSTRAP_COMPLETE"] = "1"
    env["ROS_DOMAIN_ID"] = str(claim_domain_id())
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; rclpy warns when both are set
    env.pop("ROS_STATIC_PEERS", None)
    env["RMW_IMPLEMENTATION"] = "rmw_fastrtps_cpp"
    env["PYTHONUNBUFFERED"] = "1"
    env[LAYOUT_VARIABLE] = layout
    return env


class ModuleProcess(object):
    """A `python -m module args...` child process; stdout and stderr are collected in a temporary file."""

    def __init__(self, module, args=(), env=None, cwd=REPO_ROOT, python=None):
        self.command = [python or sys.executable, "-m", module] + [str(arg) for arg in args]
        self._log = tempfile.TemporaryFile()
        # Its own session: a Ctrl-C in the terminal reaches pytest only, and the child is stopped by stop().
        self.popen = subprocess.Popen(self.command, env=env if env is not None else ros_environment(), cwd=cwd,
                                      stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self):
        return self.popen.pid

    @property
    def returncode(self):
        return self.popen.poll()

    @property
    def output(self):
        """Everything the process wrote so far (stdout and stderr interleaved)."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def wait(self, timeout):
        """Wait for the process to exit by itself; on timeout stop it and raise with its output."""
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("%s did not finish within %.0f s; its output:\n%s"
                                 % (" ".join(self.command[1:]), timeout, self.output))

    def stop(self, timeout=5.0):
        """SIGINT (rclpy shuts down cleanly), then SIGTERM, then SIGKILL; returns the exit status."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.popen.poll() is not None:
                break
            try:
                self.popen.send_signal(sig)
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                continue
            except OSError:  # it exited between poll() and the signal
                pass
        return self.popen.wait()

    def close(self):
        self.stop()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stop()
        return False

    def __repr__(self):
        return "ModuleProcess(%r, pid=%d, returncode=%r)" % (" ".join(self.command[1:]), self.pid, self.returncode)


def start_module(module, *args, **kwargs):
    """Start `python -m module args...` (env: a ros_environment(); also cwd, python) as a ModuleProcess."""
    return ModuleProcess(module, args, **kwargs)
