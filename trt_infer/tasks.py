"""The task table: one row per task, the only place that lists the tasks.

A row names the task's post-processing module (imported only when a spec of that task is loaded)
whose `SCHEMA` validates the spec section named like the task, the output roles the spec's
`outputs:` must map to tensor names, the CPU post-processor class in that module, the GPU
post-processor (or None: the outputs are small and go to the CPU), what the ROS node publishes,
and a paragraph for the docs. The spec, the pipeline, the node and the docs generator iterate
the table; adding a task is one post-processing module and one row here.

Post-processors are built as `Class(spec)` (GPU ones as `Class(spec, cuda_context, stream)`),
called as `post(outputs, transform)` and return a trt_infer.result.Result.
"""
import importlib

from trt_infer.errors import SpecError

PUBLISHES = ("detections", "classification", "mask")


class Task(object):
    """One row of the table.

    name: the spec's `task:` value and the name of its settings section.
    module: dotted name of the post-processing module; its SCHEMA validates the section.
    outputs: the output roles, in the order the docs list them.
    postprocessor: name of the CPU post-processor class in `module`.
    gpu_postprocessor: "package.module:Class" reading the outputs on the GPU, or None.
    publishes: what the node publishes: "detections", "classification" or "mask".
    doc: one Markdown paragraph for docs/model_specs.md.
    """

    def __init__(self, name, module, outputs, postprocessor, publishes, doc, gpu_postprocessor=None):
        if publishes not in PUBLISHES:
            raise ValueError("task {!r}: publishes {!r}; expected one of {}".format(
                name, publishes, ", ".join(PUBLISHES)))
        self.name = name
        self.module = module
        self.outputs = tuple(outputs)
        self.postprocessor = postprocessor
        self.gpu_postprocessor = gpu_postprocessor
        self.publishes = publishes
        self.doc = doc

    def load_module(self):
        """The post-processing module; SpecError when it cannot be imported here."""
        try:
            return importlib.import_module(self.module)
        except ImportError as error:
            raise SpecError("task", "task {!r} needs {}, which cannot be imported: {}".format(
                self.name, self.module, error))

    @property
    def schema(self):
        """The Fields of the task's settings section."""
        return self.load_module().SCHEMA

    def postprocessor_class(self):
        return getattr(self.load_module(), self.postprocessor)

    def gpu_postprocessor_class(self):
        """The GPU post-processor class, or None when the task has none."""
        if self.gpu_postprocessor is None:
            return None
        module_name, class_name = self.gpu_postprocessor.split(":")
        return getattr(importlib.import_module(module_name), class_name)

    def build_postprocessor(self, spec):
        return self.postprocessor_class()(spec)

    def __repr__(self):
        return "Task({!r})".format(self.name)


_FUSED_NMS_OUTPUTS = ("num_detections", "boxes", "scores", "classes")
_FUSED_NMS_DOC = (
    "For engines whose graph already ends in TensorRT's `EfficientNMS_TRT` (task `efficient_nms`) or "
    "`BatchedNMS_TRT` (task `batched_nms`, same keys under `batched_nms:`), as written by "
    "`convert fix --nms plugin`. The NMS runs inside the engine with the thresholds it was built with; "
    "the runtime re-applies `thresholds.score` and `thresholds.max_detections`, so raising them at run "
    "time works, lowering them cannot bring back boxes the engine dropped. ONNX Runtime cannot run "
    "these plugins: such specs need the TensorRT backend.")

TASKS = (
    Task("ssd", "trt_infer.postprocess.ssd", ("boxes", "scores"), "SSDPostprocessor", "detections", doc=(
        "Raw SSD heads (box regressors + class scores per anchor) decoded against generated anchors, or "
        "boxes the graph already decoded (`box_coding: {type: decoded}`, see "
        "[below](#decoded-boxes-a-graph-cut-before-its-nms)), followed by hard or weighted NMS, all in "
        "vectorised numpy. `anchors` is required unless `box_coding.type` is `decoded`, and is an error "
        "then; the check runs when the post-processor is built (the pipeline, the node at start). "
        "The node publishes the detections as `vision_msgs/Detection2DArray` on `detections`.")),
    Task("efficient_nms", "trt_infer.postprocess.fused_nms", _FUSED_NMS_OUTPUTS, "FusedNMSPostprocessor",
         "detections", doc=_FUSED_NMS_DOC),
    Task("batched_nms", "trt_infer.postprocess.fused_nms", _FUSED_NMS_OUTPUTS, "FusedNMSPostprocessor",
         "detections", doc=_FUSED_NMS_DOC),
    Task("segmentation", "trt_infer.postprocess.segmentation", ("logits",), "SegmentationPostprocessor",
         "mask", gpu_postprocessor="trt_infer.cuda.segmentation:GpuSegmentation", doc=(
             "A per-pixel class-id mask from the network's scores (see "
             "[node.md](node.md#segmentation-masks)); `palette` gives each class its colour in the colour "
             "mask and the overlay. With GPU processing the logits are read in place on the GPU and only "
             "the uint8 masks come back. The node publishes the mask on `segmentation/mask` and its colours "
             "on `segmentation/color`.")),
    Task("classification", "trt_infer.postprocess.classification", ("scores",), "ClassificationPostprocessor",
         "classification", doc=(
             "The top-k classes of one score vector, best first. The node publishes them on `classification` "
             "as `vision_msgs/Classification` (`Classification2D` on vision_msgs 2.x).")),
)


def task_names():
    """The task names in table order."""
    return tuple(task.name for task in TASKS)


def get_task(name):
    """The row of task `name`; SpecError naming the known tasks otherwise."""
    for task in TASKS:
        if task.name == name:
            return task
    raise SpecError("task", "got {!r}; known tasks: {}".format(name, ", ".join(task_names())))
