"""Forward the runtime's Python log records (`trt_infer.*`) to a node's rclpy logger, at the same
severity, so they reach the console, /rosout and the log files like the node's own messages.

    handler = forward_logging(node.get_logger())
    ...
    stop_forwarding(handler)

No rclpy import: the logger is any object with debug/info/warning/error/fatal (rclpy's
RcutilsLogger has those names from Foxy on).
"""
import logging

RUNTIME_LOGGER = "trt_infer"


class RclpyHandler(logging.Handler):
    """A logging.Handler that writes each record to `ros_logger` at the matching severity:
    DEBUG, INFO, WARNING, ERROR, CRITICAL -> debug, info, warning, error, fatal (levels between
    two go to the lower one)."""

    def __init__(self, ros_logger):
        super(RclpyHandler, self).__init__()
        self.ros_logger = ros_logger
        self.previous_level = logging.NOTSET  # the Python logger's level before forward_logging

    def emit(self, record):
        # One call site per severity: rclpy keys its log contexts by the calling line and refuses
        # a second severity from the same line.
        try:
            message, level, ros_logger = self.format(record), record.levelno, self.ros_logger
            if level >= logging.CRITICAL:
                ros_logger.fatal(message)
            elif level >= logging.ERROR:
                ros_logger.error(message)
            elif level >= logging.WARNING:
                ros_logger.warning(message)
            elif level >= logging.INFO:
                ros_logger.info(message)
            else:
                ros_logger.debug(message)
        except Exception:  # noqa: BLE001  a logging failure must not break the caller (logging's own convention)
            self.handleError(record)


def _rclpy_level(ros_logger):
    """The rclpy logger's threshold as a Python level (rcutils severities use the same numbers)."""
    try:
        level = int(ros_logger.get_effective_level())
    except (AttributeError, TypeError, ValueError):
        return logging.INFO
    return level if level > 0 else logging.INFO


def forward_logging(ros_logger, name=RUNTIME_LOGGER):
    """Install an RclpyHandler on the Python logger `name` and let through the records that
    `ros_logger` would print (its --log-level); returns the handler for stop_forwarding."""
    logger = logging.getLogger(name)
    handler = RclpyHandler(ros_logger)
    handler.previous_level = logger.level
    logger.setLevel(_rclpy_level(ros_logger))
    logger.addHandler(handler)
    return handler


def stop_forwarding(handler, name=RUNTIME_LOGGER):
    """Remove a handler installed by forward_logging and restore the logger's level."""
    logger = logging.getLogger(name)
    if handler in logger.handlers:
        logger.removeHandler(handler)
        logger.setLevel(handler.previous_level)
