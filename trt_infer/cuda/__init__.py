"""The GPU path: fused CUDA pre-processing and segmentation post-processing with pycuda.

Importing this package imports no pycuda; `GpuPreprocessor` (trt_infer.cuda.preprocess) and
`GpuSegmentation` (trt_infer.cuda.segmentation) do when built. `choose_processing` is the
`auto` rule the pipeline applies: the GPU when pycuda and a CUDA device exist, else the CPU.
"""

PROCESSING_CHOICES = ("auto", "gpu", "cpu")


def gpu_available():
    """True when pycuda imports and the driver reports at least one CUDA device."""
    from trt_infer.backends.cuda_buffers import device_count
    return device_count() > 0


def choose_processing(requested="auto"):
    """"gpu" or "cpu" for a requested "auto", "gpu" or "cpu"; ValueError for an impossible request."""
    if requested not in PROCESSING_CHOICES:
        raise ValueError("processing {!r}; allowed: {}".format(requested, ", ".join(PROCESSING_CHOICES)))
    if requested == "cpu":
        return "cpu"
    if gpu_available():
        return "gpu"
    if requested == "gpu":
        raise ValueError("processing 'gpu' was requested but no CUDA device is usable (pycuda missing or no "
                         "GPU/driver); install pycuda on the device or set processing to 'auto' or 'cpu'")
    return "cpu"
