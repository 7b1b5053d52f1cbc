"""GPU test support: skip cleanly without pycuda or a CUDA device; one context per test module."""
import numpy as np
import pytest


def require_gpu():
    """Skip the calling test (or module) unless pycuda imports and a CUDA device answers."""
    pytest.importorskip("pycuda.driver", reason="the GPU path needs pycuda (not installed here)")
    from trt_infer.backends.cuda_buffers import device_count
    if device_count() == 0:
        pytest.skip("pycuda is installed but no CUDA device answers")


@pytest.fixture(scope="module")
def cuda_context():
    require_gpu()
    from trt_infer.backends.cuda_buffers import CudaContext
    context = CudaContext(0)
    yield context
    context.close()


class DeviceBufferBackend(object):
    """The TensorRTBackend device-buffer API over real pycuda buffers, for GPU-machine stand-ins of
    TensorRT (absent there): subclasses set path, inputs and outputs, call `_make_buffers` and
    implement `infer`. A trt_infer.backends.Backend when mixed in before it."""

    def _make_buffers(self, context, mapped):
        self.cuda_context = context
        self.stream = context.stream()
        self.buffers = dict((info.name, context.buffer(info.shape, info.dtype, mapped=mapped))
                            for info in self.inputs + self.outputs)

    def input_buffer(self, name):
        return self.buffers[name].host

    def device_input(self, name):
        return self.buffers[name]

    def device_output(self, name):
        return self.buffers[name]


def real_images():
    """name -> uint8 image from scikit-image at several sizes, odd widths included."""
    pytest.importorskip("skimage", reason="the test images come from scikit-image")
    import cv2
    from skimage import data
    astronaut = np.ascontiguousarray(data.astronaut()[:, :, ::-1])  # BGR like a camera frame
    chelsea = np.ascontiguousarray(data.chelsea()[:, :, ::-1])      # 300 x 451: odd width
    coffee = np.ascontiguousarray(data.coffee()[:, :, ::-1])
    return {
        "astronaut_512x512": astronaut,
        "chelsea_451x300": chelsea,
        "coffee_1920x1080": cv2.resize(coffee, (1920, 1080), interpolation=cv2.INTER_LINEAR),
        "coffee_637x359": cv2.resize(coffee, (637, 359), interpolation=cv2.INTER_AREA),
        "camera_mono_512x512": data.camera(),
        "chelsea_bgra_451x300": np.dstack([chelsea, np.full(chelsea.shape[:2], 200, np.uint8)]),
        "astronaut_crop_97x61": np.ascontiguousarray(astronaut[200:261, 150:247]),
    }
