"""The pipeline's GPU path: processing="auto"/"gpu"/"cpu", the device input, logits kept on the device.

Two halves:
- CPU machines: the branching and the TensorRT backend's device-buffer bookkeeping, with the
  named fakes of tests/support/fake_tensorrt.py plus FakeGpuPreprocessor / FakeGpuSegmentation
  below (the CPU maths writing and reading the fake's *device* memory). They prove what the
  pipeline asks of the backend (no upload over the pre-processed input, no download of the
  logits), never the kernels.
- The GPU machine (marked gpu, skipped without pycuda and a GPU): the real GpuPreprocessor and
  GpuSegmentation inside the Pipeline, feeding CudaOnnxBackend, a real CUDA backend written here
  because TensorRT is absent there: its inputs and outputs live in real pycuda device buffers
  (pinned + copies, or mapped zero-copy) and ONNX Runtime runs the network on what the device
  input holds. Real MediaPipe models on scikit-image photos, compared with the CPU path.
"""
import glob
import os
import sys
import types

import cv2
import numpy as np
import pytest

from tests.support.fake_tensorrt import FakeCuda, FakeTensor, FakeTrt10Engine, FakeTrt82Engine, FakeTrtModule
from tests.support.gpu import DeviceBufferBackend, require_gpu
from tests.test_tensorrt_backend import write_engine
from trt_infer.backends import Backend
from trt_infer.backends.tensorrt_backend import TensorRTBackend
from trt_infer.cuda import choose_processing
from trt_infer.geometry import ResizeTransform
from trt_infer.pipeline import STAGES, Pipeline
from trt_infer.postprocess.segmentation import SegmentationPostprocessor, mask_to_image
from trt_infer.preprocess import Preprocessor
from trt_infer.spec import ModelSpec

RED, GREEN = (0, 0, 255), (0, 255, 0)  # BGR


def segmenter_spec(width=32, height=16, **input_changes):
    # logits = the input's channels, so the mask names each pixel's strongest colour channel
    fields = {"name": "image", "width": width, "height": height, "layout": "NHWC", "scale": 1 / 127.5,
              "mean": [1.0, 1.0, 1.0]}
    fields.update(input_changes)
    return ModelSpec({"name": "argmax-colour", "task": "segmentation", "input": fields,
                      "outputs": {"logits": "logits"}, "segmentation": {"activation": "argmax"}})


def classifier_spec():
    return ModelSpec({"name": "mean-colour", "task": "classification",
                      "input": {"name": "image", "width": 32, "height": 16, "layout": "NHWC", "scale": 1 / 255.0},
                      "outputs": {"scores": "scores"}, "classification": {"top_k": 3, "activation": "none"}})


def two_colour_image(height=40, width=80):
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :width // 2] = RED
    image[:, width // 2:] = GREEN
    return image


# ---------------------------------------------------------------- CPU machines: the branching, with fakes

class FakeGpuPreprocessor(object):
    """Stands in for GpuPreprocessor where pycuda is absent: the CPU pre-processing written into
    the fake's device memory behind `out.device_ptr` (never its host array), logged on the stream."""

    def __init__(self, input_spec, cuda, stream):
        self.cpu = Preprocessor(input_spec)
        self.cuda = cuda
        self.stream = stream

    def __call__(self, image, out, color_order="BGR"):
        self.cuda.stream_log.append(("preprocess", self.stream.handle))
        return self.cpu(image, out=self.cuda.device_memory[out.device_ptr], color_order=color_order)


class FakeGpuSegmentation(object):
    """Stands in for GpuSegmentation: reads the logits from the fake's device memory, so it fails
    unless the pipeline hands it the device buffer of the output it asked to keep there."""

    def __init__(self, spec, cuda):
        self.rules = SegmentationPostprocessor(spec)
        self.device_outputs = (self.rules.output_name,)
        self.cuda = cuda

    def check_outputs(self, infos):
        self.rules.check_outputs(infos)

    def __call__(self, outputs, transform):
        buffer = outputs[self.rules.output_name]
        assert hasattr(buffer, "device_ptr"), "the logits came back as a host array, not the device buffer"
        return self.rules({self.rules.output_name: self.cuda.device_memory[buffer.device_ptr]}, transform)


def fake_engine_backend(tmp_path, spec, integrated=False, engine_class=FakeTrt10Engine, version="10.3.0.30"):
    """A TensorRTBackend over a fake engine computing the test model (logits = channels, or their means)."""
    shape = spec.input.shape
    if spec.task == "segmentation":
        output = FakeTensor("logits", False, (1, 3) + shape[1:3])
        compute = lambda inputs: {"logits": inputs["image"].transpose(0, 3, 1, 2)}  # noqa: E731
    else:
        output = FakeTensor("scores", False, (1, 3))
        compute = lambda inputs: {"scores": inputs["image"].mean(axis=(1, 2))}  # noqa: E731
    cuda = FakeCuda(integrated=integrated)
    trt = FakeTrtModule(engine_class([FakeTensor("image", True, shape), output], compute, cuda), version)
    return TensorRTBackend(write_engine(tmp_path, trt), trt_module=trt, cuda=cuda), cuda


@pytest.fixture
def without_pycuda(monkeypatch):
    """This process as on a machine without pycuda (also on the GPU machine, where it is installed)."""
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)


