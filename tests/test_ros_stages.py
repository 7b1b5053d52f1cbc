"""The node's stage threads (trt_infer/ros/stages.py) and its input buffer pool; no rclpy, no DDS.
Order, dropping and shutdown are checked with events, never with timings."""
import threading

import numpy as np

from trt_infer.ros.stages import BufferPool, StageChain


class Recorder(object):
    def __init__(self):
        self.items = []
        self.dropped = []
        self.errors = []
        self.done = threading.Event()
        self.lock = threading.Lock()

    def finish(self, item):
        with self.lock:
            self.items.append(item)
        if item == "last":
            self.done.set()

    def drop(self, item, stage):
        with self.lock:
            self.dropped.append((item, stage))

    def error(self, error, item, stage):
        with self.lock:
            self.errors.append((str(error), item, stage))


def test_items_leave_in_the_order_they_came_in_through_every_stage():
    record = Recorder()
    seen = []
    gate = threading.Event()

    def slow_middle(item):
        gate.wait(5)
        seen.append(item)
        return item

    chain = StageChain([lambda item: item, slow_middle, lambda item: record.finish(item)], record.drop, record.error)
    try:
        for item in range(20):
            chain.put(item)
        chain.put("last")
        gate.set()
        assert record.done.wait(5)
    finally:
        chain.close()
    numbers = [item for item in record.items if item != "last"]
    assert numbers == sorted(numbers)
    assert record.items[-1] == "last"
    # whatever did not come out was dropped, never lost or duplicated
    assert sorted(numbers + [item for item, _ in record.dropped]) == list(range(20))
    assert record.errors == []


def test_a_busy_stage_sees_only_the_newest_item_and_the_replaced_one_is_handed_back():
    record = Recorder()
    busy = threading.Event()
    release = threading.Event()

    def held(item):
        busy.set()
        release.wait(5)
        record.finish(item)

    chain = StageChain([held], record.drop, record.error)
    try:
        chain.put("first")
        assert busy.wait(5)          # the stage holds "first"
        assert chain.put("second") is False
        assert chain.put("last") is True   # "second" waited in the mailbox and was replaced
        release.set()
        assert record.done.wait(5)
    finally:
        chain.close()
    assert record.items == ["first", "last"]
    assert record.dropped == [("second", 0)]


def test_an_item_waiting_between_stages_is_dropped_with_its_stage_index():
    record = Recorder()
    entered = threading.Event()
    release = threading.Event()

    def held(item):
        entered.set()
        release.wait(5)
        record.finish(item)

    chain = StageChain([lambda item: item, held], record.drop, record.error)
    try:
        chain.put("a")
        assert entered.wait(5)  # stage 1 holds "a"
        waiting = []
        for item in ("b", "c"):
            chain.put(item)
            # wait until stage 0 has passed the item on to stage 1's mailbox
            for _ in range(500):
                if chain._boxes[0]._item is None and chain._boxes[1]._item == item:
                    break
                threading.Event().wait(0.01)
            waiting.append(chain._boxes[1]._item)
        assert waiting == ["b", "c"]
        chain.put("last")
        release.set()
        assert record.done.wait(5)
    finally:
        chain.close()
    assert record.items[0] == "a" and record.items[-1] == "last"
    assert ("b", 1) in record.dropped


def test_an_error_ends_that_item_only():
    record = Recorder()

    def picky(item):
        if item == 1:
            raise ValueError("bad frame")
        return item

    chain = StageChain([picky, lambda item: record.finish(item)], record.drop, record.error)
    try:
        for item in (0, 1, "last"):
            chain.put(item)
            if item == 1:
                for _ in range(500):
                    if record.errors:
                        break
                    threading.Event().wait(0.01)
        assert record.done.wait(5)
    finally:
        chain.close()
    assert record.errors == [("bad frame", 1, 0)]
    assert 1 not in record.items and record.items[-1] == "last"


def test_a_stage_returning_none_ends_the_item_there():
    record = Recorder()
    chain = StageChain([lambda item: None if item == "skip" else item, lambda item: record.finish(item)],
                       record.drop, record.error)
    try:
        chain.put("skip")
        for _ in range(500):
            if chain._boxes[0]._item is None:
                break
            threading.Event().wait(0.01)
        chain.put("last")
        assert record.done.wait(5)
    finally:
        chain.close()
    assert "skip" not in record.items


def test_close_finishes_the_item_in_hand_and_stops_every_thread():
    started = threading.Event()
    release = threading.Event()
    finished = []

    def held(item):
        started.set()
        release.wait(5)
        finished.append(item)
        return item

    chain = StageChain([held, lambda item: item])
    chain.put("x")
    assert started.wait(5)
    closer = threading.Thread(target=chain.close)
    closer.start()
    release.set()
    closer.join(10)
    assert not closer.is_alive()
    assert finished == ["x"]
    assert chain.alive == [False, False]
    assert chain.put("after") is False  # a closed chain takes nothing further


def test_buffer_pool_lends_each_array_once():
    pool = BufferPool(lambda: np.zeros(4), count=2)
    first, second = pool.take(), pool.take()
    assert first is not second
    assert pool.take(timeout=0.01) is None
    pool.give(first)
    pool.give(first)  # twice: still lent out once
    assert pool.free == 1
    assert pool.take() is first
    waiter = []
    thread = threading.Thread(target=lambda: waiter.append(pool.take(timeout=5)))
    thread.start()
    pool.give(second)
    thread.join(5)
    assert waiter == [second]
