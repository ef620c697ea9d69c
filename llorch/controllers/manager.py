"""Runs controllers: workers pull keys from the queue, reconcile, requeue; a periodic resync."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from llorch.controllers.workqueue import WorkQueue
from llorch.resources.errors import LlorchError
from llorch.runtime import tracing

log = logging.getLogger("llorch.controllers")


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing (wait for a change or the resync) or a later look."""

    requeue_after: float | None = None


class Controller(Protocol):
    kind: str

    def reconcile(self, name: str) -> Result: ...

    def known_names(self) -> Iterable[str]:
        """Names this controller still acts on without a manifest (e.g. replicas left to stop)."""
        ...

    def dependents(self, key: str) -> Iterable[str]:
        """Keys of this controller's kind to reconcile when object `key` (of any kind) changed."""
        ...


class ReconcileMetrics(Protocol):
    def reconciled(self, controller: str, seconds: float, result: str) -> None:
        """One reconcile of `controller` took `seconds`; result success|error|requeue_after."""
        ...


class _Unmeasured:
    def reconciled(self, controller: str, seconds: float, result: str) -> None:
        pass


class Manager:
    def __init__(
        self,
        controllers: Iterable[Controller],
        queue: WorkQueue,
        *,
        desired_keys: Iterable[str] | None = None,
        resync_seconds: float = 30.0,
        workers: int = 2,
        metrics: ReconcileMetrics | None = None,
    ) -> None:
        self._metrics = metrics if metrics is not None else _Unmeasured()
        self._controllers = {c.kind: c for c in controllers}
        self._queue = queue
        self._resync_seconds = resync_seconds
        self._workers = workers
        self._desired_keys: Iterable[str] = desired_keys or ()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Keys whose last reconcile failed with a non-retriable error: the resync leaves them be.
        self._terminal: set[str] = set()
        self._lock = threading.Lock()

    def set_desired_keys(self, keys: Iterable[str]) -> None:
        self._desired_keys = keys

    def enqueue(self, key: str) -> None:
        self._queue.add(key)

    def changed(self, keys: Iterable[str]) -> None:
        """Objects changed: reconcile them and whatever depends on them (a Pool on its Model)."""
        for key in keys:
            with self._lock:
                self._terminal.discard(key)
            self._queue.add(key)
            for controller in self._controllers.values():
                for dependent in controller.dependents(key):
                    self._queue.add(dependent)

    def enqueue_all(self) -> None:
        keys = set(self._desired_keys)
        for kind, controller in self._controllers.items():
            keys.update(f"{kind}/{name}" for name in controller.known_names())
        with self._lock:
            keys -= self._terminal
        for key in sorted(keys):
            if key.split("/", 1)[0] in self._controllers:
                self._queue.add(key)

    def start(self) -> None:
        for index in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"reconcile-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        resync = threading.Thread(target=self._resync, name="resync", daemon=True)
        resync.start()
        self._threads.append(resync)
        self.enqueue_all()

    def stop(self) -> None:
        self._stop.set()
        self._queue.shutdown()
        for thread in self._threads:
            thread.join(timeout=30)

    def _resync(self) -> None:
        # Level-triggered: every key is looked at again now and then, so drift heals without events.
        while not self._stop.wait(self._resync_seconds):
            self.enqueue_all()

    def _work(self) -> None:
        while not self._stop.is_set():
            self.process_next(timeout=1.0)

    def process_next(self, timeout: float | None) -> str | None:
        """Reconcile the next ready key, waiting up to `timeout` for one; the key, or None."""
        key = self._queue.get(timeout=timeout)
        if key is None:
            return None
        try:
            self._reconcile(key)
        finally:
            self._queue.done(key)
        return key

    def _reconcile(self, key: str) -> None:
        kind, name = key.split("/", 1)
        controller = self._controllers.get(kind)
        if controller is None:
            return
        started = time.monotonic()
        attributes = {
            tracing.CONTROLLER: kind,
            tracing.KEY: key,
            tracing.POOL: name if kind == "Pool" else None,
        }
        # Each reconcile is a trace of its own: what woke it (a file, a resync) is not a request.
        with tracing.span(f"reconcile {kind}", attributes, parent=tracing.ROOT) as span:
            outcome = self._run(controller, key, name, span)
        self._metrics.reconciled(kind, time.monotonic() - started, outcome)

    def _run(self, controller: Controller, key: str, name: str, span: tracing.SpanHandle) -> str:
        """Reconcile once and requeue as the result asks; success|error|requeue_after."""
        try:
            result = controller.reconcile(name)
        except LlorchError as exc:
            span.fail(f"{exc.code}: {exc.message}")
            if exc.retriable:
                delay = self._queue.add_rate_limited(key)
                log.warning("reconcile %s failed: %s; retrying in %.1fs", key, exc.message, delay)
            else:
                # Like controller-runtime's TerminalError: trying again cannot help, only a change can.
                self._queue.forget(key)
                with self._lock:
                    self._terminal.add(key)
                log.error("reconcile %s failed for good: %s; waiting for a change", key, exc.message)
            return "error"
        except Exception as exc:
            span.fail(f"{type(exc).__name__}: {exc}")
            delay = self._queue.add_rate_limited(key)
            log.exception("reconcile %s failed; retrying in %.1fs", key, delay)
            return "error"
        with self._lock:
            self._terminal.discard(key)
        self._queue.forget(key)
        if result.requeue_after is None:
            return "success"
        self._queue.add_after(key, result.requeue_after)
        return "requeue_after"
