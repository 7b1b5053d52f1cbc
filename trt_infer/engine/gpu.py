"""The CUDA device an engine is built for and runs on, read through the driver API (ctypes, no pycuda)."""
import ctypes
import ctypes.util


def _cuda_driver():
    for name in (ctypes.util.find_library("cuda"), "libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def gpu_identity(device=0):
    """{"name", "compute_capability"} of a CUDA device through the driver API.

    Both are None where no driver or device is present (a host building with TensorRT-RTX).
    """
    unknown = {"name": None, "compute_capability": None}
    driver = _cuda_driver()
    if driver is None or driver.cuInit(0) != 0:
        return unknown
    handle = ctypes.c_int()
    if driver.cuDeviceGet(ctypes.byref(handle), device) != 0:
        return unknown
    name = ctypes.create_string_buffer(256)
    major, minor = ctypes.c_int(), ctypes.c_int()
    # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76
    if (driver.cuDeviceGetName(name, len(name), handle) != 0
            or driver.cuDeviceGetAttribute(ctypes.byref(major), 75, handle) != 0
            or driver.cuDeviceGetAttribute(ctypes.byref(minor), 76, handle) != 0):
        return unknown
    return {"name": name.value.decode("utf-8", "replace"),
            "compute_capability": "{}.{}".format(major.value, minor.value)}
