"""Pipeline(spec, backend)(image) -> Result: pre-process, infer, post-process, with per-stage timings."""
import time

import numpy as np

from trt_infer.cuda import choose_processing, warn_cpu_fallback
from trt_infer.errors import MissingDependencyError, ModelMismatchError
from trt_infer.preprocess import Preprocessor
from trt_infer.result import Result
from trt_infer.tasks import get_task

STAGES = ("preprocess", "inference", "postprocess", "total")


class Pipeline(object):
    """Runs one model on camera images.

    spec: a trt_infer.spec.ModelSpec; backend: a trt_infer.backends.Backend. The backend's
    input and outputs are checked against the spec at construction. Thresholds are the spec's
    and may be changed between calls with `set_thresholds`.

    processing: where pre-processing (and the post-processing of a task that has a GPU
    post-processor in trt_infer.tasks, such as segmentation) runs: "cpu", "gpu" or "auto" (the GPU
    when pycuda, a GPU and a backend with device buffers exist; see trt_infer.cuda.choose_processing).
    On the GPU only the uint8 image is uploaded: the network input is written straight into the
    engine's device input, and the outputs a GPU post-processor names in `device_outputs` are read
    in place (segmentation: only the masks come back). `self.processing` says which was chosen.
    preprocessor, postprocessor: stages to use instead of the ones the spec and processing
    select; a GPU pre-processor is called with the backend's device input buffer as `out` and
    queues its work on `backend.stream`.
    """

    def __init__(self, spec, backend, postprocessor=None, processing="auto", preprocessor=None):
        self.spec = spec
        self.backend = backend
        check_backend_matches_spec(spec, backend)
        task = get_task(spec.task)
        builds_kernels = preprocessor is None or (postprocessor is None and task.gpu_postprocessor is not None)
        self.processing = choose_processing(processing, backend, kernels=builds_kernels)
        if self.processing == "gpu":
            try:
                self.preprocess = preprocessor if preprocessor is not None else _gpu_preprocessor(spec, backend)
                self.postprocess = postprocessor if postprocessor is not None else _gpu_postprocessor(task, spec,
                                                                                                      backend)
            except MissingDependencyError as error:   # nvcc there but not runnable: 'auto' still works on the CPU
                if processing != "auto":
                    raise
                warn_cpu_fallback(error)
                self.processing = "cpu"
        if self.processing == "gpu":
            self.input_buffer = backend.device_input(spec.input.name)
            self._infer_options = {"input_on_device": True,
                                   "keep_on_device": tuple(getattr(self.postprocess, "device_outputs", ()))}
        else:
            self.preprocess = preprocessor if preprocessor is not None else Preprocessor(spec.input)
            self.postprocess = postprocessor if postprocessor is not None else task.build_postprocessor(spec)
            self.input_buffer = backend.input_buffer(spec.input.name)
            self._infer_options = {}
        check_outputs = getattr(self.postprocess, "check_outputs", None)
        if check_outputs is not None:
            try:
                check_outputs({info.name: info for info in backend.outputs})
            except ValueError as error:
                raise ModelMismatchError("{} vs {}: {}".format(_spec_name(spec), backend.path, error))

    @property
    def thresholds(self):
        return self.spec.thresholds

    def set_thresholds(self, score=None, nms_iou=None, max_detections=None):
        """Change thresholds for the following calls; invalid values raise SpecError and change nothing."""
        self.spec.thresholds.update(score=score, nms_iou=nms_iou, max_detections=max_detections)

    def __call__(self, image, color_order="BGR"):
        """Process one uint8 image (BGR unless told color_order="RGB")."""
        start = time.perf_counter()
        transform = self.prepare(image, color_order)
        preprocessed = time.perf_counter()
        outputs = self.run()
        inferred = time.perf_counter()
        result = self.finish(outputs, transform)
        done = time.perf_counter()
        result.timings = {"preprocess": preprocessed - start, "inference": inferred - preprocessed,
                          "postprocess": done - inferred, "total": done - start}
        return result

    # The three steps of a call, for a caller that overlaps them across frames (the node's stage
    # threads): prepare frame N+1 into a buffer of its own while `run` reads frame N's.
    def prepare(self, image, color_order="BGR", out=None):
        """Pre-process `image` into `out` (default: the backend's input buffer); the transform
        `finish` needs. On the GPU the kernel is waited for, so its time counts here."""
        transform = self.preprocess(image, out=self.input_buffer if out is None else out, color_order=color_order)
        if self.processing == "gpu":
            self.backend.stream.synchronize()
        return transform

    def new_input_buffer(self):
        """A host array like the backend's input buffer, for `prepare(out=...)` and `run(buffer)`
        (CPU pre-processing only: the GPU path writes the engine's device input itself)."""
        if self.processing == "gpu":
            raise ValueError("GPU pre-processing writes the engine's device input; it has no host buffers")
        return np.zeros_like(self.input_buffer)

    def run(self, buffer=None):
        """The network on `buffer` (a `new_input_buffer`), or on the backend's input buffer; the
        outputs are the backend's (possibly views of its buffers, valid until its next call)."""
        if buffer is None or buffer is self.input_buffer:
            return self.backend.infer(**self._infer_options)
        return self.backend.infer(inputs={self.spec.input.name: buffer}, **self._infer_options)

    def finish(self, outputs, transform):
        """Post-process one frame's outputs into a Result (timings left to the caller)."""
        result = self.postprocess(outputs, transform)
        if not isinstance(result, Result):
            raise TypeError("post-processor {} returned {}; post-processors return a trt_infer.result.Result".format(
                type(self.postprocess).__name__, type(result).__name__))
        return result


