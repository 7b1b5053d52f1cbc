"""`convert verify`: does the fixed graph compute what the model computed before?

Runs the reference (the exported ONNX in ONNX Runtime, or the source TFLite / Keras model in its
own framework) and the fixed ONNX graph in ONNX Runtime on the same seeded random (or given .npz)
inputs, and compares every output they share by name. Where a pass changed an input's dtype
(uint8 -> float32) the fixed graph gets the same values in its dtype. Outputs the fixed graph
exposes that are internal tensors of an ONNX reference (decode outputs after NMS was stripped) are
exposed in the reference too, so decode numerics are compared before any plugin goes in.
ONNX Runtime cannot run TensorRT plugins: verify the graph from before the plugin was inserted.
"""
import os

import numpy as np

from converter.errors import VerifyError

DEFAULT_ATOL = 1e-3
DEFAULT_RTOL = 1e-3


class TensorSpec(object):
    def __init__(self, name, shape, dtype):
        self.name = name
        self.shape = shape      # ints, None for a dynamic dimension
        self.dtype = np.dtype(dtype)


class OnnxRuntimeModel(object):
    """An ONNX file in ONNX Runtime (CPU), optionally with extra internal tensors exposed as outputs."""

    def __init__(self, path, extra_outputs=()):
        import onnxruntime

        from converter.model_files import load_onnx

        model = load_onnx(path)
        if extra_outputs:
            model = _expose(model, extra_outputs)
        self.output_names = [value.name for value in model.graph.output]
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                                        providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001  onnxruntime raises its own exception types per failure
            raise VerifyError("ONNX Runtime cannot load {}: {}".format(path, str(error).strip().splitlines()[0]))
        self.inputs = [TensorSpec(arg.name, [dim if isinstance(dim, int) and dim > 0 else None for dim in arg.shape],
                                  _ort_dtype(arg.type)) for arg in self.session.get_inputs()]

    def run(self, feeds):
        values = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, values))


def internal_tensors(path):
    """Names of the values computed inside an ONNX graph (what `_expose` can make outputs)."""
    from converter.model_files import load_onnx

    return set(name for node in load_onnx(path).graph.node for name in node.output)


def _expose(model, names):
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    known = dict((value.name, value) for value in inferred.graph.value_info)
    for name in names:
        if name in known:
            model.graph.output.append(known[name])
        else:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return model


def _ort_dtype(type_text):
    names = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
             "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int32)": np.int32,
             "tensor(int64)": np.int64, "tensor(bool)": np.bool_}
    if type_text not in names:
        raise VerifyError("cannot make test inputs of type {}".format(type_text))
    return names[type_text]


class TfliteModel(object):
    """A .tflite file in TensorFlow Lite's interpreter; outputs keyed by the tensor names tf2onnx keeps."""

    def __init__(self, path):
        from converter.model_files import check_tflite

        check_tflite(path)
        import tensorflow as tf

        self.interpreter = tf.lite.Interpreter(model_path=path)
        self.interpreter.allocate_tensors()
        self.inputs = [TensorSpec(detail["name"], [int(dim) for dim in detail["shape"]], detail["dtype"])
                       for detail in self.interpreter.get_input_details()]

    def run(self, feeds):
        for detail, spec in zip(self.interpreter.get_input_details(), self.inputs):
            self.interpreter.set_tensor(detail["index"], feeds[spec.name])
        self.interpreter.invoke()
        return dict((detail["name"], self.interpreter.get_tensor(detail["index"]))
                    for detail in self.interpreter.get_output_details())


