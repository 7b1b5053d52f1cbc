"""Classification top-k against an independent float64 reference."""
import numpy as np
import pytest

from trt_infer.postprocess.classification import ClassificationPostprocessor
from trt_infer.spec import ModelSpec


def post_for(top_k=3, activation="softmax"):
    spec = ModelSpec({"name": "cls", "task": "classification", "input": {"name": "x", "width": 8, "height": 8},
                      "outputs": {"scores": "prob"}, "classification": {"top_k": top_k, "activation": activation}})
    return ClassificationPostprocessor(spec)


def reference(scores, top_k, activation):
    values = np.asarray(scores, np.float64).reshape(-1)
    if activation == "softmax":
        values = np.exp(values - values.max()) / np.exp(values - values.max()).sum()
    elif activation == "sigmoid":
        values = 1 / (1 + np.exp(-values))
    order = sorted(range(values.size), key=lambda index: (-values[index], index))[:top_k]
    return [(index, values[index]) for index in order]


@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "none"])
@pytest.mark.parametrize("top_k", [1, 5, 1000])
def test_top_k_matches_the_reference(activation, top_k):
    scores = np.random.RandomState(top_k).randn(1, 1000).astype(np.float32) * 3
    got = post_for(top_k, activation)({"prob": scores}).classes
    expected = reference(scores, top_k, activation)
    assert [index for index, _ in got] == [index for index, _ in expected]
    np.testing.assert_allclose([score for _, score in got], [score for _, score in expected], rtol=1e-5, atol=1e-7)


def test_ties_keep_the_lower_class_first_and_k_is_capped():
    scores = np.array([[0.1, 0.7, 0.7, 0.05, 0.7]], np.float32)
    got = post_for(10, "none")({"prob": scores}).classes
    assert [index for index, _ in got] == [1, 2, 4, 0, 3]


def test_a_batch_of_several_images_is_refused():
    with pytest.raises(ValueError) as error:
        post_for()({"prob": np.zeros((2, 10), np.float32)})
    assert "(2, 10)" in str(error.value) and "'prob'" in str(error.value)
