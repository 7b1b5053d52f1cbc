"""The node's parameter table, the mailbox that drops stale frames and the statistics collector:
plain Python, so these run under the Nano's Python 3.6 as well."""
import threading

import pytest

from trt_infer.ros import parameters
from trt_infer.ros.mailbox import LatestMailbox
from trt_infer.ros.stats import FrameStats


def test_every_parameter_has_a_type_description_and_valid_default():
    names = parameters.declared_names()
    assert len(names) == len(set(names))
    for param in parameters.PARAMETERS:
        assert param.kind in (bool, int, float, str) and param.description
        if param.default != parameters.FROM_SPEC:
            assert param.problem(param.default) is None, param.name


@pytest.mark.parametrize("name, value, words", [
    ("score_threshold", 1.5, "between 0 and 1"),
    ("score_threshold", "high", "must be float"),
    ("max_detections", 0, "between 1 and 10000"),
    ("max_detections", True, "must be int"),
    ("backend", "cuda", "one of auto, tensorrt, onnxruntime"),
    ("input_reliability", "reliable_ish", "one of best_effort, reliable"),
])
def test_out_of_range_values_are_rejected_with_the_reason(name, value, words):
    problem = parameters.BY_NAME[name].problem(value)
    assert problem is not None and words in problem and name in problem


def test_accepted_values_pass_and_integers_count_as_floats():
    assert parameters.BY_NAME["score_threshold"].problem(1) is None
    assert parameters.BY_NAME["nms_iou_threshold"].problem(0.3) is None
    assert parameters.BY_NAME["class_id_format"].problem("label") is None


def test_thresholds_and_output_options_are_the_runtime_parameters():
    runtime = {param.name for param in parameters.PARAMETERS if param.runtime}
    assert set(parameters.THRESHOLD_PARAMETERS) <= runtime
    assert "model_spec" not in runtime and "backend" not in runtime


def test_markdown_table_lists_every_parameter():
    table = parameters.markdown_table()
    for name in parameters.declared_names():
        assert "`{}`".format(name) in table


def test_mailbox_keeps_only_the_newest_item_and_reports_replacements():
    box = LatestMailbox()
    assert box.put(1) is False
    assert box.put(2) is True
    assert box.take(timeout=0) == 2
    assert box.take(timeout=0.01) is None
    box.put(3)
    box.close()
    assert box.take(timeout=1) is None


def test_mailbox_wakes_a_waiting_taker():
    box = LatestMailbox()
    got = []
    taker = threading.Thread(target=lambda: got.append(box.take(timeout=5)))
    taker.start()
    box.put("frame")
    taker.join(5)
    assert got == ["frame"]


def test_stats_summarise_counts_and_times():
    stats = FrameStats(window=10)
    stats.count("received", 5)
    stats.count("dropped", 2)
    for index in range(3):
        stats.processed(now=index * 0.1, processing=0.01 * (index + 1), latency=0.02, timings={"inference": 0.005})
    snapshot = stats.snapshot()
    assert snapshot["frames_received"] == 5 and snapshot["frames_dropped"] == 2 and snapshot["frames_processed"] == 3
    assert snapshot["processing_ms_median"] == pytest.approx(20.0)
    assert snapshot["processing_ms_max"] == pytest.approx(30.0)
    assert snapshot["cycle_ms_median"] == pytest.approx(100.0)
    assert snapshot["rate_hz"] == pytest.approx(10.0)
    assert snapshot["stage_inference_ms_median"] == pytest.approx(5.0)
    assert snapshot["processed_since_last_snapshot"] == 3
    assert stats.snapshot()["processed_since_last_snapshot"] == 0


def test_unstamped_frames_record_no_latency():
    stats = FrameStats()
    stats.processed(now=0.0, processing=0.01, latency=None)
    assert "latency_ms_median" not in stats.snapshot()
