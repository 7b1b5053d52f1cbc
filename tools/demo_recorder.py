"""Records what trt_infer_node publishes, for the main job (tools/demo.py). Runs as its own process.

Subscribes to `overlay` (one per processed frame, as long as someone listens), `detections`,
`segmentation/mask`, `segmentation/color` and `statistics`; writes images named by the frame's
header stamp, and keeps recorded.json up to date after every frame; stops on SIGINT.
"""
import argparse
import json
import os
import sys

import cv2
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from tests.support.ros_probe import message_to_dict  # noqa: E402
from trt_infer.ros.image_msgs import image_view, to_bgr  # noqa: E402
from trt_infer.ros.node import shutdown_quietly  # noqa: E402
from trt_infer.ros.qos import result_qos  # noqa: E402
from trt_infer.ros.vision_msgs_compat import VisionMessages  # noqa: E402

def stamp_of(message):
    return "{}.{:09d}".format(message.header.stamp.sec, message.header.stamp.nanosec)


class Recorder(object):
    def __init__(self, node, out_dir):
        self.out_dir = out_dir
        self.frames = {}
        self.statistics = {}
        vision = VisionMessages()
        node.create_subscription(Image, "overlay", lambda msg: self.save_image(msg, "overlay"), result_qos())
        node.create_subscription(Image, "segmentation/color", lambda msg: self.save_image(msg, "color"), result_qos())
        node.create_subscription(Image, "segmentation/mask", lambda msg: self.save_image(msg, "mask"), result_qos())
        node.create_subscription(vision.msg.Detection2DArray, "detections", self.on_detections, result_qos())
        node.create_subscription(DiagnosticStatus, "statistics", self.on_statistics, result_qos())

    def frame(self, message):
        return self.frames.setdefault(stamp_of(message), {"stamp": stamp_of(message), "files": {}})

    def save_image(self, message, kind):
        image, encoding = image_view(message)
        path = os.path.join(self.out_dir, "{}_{}.png".format(stamp_of(message), kind))
        cv2.imwrite(path, image if kind == "mask" else to_bgr(image, encoding))
        self.frame(message)["files"][kind] = os.path.basename(path)
        self.write()
        if kind == "mask":
            mask = image
            self.frame(message)["mask_classes"] = {str(value): int((mask == value).sum())
                                                   for value in sorted(set(mask.ravel().tolist()))}

    def on_detections(self, message):
        self.frame(message)["detections"] = message_to_dict(message)["detections"]
        self.write()

    def on_statistics(self, message):
        self.statistics = {item.key: item.value for item in message.values}

    def write(self):
        path = os.path.join(self.out_dir, "recorded.json")
        with open(path + ".partial", "w") as handle:
            json.dump({"frames": sorted(self.frames.values(), key=lambda frame: frame["stamp"]),
                       "statistics": self.statistics}, handle, indent=1)
        os.replace(path + ".partial", path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rclpy.init()
    node = rclpy.create_node("trt_infer_demo_recorder")
    recorder = Recorder(node, args.out)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        recorder.write()
        node.destroy_node()
        shutdown_quietly()
    return 0


if __name__ == "__main__":
    sys.exit(main())
