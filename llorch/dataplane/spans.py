"""A task's spans (llorch.runtime.tracing): admission, then queue wait, dispatch and the engine
request, children of the admission, each with the task's correlation id, id and pool, and the
replica and engine once it has them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from llorch.dataplane.errors import DataplaneError
from llorch.dataplane.tasks import Task
from llorch.resources import Pool
from llorch.runtime import tracing
from llorch.runtime.registry import Replica


class _Admitted(Protocol):
    @property
    def task(self) -> Task: ...

    @property
    def queue_position(self) -> int: ...

    @property
    def predicted_start_ms(self) -> int: ...


S = TypeVar("S")
P = ParamSpec("P")
A = TypeVar("A", bound=_Admitted)


def traces_admission(submit: Callable[Concatenate[S, P], A]) -> Callable[Concatenate[S, P], A]:
    """Decorates `TaskService.submit`, which takes the request first and the Pool as `pool`: the
    admission span is current while it runs, so the task it creates keeps it as its parent."""

    @functools.wraps(submit)
    def traced(self: S, /, *args: P.args, **kwargs: P.kwargs) -> A:
        pool = kwargs.get("pool")
        request: Any = args[0] if args else kwargs.get("request")
        task_id = kwargs.get("task_id")
        attributes: tracing.Attributes = {
            tracing.POOL: pool.metadata.name if isinstance(pool, Pool) else None,
            tracing.TASK_ID: task_id if isinstance(task_id, str) else None,
            tracing.CORRELATION_ID: getattr(request, "correlation_id", None),
        }
        with tracing.span("llorch.admission", attributes) as span:
            try:
                admitted = submit(self, *args, **kwargs)
            except DataplaneError as exc:
                span.set({"llorch.error_code": exc.code})
                raise
            span.set(
                {
                    tracing.TASK_ID: admitted.task.id,
                    "llorch.queue_position": admitted.queue_position,
                    "llorch.predicted_start_ms": admitted.predicted_start_ms,
                }
            )
            return admitted

    return traced


def task_attributes(task: Task, replica: Replica) -> dict[str, str | int | None]:
    return {
        tracing.CORRELATION_ID: task.correlation_id,
        tracing.TASK_ID: task.id,
        tracing.POOL: task.pool,
        tracing.REPLICA: replica.id,
        tracing.ENGINE: replica.engine,
    }


def stream_end(span: tracing.SpanHandle, task: Task) -> None:
    """What the task's last frame says, on `span`: tokens, finish reason, or the error's code."""
    with task.changed:
        last = task.frames[-1] if task.finished and task.frames else None
    if last is None:
        return
    data = last.data
    span.set({"llorch.state": task.state, "llorch.tokens_out": data.get("tokens_out")})
    if last.event == "end":
        span.event(
            "stream.end",
            {
                "llorch.tokens_in": data.get("tokens_in"),
                "llorch.tokens_out": data.get("tokens_out"),
                "llorch.ttft_ms": data.get("ttft_ms"),
                "llorch.finish_reason": data.get("finish_reason"),
            },
        )
    elif last.event == "error":
        span.set({"llorch.error_code": data.get("code")})
        span.event("stream.error", {"llorch.error_code": data.get("code"), "message": data.get("message")})
        if task.state != "canceled":
            span.fail(f"{data.get('code')}: {data.get('message')}")
