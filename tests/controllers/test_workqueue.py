"""Tests for llorch.controllers.workqueue.WorkQueue."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llorch.controllers.workqueue import WorkQueue
from tests.controllers.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wq(clock: FakeClock) -> WorkQueue:
    return WorkQueue(clock=clock)


def drain(wq: WorkQueue) -> list[str]:
    """Hand out and finish every ready key (including ones re-queued by done)."""
    seen: list[str] = []
    while (key := wq.get(timeout=0)) is not None:
        seen.append(key)
        wq.done(key)
    return seen


def start_getter(wq: WorkQueue, timeout: float | None) -> tuple[threading.Thread, list[str | None]]:
    result: list[str | None] = []
    thread = threading.Thread(target=lambda: result.append(wq.get(timeout=timeout)), daemon=True)
    thread.start()
    return thread, result


# -- de-duplication and ordering --------------------------------------------------------------


def test_key_added_many_times_is_handed_out_once(wq: WorkQueue) -> None:
    for _ in range(5):
        wq.add("a")
    assert len(wq) == 1
    assert wq.get(timeout=0) == "a"
    assert wq.get(timeout=0) is None
    wq.done("a")
    assert wq.get(timeout=0) is None


def test_distinct_keys_come_out_in_fifo_order(wq: WorkQueue) -> None:
    for key in ["c", "a", "b", "a", "c"]:
        wq.add(key)
    assert drain(wq) == ["c", "a", "b"]


def test_get_on_empty_queue_times_out() -> None:
    wq = WorkQueue()
    start = time.monotonic()
    assert wq.get(timeout=0.02) is None
    assert 0.015 <= time.monotonic() - start < 1.0


# -- one worker per key / dirty re-queue ------------------------------------------------------


def test_key_readded_while_processing_is_requeued_once_on_done(wq: WorkQueue) -> None:
    wq.add("a")
    assert wq.get(timeout=0) == "a"
    wq.add("a")
    wq.add("a")
    # Not handed to a second worker while the first still has it.
    assert len(wq) == 0
    assert wq.get(timeout=0) is None
    wq.done("a")
    assert len(wq) == 1
    assert wq.get(timeout=0) == "a"
    wq.done("a")
    assert wq.get(timeout=0) is None


def test_done_without_readd_does_not_requeue(wq: WorkQueue) -> None:
    wq.add("a")
    assert wq.get(timeout=0) == "a"
    wq.done("a")
    assert len(wq) == 0
    assert wq.get(timeout=0) is None


def test_done_for_unknown_key_is_a_noop(wq: WorkQueue) -> None:
    wq.done("never-added")
    wq.add("a")
    wq.done("a")  # queued but not processing: must not disturb the queued key
    assert drain(wq) == ["a"]


def test_other_keys_flow_while_one_is_processing(wq: WorkQueue) -> None:
    wq.add("a")
    assert wq.get(timeout=0) == "a"
    wq.add("a")
    wq.add("b")
    assert wq.get(timeout=0) == "b"
    wq.done("b")
    assert wq.get(timeout=0) is None
    wq.done("a")
    assert wq.get(timeout=0) == "a"


def test_two_workers_never_process_the_same_key_at_once() -> None:
    wq = WorkQueue()
    keys = [f"k{i}" for i in range(4)]
    in_flight: set[str] = set()
    handed_out: Counter[str] = Counter()
    violations: list[str] = []
    guard = threading.Lock()
    stop_producing = threading.Event()

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        while (key := wq.get(timeout=1.0)) is not None:
            with guard:
                if key in in_flight:
                    violations.append(key)
                in_flight.add(key)
                handed_out[key] += 1
            # Re-add sometimes while still processing, to exercise the dirty path.
            if rng.random() < 0.3:
                wq.add(key)
            time.sleep(0)  # yield so the other worker runs while this key is in flight
            with guard:
                in_flight.discard(key)
            wq.done(key)

    def producer() -> None:
        rng = random.Random(0)
        for _ in range(2000):
            wq.add(rng.choice(keys))
            if rng.random() < 0.05:
                time.sleep(0)
        stop_producing.set()

    workers = [threading.Thread(target=worker, args=(seed,), daemon=True) for seed in (1, 2)]
    prod = threading.Thread(target=producer, daemon=True)
    for t in [*workers, prod]:
        t.start()
    prod.join(timeout=30)
    assert stop_producing.is_set()

    # Wait for the queue to settle, then stop the workers.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with guard:
            idle = not in_flight
        if idle and len(wq) == 0:
            time.sleep(0.01)
            with guard:
                if not in_flight and len(wq) == 0:
                    break
        time.sleep(0.001)
    wq.shutdown()
    for t in workers:
        t.join(timeout=5)
        assert not t.is_alive()

    assert violations == []
    assert set(handed_out) == set(keys)


# -- delays ------------------------------------------------------------------------------------


def test_add_after_hands_out_keys_in_deadline_order(wq: WorkQueue, clock: FakeClock) -> None:
    wq.add_after("late", 2.0)
    wq.add_after("early", 1.0)
    assert len(wq) == 0
    assert wq.get(timeout=0) is None
    clock.advance(0.999)
    assert wq.get(timeout=0) is None
    clock.advance(0.001)
    assert len(wq) == 1
    assert wq.get(timeout=0) == "early"
    assert wq.get(timeout=0) is None
    clock.advance(1.0)
    assert wq.get(timeout=0) == "late"


def test_add_after_same_deadline_keeps_insertion_order(wq: WorkQueue, clock: FakeClock) -> None:
    for key in ["x", "y", "z"]:
        wq.add_after(key, 1.0)
    clock.advance(1.0)
    assert drain(wq) == ["x", "y", "z"]


def test_earlier_deadline_wins_when_it_comes_second(wq: WorkQueue, clock: FakeClock) -> None:
    wq.add_after("a", 5.0)
    wq.add_after("a", 1.0)
    clock.advance(1.0)
    assert drain(wq) == ["a"]
    # The superseded 5 s entry must not hand the key out again.
    clock.advance(10.0)
    assert drain(wq) == []


def test_earlier_deadline_wins_when_it_comes_first(wq: WorkQueue, clock: FakeClock) -> None:
    wq.add_after("a", 1.0)
    wq.add_after("a", 5.0)
    clock.advance(1.0)
    assert drain(wq) == ["a"]
    clock.advance(10.0)
    assert drain(wq) == []


def test_add_overrides_pending_delay(wq: WorkQueue, clock: FakeClock) -> None:
    wq.add_after("a", 5.0)
    wq.add("a")
    assert len(wq) == 1
    assert drain(wq) == ["a"]
    clock.advance(10.0)
    assert drain(wq) == []


def test_add_after_again_after_add_is_honoured(wq: WorkQueue, clock: FakeClock) -> None:
    wq.add_after("a", 5.0)
    wq.add("a")
    assert drain(wq) == ["a"]
    wq.add_after("a", 5.0)
    clock.advance(4.0)
    assert drain(wq) == []
    clock.advance(1.0)
    assert drain(wq) == ["a"]


def test_add_after_non_positive_delay_is_immediate(wq: WorkQueue) -> None:
    wq.add_after("a", 0.0)
    wq.add_after("b", -1.0)
    assert len(wq) == 2
    assert drain(wq) == ["a", "b"]


def test_delay_maturing_while_processing_marks_dirty(wq: WorkQueue, clock: FakeClock) -> None:
    wq.add("a")
    assert wq.get(timeout=0) == "a"
    wq.add_after("a", 1.0)  # e.g. the reconciler asked for requeue_after
    clock.advance(1.0)
    assert wq.get(timeout=0) is None
    wq.done("a")
    assert drain(wq) == ["a"]


def test_matured_delay_deduplicates_with_queued_key(wq: WorkQueue, clock: FakeClock) -> None:
    wq.add("a")
    wq.add_after("a", 1.0)
    clock.advance(1.0)
    assert len(wq) == 1
    assert drain(wq) == ["a"]


def test_len_does_not_count_delayed_keys(wq: WorkQueue) -> None:
    wq.add("ready")
    wq.add_after("later", 60.0)
    assert len(wq) == 1


def test_many_superseded_deadlines_do_not_leak(wq: WorkQueue, clock: FakeClock) -> None:
    for i in range(1000):
        wq.add_after("a", 1000.0 - i)
        wq.add("b")  # b is not delayed, so this only churns the ready queue
    for _ in range(1000):
        wq.add_after("c", 5.0)
        wq.add("c")
    assert len(wq._heap) < 100
    clock.advance(1.0)
    assert sorted(drain(wq)) == ["a", "b", "c"]
    clock.advance(1000.0)
    assert drain(wq) == []


def test_get_sleeps_until_deadline_instead_of_polling() -> None:
    class CountingCondition(threading.Condition):
        waits = 0

        def wait(self, timeout: float | None = None) -> bool:
            CountingCondition.waits += 1
            return super().wait(timeout)

    wq = WorkQueue()
    wq._cond = CountingCondition(threading.Lock())
    wq.add_after("a", 0.05)
    start = time.monotonic()
    assert wq.get(timeout=2.0) == "a"
    elapsed = time.monotonic() - start
    assert 0.04 <= elapsed < 1.0
    # One sleep until the deadline (plus slack for a spurious or early wake-up), not a busy loop.
    assert CountingCondition.waits <= 3


def test_blocked_get_wakes_for_a_later_added_delay() -> None:
    wq = WorkQueue()
    thread, result = start_getter(wq, timeout=2.0)
    time.sleep(0.01)  # let the getter block with nothing scheduled
    start = time.monotonic()
    wq.add_after("a", 0.02)
    thread.join(timeout=3.0)
    assert result == ["a"]
    assert time.monotonic() - start < 1.0


def test_blocked_get_wakes_for_an_earlier_delay() -> None:
    wq = WorkQueue()
    wq.add_after("slow", 30.0)
    thread, result = start_getter(wq, timeout=2.0)
    time.sleep(0.01)  # the getter is now sleeping until the 30 s deadline (bounded by its timeout)
    start = time.monotonic()
    wq.add_after("fast", 0.02)
    thread.join(timeout=3.0)
    assert result == ["fast"]
    assert time.monotonic() - start < 1.0


def test_add_after_informs_every_waiter_not_just_one() -> None:
    # The first waiter gives up soon; if only it heard about the new deadline, the second waiter
    # would sleep through it until its own timeout.
    wq = WorkQueue()
    short, short_result = start_getter(wq, timeout=0.03)
    time.sleep(0.005)
    long, long_result = start_getter(wq, timeout=3.0)
    time.sleep(0.005)
    start = time.monotonic()
    wq.add_after("a", 0.08)
    short.join(timeout=2.0)
    long.join(timeout=4.0)
    assert short_result == [None]
    assert long_result == ["a"]
    assert time.monotonic() - start < 1.5


def test_blocked_get_wakes_for_add() -> None:
    wq = WorkQueue()
    thread, result = start_getter(wq, timeout=None)
    time.sleep(0.01)
    wq.add("a")
    thread.join(timeout=2.0)
    assert result == ["a"]


def test_several_workers_share_keys_maturing_together() -> None:
    wq = WorkQueue()
    getters = [start_getter(wq, timeout=2.0) for _ in range(3)]
    time.sleep(0.01)
    for key in ["a", "b", "c"]:
        wq.add_after(key, 0.02)
    for thread, _ in getters:
        thread.join(timeout=3.0)
    assert sorted(r for _, result in getters for r in result if r is not None) == ["a", "b", "c"]


# -- backoff -------------------------------------------------------------------------------------


def test_backoff_doubles_and_is_capped(clock: FakeClock) -> None:
    wq = WorkQueue(backoff_base=0.5, backoff_max=5.0, clock=clock)
    delays = [wq.add_rate_limited("a") for _ in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert wq.failures("a") == 6


def test_default_backoff_sequence(wq: WorkQueue) -> None:
    delays = [wq.add_rate_limited("a") for _ in range(9)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


def test_backoff_is_per_key_and_forget_resets(wq: WorkQueue) -> None:
    assert wq.failures("a") == 0
    wq.add_rate_limited("a")
    wq.add_rate_limited("a")
    assert wq.add_rate_limited("b") == 0.5
    assert wq.failures("a") == 2
    assert wq.failures("b") == 1
    wq.forget("a")
    assert wq.failures("a") == 0
    assert wq.failures("b") == 1
    assert wq.add_rate_limited("a") == 0.5
    wq.forget("never-seen")  # no error


def test_backoff_survives_huge_failure_counts(wq: WorkQueue) -> None:
    for _ in range(3000):
        delay = wq.add_rate_limited("a")
    assert delay == 60.0


def test_rate_limited_key_is_handed_out_after_its_delay(wq: WorkQueue, clock: FakeClock) -> None:
    wq.add_rate_limited("a")
    wq.add_rate_limited("a")  # 1.0 s, but the earlier 0.5 s deadline wins
    assert wq.get(timeout=0) is None
    clock.advance(0.5)
    assert drain(wq) == ["a"]
    clock.advance(10.0)
    assert drain(wq) == []


def test_invalid_backoff_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        WorkQueue(backoff_base=0)
    with pytest.raises(ValueError):
        WorkQueue(backoff_base=2.0, backoff_max=1.0)


# -- shutdown ------------------------------------------------------------------------------------


def test_shutdown_wakes_every_waiter_promptly() -> None:
    wq = WorkQueue()
    wq.add_after("far", 30.0)
    getters = [start_getter(wq, timeout=None) for _ in range(2)] + [start_getter(wq, timeout=30.0)]
    time.sleep(0.02)
    start = time.monotonic()
    wq.shutdown()
    for thread, result in getters:
        thread.join(timeout=2.0)
        assert not thread.is_alive()
        assert result == [None]
    assert time.monotonic() - start < 1.0


def test_after_shutdown_get_returns_none_and_adds_are_ignored(wq: WorkQueue, clock: FakeClock) -> None:
    wq.add("queued")
    wq.shutdown()
    assert wq.get() is None
    assert wq.get(timeout=5.0) is None
    wq.add("b")
    wq.add_after("c", 1.0)
    wq.add_rate_limited("d")
    clock.advance(100.0)
    assert wq.get(timeout=0) is None


# -- resync --------------------------------------------------------------------------------------


def test_resync_readds_every_key_once(wq: WorkQueue) -> None:
    keys = ["a", "b", "c", "d"]
    wq.add("a")
    wq.add("b")
    wq.add("c")
    assert wq.get(timeout=0) == "a"  # "a" is being reconciled when the resync fires

    for key in keys:  # what the manager's periodic resync does
        wq.add(key)

    # Already-queued keys are not duplicated; the in-flight key is held back.
    assert len(wq) == 3
    processed = drain(wq)
    assert processed == ["b", "c", "d"]

    wq.done("a")
    assert drain(wq) == ["a"]
    assert drain(wq) == []


# -- property ------------------------------------------------------------------------------------

_KEYS = st.sampled_from(["a", "b", "c", "d"])
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), _KEYS),
        st.tuples(st.just("get"), st.just("")),
        st.tuples(st.just("done"), _KEYS),
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(ops=_OPS)
def test_property_add_get_done(ops: list[tuple[str, str]]) -> None:
    """Never hand out a key in processing, never hand out a key nobody (re-)added, lose no add.

    ``pending`` holds keys added since they were last handed out: a hand-out must satisfy one of
    them, and after the run is drained every one must have been satisfied.
    """
    wq = WorkQueue()
    processing: set[str] = set()
    pending: set[str] = set()

    def take(key: str | None) -> None:
        if key is None:
            return
        assert key not in processing
        assert key in pending
        pending.discard(key)
        processing.add(key)

    for op, key in ops:
        if op == "add":
            wq.add(key)
            pending.add(key)
        elif op == "get":
            take(wq.get(timeout=0))
        else:
            wq.done(key)
            processing.discard(key)
        # Ready keys are exactly the pending ones not currently held back by a worker.
        assert len(wq) == len(pending - processing)

    # Drain: finish whatever is in flight and keep taking until nothing is left.
    while True:
        for key in sorted(processing):
            wq.done(key)
        processing.clear()
        handed = wq.get(timeout=0)
        if handed is None:
            break
        take(handed)
    assert pending == set()
