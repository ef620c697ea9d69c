"""The manager's handling of reconcile errors, driven one key at a time on a fake clock: a failing
reconcile is retried with per-key exponential backoff, reset by a success; a non-retriable one is
not retried until its object changes (like controller-runtime's TerminalError)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from llorch.controllers.manager import Manager, Result
from llorch.controllers.workqueue import WorkQueue
from llorch.resources.errors import ErrorCode, LlorchError
from tests.controllers.clock import FakeClock


@dataclass
class Flaky:
    kind = "Pool"
    failures: list[Exception] = field(default_factory=list)
    calls: int = 0

    def reconcile(self, name: str) -> Result:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return Result()

    def known_names(self) -> Iterable[str]:
        return ()

    def dependents(self, key: str) -> Iterable[str]:
        return ()


def setup(failures: list[Exception]) -> tuple[Manager, Flaky, FakeClock]:
    clock = FakeClock()
    controller = Flaky(failures)
    queue = WorkQueue(backoff_base=0.5, backoff_max=4.0, clock=clock)
    return Manager([controller], queue, desired_keys=["Pool/p"]), controller, clock


def test_a_failing_reconcile_is_retried_with_growing_backoff_reset_by_success() -> None:
    manager, controller, clock = setup([RuntimeError("boom")] * 5)
    manager.enqueue("Pool/p")
    assert manager.process_next(timeout=0) == "Pool/p"
    waits = []
    while controller.calls < 6:
        waited = 0.0
        while manager.process_next(timeout=0) is None:
            clock.advance(0.25)
            waited += 0.25
        waits.append(waited)
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0], "doubling per failure, capped at the maximum"
    assert controller.calls == 6
    manager.enqueue("Pool/p")
    manager.process_next(timeout=0)
    assert controller.calls == 7


def test_a_retriable_llorch_error_is_retried_too() -> None:
    manager, controller, clock = setup([LlorchError(ErrorCode.WORKER_RESET, "engine went away")])
    manager.enqueue("Pool/p")
    manager.process_next(timeout=0)
    assert manager.process_next(timeout=0) is None
    clock.advance(0.5)
    assert manager.process_next(timeout=0) == "Pool/p" and controller.calls == 2


def test_a_terminal_error_waits_for_a_change_not_the_resync() -> None:
    manager, controller, clock = setup([LlorchError(ErrorCode.INVALID_PARAMS, "bad spec", retriable=False)])
    manager.enqueue("Pool/p")
    manager.process_next(timeout=0)
    clock.advance(3600)
    assert manager.process_next(timeout=0) is None, "not retried"
    manager.enqueue_all()
    assert manager.process_next(timeout=0) is None, "the resync leaves it be"
    manager.changed(["Pool/p"])
    assert manager.process_next(timeout=0) == "Pool/p" and controller.calls == 2
