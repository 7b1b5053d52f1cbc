"""Python log records of trt_infer.* reach the node's rclpy logger at the same severity; tested
with a stand-in for rclpy's RcutilsLogger (no rclpy needed, runs under Python 3.6)."""
import inspect
import logging

import pytest

from trt_infer.ros.log_forwarding import RclpyHandler, forward_logging, stop_forwarding


class FakeRosLogger(object):
    """The RcutilsLogger methods the handler calls, recording (method, message), with rclpy's rule
    that one calling line keeps one severity ("Logger severity cannot be changed between calls")."""

    def __init__(self, level=20):
        self.level = level
        self.calls = []
        self._severity_of_caller = {}

    def get_effective_level(self):
        return self.level

    def _log(self, method, message):
        caller = inspect.currentframe().f_back.f_back
        site = (caller.f_code.co_filename, caller.f_lineno, caller.f_lasti)
        if self._severity_of_caller.setdefault(site, method) != method:
            raise ValueError("Logger severity cannot be changed between calls.")
        self.calls.append((method, message))

    def debug(self, message):
        self._log("debug", message)

    def info(self, message):
        self._log("info", message)

    def warning(self, message):
        self._log("warning", message)

    def error(self, message):
        self._log("error", message)

    def fatal(self, message):
        self._log("fatal", message)


@pytest.fixture
def ros_logger():
    fake = FakeRosLogger(level=10)
    handler = forward_logging(fake)
    yield fake
    stop_forwarding(handler)


@pytest.mark.parametrize("level, method", [
    (logging.DEBUG, "debug"), (logging.INFO, "info"), (logging.WARNING, "warning"),
    (logging.ERROR, "error"), (logging.CRITICAL, "fatal"), (15, "debug"), (35, "warning"), (60, "fatal"),
])
def test_each_python_level_maps_to_the_rclpy_method(ros_logger, level, method):
    logging.getLogger("trt_infer.x").log(level, "message")
    assert ros_logger.calls == [(method, "message")]


def test_runtime_records_reach_rclpy_at_their_severity(ros_logger):
    log = logging.getLogger("trt_infer.engine_cache")
    log.debug("d")
    log.info("building %s", "model.engine")
    log.warning("no sidecar")
    log.error("e")
    log.critical("c")
    log.warning("again")
    assert ros_logger.calls == [("debug", "d"), ("info", "building model.engine"), ("warning", "no sidecar"),
                                ("error", "e"), ("fatal", "c"), ("warning", "again")]


def test_other_loggers_are_not_forwarded(ros_logger):
    logging.getLogger("onnxruntime").warning("not ours")
    logging.getLogger("trt_infer_extra").warning("not ours either")
    assert ros_logger.calls == []


def test_records_below_the_rclpy_level_are_not_forwarded():
    fake = FakeRosLogger(level=30)
    handler = forward_logging(fake)
    try:
        logging.getLogger("trt_infer.ros.plan").info("quiet")
        logging.getLogger("trt_infer.ros.plan").warning("loud")
    finally:
        stop_forwarding(handler)
    assert fake.calls == [("warning", "loud")]


def test_stop_forwarding_removes_the_handler_and_restores_the_level():
    runtime = logging.getLogger("trt_infer")
    before = runtime.level
    fake = FakeRosLogger()
    handler = forward_logging(fake)
    assert handler in runtime.handlers and runtime.level == logging.INFO
    stop_forwarding(handler)
    stop_forwarding(handler)  # twice is harmless (close after a failed start)
    assert handler not in runtime.handlers and runtime.level == before
    logging.getLogger("trt_infer.x").warning("after")
    assert fake.calls == []


def test_forwarded_records_still_reach_caplog(ros_logger, caplog):
    with caplog.at_level(logging.INFO, logger="trt_infer"):
        logging.getLogger("trt_infer.ros.node").warning("frame skipped")
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("trt_infer.ros.node", logging.WARNING, "frame skipped")]
    assert ros_logger.calls == [("warning", "frame skipped")]


def test_a_failing_ros_logger_does_not_raise_into_the_caller(monkeypatch):
    class Broken(object):
        def warning(self, message):
            raise RuntimeError("context shut down")

    handler = RclpyHandler(Broken())
    reported = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    record = logging.LogRecord("trt_infer.x", logging.WARNING, __file__, 1, "boom", None, None)
    handler.emit(record)
    assert reported == [record]


def test_the_real_rclpy_logger_takes_every_severity_from_the_handler(monkeypatch):
    rclpy_logging = pytest.importorskip("rclpy.logging", reason="needs rclpy (the host .venv has it)")
    ros_logger = rclpy_logging.get_logger("trt_infer_log_forwarding_test")
    ros_logger.set_level(rclpy_logging.LoggingSeverity.DEBUG)
    handler = forward_logging(ros_logger)
    failures = []
    monkeypatch.setattr(handler, "handleError", failures.append)
    try:
        log = logging.getLogger("trt_infer.x")
        for _ in range(2):
            for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
                log.log(level, "severity %d", level)
    finally:
        stop_forwarding(handler)
    assert failures == []
