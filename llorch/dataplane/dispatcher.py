"""The dispatcher: hands queued tasks to free slots and runs each task's engine stream."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

import httpx

from llorch.dataplane import spans
from llorch.dataplane.admission import AdmissionQueue
from llorch.dataplane.errors import DataplaneError
from llorch.dataplane.estimates import DecodeSample, ServiceTimes
from llorch.dataplane.logcontext import correlation_id
from llorch.dataplane.metrics import Metrics
from llorch.dataplane.tasks import Task
from llorch.resources.errors import ErrorCode, LlorchError
from llorch.runtime import tracing
from llorch.runtime.engines.base import CompletionStream, Finished, StreamEvent, Token
from llorch.runtime.engines.relay import RelayEvent, RelayRequest, RelayStream
from llorch.runtime.registry import Lease, Replica, ReplicaRegistry

log = logging.getLogger("llorch.dataplane")

# How long a canceled task's slot waits for the engine to confirm it stopped decoding.
SETTLE_SECONDS = 30.0
# A metrics frame at most this often per stream: informative without flooding the client.
METRICS_EVERY_SECONDS = 1.0
# The dispatcher looks at its queues at least this often, even when nothing woke it.
TICK_SECONDS = 1.0


class Dispatcher:
    def __init__(
        self,
        *,
        queue: AdmissionQueue,
        registry: ReplicaRegistry,
        service_times: ServiceTimes,
        on_finished: Callable[[Task], None],
        metrics: Metrics | None = None,
        on_tick: Callable[[], float] | None = None,
    ) -> None:
        self._queue = queue
        self._prometheus = metrics
        self._registry = registry
        self._service_times = service_times
        self._on_finished = on_finished
        # Runs before each pass over the queues; answers how long the loop may sleep.
        self._on_tick = on_tick or (lambda: TICK_SECONDS)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
        self._http = httpx.Client(
            # An idle connection is dropped well before llama-server's own keep-alive timeout
            # (5 s, httpx's default expiry too): reused at the moment the engine closes it, a
            # request would fail with "Server disconnected without sending a response".
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64, keepalive_expiry=2.0),
            # Engine requests carry the task's trace context (W3C traceparent) on to the engine.
            event_hooks=tracing.httpx_hooks(),
        )
        # Whole (non-streamed) relayed requests, each on a connection of its own: until the engine
        # answers there is no response to drop, only the socket (llorch.runtime.engines.relay).
        self._whole_http = httpx.Client(
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
            event_hooks=tracing.httpx_hooks(),
        )
        self._running: dict[threading.Thread, Task] = {}
        self._running_lock = threading.Lock()

    def start(self) -> None:
        self._registry.subscribe(self.wake)
        self._registry.on_evict(self._evicted)
        self._thread.start()

    def _evicted(self, replica_id: str, error: LlorchError) -> None:
        """A replica is being stopped under running tasks: end them with the reason, then the stream."""
        with self._running_lock:
            tasks = [t for t in self._running.values() if t.replica_id == replica_id]
        for task in tasks:
            with task.changed:
                stream = task.stream
                task.fail("failed", error)
            if stream is not None:
                stream.close()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._running_lock:
            running = list(self._running)
        for thread in running:
            thread.join(timeout=5)
        self._http.close()
        self._whole_http.close()

    def wake(self) -> None:
        self._wake.set()

    def running_on(self, replica_id: str) -> list[Task]:
        with self._running_lock:
            return [t for t in self._running.values() if t.replica_id == replica_id and not t.finished]

    def running(self, pool: str) -> list[Task]:
        """The pool's tasks holding a slot now."""
        with self._running_lock:
            return [task for task in self._running.values() if task.pool == pool and not task.finished]

    def _loop(self) -> None:
        sleep = TICK_SECONDS
        while not self._stop.is_set():
            self._wake.wait(timeout=sleep)
            self._wake.clear()
            sleep = min(TICK_SECONDS, self._on_tick())
            self._end_stalled()
            for pool in self._queue.pools():
                self._fill(pool)

    def _end_stalled(self) -> None:
        """End tasks whose engine went silent mid-stream: DECODE_TIMEOUT for the task (retriable:
        another replica may do), and the replica is reported hung so its controller restarts it."""
        now = time.monotonic()
        with self._running_lock:
            running = list(self._running.values())
        for task in running:
            last, limit = task.last_token_at, task.decode_timeout
            if last is None or limit is None or now - last < limit or task.replica_id is None:
                continue
            why = f"sent nothing for {limit:g}s mid-stream"
            with task.changed:
                if task.finished:
                    continue
                stream = task.stream
                # The replica first, so that no task lands on it while this one ends.
                self._registry.mark_unhealthy(task.replica_id, why)
                task.fail(
                    "failed", DataplaneError(ErrorCode.DECODE_TIMEOUT, f"replica {task.replica_id} {why}")
                )
            if stream is not None:
                stream.close()
            log.warning(
                "task %s: replica %s %s; ending it with DECODE_TIMEOUT", task.id, task.replica_id, why
            )

    def _fill(self, pool: str) -> None:
        """Start queued tasks of `pool` while it has free slots."""
        while (task := self._queue.peek(pool)) is not None:
            lease = self._registry.acquire(pool, exclusive=task.strict)
            if lease is None:
                return
            if not self._queue.pop(pool, task):
                self._registry.release(lease)
                continue
            thread = threading.Thread(
                target=self._run, args=(task, lease), name=f"task-{task.id[:8]}", daemon=True
            )
            with self._running_lock:
                self._running[thread] = task
            thread.start()

    def _run(self, task: Task, lease: Lease) -> None:
        correlation_id.set(task.correlation_id)
        started = time.monotonic()
        sample: DecodeSample | None = None
        attributes = spans.task_attributes(task, lease.replica)
        parent = task.trace_context
        tracing.start_span(
            "llorch.queue_wait", attributes, parent=parent, start_seconds=task.created_at
        ).end()
        dispatch = tracing.start_span("llorch.dispatch", attributes, parent=parent)
        token = tracing.attach(dispatch.context)
        try:
            with tracing.span("llorch.engine_request", attributes, kind="client") as engine:
                sample = self._stream(task, lease.replica, started)
                spans.stream_end(engine, task)
        except LlorchError as exc:
            task.fail("failed", exc)
        except Exception as exc:
            log.exception("task %s failed", task.id)
            task.fail("failed", DataplaneError(ErrorCode.INTERNAL, str(exc)))
        finally:
            if self._prometheus is not None:
                self._prometheus.ended(task)
            if task.state != "succeeded":
                self._settle(lease)
            self._registry.release(lease)
            log.info(
                "task %s %s on %s", task.id, task.state, lease.replica.id, extra={"fields": _log_fields(task)}
            )
            self._service_times.observe(
                task.pool, time.monotonic() - started, _tokens_out(task), sample=sample
            )
            self.wake()
            self._on_finished(task)
            with self._running_lock:
                self._running.pop(threading.current_thread(), None)
            spans.stream_end(dispatch, task)
            tracing.detach(token)
            dispatch.end()

    def _settle(self, lease: Lease) -> None:
        """Hold the slot until the engine says it stopped decoding.

        Some llama-server releases keep decoding after the client closed the connection
        (llama.cpp issues 11720 and 24496); handing that slot to the next task would run more
        sequences than the replica has slots. The engine's own count is the truth here.
        """
        replica = lease.replica
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            busy = replica.adapter.busy_slots(self._http, replica.upstream)
            if busy is None or busy <= self._registry.busy(replica.id) - lease.slots:
                return
            time.sleep(0.05)
        log.warning(
            "replica %s still decodes %ss after a task ended; releasing its slot", replica.id, SETTLE_SECONDS
        )

    def _open(self, task: Task, replica: Replica) -> Iterable[StreamEvent | RelayEvent] | None:
        """Mark the task running and hand it its engine stream; None if it ended meanwhile."""
        with task.changed:
            if task.finished:
                return None
            task.state, task.replica_id, task.started_at = "running", replica.id, time.time()
            request = task.request
            if isinstance(request, RelayRequest):
                client = self._http if request.stream else self._whole_http
                stream: RelayStream | CompletionStream = RelayStream(
                    client, replica.upstream, request, replica.engine
                )
            else:
                stream = replica.adapter.complete(self._http, replica.upstream, request)
            task.stream = stream
        return stream

    def _stream(self, task: Task, replica: Replica, started: float) -> DecodeSample | None:
        """Run the task on the engine; what its decode measured when it ended on its own."""
        stream = self._open(task, replica)
        if stream is None or task.stream is None:
            return None
        closer = task.stream
        queued_s = time.time() - task.created_at
        if task.slot_free_at_admission:
            # Promised a free slot: how long admitting and dispatching took is all it waited.
            self._service_times.observe_dispatch(task.pool, queued_s)
        task.emit(
            "started",
            {
                "queue_position": task.queue_position,
                "predicted_start_ms": task.predicted_start_ms,
                "queued_ms": int(queued_s * 1000),
                "replica": replica.id,
                "engine": replica.engine,
            },
        )
        tokens_out = (
            self._prometheus.started(task.pool, replica.id, replica.engine) if self._prometheus else None
        )
        index = 0
        first_token_at: float | None = None
        sharing = 1
        last_metrics = started
        token_limit = task.budget.token_limit()
        time_limit_s = None if task.budget.time_ms is None else task.budget.time_ms / 1000
        for event in stream:
            now = time.monotonic()
            if isinstance(event, Finished):
                task.finish("succeeded", "end", _end_frame(event, task.created_at, started, first_token_at))
                if tokens_out is not None and event.tokens_out > index:
                    tokens_out.inc(event.tokens_out - index)  # counted by the engine, not streamed
                task.tokens_out = event.tokens_out
                if first_token_at is None:
                    return None
                # The sequences sharing the replica, its own included, at its first token and
                # at its end: the concurrency its per-sequence rate was measured at.
                concurrency = round((sharing + self._registry.busy(replica.id)) / 2)
                return DecodeSample(
                    tokens=event.tokens_out,
                    decode_seconds=now - first_token_at,
                    concurrency=max(1, concurrency),
                    prompt_seconds=first_token_at - started,
                    max_tokens=task.request.max_tokens,
                    stopped=event.finish_reason == "stop",
                )
            if isinstance(event, Token):
                steps, emitted = 1, task.emit("token", {"t": event.text, "i": index})
            elif event.raw:
                # surrogateescape: whatever bytes the engine sent come back out the same.
                raw = event.raw.decode("utf-8", "surrogateescape")
                steps, emitted = event.tokens, task.emit("relay", {"raw": raw})
            else:
                continue  # all it held was a usage chunk the client did not ask for
            if not emitted:
                closer.close()
                return None
            if steps:
                if first_token_at is None:
                    first_token_at = now
                    sharing = self._registry.busy(replica.id)
                task.last_token_at = now
                index += steps
                task.tokens_out = index
                if tokens_out is not None:
                    tokens_out.inc(steps)
            if (token_limit is not None and index >= token_limit) or (
                time_limit_s is not None and now - started >= time_limit_s
            ):
                # The session's budget is spent mid-task: stop the engine and end cleanly.
                closer.close()
                budget_end = Finished(tokens_out=index, tokens_in=None, finish_reason="budget")
                task.finish(
                    "succeeded", "end", _end_frame(budget_end, task.created_at, started, first_token_at)
                )
                return None
            if first_token_at is not None and now - last_metrics >= METRICS_EVERY_SECONDS:
                last_metrics = now
                task.emit("metrics", self._metrics(task, index, first_token_at, now, started))
        # The stream stopped without a final event: it was closed, which only cancel does.
        task.fail("canceled", DataplaneError(ErrorCode.CANCELED, "task canceled"))
        return None

    def _metrics(
        self, task: Task, tokens: int, first_token_at: float, now: float, started: float
    ) -> dict[str, float | int | None]:
        decode = now - first_token_at
        return {
            "queue_depth": self._queue.depth(task.pool),
            "tokens_out": tokens,
            "tokens_per_second": round(tokens / decode, 2) if decode > 0 else 0.0,
            **task.budget.remaining(tokens, (now - started) * 1000),
        }


