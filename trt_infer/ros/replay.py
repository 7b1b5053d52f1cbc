"""replay: publish images from a folder, a video file or scikit-image samples at a fixed rate.

    python -m trt_infer.ros.replay skimage:astronaut,chelsea --rate 30 --encoding bgr8
    python -m trt_infer.ros.replay ~/frames/ --rate 10 --size 640x480 --loop
    python -m trt_infer.ros.replay drive.mp4 --topic /camera/image_raw --reliability reliable
    python -m trt_infer.ros.replay skimage:astronaut --compressed jpeg   # on <topic>/compressed

Every message is stamped with the publish time (so a receiver's now - header.stamp is the
pipeline latency) and frame_id --frame-id. Publishing is scheduled on absolute deadlines, so
the rate does not drift when a frame takes longer to prepare (after falling a whole period
behind, the schedule restarts instead of bursting). Images are loaded once, videos streamed.
"""
import argparse
import os
import sys
import time

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
SKIMAGE_PREFIX = "skimage:"


def skimage_frame(name):
    """A scikit-image sample image as BGR (or mono) uint8."""
    import numpy as np
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise ValueError("scikit-image has no sample image {!r} (try astronaut, chelsea, coffee, camera)".format(name))
    image = loader()
    if image.dtype != np.uint8:
        raise ValueError("scikit-image sample {!r} is {}, not an 8-bit image".format(name, image.dtype))
    if image.ndim == 3:
        image = image[:, :, 2::-1] if image.shape[2] >= 3 else image[:, :, 0]
    return np.ascontiguousarray(image)


def iter_frames(source):
    """BGR (or mono) uint8 frames of `source`: 'skimage:a,b', a folder of images, or a video file."""
    import cv2

    if source.startswith(SKIMAGE_PREFIX):
        for name in source[len(SKIMAGE_PREFIX):].split(","):
            yield skimage_frame(name.strip())
    elif os.path.isdir(source):
        names = sorted(name for name in os.listdir(source) if name.lower().endswith(IMAGE_SUFFIXES))
        if not names:
            raise ValueError("{} holds no images ({})".format(source, ", ".join(IMAGE_SUFFIXES)))
        for name in names:
            frame = cv2.imread(os.path.join(source, name), cv2.IMREAD_COLOR)
            if frame is None:
                raise ValueError("cannot read image {}".format(os.path.join(source, name)))
            yield frame
    elif os.path.isfile(source):
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            raise ValueError("OpenCV cannot open the video {}".format(source))
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                yield frame
        finally:
            capture.release()
    else:
        raise ValueError("source {!r} is neither a folder, a file nor skimage:<name>".format(source))


def _as_colour(frame):
    import cv2

    return frame if frame.ndim == 3 else cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)


class ImagePublisher(object):
    """Publishes BGR frames as sensor_msgs/Image in one encoding, or as CompressedImage."""

    def __init__(self, node, topic, encoding="bgr8", qos=None, frame_id="camera", size=None, compressed=None):
        from sensor_msgs.msg import CompressedImage, Image

        from trt_infer.ros.qos import image_qos

        self.node = node
        self.encoding = encoding
        self.frame_id = frame_id
        self.size = size
        self.compressed = compressed
        self.message_class = CompressedImage if compressed else Image
        topic = topic.rstrip("/") + "/compressed" if compressed else topic
        self.publisher = node.create_publisher(self.message_class, topic, qos if qos is not None else image_qos())
        self._cache = {}

    def wait_for_subscriber(self, timeout):
        """Wait up to `timeout` s until someone subscribes: DDS discovery takes a moment, and frames
        published before it completes are lost. True when a subscriber is there."""
        deadline = time.monotonic() + timeout
        while self.publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        if self.publisher.get_subscription_count() == 0:
            return False
        # The publisher sees the match before the subscriber has finished matching back; best-effort
        # samples sent in between are lost. A short settle avoids losing the first frames.
        time.sleep(min(0.3, timeout))
        return True

    def message(self, frame):
        """The message for a frame (prepared once per distinct frame object), not yet stamped."""
        key = id(frame)
        if key not in self._cache:
            self._cache = {key: (frame, self._build(frame))}  # keep one: video frames are all distinct
        return self._cache[key][1]

    def _build(self, frame):
        import cv2

        from trt_infer.ros.image_msgs import fill_image, from_bgr

        frame = _as_colour(frame)
        if self.size is not None and (frame.shape[1], frame.shape[0]) != self.size:
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        if self.compressed:
            ok, encoded = cv2.imencode("." + self.compressed, frame)
            if not ok:
                raise ValueError("OpenCV cannot encode {}".format(self.compressed))
            message = self.message_class(format=self.compressed)
            message.data = encoded.tobytes()
            return message
        return fill_image(self.message_class(), from_bgr(frame, self.encoding), self.encoding)

    def publish(self, frame, stamp=None):
        """Publish `frame` stamped `stamp` (a builtin_interfaces/Time) or now; returns the message."""
        message = self.message(frame)
        message.header.frame_id = self.frame_id
        message.header.stamp = stamp if stamp is not None else self.node.get_clock().now().to_msg()
        self.publisher.publish(message)
        return message


