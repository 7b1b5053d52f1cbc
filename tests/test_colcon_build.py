"""Builds the package with colcon into a fresh workspace and checks that `ros2 run` and
`ros2 launch` would find what they look for.

`ros2 run trt_infer <exe>` resolves the package prefix through the ament index and runs
`<prefix>/lib/trt_infer/<exe>`; `ros2 launch trt_infer nano.launch.py` looks in
`<prefix>/share/trt_infer/`. Both lookups are reproduced with ament_index_python itself.
"""
import glob
import os
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_CONTENT = ["package.xml", "setup.py", "setup.cfg", "resource", "trt_infer", "converter",
                   "launch", "config"]
CONSOLE_SCRIPTS = ["convert", "trt_infer_node", "replay", "bench", "infer"]

pytestmark = pytest.mark.slow


def colcon_executable():
    path = os.path.join(os.path.dirname(sys.executable), "colcon")
    if not os.path.isfile(path):
        pytest.skip("colcon is not installed in this environment (the host .venv has it)")
    return path


@pytest.fixture(scope="module")
def installed_prefix(tmp_path_factory):
    workspace = tmp_path_factory.mktemp("colcon_ws")
    source = workspace / "src" / "trt_infer"
    source.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PACKAGE_CONTENT:
        origin = os.path.join(REPO_ROOT, name)
        if os.path.isdir(origin):
            shutil.copytree(origin, str(source / name), ignore=ignore)
        else:
            shutil.copy(origin, str(source / name))
    result = subprocess.run([colcon_executable(), "build"], cwd=str(workspace),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    assert result.returncode == 0, "colcon build failed:\n" + result.stdout
    return str(workspace / "install" / "trt_infer")


def ament_lookup(prefix, expression):
    """Evaluate an ament_index_python expression the way the ros2 CLI would, against `prefix` only."""
    env = dict(os.environ, AMENT_PREFIX_PATH=prefix)
    code = "import ament_index_python.packages as p; print({})".format(expression)
    result = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_console_scripts_are_where_ros2_run_looks(installed_prefix):
    prefix = ament_lookup(installed_prefix, "p.get_package_prefix('trt_infer')")
    assert os.path.realpath(prefix) == os.path.realpath(installed_prefix)
    for name in CONSOLE_SCRIPTS:
        executable = os.path.join(prefix, "lib", "trt_infer", name)
        assert os.access(executable, os.X_OK), "{} is missing or not executable".format(executable)


def test_launch_and_config_files_are_where_ros2_launch_looks(installed_prefix):
    share = ament_lookup(installed_prefix, "p.get_package_share_directory('trt_infer')")
    assert os.path.isfile(os.path.join(share, "package.xml"))
    expected = [os.path.relpath(path, REPO_ROOT) for pattern in
                ("launch/*.launch.py", "config/*.yaml", "config/*.xml", "config/models/*.yaml",
                                 "config/labels/*.txt")
                for path in glob.glob(os.path.join(REPO_ROOT, pattern))]
    assert "launch/nano.launch.py" in expected and "config/nano.yaml" in expected
    missing = [path for path in expected if not os.path.isfile(os.path.join(share, path))]
    assert not missing, "not installed into share/trt_infer: {}".format(missing)


def test_installed_convert_script_runs_from_the_install(installed_prefix):
    site_packages = glob.glob(os.path.join(installed_prefix, "lib", "python3*", "site-packages"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(site_packages))
    result = subprocess.run([os.path.join(installed_prefix, "lib", "trt_infer", "convert"), "--help"],
                            cwd=str(installed_prefix), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True)
    assert result.returncode == 0, result.stdout
    for subcommand in ("export", "fix", "check", "verify", "build", "all", "inspect"):
        assert subcommand in result.stdout


def test_installed_bench_script_finds_its_data_in_share(installed_prefix, tmp_path):
    """`bench` run from the install, away from any source tree, reads its model spec from share/trt_infer."""
    cv2 = pytest.importorskip("cv2", reason="the benchmark's references are OpenCV functions")
    site_packages = glob.glob(os.path.join(installed_prefix, "lib", "python3*", "site-packages"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(site_packages), AMENT_PREFIX_PATH=installed_prefix)
    result = subprocess.run([os.path.join(installed_prefix, "lib", "trt_infer", "bench"), "--iterations", "1",
                             "--out", str(tmp_path)], cwd=str(tmp_path), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True)
    assert result.returncode == 0, result.stdout
    assert "preprocess 640x480" in result.stdout
    if hasattr(cv2.dnn, "NMSBoxesBatched"):
        assert "SSD decode + NMS" in result.stdout
