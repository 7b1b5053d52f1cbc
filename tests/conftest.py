"""Shared fixtures and markers. Tests use real components; see docs/internals.md."""
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

# fixtures shared by several test modules (cuda_context: one CUDA context per test module)
pytest_plugins = ["tests.support.gpu"]


def pytest_configure(config):
    for marker in (
        "gpu: needs pycuda and an NVIDIA GPU (skips cleanly without)",
        "tensorrt: needs the real `tensorrt` Python package (skips cleanly without)",
        "ros: needs rclpy and the ROS 2 message packages",
        "slow: takes more than a few seconds (model conversion, multi-process DDS)",
    ):
        config.addinivalue_line("markers", marker)


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(autouse=True)
def _cli_logging_restored():
    """A command run in-process (`convert ...`, the build command) configures logging for the whole
    process; put the project's loggers back so that the next test sees the defaults."""
    import logging

    from trt_infer import cli_logging

    yield
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if isinstance(handler, cli_logging.StderrHandler)]:
        root.removeHandler(handler)
    for name in cli_logging.PACKAGES:
        logging.getLogger(name).setLevel(logging.NOTSET)
