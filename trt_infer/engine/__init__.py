"""Everything that runs on the device that will run the engine: build, cache, calibration, GPU identity.

Python 3.6 compatible; needs only `tensorrt` and numpy (pycuda only to calibrate INT8). Nothing
here imports the host converter. Modules: `gpu` (the CUDA device through the driver API),
`cache` (cache key, JSON sidecar, engine checks, build-if-missing), `build` (ONNX -> engine and
the build command, `python -m trt_infer.engine.build`), `calibration` (INT8 entropy calibration).
"""
