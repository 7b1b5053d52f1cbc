"""INT8 entropy calibration: a folder of images through the model spec's own pre-processing.

TensorRT's IInt8EntropyCalibrator2 pulls batches as device pointers; this module reads the
images (OpenCV), pre-processes them exactly as the runtime will (trt_infer.preprocess with the
spec's input settings), copies each batch to one device buffer (pycuda, imported only here) and
keeps the calibration cache so a rebuild does not calibrate again. Python 3.6 compatible.

No exception may leave the calibrator's methods: TensorRT calls them from C++ through noexcept
trampolines. On 8.2 those have no try, so an exception ends in std::terminate; from 8.5 they
catch it, print it and answer "no batch", so calibration silently finishes on partial data
(NVIDIA/TensorRT python/src/infer/pyInt8.cpp, release/8.2 vs release/8.5, 8.6, 10.x). The
calibrator keeps the first error and `raise_error()` raises it once the build has returned.
"""
import logging
import os

import numpy as np

from trt_infer.errors import CalibrationError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")


def list_images(folder):
    if not folder or not os.path.isdir(folder):
        raise CalibrationError("calibration image folder not found: {!r}; give --calib-images with a few hundred "
                               "images like the robot's camera sees".format(folder))
    found = sorted(os.path.join(folder, name) for name in os.listdir(folder)
                   if name.lower().endswith(IMAGE_SUFFIXES))
    if not found:
        raise CalibrationError("{}: no images ({}) for INT8 calibration".format(folder, ", ".join(IMAGE_SUFFIXES)))
    return found


def spec_preprocess(spec):
    """image (uint8 BGR) -> network tensor (batch 1) through the runtime's pre-processing of `spec`."""
    from trt_infer.preprocess import Preprocessor

    preprocessor = Preprocessor(spec.input)

    def preprocess(image):
        preprocessor(image)
        return np.array(preprocessor.buffer, dtype=np.float32)

    return preprocess


class CalibrationBatches(object):
    """Iterates the images of a folder as contiguous float batches of the network input's shape."""

    def __init__(self, image_paths, preprocess, batch_size=1, max_images=None):
        self.paths = list(image_paths)[:max_images] if max_images else list(image_paths)
        self.preprocess = preprocess
        self.batch_size = int(batch_size)
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.position + self.batch_size > len(self.paths):
            raise StopIteration
        import cv2

        tensors = []
        for path in self.paths[self.position:self.position + self.batch_size]:
            image = cv2.imread(path, cv2.IMREAD_COLOR)
            if image is None:
                raise CalibrationError("{}: OpenCV cannot read this image; remove it from the calibration "
                                       "folder".format(path))
            tensors.append(self.preprocess(image))
        self.position += self.batch_size
        batch = np.concatenate(tensors, axis=0)
        return np.ascontiguousarray(batch, dtype=np.float32)

    next = __next__


def read_cache(path):
    if path and os.path.isfile(path):
        with open(path, "rb") as handle:
            return handle.read()
    return None


def write_cache(path, data):
    if not path:
        return
    partial = path + ".partial"
    with open(partial, "wb") as handle:
        handle.write(memoryview(data))
    os.replace(partial, path)


class PycudaDevice(object):
    """One device buffer in the primary context (the one TensorRT's builder uses), via pycuda.

    Made at the first batch, on the thread that runs the build, and closed when the build returns,
    so the context is pushed only while TensorRT calibrates."""

    def __init__(self):
        import pycuda.driver as cuda

        cuda.init()
        self.cuda = cuda
        self.context = cuda.Device(0).retain_primary_context()
        self.context.push()
        self.buffer = None
        self.nbytes = 0

    def upload(self, array):
        if self.buffer is None or self.nbytes < array.nbytes:
            self.buffer = self.cuda.mem_alloc(array.nbytes)
            self.nbytes = array.nbytes
        self.cuda.memcpy_htod(self.buffer, array)
        return int(self.buffer)

    def close(self):
        if self.context is not None:
            if self.buffer is not None:
                self.buffer.free()   # while the context is current
                self.buffer = None
            self.context.pop()
            self.context = None


def make_calibrator(trt, spec, image_dir=None, cache_path=None, batch_size=1, max_images=None,
                    device_factory=None, preprocess=None):
    """An IInt8EntropyCalibrator2 of `trt` over `image_dir`, reading/writing `cache_path`.

    With an existing cache and no images the cache alone is used (TensorRT skips calibration).
    Networks with one image input (the spec's) are supported: every name gets that batch.
    device_factory() makes the device buffer at the first batch (default PycudaDevice).
    """
    device_factory = device_factory or PycudaDevice
    cached = read_cache(cache_path)
    if cached is None:
        if spec is None and preprocess is None:
            raise CalibrationError("INT8 calibration needs the model spec (--spec) for the pre-processing, "
                                   "or an existing --calib-cache")
        paths = list_images(image_dir)
        batches = CalibrationBatches(paths, preprocess or spec_preprocess(spec), batch_size, max_images)
        logger.info("INT8 calibration: %d images from %s", len(batches.paths), image_dir)
    else:
        batches = iter(())
        logger.info("INT8 calibration: using cache %s (%d bytes)", cache_path, len(cached))

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.device = None
            self.error = None

        def get_batch_size(self):
            return batch_size

        def get_batch(self, names, *unused):
            if self.error is not None:
                return None
            try:
                batch = next(batches, None)
                if batch is None:
                    return None
                if self.device is None:
                    self.device = device_factory()
                return [self.device.upload(batch)] * len(names)
            except BaseException as error:  # noqa: BLE001  must not reach TensorRT (see the module docstring)
                return self._failed("get_batch", error)

        def read_calibration_cache(self, *unused):
            return cached

        def write_calibration_cache(self, cache, *unused):
            if self.error is not None:
                return None   # a cache from partial data would be reused by the next build
            try:
                write_cache(cache_path, cache)
            except BaseException as error:  # noqa: BLE001  must not reach TensorRT (see the module docstring)
                return self._failed("write_calibration_cache", error)
            return None

        def _failed(self, method, error):
            self.error = (method, error)
            logger.debug("INT8 calibration: %s failed: %s", method, error)
            return None

        def raise_error(self):
            """Raise the error kept from a calibration callback (after the build returned), if any."""
            if self.error is None:
                return
            method, error = self.error
            if not isinstance(error, Exception):
                raise error      # KeyboardInterrupt, SystemExit: as they came
            if isinstance(error, CalibrationError):
                raise error
            raise CalibrationError("INT8 calibration failed in {}: {}: {}".format(method, type(error).__name__, error))

        def close(self):
            if self.device is not None:
                self.device.close()
                self.device = None

    return EntropyCalibrator()