@pytest.fixture
def pycuda_without_devices(monkeypatch):
    """FakePycuda: a pycuda whose driver finds no device, as on a machine with pycuda but no GPU."""
    driver = types.ModuleType("pycuda.driver")
    driver.init = lambda: None
    driver.Device = type("FakeDevice", (object,), {"count": staticmethod(lambda: 0)})
    package = types.ModuleType("pycuda")
    package.driver = driver
    monkeypatch.setitem(sys.modules, "pycuda", package)
    monkeypatch.setitem(sys.modules, "pycuda.driver", driver)


def kinds(cuda):
    return [entry[0] for entry in cuda.stream_log]


@pytest.mark.parametrize("engine_class, version", [(FakeTrt82Engine, "8.2.1.8"), (FakeTrt10Engine, "10.3.0.30")])
def test_auto_stays_on_the_cpu_without_pycuda_and_uploads_the_host_input(tmp_path, without_pycuda, engine_class,
                                                                          version):
    spec = segmenter_spec()
    backend, cuda = fake_engine_backend(tmp_path, spec, engine_class=engine_class, version=version)
    pipeline = Pipeline(spec, backend)
    assert pipeline.processing == "cpu" and pipeline.input_buffer is backend.input_buffer("image")
    result = pipeline(two_colour_image())
    assert np.all(result.image_mask[:, :39] == 0) and np.all(result.image_mask[:, 41:] == 1)
    assert kinds(cuda) == ["htod", "execute", "dtoh", "sync"]


def test_gpu_without_pycuda_says_so(tmp_path, without_pycuda):
    spec = segmenter_spec()
    backend, _ = fake_engine_backend(tmp_path, spec)
    with pytest.raises(ValueError) as error:
        Pipeline(spec, backend, processing="gpu")
    message = str(error.value)
    assert "processing 'gpu'" in message and "pycuda is not installed" in message and "'cpu'" in message


def test_gpu_without_a_device_says_so(pycuda_without_devices):
    assert choose_processing("auto") == "cpu"
    with pytest.raises(ValueError, match="pycuda finds no GPU"):
        choose_processing("gpu")


class FakeHostBackend(Backend):
    """A backend with host buffers only (as ONNX Runtime), for Python 3.6 where ONNX Runtime is absent."""

    path = "fake-host-only.onnx"

    def __init__(self, spec):
        from trt_infer.backends import TensorInfo
        self.inputs = [TensorInfo("image", spec.input.shape, np.float32)]
        self.outputs = [TensorInfo("logits", (1, 3) + spec.input.shape[1:3], np.float32)]
        self.buffer = np.zeros(spec.input.shape, np.float32)

    def input_buffer(self, name):
        return self.buffer

    def infer(self, inputs=None):
        return {"logits": self.buffer.transpose(0, 3, 1, 2)}


def host_only_backends(tmp_path, spec):
    yield FakeHostBackend(spec)
    try:
        import onnx  # noqa: F401  (builds the model)
        import onnxruntime  # noqa: F401
    except ImportError:
        return
    from tests.test_pipeline import onnx_backend
    yield onnx_backend("segmenter", spec.input, tmp_path)


def test_a_host_only_backend_keeps_auto_on_the_cpu_and_refuses_gpu(tmp_path):
    spec = segmenter_spec()
    for backend in host_only_backends(tmp_path, spec):
        assert Pipeline(spec, backend).processing == "cpu"
        with pytest.raises(ValueError) as error:
            Pipeline(spec, backend, processing="gpu")
        message = str(error.value)
        assert type(backend).__name__ in message and "host memory only" in message and "TensorRT" in message


def test_unknown_processing_is_refused(tmp_path):
    spec = segmenter_spec()
    with pytest.raises(ValueError, match="processing 'tpu'; allowed: auto, gpu, cpu"):
        Pipeline(spec, FakeHostBackend(spec), processing="tpu")


