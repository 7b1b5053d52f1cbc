"""A DDS probe for tests: publish a message given as JSON, or print received messages as JSON.

Run as a process with an environment from tests/support/ros_env.py:

    python -m tests.support.ros_probe publish sensor_msgs/msg/Image /camera '{"height": 2, ...}'
    python -m tests.support.ros_probe receive vision_msgs/msg/Detection2DArray /detections --count 1

`publish` sends the message every --period seconds until stopped (SIGINT) or --duration ends, so a
subscriber that joins late still gets it. `receive` prints one line per message,
`RECEIVED <json>`, and exits 0 after --count messages, 3 on --timeout.
Fields are converted generically (nested messages, sequences, byte arrays), so the probe is a faithful
witness of what went over the wire, with no per-type code.
"""
import argparse
import array
import importlib
import json
import sys

RECEIVED = "RECEIVED "
EXIT_TIMEOUT = 3
QOS_CHOICES = ("reliable", "sensor_data")


def message_class(type_name):
    """'sensor_msgs/msg/Image' (or 'sensor_msgs/Image') -> the generated Python class."""
    parts = type_name.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise ValueError("message type %r: expected package/msg/Type, e.g. sensor_msgs/msg/Image" % type_name)
    module = importlib.import_module("%s.%s" % (parts[0], parts[1]))
    try:
        return getattr(module, parts[2])
    except AttributeError:
        raise ValueError("message type %r: %s has no %s (this vision_msgs layout may not define it)"
                         % (type_name, module.__name__, parts[2]))


def _is_message(value):
    return hasattr(value, "get_fields_and_field_types")


def message_to_dict(message):
    return {name: _plain(getattr(message, name)) for name in message.get_fields_and_field_types()}


def _plain(value):
    if _is_message(value):
        return message_to_dict(value)
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, (list, tuple, array.array)) or type(value).__name__ == "ndarray":
        return [_plain(item) for item in value]
    return value


def fill_message(message, fields, where=None):
    """Set `fields` (a dict, nested as the message) on `message`; unknown field names are errors."""
    known = message.get_fields_and_field_types()
    slot_types = dict(zip(message.__slots__, message.SLOT_TYPES))
    where = where or type(message).__name__
    for name, value in fields.items():
        if name not in known:
            raise ValueError("%s (%s) has no field %r; its fields: %s"
                             % (where, type(message).__name__, name, ", ".join(known)))
        current = getattr(message, name)
        if _is_message(current):
            fill_message(current, value, where + "." + name)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            element_type = slot_types["_" + name].value_type
            element_class = message_class("/".join(list(element_type.namespaces) + [element_type.name]))
            items = []
            for index, item in enumerate(value):
                items.append(element_class())
                fill_message(items[-1], item, "%s.%s[%d]" % (where, name, index))
            setattr(message, name, items)
        else:
            setattr(message, name, value)
    return message


def _parse_arguments(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.support.ros_probe", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    commands.required = True
    publish = commands.add_parser("publish", help="publish one message repeatedly")
    publish.add_argument("type")
    publish.add_argument("topic")
    publish.add_argument("fields", help="the message as JSON")
    publish.add_argument("--period", type=float, default=0.05)
    publish.add_argument("--duration", type=float, default=30.0)
    publish.add_argument("--qos", choices=QOS_CHOICES, default="reliable")
    receive = commands.add_parser("receive", help="print received messages as JSON lines")
    receive.add_argument("type")
    receive.add_argument("topic")
    receive.add_argument("--count", type=int, default=1)
    receive.add_argument("--timeout", type=float, default=15.0)
    receive.add_argument("--qos", choices=QOS_CHOICES, default="reliable",
                         help="sensor_data (best effort) also hears best-effort publishers")
    return parser.parse_args(argv)


def _qos_profile(name):
    from rclpy.qos import QoSProfile, qos_profile_sensor_data

    return qos_profile_sensor_data if name == "sensor_data" else QoSProfile(depth=10)


def _publish(node, cls, args):
    import rclpy

    message = fill_message(cls(), json.loads(args.fields))
    publisher = node.create_publisher(cls, args.topic, _qos_profile(args.qos))
    sent = [0]

    def tick():
        publisher.publish(message)
        sent[0] += 1

    node.create_timer(args.period, tick)
    deadline = node.get_clock().now().nanoseconds + int(args.duration * 1e9)
    while rclpy.ok() and node.get_clock().now().nanoseconds < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    print("published %d messages on %s" % (sent[0], args.topic))
    return 0


def _receive(node, cls, args):
    import rclpy

    received = []

    def on_message(message):
        received.append(message)
        print(RECEIVED + json.dumps(message_to_dict(message), sort_keys=True))

    node.create_subscription(cls, args.topic, on_message, _qos_profile(args.qos))
    deadline = node.get_clock().now().nanoseconds + int(args.timeout * 1e9)
    while rclpy.ok() and len(received) < args.count and node.get_clock().now().nanoseconds < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    if len(received) < args.count:
        print("timed out after %.1f s: %d of %d messages on %s"
              % (args.timeout, len(received), args.count, args.topic), file=sys.stderr)
        return EXIT_TIMEOUT
    return 0


def main(argv=None):
    args = _parse_arguments(argv)
    import rclpy
    from rclpy.executors import ExternalShutdownException

    cls = message_class(args.type)
    rclpy.init()
    node = rclpy.create_node("ros_probe_" + args.command)
    try:
        return (_publish if args.command == "publish" else _receive)(node, cls, args)
    except (KeyboardInterrupt, ExternalShutdownException):
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
