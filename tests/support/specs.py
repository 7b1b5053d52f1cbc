"""Model-spec pieces for tests that need one without a YAML file."""
from trt_infer.spec import InputSpec


def input_spec(**changes):
    """A 300x300 NCHW RGB float32 input with identity normalisation, with `changes` applied."""
    fields = {"name": "x", "width": 300, "height": 300, "layout": "NCHW", "color_order": "RGB", "scale": 1.0,
              "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "resize": "stretch", "pad_value": 0.0,
              "dtype": "float32"}
    fields.update(changes)
    return InputSpec(fields)