@pytest.mark.parametrize("integrated", [False, True], ids=["copies", "mapped"])
def test_the_gpu_path_writes_the_device_input_and_reads_the_logits_in_place(tmp_path, without_pycuda, integrated):
    spec = segmenter_spec(resize="letterbox")
    backend, cuda = fake_engine_backend(tmp_path, spec, integrated=integrated)
    stream = backend.stream
    pipeline = Pipeline(spec, backend, processing="gpu", preprocessor=FakeGpuPreprocessor(spec.input, cuda, stream),
                        postprocessor=FakeGpuSegmentation(spec, cuda))
    assert pipeline.processing == "gpu" and pipeline.input_buffer is backend.device_input("image")
    reference = Pipeline(spec, FakeHostBackend(spec), processing="cpu")
    for image in (two_colour_image(), two_colour_image(80, 80)):     # the square one is letterboxed
        del cuda.stream_log[:]
        result = pipeline(image)
        expected = reference(image)
        np.testing.assert_array_equal(result.mask, expected.mask)
        np.testing.assert_array_equal(result.image_mask, expected.image_mask)
        # nothing uploaded over the pre-processed input, the logits never downloaded, one stream
        assert kinds(cuda) == ["preprocess", "sync", "execute", "sync"]
        assert set(entry[1] for entry in cuda.stream_log) == {stream.handle}
        assert sorted(result.timings) == sorted(STAGES)
    if not integrated:   # separate host memory: the pre-processor never touched it
        assert not backend.input_buffer("image").any()


def test_other_tasks_on_the_gpu_path_download_their_outputs(tmp_path, without_pycuda):
    spec = classifier_spec()
    backend, cuda = fake_engine_backend(tmp_path, spec)
    pipeline = Pipeline(spec, backend, processing="gpu", preprocessor=FakeGpuPreprocessor(spec.input, cuda,
                                                                                           backend.stream))
    image = np.zeros((30, 20, 3), np.uint8)
    image[:, :] = (200, 0, 100)  # BGR
    result = pipeline(image)
    assert [class_id for class_id, _ in result.classes] == [2, 0, 1]
    np.testing.assert_allclose([score for _, score in result.classes], [200 / 255.0, 100 / 255.0, 0.0], rtol=1e-5)
    assert kinds(cuda) == ["preprocess", "sync", "execute", "dtoh", "sync"]


# ---------------------------------------------------------------- the GPU machine: real kernels in the pipeline

class CudaOnnxBackend(DeviceBufferBackend, Backend):
    """A real CUDA backend for the GPU machine, where TensorRT is absent: the model's inputs and
    outputs live in pycuda HostDeviceBuffers of the given context (same device-buffer API as
    TensorRTBackend) and ONNX Runtime runs the network on what the device input holds (read back
    from the device), its outputs written back to the device."""

    def __init__(self, onnx_path, context, mapped=False):
        from trt_infer.backends import load_backend
        self.network = load_backend(onnx_path)
        self.path = onnx_path
        self.inputs, self.outputs = self.network.inputs, self.network.outputs
        self._make_buffers(context, mapped)
        self.calls = []

    def infer(self, inputs=None, input_on_device=False, keep_on_device=()):
        assert inputs is None
        self.calls.append((input_on_device, tuple(keep_on_device)))
        inputs = {}
        for info in self.inputs:
            buffer = self.buffers[info.name]
            if not input_on_device:
                buffer.upload(self.stream)
            buffer.download(self.stream)          # what the network reads is what the device holds
            self.stream.synchronize()
            inputs[info.name] = buffer.host.copy()
        for name, value in self.network.infer(inputs).items():
            buffer = self.buffers[name]
            np.copyto(buffer.host, value)
            buffer.upload(self.stream)
        self.stream.synchronize()
        return dict((info.name, self.buffers[info.name] if info.name in keep_on_device
                     else self.buffers[info.name].host) for info in self.outputs)


def mediapipe_onnx(name):
    """A MediaPipe model as ONNX: converted here (mediapipe + tf2onnx), or, on the GPU machine
    that has neither, the newest conversion in the test-model cache carried there."""
    from tests.support.models import CACHE_DIR, converted_for_target, tflite_to_onnx
    try:
        return tflite_to_onnx(name) if name == "blazeface" else converted_for_target(name)
    except (RuntimeError, ImportError, OSError):
        pattern = "blazeface-*-opset13.onnx" if name == "blazeface" else \
            "{0}-jetson-nano-*/{0}.fixed.onnx".format(name)
        found = sorted(glob.glob(os.path.join(CACHE_DIR, pattern)), key=os.path.getmtime)
        if not found:
            pytest.skip("{} needs mediapipe + tf2onnx or a carried {}".format(name, os.path.join(CACHE_DIR, pattern)))
        return found[-1]


@pytest.fixture(scope="module")
def photos():
    require_gpu()
    pytest.importorskip("onnxruntime", reason="the network runs in ONNX Runtime on the GPU machine")
    pytest.importorskip("skimage", reason="the photos are scikit-image's")
    pytest.importorskip("yaml", reason="the shipped model specs are YAML")
    from tests.support.models import sample_image_bgr
    astronaut = sample_image_bgr("astronaut")
    return {"astronaut": astronaut, "astronaut_512x397": np.ascontiguousarray(astronaut[:397]),
            "astronaut_1920x1080": cv2.resize(astronaut[56:344], (1920, 1080)),
            "chelsea": sample_image_bgr("chelsea")}


