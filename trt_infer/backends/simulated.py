"""A benchmark STAND-IN for a slow inference, test-only: `SimulatedInference(backend, ms)`.

It wraps a real backend and holds every `infer()` for `ms` milliseconds without holding the GIL
(a threading.Event wait), as a Jetson Nano's TensorRT enqueue + stream sync does. The real
backend runs on the first call only; later calls return that call's outputs (read-only), so the
node's CPU time is its own Python work and not the network's: the node benchmark sends one
image over and over. Only the node benchmark enables it, through the environment variable
SIMULATE_VARIABLE in the node's process (trt_infer.ros.node reads it); never set it on a robot.
"""
import logging
import os
import threading
import time

import numpy as np

from trt_infer.backends import Backend
from trt_infer.errors import SettingError

SIMULATE_VARIABLE = "TRT_INFER_SIMULATE_INFERENCE_MS"
_LOG = logging.getLogger(__name__)


class SimulatedInference(Backend):
    """Stand-in: the real backend's outputs of its first call, each call held for `milliseconds`.
    Host buffers only (cuda_context None), so a pipeline over it pre-processes on the CPU."""

    def __init__(self, backend, milliseconds):
        self.real = backend
        self.milliseconds = float(milliseconds)
        self.inputs = backend.inputs
        self.outputs = backend.outputs
        self.path = backend.path
        self._outputs = None
        self._never = threading.Event()

    def input_buffer(self, name):
        return self.real.input_buffer(name)

    def infer(self, inputs=None):
        start = time.monotonic()
        if self._outputs is None:
            self._outputs = {}
            for name, value in self.real.infer(inputs).items():
                value = np.array(value, copy=True)
                value.setflags(write=False)
                self._outputs[name] = value
        remaining = self.milliseconds / 1000.0 - (time.monotonic() - start)
        if remaining > 0:
            self._never.wait(remaining)  # sleeps with the GIL released
        return dict(self._outputs)

    def close(self):
        self.real.close()

    def __repr__(self):
        return "SimulatedInference({} ms stand-in over {!r})".format(self.milliseconds, self.real)


def simulated_if_requested(backend, environ=None):
    """`backend` wrapped in the stand-in when SIMULATE_VARIABLE is set (benchmarks only), else as is."""
    text = (os.environ if environ is None else environ).get(SIMULATE_VARIABLE, "")
    if not text:
        return backend
    try:
        milliseconds = float(text)
    except ValueError:
        milliseconds = -1.0
    if not milliseconds >= 0:
        raise SettingError("{}={!r}: expected a number of milliseconds >= 0 (a benchmark stand-in; unset it "
                           "to run the model)".format(SIMULATE_VARIABLE, text))
    _LOG.warning("inference is a benchmark stand-in: each call held for {} ms, outputs of the first call "
                 "({} is set)".format(milliseconds, SIMULATE_VARIABLE))
    return SimulatedInference(backend, milliseconds)
