"""Post-processing, one module per task, each exposing SCHEMA (its spec section) and a class.

Which module and class serve a task is a row of the task table (trt_infer.tasks);
`build_postprocessor(spec)` imports only the module of the spec's task. A post-processor is
called as `post(outputs, transform)`, where outputs maps output tensor names to arrays and
transform is the trt_infer.geometry.ResizeTransform of the frame; it returns a
trt_infer.result.Result (detections, mask, image_mask, classes; the pipeline adds timings).
"""
from trt_infer.tasks import get_task


def build_postprocessor(spec):
    """The CPU post-processor of `spec.task`, built from the validated spec."""
    return get_task(spec.task).build_postprocessor(spec)
