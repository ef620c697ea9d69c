"""Task admission and lookup: the data plane's front, called by the API."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llorch.dataplane.admission import AdmissionQueue, QueueFull
from llorch.dataplane.auditing import audits_refusals
from llorch.dataplane.dispatcher import TICK_SECONDS, Dispatcher
from llorch.dataplane.errors import DataplaneError, TaskNotFound
from llorch.dataplane.estimates import ServiceTimes
from llorch.dataplane.eta import PoolNow, predict_start
from llorch.dataplane.metrics import Metrics, counts_admission
from llorch.dataplane.policies import policy_for, rule_label
from llorch.dataplane.routing import Candidate, Want, choose
from llorch.dataplane.sessions import SessionStore
from llorch.dataplane.spans import traces_admission
from llorch.dataplane.tasks import Budget, Task
from llorch.resources import Model, Pool
from llorch.resources.errors import ErrorCode
from llorch.runtime import tracing
from llorch.runtime.demand import Demand
from llorch.runtime.engines import adapter_for, engines_enforcing
from llorch.runtime.engines.base import CompletionRequest
from llorch.runtime.engines.relay import RelayRequest
from llorch.runtime.registry import ReplicaRegistry
from llorch.store.audit import AuditLog
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore

log = logging.getLogger("llorch.dataplane")

DEFAULT_QUEUE_CAPACITY = 64
DEFAULT_ACTIVATION_TIMEOUT_SECONDS = 300.0
# Spawn to Ready before any start of the pool was measured: a humble guess the first one replaces.
INITIAL_COLD_START_SECONDS = 5.0
# Finished tasks stay replayable (late SSE subscribers) for this long, at most this many.
KEEP_FINISHED_SECONDS = 600.0
KEEP_FINISHED_MAX = 10_000


@dataclass(frozen=True)
class Admitted:
    task: Task
    queue_position: int
    predicted_start_ms: int
    backoff_ms: int


@dataclass(frozen=True)
class Waiting:
    """A queued task as `llorchctl queue` shows it: its place and when it should start, now."""

    task: Task
    position: int
    predicted_start_ms: int


class TaskService:
    def __init__(
        self,
        *,
        store: ManifestStore,
        db: StateDB,
        registry: ReplicaRegistry,
        metrics: Metrics | None = None,
        on_demand: Callable[[str], None] | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        """`on_demand(pool)` hears that a task of `pool` waits for a slot: its controller may start
        a replica (an idle pool) or grow the pool."""
        self._store = store
        self._on_demand = on_demand or (lambda pool: None)
        # time.time() of each pool's latest admission or task end: how long it has been idle.
        self._activity: dict[str, float] = {}
        # Its own lock: tasks end (and are touched) while the admission lock is held.
        self._activity_lock = threading.Lock()
        self.metrics = metrics
        self.audit = audit
        self._db = db
        self._registry = registry
        self._queue = AdmissionQueue()
        self._service_times = ServiceTimes()
        self._tasks: OrderedDict[str, Task] = OrderedDict()
        # Queued tasks with a deadline, looked at on every dispatcher pass (a subset of _tasks).
        self._deadlines: dict[str, Task] = {}
        self.sessions = SessionStore(db)
        self._lock = threading.Lock()
        self.dispatcher = Dispatcher(
            queue=self._queue,
            registry=registry,
            service_times=self._service_times,
            on_finished=self._finished,
            metrics=metrics,
            on_tick=self._expire_waits,
        )
        if metrics is not None:
            metrics.watch(store=store, replicas=registry, queue_depths=self.queue_depths)

    def start(self) -> None:
        self.dispatcher.start()

    def stop(self) -> None:
        with self._lock:
            tasks = list(self._tasks.values())
        for task in tasks:
            self._cancel(
                task, DataplaneError(ErrorCode.WORKER_RESET, "llorchd is shutting down"), reason="shutdown"
            )
        self.dispatcher.stop()

    def resolve_pool(self, want: Want) -> Pool:
        """The pool the task goes to (see llorch.dataplane.routing for the rules)."""
        pools = {e.obj.metadata.name: e.obj for e in self._store.entries("Pool") if isinstance(e.obj, Pool)}
        return pools[choose([self._candidate(pool) for pool in pools.values()], want)]

    def _candidate(self, pool: Pool) -> Candidate:
        name = pool.metadata.name
        replicas = [r for r in self._registry.replicas(name) if not r.draining]
        return Candidate(
            name=name,
            model=pool.spec.model,
            engine=pool.spec.engine.value,
            context=self.context_limit(pool),
            serving=len(replicas),
            free_slots=sum(r.slots - r.busy for r in replicas),
            devices=frozenset(d for r in replicas for d in r.devices),
        )

    def context_limit(self, pool: Pool) -> int:
        """Tokens one task may use on `pool`: its spec's context, or less where a serving replica's
        engine reports less (llama-server caps a slot at the model's trained context)."""
        reported = [
            r.context
            for r in self._registry.replicas(pool.metadata.name)
            if r.context is not None and not r.draining
        ]
        return min([pool.spec.context, *reported])

    @traces_admission
    @counts_admission
    @audits_refusals
    def submit(
        self,
        request: CompletionRequest | RelayRequest,
        *,
        pool: Pool,
        task_id: str | None = None,
        priority: str = "interactive",
        session_id: str | None = None,
        determinism: str | None = None,
        deadline_ms: int | None = None,
        expected_tokens: int | None = None,
    ) -> Admitted:
        name = pool.metadata.name
        self._check_model(pool)
        if isinstance(request, CompletionRequest):
            # A relayed body goes to the engine as the client wrote it; the engine answers it.
            _check_constraints(pool, request)
        if self._db.pool_runtime(name).draining:
            raise DataplaneError(
                ErrorCode.POOL_DRAINING,
                f"pool {name!r} is draining; `llorchctl resume pool/{name}` reopens it",
                retriable=True,
            )
        context = self.context_limit(pool)
        if request.max_tokens > context:
            raise DataplaneError(
                ErrorCode.INVALID_PARAMS,
                f"max_tokens {request.max_tokens} exceeds pool {name!r} context {context}",
            )
        # An autoscaled pool is never refused for having no replica: its first task starts one.
        waiting_allowed = pool.spec.autoscale is not None or self._registry.standby(name) is not None
        if self._registry.serving(name) == 0 and not waiting_allowed:
            raise DataplaneError(
                ErrorCode.POOL_UNREADY,
                f"pool {name!r} has no ready replica",
                retriable=True,
                retry_after_ms=1000,
            )
        strict = self._strict(pool, determinism, request)
        budget = self._session_budget(session_id, pool, request.correlation_id)
        task = Task(
            id=task_id or str(uuid.uuid4()),
            pool=name,
            request=request,
            priority=priority,
            session_id=session_id,
            correlation_id=request.correlation_id,
            budget=budget,
            strict=strict,
            deadline_at=None if deadline_ms is None else time.time() + deadline_ms / 1000,
            decode_timeout=pool.spec.decode_timeout_seconds,
            expected_tokens=expected_tokens,
            activation_timeout=self._activation_timeout(pool),
            on_finish=self._charge_session if session_id is not None else None,
            trace_context=tracing.current(),
        )
        capacity, overflow, label = self._admission(pool)
        # Capacity bounds the tasks that wait; a task a free slot takes at once never waits.
        room = capacity + self._free_slots(name)
        with self._lock:
            if task.id in self._tasks:
                raise DataplaneError(ErrorCode.INVALID_PARAMS, f"task_id {task.id!r} is already in use")
            if deadline_ms is not None:
                self._check_deadline(task, deadline_ms, expected_tokens)
            try:
                position = self._queue.push(task, room)
            except QueueFull as exc:
                position = self._overflow(task, room, overflow, label, exc)
            self._tasks[task.id] = task
            if task.deadline_at is not None:
                self._deadlines[task.id] = task
            self._touch(name, task.created_at)
            self._prune()
        task.queue_position = position
        wait = self._wait_seconds(pool, task)
        task.slot_free_at_admission = wait == 0
        task.predicted_start_ms = int((wait + self._service_times.dispatch_seconds(name)) * 1000)
        if not task.slot_free_at_admission:
            self._on_demand(name)
        self.dispatcher.wake()
        return Admitted(task, position, task.predicted_start_ms, task.predicted_start_ms)

    def get(self, task_id: str) -> Task:
        with self._lock:
            task = self._tasks.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def queue_position(self, task: Task) -> int | None:
        return self._queue.position(task)

    def cancel(self, task_id: str) -> None:
        """Idempotent; once it returns, the task's stream gets no more tokens."""
        try:
            task = self.get(task_id)
        except TaskNotFound:
            # It left memory (ended a while ago, or before a restart): nothing can still run.
            if self._db.get_task(task_id) is not None:
                return
            raise
        self._cancel(task, DataplaneError(ErrorCode.CANCELED, "task canceled"))

    def drain_queued(self, pool: str) -> int:
        """The pool is draining: tasks still waiting for a slot would never get one; end them now."""
        with self._lock:
            waiting = [t for t in self._tasks.values() if t.pool == pool and t.state == "queued"]
        for task in waiting:
            self._cancel(
                task, DataplaneError(ErrorCode.POOL_DRAINED, f"pool {pool!r} is draining"), reason="drain"
            )
        return len(waiting)

    def queue_depth(self, pool: str) -> int:
        return self._queue.depth(pool)

    def waiting(self, pool: str | None = None) -> list[Waiting]:
        """The queued tasks of `pool` (else of every pool), each pool's in the order they start,
        with the start predicted from what runs now, not what was predicted at admission."""
        found = []
        for name in [pool] if pool is not None else sorted(self._queue.pools()):
            known = self._pool(name)
            for position, task in enumerate(self._queue.waiting(name)):
                predicted = (
                    self._predicted_start_ms(known, task, ahead=position)
                    if known is not None
                    else task.predicted_start_ms
                )
                found.append(Waiting(task, position, predicted))
        return found

    def queue_depths(self) -> dict[tuple[str, str], int]:
        """Tasks waiting, per (pool, priority): the queue_depth gauge, read on scrape."""
        depths: dict[tuple[str, str], int] = {}
        with self._lock:
            for task in self._tasks.values():
                if task.state == "queued":
                    depths[task.pool, task.priority] = depths.get((task.pool, task.priority), 0) + 1
        return depths

    def abandon(self, task: Task) -> None:
        """Its stream's client went away: nobody reads the tokens, so free the slot."""
        self._cancel(
            task, DataplaneError(ErrorCode.CANCELED, "the client closed the stream"), reason="client"
        )

    def _cancel(self, task: Task, error: DataplaneError, *, reason: str = "cancel") -> None:
        """`reason` labels tasks_canceled_total: client|cancel|drain|shutdown|deadline."""
        self._queue.remove(task)
        with task.changed:
            stream = task.stream
            done = task.fail("canceled", error)
        if stream is not None:
            stream.close()
        if done and self.metrics is not None:
            self.metrics.canceled(task.pool, reason)
        if done and stream is None:
            self._finished(task)

    def _check_deadline(self, task: Task, deadline_ms: int, expected_tokens: int | None) -> None:
        """Refuse, before it waits, a task that measurements say cannot end in time. With nothing
        measured yet there is no evidence against it: it is admitted and expires if it must."""
        if self._service_times.measured(task.pool) is None:
            return
        pool = self._pool(task.pool)
        if pool is None:
            return
        start_ms = self._predicted_start_ms(pool, task, ahead=self._queue.ahead(task))
        tokens = self._service_times.expected_tokens(task.pool, task.request.max_tokens, expected_tokens)
        rate = self._service_times.rate(task.pool)(max(1, self._busy_after_start(task.pool)))
        service_ms = int((self._service_times.prompt_seconds(task.pool) + tokens / rate) * 1000)
        if start_ms + service_ms > deadline_ms:
            raise DataplaneError(
                ErrorCode.DEADLINE_UNMET,
                f"pool {task.pool!r} predicts the task starts in {start_ms} ms and runs "
                f"{service_ms} ms, past its deadline_ms {deadline_ms}",
            )

    def _expire_waits(self) -> float:
        """The dispatcher calls this each pass; returns how long until the next deadline."""
        self._expire_activations()
        return self._expire_deadlines()

    def _expire_activations(self) -> None:
        """End queued tasks of a pool that still has no serving replica once they waited its
        Policy's activationTimeoutSeconds, with what the replica is waiting for."""
        now = time.time()
        for pool in self._queue.pools():
            if self._registry.serving(pool) > 0:
                continue
            waiting_for = self._registry.standby(pool) or f"pool {pool!r} has no replica coming"
            for task in self._queue.waiting(pool):
                if task.activation_timeout is not None and now - task.created_at >= task.activation_timeout:
                    message = (
                        f"no replica of pool {pool!r} became ready within {task.activation_timeout:g}s "
                        f"(admission.activationTimeoutSeconds): {waiting_for}"
                    )
                    self._cancel(
                        task, DataplaneError(ErrorCode.POOL_UNAVAILABLE, message), reason="activation"
                    )

    def _expire_deadlines(self) -> float:
        """End queued tasks whose deadline passed before a slot freed (a late answer is no answer)."""
        now = time.time()
        with self._lock:
            # Tasks that started or ended meanwhile are past caring about their deadline.
            for task_id in [i for i, t in self._deadlines.items() if t.state != "queued"]:
                del self._deadlines[task_id]
            waiting = list(self._deadlines.values())
        upcoming = [TICK_SECONDS]
        for task in waiting:
            assert task.deadline_at is not None
            if task.deadline_at <= now:
                self._cancel(
                    task,
                    DataplaneError(
                        ErrorCode.DEADLINE_UNMET, "the task's deadline passed while it waited for a slot"
                    ),
                    reason="deadline",
                )
            else:
                upcoming.append(task.deadline_at - now)
        return min(upcoming)

    def _strict(self, pool: Pool, determinism: str | None, request: CompletionRequest | RelayRequest) -> bool:
        """The task's own choice, else its Policy's default; strict needs a seed to be repeatable."""
        if determinism is None:
            policy = policy_for(self._store, pool)
            determinism = policy.spec.determinism.default if policy is not None else "best_effort"
        if determinism == "strict" and request.seed is None:
            raise DataplaneError(
                ErrorCode.INVALID_PARAMS,
                "determinism strict needs a seed: the same seed gives the same tokens",
            )
        return determinism == "strict"

    def _session_budget(self, session_id: str | None, pool: Pool, correlation_id: str | None) -> Budget:
        """Open the task's session and refuse the turn up front if its budgets cannot cover it."""
        if session_id is None:
            return Budget()
        policy = policy_for(self._store, pool)
        session = self.sessions.open(session_id, pool.metadata.name, policy, correlation_id)
        self.sessions.check(session, policy)
        return Budget(
            tokens=session.tokens_remaining(),
            time_ms=session.time_remaining_ms(),
            cost=session.cost_remaining(),
            cost_per_1k=pool.spec.cost_per_1k_tokens,
        )

    def _charge_session(self, task: Task, last: dict[str, Any]) -> None:
        """The turn's tokens (prompt + generated), wall time and cost, if it ever started."""
        if task.session_id is None or task.started_at is None:
            return
        # The engine's own count where the task ended normally; what streamed so far otherwise.
        generated = last.get("tokens_out")
        generated = generated if isinstance(generated, int) else task.tokens_out
        self.sessions.charge(
            task.session_id,
            tokens=generated + int(last.get("tokens_in") or 0),
            wall_ms=((task.ended_at or time.time()) - task.started_at) * 1000,
            cost_per_1k=task.budget.cost_per_1k,
        )

    def _finished(self, task: Task) -> None:
        self._touch(task.pool, task.ended_at or time.time())
        self._db.save_task(task.record())

    def tokens_per_second(self, replica_id: str) -> float:
        """What the replica's running tasks stream together now, each at its own average so far."""
        now = time.time()
        total = 0.0
        for task in self.dispatcher.running_on(replica_id):
            if task.started_at is not None and task.tokens_out and now > task.started_at:
                total += task.tokens_out / (now - task.started_at)
        return round(total, 1)

    def _touch(self, pool: str, at: float) -> None:
        with self._activity_lock:
            self._activity[pool] = max(self._activity.get(pool, 0.0), at)

    def demand(self, pool: str) -> Demand:
        """What the pool's controller sizes it by."""
        with self._activity_lock:
            last = self._activity.get(pool)
        return Demand(
            queued=self._queue.depth(pool), running=len(self.dispatcher.running(pool)), last_activity=last
        )

    # -- predictions --------------------------------------------------------------------------

    def _pool(self, name: str) -> Pool | None:
        entry = self._store.get(f"Pool/{name}")
        return entry.obj if entry is not None and isinstance(entry.obj, Pool) else None

    def _predicted_start_ms(self, pool: Pool, task: Task, ahead: int | None = None) -> int:
        """When `task` (queued or about to be) should start: its wait for a slot, and what
        admitting and dispatching a task cost besides (measured)."""
        wait = self._wait_seconds(pool, task, ahead)
        return int((wait + self._service_times.dispatch_seconds(pool.metadata.name)) * 1000)

    def _wait_seconds(self, pool: Pool, task: Task, ahead: int | None = None) -> float:
        """Until a slot is free for `task`: the pool's slots run forward from what is running now,
        the queue ahead of it, and the cold start of a replica when none serves."""
        name = pool.metadata.name
        times = self._service_times
        queued = self._queue.waiting(name)
        position = ahead if ahead is not None else (queued.index(task) if task in queued else len(queued))
        before = [t for t in queued[:position] if t is not task]
        serving = [r for r in self._registry.replicas(name) if not r.draining]
        running = [
            times.remaining_tokens(name, t.request.max_tokens, t.tokens_out, t.expected_tokens)
            for t in self.dispatcher.running(name)
        ]
        ready_in = 0.0 if serving else self._cold_start_left(pool)
        now = PoolNow(
            slots=sum(r.slots for r in serving) if serving else pool.spec.slots,
            replicas=max(1, len(serving)),
            running=running,
            ahead=[times.expected_tokens(name, t.request.max_tokens, t.expected_tokens) for t in before],
            prompt_seconds=times.prompt_seconds(name),
            ready_in=ready_in,
        )
        return predict_start(now, times.rate(name))

    def _cold_start_left(self, pool: Pool) -> float:
        """Seconds until a replica of an idle or restarting pool should be ready: what its
        controller expects of the replica on its way, else a whole cold start."""
        ready_at = self._registry.standby_ready_at(pool.metadata.name)
        if ready_at is not None:
            return max(0.0, ready_at - time.time())
        status = self._db.pool_status(pool.metadata.name)
        cold = status.cold_start_seconds if status is not None else None
        return cold if cold else INITIAL_COLD_START_SECONDS

    def _busy_after_start(self, pool: str) -> int:
        """Sequences a replica of the pool decodes at once while its slots stay full."""
        serving = [r for r in self._registry.replicas(pool) if not r.draining]
        return max((r.slots for r in serving), default=1)

    def _check_model(self, pool: Pool) -> None:
        entry = self._store.get(f"Model/{pool.spec.model}")
        if entry is not None and isinstance(entry.obj, Model) and entry.obj.spec.lifecycle.value == "Retired":
            raise DataplaneError(ErrorCode.MODEL_RETIRED, f"model {pool.spec.model!r} is Retired")

    def _activation_timeout(self, pool: Pool) -> float:
        policy = policy_for(self._store, pool)
        return (
            policy.spec.admission.activation_timeout_seconds
            if policy is not None
            else DEFAULT_ACTIVATION_TIMEOUT_SECONDS
        )

    def _admission(self, pool: Pool) -> tuple[int, str, str]:
        """Queue capacity, overflow rule, and the label a refusal at a full queue carries."""
        policy = policy_for(self._store, pool)
        label = rule_label(policy, pool.metadata.name, ["admission.queueCapacity"])
        if policy is None:
            return DEFAULT_QUEUE_CAPACITY, "reject", label
        admission = policy.spec.admission
        return admission.queue_capacity, admission.overflow.value, label

    def _overflow(self, task: Task, room: int, overflow: str, label: str, full: QueueFull) -> int:
        """The queue is full. `reject` refuses the new task; `drop-lru` drops the task that has
        waited longest (of the lowest priority at or below the new one's) to admit it, and that
        task's stream ends with QUEUE_FULL_DROP_LRU."""
        backoff = self._backoff_ms(task.pool)
        if overflow == "drop-lru":
            victim = self._queue.evict_for(task)
            if victim is not None:
                message = f"dropped from the full queue of pool {task.pool!r} for a newer task"
                victim.fail(
                    "failed",
                    DataplaneError(
                        ErrorCode.QUEUE_FULL_DROP_LRU, message, retry_after_ms=backoff, policy_label=label
                    ),
                )
                self._finished(victim)
                return self._queue.push(task, room)
            code = ErrorCode.QUEUE_FULL_DROP_LRU
        else:
            code = ErrorCode.ADMISSION_REJECT
        raise DataplaneError(
            code, str(full), retriable=True, retry_after_ms=backoff, policy_label=label
        ) from full

    def service_time_ms(self, pool: str) -> int | None:
        """None until a task of the pool has finished: nothing measured yet."""
        seconds = self._service_times.measured(pool)
        return None if seconds is None else int(seconds * 1000)

    def _free_slots(self, pool: str) -> int:
        return sum(r.slots - r.busy for r in self._registry.replicas(pool) if not r.draining)

    def _total_slots(self, pool: str) -> int:
        return sum(r.slots for r in self._registry.replicas(pool) if not r.draining)

    def _backoff_ms(self, pool: str) -> int:
        """How long a client refused at a full queue should wait: until the first queued task
        starts and so leaves a place in the queue."""
        known = self._pool(pool)
        if known is None:
            return 1000
        queued = self._queue.waiting(pool)
        first = queued[0] if queued else None
        if first is None:
            return 100
        return max(100, self._predicted_start_ms(known, first, ahead=0))

    def _prune(self) -> None:
        now = time.time()
        for task_id in list(self._tasks):
            task = self._tasks[task_id]
            too_many = len(self._tasks) > KEEP_FINISHED_MAX
            if task.ended_at is not None and (too_many or now - task.ended_at > KEEP_FINISHED_SECONDS):
                del self._tasks[task_id]
            elif not too_many:
                break


def _check_constraints(pool: Pool, request: CompletionRequest) -> None:
    """An output constraint the pool's engine cannot enforce is refused, never dropped: unconstrained
    text where the client asked for JSON would look like an answer."""
    engine = pool.spec.engine.value
    for constraint in request.constraints():
        if constraint not in adapter_for(engine).structured_outputs:
            raise DataplaneError(
                ErrorCode.INVALID_PARAMS,
                f"pool {pool.metadata.name!r} runs engine {engine}, which has no equivalent of "
                f"{constraint}; engines that take it: {', '.join(engines_enforcing(constraint))}",
                engine=engine,
                param=constraint,
            )
