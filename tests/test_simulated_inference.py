"""The node benchmark's inference stand-in (trt_infer/backends/simulated.py): the real backend runs
once, every call waits without the GIL, and only the benchmark's environment variable enables it."""
import threading

import numpy as np
import pytest

from trt_infer.backends import TensorInfo
from trt_infer.backends.simulated import SIMULATE_VARIABLE, SimulatedInference, simulated_if_requested
from trt_infer.errors import SettingError


class CountingBackend(object):
    inputs = [TensorInfo("x", (1, 2), np.float32)]
    outputs = [TensorInfo("y", (1, 2), np.float32)]
    path = "counting.onnx"

    def __init__(self):
        self.calls = 0
        self.closed = False
        self.buffer = np.zeros((1, 2), np.float32)

    def input_buffer(self, name):
        return self.buffer

    def infer(self, inputs=None):
        self.calls += 1
        return {"y": (inputs or {"x": self.buffer})["x"] + 1}

    def close(self):
        self.closed = True


def test_the_stand_in_runs_the_real_backend_once_and_returns_its_outputs_read_only():
    real = CountingBackend()
    stand_in = SimulatedInference(real, 0.0)
    assert stand_in.cuda_context is None and stand_in.inputs == real.inputs and stand_in.path == real.path
    assert stand_in.input_buffer("x") is real.buffer
    first = stand_in.infer({"x": np.full((1, 2), 2, np.float32)})
    second = stand_in.infer()
    assert real.calls == 1
    assert first["y"].tolist() == second["y"].tolist() == [[3.0, 3.0]]
    with pytest.raises(ValueError):
        second["y"][0, 0] = 0
    stand_in.close()
    assert real.closed


def test_the_stand_in_waits_without_holding_the_gil():
    stand_in = SimulatedInference(CountingBackend(), 300.0)
    stand_in.infer()
    counted = []

    def count():
        total = 0
        while thread.is_alive():
            total += 1
        counted.append(total)

    thread = threading.Thread(target=stand_in.infer)
    thread.start()
    count()
    assert counted[0] > 1000  # the counting loop ran while the stand-in waited


def test_the_stand_in_is_used_only_when_the_benchmark_variable_is_set(caplog):
    real = CountingBackend()
    assert simulated_if_requested(real, {}) is real
    assert simulated_if_requested(real, {SIMULATE_VARIABLE: ""}) is real
    wrapped = simulated_if_requested(real, {SIMULATE_VARIABLE: "40"})
    assert isinstance(wrapped, SimulatedInference) and wrapped.milliseconds == 40.0
    assert "stand-in" in caplog.text and SIMULATE_VARIABLE in caplog.text
    for bad in ("fast", "-1", "nan"):
        with pytest.raises(SettingError, match=SIMULATE_VARIABLE):
            simulated_if_requested(real, {SIMULATE_VARIABLE: bad})
