"""Run Python code in a fresh interpreter where some modules cannot be imported.

`sys.modules[name] = None` makes `import name` (and `import name.sub`) raise ImportError, as on
a device where the module is not installed, without uninstalling anything. The code runs with
the repository as the working directory and on sys.path.
"""
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# What the host converter needs and the device (and the runtime) must do without.
HOST_ONLY = ("onnx", "onnx_graphsurgeon", "tf2onnx", "tensorflow", "torch")
# The runtime must also do without the converter itself.
NOT_FOR_THE_RUNTIME = ("converter",) + HOST_ONLY

PREAMBLE = "import sys\nsys.path.insert(0, {root!r})\nfor _name in {blocked!r}:\n    sys.modules[_name] = None\n"


def run_blocked(code, blocked, python=None, timeout=300):
    """CompletedProcess of `code` run with `blocked` modules unimportable (text stdout and stderr)."""
    script = PREAMBLE.format(root=REPO_ROOT, blocked=tuple(blocked)) + code
    return subprocess.run([python or sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
