"""Benchmarks (not tests): each compares against a reference measured in the same run and records
the machine it ran on. Outside the runtime's import path: `import trt_infer` and the pipeline never
import this package.

    python -m trt_infer.bench         (the `bench` console script) CPU pre/post-processing vs OpenCV: cpu.py
    python -m trt_infer.bench.gpu     fused GPU pre-processing vs the CPU path and PyTorch: gpu.py
    python -m trt_infer.bench.node    node overhead vs the raw DDS round trip: node.py
    python -m trt_infer.bench.mapped  CPU reads of a mapped output vs a cached copy vs a pinned copy: mapped.py
machine.py is the machine description they all store. tools/benchmarks.sh runs them all and
regenerates docs/benchmarks.md; tools/gpu_check.sh runs the GPU ones (and the GPU tests) on a GPU machine.
"""
