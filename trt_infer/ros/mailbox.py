"""A one-slot mailbox: the subscription drops frames in, the worker takes the newest.

A frame that is replaced before the worker took it is dropped (and counted by the caller), so a
slow model never works through a queue of stale frames and latency does not grow under load.
"""
import threading


class LatestMailbox(object):

    def __init__(self):
        self._condition = threading.Condition()
        self._item = None
        self._closed = False

    def put(self, item):
        """Store `item`; True when it replaced one that was never taken (a dropped frame)."""
        return self.swap(item) is not None

    def swap(self, item):
        """Store `item`; the item it replaced that was never taken (a dropped frame), else None."""
        with self._condition:
            replaced, self._item = self._item, item
            self._condition.notify()
        return replaced

    def take(self, timeout=None):
        """The newest item, waiting up to `timeout` seconds; None on timeout or once closed."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout)
            item, self._item = self._item, None
            return None if self._closed else item

    def close(self):
        """Wake the taker; later takes return None."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def closed(self):
        return self._closed
