"""Frames through a chain of stages, one thread per stage, overlapped: plain Python, no rclpy.

    chain = StageChain([front, infer, back], on_drop=dropped, on_error=failed)
    chain.put(frame)        # from the subscription callback
    chain.close()           # stops and joins the threads

Each stage is a callable `item -> item` (None ends the item there) with a one-slot mailbox in
front of it (trt_infer.ros.mailbox): while stage k works on frame N, stage k-1 works on N+1 and
stage k+1 on N-1. A stage that is slower than the camera sees only the newest frame: an item
that waited in a mailbox and was replaced is handed to `on_drop(item, stage_index)`, so at most
one item waits per stage and latency stays bounded under overload. Every stage is one thread
taking its mailbox's items in order, so items leave in the order they came in. An exception in
a stage goes to `on_error(error, item, stage_index)` and that item ends there.

`BufferPool` lends the stages the arrays that must not be overwritten while a later stage reads
them (the network input: pre-processing of N+1 writes a different buffer than inference N reads).
"""
import collections
import threading

from trt_infer.ros.mailbox import LatestMailbox

# held by the front stage, waiting in the inference mailbox, read by inference
INPUT_BUFFERS = 3


class StageChain(object):

    def __init__(self, stages, on_drop=None, on_error=None, name="stage"):
        self._stages = list(stages)
        self._boxes = [LatestMailbox() for _ in self._stages]
        self._on_drop = on_drop or (lambda item, index: None)
        self._on_error = on_error or (lambda error, item, index: None)
        self._threads = []
        for index in range(len(self._stages)):
            thread = threading.Thread(target=self._run, args=(index,), name="{}_{}".format(name, index))
            thread.daemon = True
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def put(self, item):
        """Hand `item` to the first stage; True when it replaced an item still waiting there."""
        return self._hand(0, item)

    def _hand(self, index, item):
        replaced = self._boxes[index].swap(item)
        if replaced is not None:
            self._on_drop(replaced, index)
        return replaced is not None

    def _run(self, index):
        box = self._boxes[index]
        stage = self._stages[index]
        last = index == len(self._stages) - 1
        while not box.closed:
            item = box.take(timeout=0.2)
            if item is None:
                continue
            try:
                item = stage(item)
            except Exception as error:  # noqa: BLE001  one bad frame must not stop the chain
                self._on_error(error, item, index)
                continue
            if item is not None and not last:
                self._hand(index + 1, item)

    def close(self, timeout=5.0):
        """Stop every stage (an item being worked on is finished first) and join the threads."""
        for box in self._boxes:
            box.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    @property
    def alive(self):
        return [thread.is_alive() for thread in self._threads]


class BufferPool(object):
    """`count` arrays made by `make()`, lent with `take()` and given back with `give(array)`;
    `take` waits while every array is lent (None after `timeout` seconds)."""

    def __init__(self, make, count=INPUT_BUFFERS):
        self._free = collections.deque(make() for _ in range(count))
        self._condition = threading.Condition()

    def take(self, timeout=None):
        with self._condition:
            if not self._free:
                self._condition.wait(timeout)
            return self._free.popleft() if self._free else None

    def give(self, array):
        with self._condition:
            if any(array is free for free in self._free):
                return  # given back twice (a dropped frame whose stage also failed): lend it once
            self._free.append(array)
            self._condition.notify()

    @property
    def free(self):
        with self._condition:
            return len(self._free)
