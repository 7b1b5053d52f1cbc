"""QoS profiles of the node: images like a sensor, results reliable, label tables latched.

A best-effort subscription receives from both best-effort and reliable publishers; a reliable
one never connects to a best-effort camera ("incompatible QoS"), hence the default.
Only QoS names that exist since Foxy are used.
"""
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy

RELIABILITY = {"best_effort": QoSReliabilityPolicy.BEST_EFFORT, "reliable": QoSReliabilityPolicy.RELIABLE}


def image_qos(reliability="best_effort", depth=1):
    """Keep-last `depth` image subscription/publisher profile."""
    if reliability not in RELIABILITY:
        raise ValueError("reliability {!r}; allowed: {}".format(reliability, ", ".join(sorted(RELIABILITY))))
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=int(depth),
                      reliability=RELIABILITY[reliability], durability=QoSDurabilityPolicy.VOLATILE)


def result_qos(depth=5):
    """Detections, masks, overlays, statistics: reliable, volatile."""
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=QoSReliabilityPolicy.RELIABLE, durability=QoSDurabilityPolicy.VOLATILE)


def latched_qos():
    """Label tables: late subscribers still get the last message (transient local)."""
    return QoSProfile(history=QoSHistoryPolicy.KEEP_LAST, depth=1,
                      reliability=QoSReliabilityPolicy.RELIABLE, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