class KerasModel(object):
    """A .keras/.h5 model's own prediction; outputs are matched to the ONNX graph's by position."""

    positional_outputs = True

    def __init__(self, path):
        from converter.model_files import check_keras

        check_keras(path)
        import keras

        self.model = keras.models.load_model(path, compile=False)
        self.inputs = [TensorSpec(tensor.name, list(tensor.shape), "float32") for tensor in self.model.inputs]

    def run(self, feeds):
        values = self.model([feeds[spec.name] for spec in self.inputs], training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        return dict(("output_{}".format(index), np.asarray(value)) for index, value in enumerate(values))


def load_reference(path, extra_outputs=()):
    extension = os.path.splitext(path)[1].lower()
    if extension == ".tflite":
        return TfliteModel(path)
    if extension in (".keras", ".h5", ".hdf5"):
        return KerasModel(path)
    return OnnxRuntimeModel(path, extra_outputs)


class OutputError(object):
    def __init__(self, name, shape, max_abs, max_rel, ok, note=""):
        self.name = name
        self.shape = shape
        self.max_abs = max_abs
        self.max_rel = max_rel
        self.ok = ok
        self.note = note

    def as_dict(self):
        return {"output": self.name, "shape": list(self.shape), "max_abs": self.max_abs, "max_rel": self.max_rel,
                "ok": self.ok, "note": self.note}


class VerifyResult(object):
    def __init__(self, outputs, not_compared, atol, rtol, runs):
        self.outputs = outputs
        self.not_compared = not_compared
        self.atol = atol
        self.rtol = rtol
        self.runs = runs

    @property
    def passed(self):
        return bool(self.outputs) and all(row.ok for row in self.outputs)

    def as_dict(self):
        return {"passed": self.passed, "atol": self.atol, "rtol": self.rtol, "runs": self.runs,
                "outputs": [row.as_dict() for row in self.outputs], "not_compared": self.not_compared}


def random_inputs(reference, fixed, seed=0):
    """Seeded inputs for the reference's inputs; dynamic dims take the fixed graph's size (else 1)."""
    rng = np.random.RandomState(seed)
    feeds = {}
    for index, spec in enumerate(reference.inputs):
        partner = _partner(spec, index, reference, fixed)
        shape = [dim if dim else (partner.shape[axis] if partner is not None and axis < len(partner.shape)
                                  and partner.shape[axis] else 1)
                 for axis, dim in enumerate(spec.shape)]
        if spec.dtype == np.uint8:
            feeds[spec.name] = rng.randint(0, 256, size=shape).astype(np.uint8)
        elif spec.dtype == np.bool_:
            feeds[spec.name] = rng.randint(0, 2, size=shape).astype(np.bool_)
        elif spec.dtype.kind in "iu":
            feeds[spec.name] = rng.randint(0, 16, size=shape).astype(spec.dtype)
        else:
            feeds[spec.name] = rng.uniform(0.0, 1.0, size=shape).astype(spec.dtype)
    return feeds


def _partner(spec, index, reference, fixed):
    by_name = [other for other in fixed.inputs if other.name == spec.name]
    if by_name:
        return by_name[0]
    if len(fixed.inputs) == len(reference.inputs):
        return fixed.inputs[index]
    return None


def feeds_for_fixed(feeds, reference, fixed):
    """The reference's inputs re-keyed (by name, else position) and cast to the fixed graph's dtypes."""
    result = {}
    for index, spec in enumerate(reference.inputs):
        partner = _partner(spec, index, reference, fixed)
        if partner is None:
            raise VerifyError("cannot match reference input {!r} to the fixed graph's inputs ({})".format(
                spec.name, ", ".join(other.name for other in fixed.inputs)))
        result[partner.name] = feeds[spec.name].astype(partner.dtype)
    return result


def load_inputs(path, reference):
    """Inputs from an .npz keyed by input name (or arr_0, arr_1, ... in input order)."""
    with np.load(path) as data:
        stored = dict(data.items())
    feeds = {}
    for index, spec in enumerate(reference.inputs):
        key = spec.name if spec.name in stored else "arr_{}".format(index)
        if key not in stored:
            raise VerifyError("{} has no array for input {!r} (keys: {})".format(path, spec.name, ", ".join(stored)))
        feeds[spec.name] = stored[key].astype(spec.dtype)
    return feeds


def compare(expected, actual, atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL):
    """(max abs error, max relative error, ok). ok is numpy.allclose's rule: |a-e| <= atol + rtol*|e|."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if expected.size == 0:
        return 0.0, 0.0, True
    difference = np.abs(actual - expected)
    max_abs = float(np.max(difference))
    max_rel = float(np.max(difference / np.maximum(np.abs(expected), atol)))
    ok = bool(np.all(difference <= atol + rtol * np.abs(expected)))
    return max_abs, max_rel, ok


def trace_to_reference(fixed_model, output, known):
    """The tensor of the reference an output of the fixed graph is, looking back through the Identity
    (and at most one Transpose) a pass may have put in front of it; (name, perm or None) or None."""
    import onnx

    producers = dict((name, node) for node in fixed_model.graph.node for name in node.output)
    name, perm = output, None
    while name not in known:
        node = producers.get(name)
        if node is None or node.op_type not in ("Identity", "Transpose") or (node.op_type == "Transpose" and perm):
            return None
        if node.op_type == "Transpose":
            perm = next(list(onnx.helper.get_attribute_value(a)) for a in node.attribute if a.name == "perm")
        name = node.input[0]
    return name, perm


def spec_normaliser(input_spec):
    """A feeds -> feeds function applying the model spec's normalisation to its input, for a fixed graph
    whose framework pre-processing `strip_preprocessing` moved to the runtime: the reference still gets
    raw pixels, the fixed graph what the runtime's pre-processor would write."""
    from trt_infer.preprocess import normalisation

    gain, offset, _ = normalisation(input_spec)
    shape = (1, -1, 1, 1) if input_spec.layout == "NCHW" else (1, 1, 1, -1)
    gain, offset = np.reshape(gain, shape), np.reshape(offset, shape)

    def normalise(feeds):
        feeds = dict(feeds)
        pixels = feeds[input_spec.name].astype(np.float64)
        feeds[input_spec.name] = (pixels * gain + offset).astype(feeds[input_spec.name].dtype)
        return feeds
    return normalise


def verify(reference_path, fixed_path, inputs=None, seed=0, runs=1, atol=DEFAULT_ATOL, rtol=DEFAULT_RTOL,
           fixed_inputs=None):
    """Compare the fixed ONNX graph with the reference on `runs` input sets; returns a VerifyResult.

    fixed_inputs: optional feeds -> feeds function for what the fixed graph gets instead of the
    reference's inputs (see spec_normaliser)."""
    from converter.model_files import load_onnx

    fixed = OnnxRuntimeModel(fixed_path)
    sources = {}
    if reference_path.lower().endswith(".onnx"):
        known = internal_tensors(reference_path) | set(OnnxRuntimeModel(reference_path).output_names)
        fixed_model = load_onnx(fixed_path)
        for name in fixed.output_names:
            traced = trace_to_reference(fixed_model, name, known)
            if traced is not None:
                sources[name] = traced
    reference_outputs = set(OnnxRuntimeModel(reference_path).output_names) if sources else set()
    reference = load_reference(reference_path, sorted(set(source for source, _ in sources.values())
                                                      - reference_outputs))
    worst = {}
    not_compared = []
    for run in range(runs if inputs is None else 1):
        feeds = load_inputs(inputs, reference) if inputs else random_inputs(reference, fixed, seed + run)
        expected = reference.run(feeds)
        for name, (source, perm) in sources.items():
            expected[name] = expected[source] if perm is None else np.transpose(expected[source], perm)
        fixed_feeds = feeds_for_fixed(feeds, reference, fixed)
        actual = fixed.run(fixed_inputs(fixed_feeds) if fixed_inputs is not None else fixed_feeds)
        pairs, not_compared = _pair_outputs(reference, expected, fixed.output_names)
        for name, expected_value in pairs:
            actual_value = actual[name]
            if np.shape(expected_value) != np.shape(actual_value):
                row = OutputError(name, np.shape(actual_value), float("inf"), float("inf"), False,
                                  "shape {} vs reference {}".format(np.shape(actual_value), np.shape(expected_value)))
            else:
                row = OutputError(name, np.shape(actual_value), *compare(expected_value, actual_value, atol, rtol))
            if name not in worst or row.max_abs > worst[name].max_abs:
                worst[name] = row
    rows = [worst[name] for name in fixed.output_names if name in worst]
    return VerifyResult(rows, not_compared, atol, rtol, runs if inputs is None else 1)


def _pair_outputs(reference, expected, fixed_names):
    if getattr(reference, "positional_outputs", False):
        values = [expected[key] for key in sorted(expected, key=lambda key: int(key.rpartition("_")[2]))]
        return list(zip(fixed_names, values)), fixed_names[len(values):]
    pairs = [(name, expected[name]) for name in fixed_names if name in expected]
    missing = [name for name in fixed_names if name not in expected]
    return pairs, missing