def parse_size(text):
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError("size {!r}: expected WIDTHxHEIGHT, e.g. 640x480".format(text))
    return width, height


def _arguments(argv):
    from trt_infer.ros.image_msgs import ENCODINGS
    from trt_infer.ros.parameters import RELIABILITIES

    parser = argparse.ArgumentParser(prog="replay", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="a folder of images, a video file, or skimage:NAME[,NAME...]")
    parser.add_argument("--topic", default="image")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second (default 30)")
    parser.add_argument("--encoding", default="bgr8", choices=ENCODINGS)
    parser.add_argument("--compressed", choices=("jpeg", "png"), help="publish CompressedImage on <topic>/compressed")
    parser.add_argument("--reliability", default="best_effort", choices=RELIABILITIES)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--frame-id", default="camera")
    parser.add_argument("--size", type=parse_size, help="resize frames to WIDTHxHEIGHT")
    parser.add_argument("--count", type=int, default=0, help="stop after this many messages (0: no limit)")
    parser.add_argument("--loop", action="store_true", help="start over at the end of the source")
    parser.add_argument("--print-stamps", action="store_true",
                        help="print 'stamp <sec> <nanosec> <frame_id>' for every message sent (for tests)")
    parser.add_argument("--wait", type=float, default=3.0,
                        help="seconds to wait for a first subscriber before publishing (default 3; 0: none)")
    return parser.parse_args(argv)


def replay(node, args):
    """Publish the source as asked; returns the number of messages sent."""
    from trt_infer.ros.qos import image_qos

    publisher = ImagePublisher(node, args.topic, args.encoding, image_qos(args.reliability, args.depth),
                               args.frame_id, args.size, args.compressed)
    publisher.wait_for_subscriber(args.wait)
    is_video = os.path.isfile(args.source) and not args.source.startswith(SKIMAGE_PREFIX)
    frames = None if is_video else list(iter_frames(args.source))  # images are loaded once, videos streamed
    period = 1.0 / args.rate
    sent = 0
    deadline = None
    while True:
        for frame in (iter_frames(args.source) if is_video else frames):
            now = time.monotonic()
            if deadline is None or now - deadline > period:
                deadline = now  # first frame, or fell behind by a whole period: restart, do not burst
            elif deadline > now:
                time.sleep(deadline - now)
            message = publisher.publish(frame)
            sent += 1
            if args.print_stamps:
                print("stamp {} {} {}".format(message.header.stamp.sec, message.header.stamp.nanosec,
                                              message.header.frame_id), flush=True)
            deadline += period
            if args.count and sent >= args.count:
                return sent
        if not args.loop:
            return sent


def main(argv=None):
    import rclpy

    from trt_infer.ros.node import shutdown_quietly

    from rclpy.utilities import remove_ros_args

    command_line = sys.argv if argv is None else ["replay"] + list(argv)
    args = _arguments(remove_ros_args(command_line)[1:])
    rclpy.init(args=command_line)
    node = rclpy.create_node("replay")
    status = 0
    try:
        sent = replay(node, args)
        node.get_logger().info("published {} images on {}".format(sent, args.topic))
    except ValueError as error:
        node.get_logger().fatal(str(error))
        status = 1
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        shutdown_quietly()
    return status


if __name__ == "__main__":
    sys.exit(main())
