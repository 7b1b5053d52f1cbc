"""Offline conversion: framework model -> ONNX the target TensorRT accepts -> engine.

`export`, `fix`, `check` and `verify` run on a host with modern tools; `build` runs on the
device and stays Python 3.6 compatible (it needs only tensorrt, numpy and, to calibrate, pycuda).
"""