def _end_frame(
    event: Finished, admitted_at: float, started: float, first_token_at: float | None
) -> dict[str, float | int | str | None]:
    """Times as the client lives them: TTFT counts from admission, queueing included."""
    now = time.monotonic()
    first = first_token_at or now
    queued_s = max(0.0, time.time() - admitted_at - (now - started))
    return {
        "tokens_out": event.tokens_out,
        "tokens_in": event.tokens_in,
        "queue_ms": round(queued_s * 1000, 2),
        "ttft_ms": round((queued_s + first - started) * 1000, 2),
        "decode_ms": round((now - first) * 1000, 2),
        "finish_reason": event.finish_reason,
    }


def _log_fields(task: Task) -> dict[str, object]:
    """The contract's log fields for a task (JSON lines carry them as keys)."""
    end = task.frames[-1].data if task.frames else {}
    return {
        "job_id": task.id,
        "session_id": task.session_id,
        "pool_id": task.pool,
        "replica_id": task.replica_id,
        "queue_position": task.queue_position,
        "predicted_start_ms": task.predicted_start_ms,
        "tokens_in": end.get("tokens_in"),
        "tokens_out": end.get("tokens_out"),
        "decode_ms": end.get("decode_ms"),
        "finish_reason": end.get("finish_reason") or end.get("code"),
    }


def _tokens_out(task: Task) -> int:
    """Tokens a task that ended normally produced; 0 otherwise (its time says nothing per token)."""
    if task.state != "succeeded" or not task.frames:
        return 0
    return int(task.frames[-1].data.get("tokens_out") or 0)
