"""ament_python package definition; console scripts land in lib/trt_infer for `ros2 run`."""
import glob

from setuptools import find_packages, setup

PACKAGE = "trt_infer"


def share(folder, pattern):
    """(install folder, files) pair: `folder/pattern` copied to share/trt_infer/folder."""
    return ("share/{}/{}".format(PACKAGE, folder), sorted(glob.glob("{}/{}".format(folder, pattern))))


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=["trt_infer", "trt_infer.*", "converter", "converter.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        share("launch", "*.launch.py"),
        share("config", "*.yaml"),
        share("config", "*.xml"),
        share("config/models", "*.yaml"),
        share("config/labels", "*.txt"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="trt_infer maintainers",
    maintainer_email="maintainers@trt-infer.dev",
    description="TensorRT inference for ROS 2 on NVIDIA Jetson, Jetson Nano first.",
    license="Apache-2.0",
    tests_require=["pytest"],
    entry_points={
        "console_scripts": [
            "convert = converter.cli:main",
            "trt_infer_node = trt_infer.ros.node:main",
            "replay = trt_infer.ros.replay:main",
            "bench = trt_infer.bench.cpu:main",
            "infer = trt_infer.infer:main",
        ],
    },
)
