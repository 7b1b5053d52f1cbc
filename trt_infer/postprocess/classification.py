"""Classification: the top-k classes of a score vector, optionally through a softmax or sigmoid."""
import numpy as np

from trt_infer.result import Result
from trt_infer.schema import Field

ACTIVATIONS = ("softmax", "sigmoid", "none")

SCHEMA = {
    "top_k": Field(int, default=5, minimum=1, doc="number of best classes reported"),
    "activation": Field(str, default="softmax", choices=ACTIVATIONS,
                        doc="applied to the raw output; none when the model already outputs probabilities"),
}


def softmax(values):
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


def sigmoid(values):
    return 1.0 / (1.0 + np.exp(-values))


class ClassificationPostprocessor(object):
    """Returns a Result whose classes are [(class_id, score), ...] best first, at most top_k of them."""

    def __init__(self, spec):
        self.output_name = spec.outputs["scores"]
        self.top_k = spec.section.top_k
        self.activation = {"softmax": softmax, "sigmoid": sigmoid, "none": None}[spec.section.activation]

    def __call__(self, outputs, transform=None):
        scores = np.asarray(outputs[self.output_name], dtype=np.float32)
        if scores.ndim > 1 and scores.shape[0] != 1:
            raise ValueError("classification output {!r} has shape {}; expected one image (batch 1)".format(
                self.output_name, scores.shape))
        scores = scores.reshape(-1)
        if self.activation is not None:
            scores = self.activation(scores)
        k = min(self.top_k, scores.size)
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.lexsort((best, -scores[best]))]  # ties: lower class id first
        return Result(classes=[(int(index), float(scores[index])) for index in best])
