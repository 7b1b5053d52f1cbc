"""Post-processing, one module per task, each exposing SCHEMA (its spec section) and a class.

`build_postprocessor(spec)` imports only the module of the spec's task. A post-processor is
called as `post(outputs, transform)`, where outputs maps output tensor names to arrays and
transform is the trt_infer.geometry.ResizeTransform of the frame; it returns a dict of
trt_infer.result.Result keyword arguments (detections, mask, image_mask, classes).
"""
import importlib

# task -> (module, class name)
POSTPROCESSORS = {
    "ssd": ("trt_infer.postprocess.ssd", "SSDPostprocessor"),
    "efficient_nms": ("trt_infer.postprocess.fused_nms", "FusedNMSPostprocessor"),
    "batched_nms": ("trt_infer.postprocess.fused_nms", "FusedNMSPostprocessor"),
    "segmentation": ("trt_infer.postprocess.segmentation", "SegmentationPostprocessor"),
    "classification": ("trt_infer.postprocess.classification", "ClassificationPostprocessor"),
}


def build_postprocessor(spec):
    """The post-processor of `spec.task`, built from the validated spec."""
    if spec.task not in POSTPROCESSORS:
        raise ValueError("no post-processor for task {!r}; tasks: {}".format(
            spec.task, ", ".join(sorted(POSTPROCESSORS))))
    module_name, class_name = POSTPROCESSORS[spec.task]
    module = importlib.import_module(module_name)
    return _postprocessor_class(module, class_name)(spec)


def _postprocessor_class(module, preferred_name):
    """`preferred_name`, or else the one class of the module named "...Postprocessor"."""
    if hasattr(module, preferred_name):
        return getattr(module, preferred_name)
    found = [value for name, value in vars(module).items()
             if isinstance(value, type) and name.lower().endswith("postprocessor")
             and value.__module__ == module.__name__]
    if len(found) != 1:
        raise ImportError("{} defines no {} (nor exactly one other ...Postprocessor class)".format(
            module.__name__, preferred_name))
    return found[0]