def _gpu_preprocessor(spec, backend):
    from trt_infer.cuda.preprocess import GpuPreprocessor
    return GpuPreprocessor(spec.input, backend.cuda_context, backend.stream)


def _gpu_postprocessor(task, spec, backend):
    """The task's GPU post-processor, reading its outputs on the GPU; without one the outputs are
    small and are post-processed on the CPU."""
    gpu_class = task.gpu_postprocessor_class()
    if gpu_class is None:
        return task.build_postprocessor(spec)
    return gpu_class(spec, backend.cuda_context, backend.stream)


def check_backend_matches_spec(spec, backend):
    """ModelMismatchError naming both sides when the model's input/outputs disagree with the spec."""
    expected = spec.input
    where = "{} vs {}".format(_spec_name(spec), backend.path)
    names = [info.name for info in backend.inputs]
    if expected.name not in names:
        raise ModelMismatchError("{}: spec input {!r} is not an input of the model; its inputs: {}".format(
            where, expected.name, ", ".join(repr(name) for name in names)))
    if len(names) > 1:
        raise ModelMismatchError("{}: the model has {} inputs ({}); the pipeline feeds one, {!r}".format(
            where, len(names), ", ".join(repr(name) for name in names), expected.name))
    actual = backend.input_info(expected.name)
    fits = len(actual.shape) == 4 and all(dim < 0 or dim == want for dim, want in zip(actual.shape, expected.shape))
    if not fits:
        raise ModelMismatchError("{}: spec input {!r} {}x{} {} (shape {}) but the model's input {!r} has shape {}; "
                                 "fix input.width/height/layout in the spec or re-export the model".format(
                                     where, expected.name, expected.width, expected.height, expected.layout,
                                     expected.shape, actual.name, actual.shape))
    if actual.dtype != expected.numpy_dtype:
        raise ModelMismatchError("{}: spec input {!r} is {} but the model's input {!r} is {}; set input.dtype: {} "
                                 "or convert the model (`convert fix` makes float inputs)".format(
                                     where, expected.name, expected.dtype, actual.name, actual.dtype.name,
                                     actual.dtype.name))
    outputs = [info.name for info in backend.outputs]
    for role, name in sorted(spec.outputs.items()):
        if name not in outputs:
            raise ModelMismatchError("{}: spec outputs.{} = {!r} is not an output of the model; its outputs: {}".format(
                where, role, name, ", ".join(repr(output) for output in outputs)))


def _spec_name(spec):
    return "spec {}".format(spec.path or repr(spec.name))
