"""A task that lives outside the runtime, to prove that a task is one module plus one table row.

`brightest`: the model outputs one score per class (`levels`); the post-processor reports the best
class, its score multiplied by the section's `gain`.
"""
import numpy as np

from trt_infer.result import Result
from trt_infer.schema import Field
from trt_infer.tasks import Task

SCHEMA = {
    "gain": Field(float, default=1.0, above=0, doc="factor applied to the best score"),
}


class BrightestPostprocessor(object):
    def __init__(self, spec):
        self.output_name = spec.outputs["levels"]
        self.gain = spec.section.gain

    def __call__(self, outputs, transform):
        levels = np.asarray(outputs[self.output_name], dtype=np.float32).reshape(-1)
        best = int(np.argmax(levels))
        return Result(classes=[(best, float(levels[best]) * self.gain)])


ROW = Task("brightest", __name__, ("levels",), "BrightestPostprocessor", "classification",
           doc="The brightest channel of the image, a test of the task table.")