def shipped_spec(name):
    from tests.support.models import REPO_ROOT
    from trt_infer.spec import load_spec
    return load_spec(os.path.join(REPO_ROOT, "config", "models", name + ".yaml"))


def gpu_and_cpu_pipelines(context, spec, onnx_path, mapped):
    from trt_infer.backends import load_backend
    gpu = Pipeline(spec, CudaOnnxBackend(onnx_path, context, mapped=mapped), processing="gpu")
    cpu = Pipeline(spec, load_backend(onnx_path), processing="cpu")
    return gpu, cpu


@pytest.mark.gpu
@pytest.mark.parametrize("mapped", [False, True], ids=["copies", "mapped"])
def test_blazeface_on_the_gpu_path_finds_the_cpu_paths_faces(cuda_context, photos, mapped):
    from trt_infer.cuda.preprocess import GpuPreprocessor
    spec = shipped_spec("blazeface")
    gpu, cpu = gpu_and_cpu_pipelines(cuda_context, spec, mediapipe_onnx("blazeface"), mapped)
    assert isinstance(gpu.preprocess, GpuPreprocessor) and gpu.processing == "gpu"
    for name, image in sorted(photos.items()):
        result, expected = gpu(image), cpu(image)
        assert len(result.detections) == len(expected.detections) == (0 if name == "chelsea" else 1), name
        scale = max(image.shape[:2]) / 128.0                # one network pixel in image pixels
        np.testing.assert_allclose(result.detections.boxes, expected.detections.boxes, atol=scale, err_msg=name)
        if len(expected.detections):
            np.testing.assert_allclose(result.detections.keypoints, expected.detections.keypoints, atol=scale,
                                       err_msg=name)
        np.testing.assert_allclose(result.detections.scores, expected.detections.scores, atol=0.02, err_msg=name)
        assert sorted(result.timings) == sorted(STAGES)
    assert gpu.backend.calls[-1] == (True, ())              # the device input was used as written


@pytest.mark.gpu
@pytest.mark.parametrize("mapped", [False, True], ids=["copies", "mapped"])
def test_selfie_segmentation_on_the_gpu_path_matches_the_cpu_path(cuda_context, photos, mapped):
    from tests.test_segmentation import person_mask_checks
    from trt_infer.cuda.segmentation import GpuSegmentation
    spec = shipped_spec("selfie_segmentation")
    gpu, cpu = gpu_and_cpu_pipelines(cuda_context, spec, mediapipe_onnx("selfie_segmentation"), mapped)
    assert isinstance(gpu.postprocess, GpuSegmentation)
    logits = spec.outputs["logits"]
    for name in ("astronaut", "astronaut_512x397", "astronaut_1920x1080"):
        image = photos[name]
        result, expected = gpu(image), cpu(image)
        assert gpu.backend.calls[-1] == (True, (logits,))    # the logits stayed on the device
        # the inputs differ by at most one pixel level where the two resizes round apart, so a
        # few pixels at the person's outline may flip; every other one is the same
        assert np.mean(result.mask != expected.mask) < 0.005, name
        transform = ResizeTransform(image.shape[1], image.shape[0], spec.input.width, spec.input.height,
                                    spec.input.resize)
        np.testing.assert_array_equal(result.image_mask, mask_to_image(result.mask, transform))
    coverage = person_mask_checks(gpu(photos["astronaut"]).image_mask, photos["astronaut"])
    assert coverage["face"] >= 0.9 and coverage["upper body"] >= 0.8, coverage


@pytest.mark.gpu
@pytest.mark.parametrize("mapped", [False, True], ids=["copies", "mapped"])
def test_argmax_mask_identical_to_the_cpu_path_when_no_resize_rounds(cuda_context, photos, mapped, tmp_path):
    """At the network's own size both paths feed the same values, so the masks must be identical."""
    from tests.test_pipeline import onnx_backend
    image = np.ascontiguousarray(photos["chelsea"][40:200, 100:341])      # a real photo, 241x160: odd width
    spec = segmenter_spec(width=241, height=160)
    onnx_path = onnx_backend("segmenter", spec.input, tmp_path).path
    gpu, cpu = gpu_and_cpu_pipelines(cuda_context, spec, onnx_path, mapped)
    result, expected = gpu(image), cpu(image)
    assert len(np.unique(expected.mask)) == 3
    np.testing.assert_array_equal(result.mask, expected.mask)
    np.testing.assert_array_equal(result.image_mask, expected.image_mask)
    assert gpu.backend.calls[-1] == (True, ("logits",))
