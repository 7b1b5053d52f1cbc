"""Offline conversion on the host: framework model -> ONNX the target TensorRT accepts.

`export`, `fix`, `check`, `verify` and `inspect` run on a host with modern tools. `convert build`
is the runtime's build command (trt_infer.engine.build), which runs on the device; the few
modules the `convert` entry point needs there (cli, arguments, targets, errors) stay light and
Python 3.6 compatible, which tests/test_python36_compat.py checks.
"""
