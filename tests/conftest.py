"""Shared fixtures and markers. Tests use real components; see docs/internals.md."""
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


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
