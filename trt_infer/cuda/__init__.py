"""The GPU path: fused CUDA pre-processing and segmentation post-processing with pycuda.

Importing this package imports no pycuda; `GpuPreprocessor` (trt_infer.cuda.preprocess) and
`GpuSegmentation` (trt_infer.cuda.segmentation) do when built. `choose_processing` is the
`auto` rule the pipeline applies: the GPU when pycuda and a CUDA device exist and the backend
keeps its inputs and outputs in CUDA device buffers, and nvcc is there to compile the kernels,
else the CPU. A GPU left unused only for want of nvcc is worth a warning: it is a setup slip.
"""
import logging

from trt_infer.errors import SettingError

logger = logging.getLogger(__name__)

PROCESSING_CHOICES = ("auto", "gpu", "cpu")


def gpu_available():
    """True when pycuda imports and the driver reports at least one CUDA device."""
    from trt_infer.backends.cuda_buffers import device_count
    return device_count() > 0


def gpu_unavailable_reason(backend=None, kernels=True, nvcc=True):
    """Why the GPU path cannot run here, or None when it can.

    backend: the backend the GPU stages would feed, or None to ask about this machine alone. It
    must expose CUDA device buffers (`cuda_context`, TensorRT does), which also proves a GPU is
    there. kernels: the built-in pycuda kernels will be compiled (False when the caller brings
    its own GPU stages). nvcc: also require nvcc for those kernels (trt_infer.cuda.kernels.find_nvcc).
    """
    if backend is not None and getattr(backend, "cuda_context", None) is None:
        return ("the backend {} ({}) keeps its inputs and outputs in host memory only, so there are no "
                "device buffers for the GPU stages; the GPU path needs a TensorRT engine (.engine)".format(
                    type(backend).__name__, getattr(backend, "path", None)))
    if kernels:
        try:
            import pycuda.driver  # noqa: F401
        except ImportError as error:
            return ("no CUDA device is usable: pycuda is not installed ({}); on a Jetson: `pip3 install pycuda` "
                    "with nvcc on PATH".format(error))
    if backend is None and not gpu_available():
        return "no CUDA device is usable: pycuda finds no GPU (or no driver answers)"
    if kernels and nvcc:
        from trt_infer.cuda.kernels import find_nvcc, nvcc_missing_reason
        if find_nvcc() is None:
            return nvcc_missing_reason()
    return None


def choose_processing(requested="auto", backend=None, kernels=True):
    """"gpu" or "cpu" for a requested "auto", "gpu" or "cpu" (see gpu_unavailable_reason for
    `backend` and `kernels`); SettingError naming the reason for an impossible "gpu"."""
    if requested not in PROCESSING_CHOICES:
        raise SettingError("processing {!r}; allowed: {}".format(requested, ", ".join(PROCESSING_CHOICES)))
    if requested == "cpu":
        return "cpu"
    reason = gpu_unavailable_reason(backend, kernels)
    if reason is None:
        return "gpu"
    if requested == "gpu":
        raise SettingError("processing 'gpu' was requested but {}; set processing to 'auto' or 'cpu' to pre-process "
                           "on the CPU".format(reason))
    if gpu_unavailable_reason(backend, kernels, nvcc=False) is None:
        warn_cpu_fallback(reason)
    return "cpu"


def warn_cpu_fallback(reason):
    """The one line saying that processing 'auto' runs on the CPU although a GPU is there."""
    logger.warning("processing 'auto' runs on the CPU: %s", reason)
