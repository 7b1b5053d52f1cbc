"""Frame statistics of the node: processing time, cycle time, latency, drops and skips.

`FrameStats` is plain Python + numpy (thread-safe: the subscription callback counts frames, the
worker records processed ones). `diagnostic_status` turns a snapshot into a
diagnostic_msgs/DiagnosticStatus for the `statistics` topic and /diagnostics.

Figures are end-to-end inside the node unless named otherwise:
  processing  = from taking the frame out of the mailbox to its results being published
  latency     = publish time - header.stamp (includes camera -> node transport and waiting)
  cycle       = time between two processed frames
  inference_* = the pipeline's own stage timings (network only for "inference")
"""
import collections
import threading

import numpy as np

WINDOW = 300

# (key or key prefix, meaning) of what a snapshot carries, in the order the docs list them
STATISTICS = (
    ("frames_received", "images received (counted in the subscription callback)"),
    ("frames_processed", "images that went through the pipeline and were published"),
    ("frames_dropped", "images replaced in the one-slot mailbox by a newer one before processing"),
    ("frames_skipped", "images that could not be processed (unsupported encoding, bad size, error)"),
    ("frames_color_published", "colour masks drawn and published (only while `segmentation/color` has "
                               "subscribers)"),
    ("frames_overlay_published", "overlays drawn and published (only while `overlay` has subscribers)"),
    ("processed_since_last_snapshot", "frames processed since the previous message (0 makes the status WARN)"),
    ("rate_hz", "processed frames per second, from the median cycle time"),
    ("processing_ms", "end-to-end in the node: frame taken from the mailbox -> results published"),
    ("latency_ms", "end-to-end pipeline latency: publish time - header.stamp (includes transport and "
                   "waiting; needs stamped images)"),
    ("cycle_ms", "time between two processed frames"),
    ("stage_preprocess_ms", "pipeline stage: resize + normalise into the input buffer"),
    ("stage_inference_ms", "pipeline stage: the network only (backend call)"),
    ("stage_postprocess_ms", "pipeline stage: decode + NMS / mask"),
    ("stage_total_ms", "pipeline stages together (no ROS conversion or publishing)"),
)


class FrameStats(object):

    def __init__(self, window=WINDOW):
        self._lock = threading.Lock()
        self._series = collections.defaultdict(lambda: collections.deque(maxlen=window))
        self._counts = collections.Counter()
        self._last_processed = None
        self._processed_at_last_snapshot = 0

    def count(self, what, amount=1):
        """Count frames 'received', 'dropped' (replaced by a newer one before processing), 'skipped'."""
        with self._lock:
            self._counts[what] += amount

    def processed(self, now, processing, latency, timings=None):
        """Record one processed frame; times in seconds (latency None when the image had no stamp),
        `now` a monotonic clock reading."""
        with self._lock:
            self._counts["processed"] += 1
            self._series["processing"].append(processing)
            if latency is not None:  # None: an unstamped image
                self._series["latency"].append(latency)
            if self._last_processed is not None:
                self._series["cycle"].append(now - self._last_processed)
            self._last_processed = now
            for stage, seconds in (timings or {}).items():
                self._series["stage_" + stage].append(seconds)

    def snapshot(self):
        """Counters and, per series, median / p95 / max in milliseconds over the recent window."""
        with self._lock:
            values = {"frames_" + name: count for name, count in self._counts.items()}
            for name in ("received", "processed", "dropped", "skipped", "color_published", "overlay_published"):
                values.setdefault("frames_" + name, 0)
            series = {name: np.array(samples, dtype=np.float64) for name, samples in self._series.items()}
            values["processed_since_last_snapshot"] = self._counts["processed"] - self._processed_at_last_snapshot
            self._processed_at_last_snapshot = self._counts["processed"]
        for name, samples in sorted(series.items()):
            if len(samples):
                values[name + "_ms_median"] = 1000.0 * float(np.median(samples))
                values[name + "_ms_p95"] = 1000.0 * float(np.percentile(samples, 95))
                values[name + "_ms_max"] = 1000.0 * float(samples.max())
        if "cycle_ms_median" in values and values["cycle_ms_median"] > 0:
            values["rate_hz"] = 1000.0 / values["cycle_ms_median"]
        return values


def diagnostic_status(snapshot, name, hardware_id, status_class, key_value_class):
    """A DiagnosticStatus: OK while frames are processed, WARN when none were since the last one."""
    status = status_class()
    status.name = name
    status.hardware_id = hardware_id
    if snapshot["processed_since_last_snapshot"] > 0:
        status.level = status_class.OK
        status.message = "processing"
    elif snapshot["frames_received"] == 0:
        status.level = status_class.WARN
        status.message = "no images received yet"
    else:
        status.level = status_class.WARN
        status.message = "no frames processed since the last report"
    status.values = [key_value_class(key=key, value=_format(value)) for key, value in sorted(snapshot.items())]
    return status


def _format(value):
    return "{:.3f}".format(value) if isinstance(value, float) else str(value)
