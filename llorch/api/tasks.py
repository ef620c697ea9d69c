"""/v1/tasks: admit a task, stream its frames over SSE, look it up, cancel it."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal, Protocol

import falcon
import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llorch.api import sse
from llorch.api.context import AppContext
from llorch.api.errors import RequestError
from llorch.dataplane.errors import TaskNotFound
from llorch.dataplane.routing import PlacementPrefs, Want
from llorch.dataplane.tasks import Budget, Task
from llorch.resources import Engine
from llorch.resources.errors import ErrorCode
from llorch.runtime.engines.base import SAMPLER_PROFILE_VERSION, CompletionRequest

NAME = r"^[A-Za-z0-9._:-]+$"


class PlacementBody(BaseModel):
    """Where the task may run, beyond its pool or model (contract: `placement`)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["pin", "prefer", "auto"] = "auto"
    pin_pool_id: str | None = None
    prefer_pools: list[str] = Field(default_factory=list, max_length=64)
    avoid_pools: list[str] = Field(default_factory=list, max_length=64)
    require_device_mask: int | None = Field(
        default=None, ge=0, description="Bit i set: the task may run on GPU i (CPU pools always qualify)."
    )
    allow_fallback: bool = Field(
        default=True, description="prefer mode: any fitting pool if no preferred one can."
    )

    def to_placement(self) -> PlacementPrefs:
        return PlacementPrefs(
            mode=self.mode,
            pin_pool=self.pin_pool_id,
            prefer=tuple(self.prefer_pools),
            avoid=tuple(self.avoid_pools),
            device_mask=self.require_device_mask,
            allow_fallback=self.allow_fallback,
        )


def _given(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema for "`name` is present and holds `schema`" (a not-null type keeps null out)."""
    return {"required": [name], "properties": {name: copy.deepcopy(schema)}}


def _placement(**fields: dict[str, Any]) -> dict[str, Any]:
    return _given("placement", {"type": "object", "required": list(fields), "properties": fields})


_STRING = {"type": "string"}
_PIN_MODE = {"const": "pin"}


def _task_request_rules(schema: dict[str, Any]) -> None:
    """What `_consistent` and routing refuse, in JSON Schema, so that contracts/openapi.yaml (which
    carries this schema) calls valid only what the server takes. Two rules compare values and stay
    prose there: `max_tokens` within `ctx`, and in pin mode `pool` equal to `placement.pin_pool_id`."""
    schema["oneOf"] = [_given("prompt", _STRING), _given("inputs", {"type": "array"})]
    # Routing reads placement.pin_pool_id only in pin mode; otherwise a pool or a model_ref is needed.
    schema["anyOf"] = [
        _given("pool", _STRING),
        _given("model_ref", _STRING),
        _placement(mode=_PIN_MODE, pin_pool_id=_STRING),
    ]
    schema["allOf"] = [
        {
            "if": _placement(mode=_PIN_MODE),
            "then": {"anyOf": [_given("pool", _STRING), _placement(pin_pool_id=_STRING)]},
        },
        {"if": _given("determinism", {"const": "strict"}), "then": _given("seed", {"type": "integer"})},
        {"not": {"allOf": [_given("json_schema", {"type": "object"}), _given("grammar", _STRING)]}},
    ]


class TaskRequest(BaseModel):
    """The body of POST /v1/tasks; names follow the wire contract (snake_case)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_task_request_rules)

    task_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=NAME)
    pool: str | None = None
    model_ref: str | None = None
    engine: Engine | None = Field(default=None, description="Only pools running this engine.")
    workload: Literal["completion", "embedding", "rerank"] = Field(
        default="completion",
        description="Only completion is served; embedding and rerank are reserved (refused).",
        json_schema_extra={"enum": ["completion"]},
    )
    prompt: str | None = Field(default=None, min_length=1)
    inputs: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None,
        min_length=1,
        description="The prompt as a one-item list (several are for embedding/rerank).",
        json_schema_extra={"maxItems": 1},
    )
    ctx: int | None = Field(
        default=None, ge=1, description="Context tokens the task needs (prompt + output)."
    )
    max_tokens: int = Field(default=128, ge=1, le=1_048_576)
    expected_tokens: int | None = Field(
        default=None, ge=1, description="Tokens the client expects: sharpens the deadline check."
    )
    deadline_ms: int | None = Field(
        default=None, ge=1, description="The task must end within this many ms of admission."
    )
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    temperature: float | None = Field(default=None, ge=0, le=10)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stop: list[str] = Field(default_factory=list, max_length=16)
    sampler_profile_version: str | None = Field(
        default=None, json_schema_extra={"enum": [SAMPLER_PROFILE_VERSION, None]}
    )
    kv_hint: Literal["reuse", "cold"] | None = Field(
        default=None, description="cold: do not reuse a cached prompt prefix (llama.cpp only)."
    )
    priority: Literal["interactive", "batch"] = "interactive"
    session_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=NAME)
    determinism: Literal["strict", "best_effort"] | None = None
    placement: PlacementBody | None = None
    stream: bool = Field(default=False, description="Answer with the SSE stream itself: one round trip.")
    json_schema: dict[str, Any] | None = Field(
        default=None,
        description="The output is JSON valid against this JSON Schema: the engine constrains decoding "
        "(llama.cpp json_schema, vLLM and Triton structured_outputs, TGI grammar). A schema that is "
        "not one is refused.",
    )
    grammar: str | None = Field(
        default=None,
        min_length=1,
        description="The output derives from this GBNF grammar (llama.cpp's format; vLLM and Triton's "
        "vLLM backend read it too). Not with json_schema; refused on TGI, which has no equivalent.",
    )

    @field_validator("json_schema")
    @classmethod
    def _is_a_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None:
            try:
                jsonschema.validators.validator_for(schema).check_schema(schema)
            except jsonschema.SchemaError as exc:
                where = "/".join(str(part) for part in exc.path) or "the top level"
                raise ValueError(f"json_schema is not a valid JSON Schema at {where}: {exc.message}") from exc
        return schema

    @model_validator(mode="after")
    def _consistent(self) -> TaskRequest:
        if self.workload != "completion":
            raise ValueError(f"workload {self.workload} is reserved: llorch serves completion only")
        if (self.prompt is None) == (self.inputs is None):
            raise ValueError("give exactly one of prompt or inputs")
        if self.inputs is not None and len(self.inputs) != 1:
            raise ValueError("a completion takes one input; several inputs are for embedding/rerank")
        if self.pool is None and self.model_ref is None and self.pin_pool is None:
            raise ValueError("give a pool, a model_ref or placement.pin_pool_id")
        if self.ctx is not None and self.max_tokens > self.ctx:
            raise ValueError(f"max_tokens {self.max_tokens} does not fit in ctx {self.ctx}")
        if self.json_schema is not None and self.grammar is not None:
            raise ValueError("give json_schema or grammar, not both")
        if self.sampler_profile_version not in (None, SAMPLER_PROFILE_VERSION):
            raise ValueError(
                f"sampler profile {self.sampler_profile_version!r} is unknown; llorch speaks "
                f"{SAMPLER_PROFILE_VERSION!r}"
            )
        return self

    @property
    def pin_pool(self) -> str | None:
        return self.placement.pin_pool_id if self.placement is not None else None

    @property
    def text(self) -> str:
        """The prompt, whichever field carried it."""
        return self.prompt if self.prompt is not None else (self.inputs or [""])[0]

    def want(self) -> Want:
        return Want(
            pool=self.pool,
            model_ref=self.model_ref,
            engine=self.engine.value if self.engine is not None else None,
            ctx=self.ctx,
            placement=self.placement.to_placement() if self.placement is not None else PlacementPrefs(),
        )


class Sampling(Protocol):
    """The sampling fields every front door's body has, under the names llorch passes on."""

    @property
    def seed(self) -> int | None: ...
    @property
    def temperature(self) -> float | None: ...
    @property
    def top_p(self) -> float | None: ...
    @property
    def top_k(self) -> int | None: ...


def completion_request(
    req: falcon.Request,
    body: Sampling,
    *,
    prompt: str,
    max_tokens: int,
    stop: list[str],
    cache_prompt: bool = True,
    json_schema: dict[str, Any] | None = None,
    grammar: str | None = None,
) -> CompletionRequest:
    """The engine request a front door's body becomes, the request's correlation id carried along."""
    return CompletionRequest(
        prompt=prompt,
        max_tokens=max_tokens,
        seed=body.seed,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        stop=stop,
        correlation_id=req.context.get("correlation_id"),
        cache_prompt=cache_prompt,
        json_schema=json_schema,
        grammar=grammar,
    )


def read_json(req: falcon.Request) -> object:
    if req.content_length in (None, 0):
        raise RequestError(ErrorCode.INVALID_PARAMS, "a JSON body is required")
    try:
        return req.get_media()
    except falcon.MediaMalformedError as exc:
        raise RequestError(ErrorCode.INVALID_PARAMS, f"body is not valid JSON: {exc.description}") from exc


class TasksResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = TaskRequest.model_validate(read_json(req))
        pool = self._ctx.tasks.resolve_pool(body.want())
        request = completion_request(
            req,
            body,
            prompt=body.text,
            max_tokens=body.max_tokens,
            stop=body.stop,
            cache_prompt=body.kv_hint != "cold",
            json_schema=body.json_schema,
            grammar=body.grammar,
        )
        admitted = self._ctx.tasks.submit(
            request,
            pool=pool,
            task_id=body.task_id,
            priority=body.priority,
            session_id=body.session_id,
            determinism=body.determinism,
            deadline_ms=body.deadline_ms,
            expected_tokens=body.expected_tokens,
        )
        task_id = admitted.task.id
        resp.location = f"/v1/tasks/{task_id}"
        budget_headers(resp, admitted.task.budget)
        if body.stream:
            resp.set_header("X-Task-Id", task_id)
            stream_frames(self._ctx, req, resp, admitted.task, after=-1)
            return
        resp.status = falcon.HTTP_202
        resp.media = {
            "task_id": task_id,
            "pool": pool.metadata.name,
            "queue_position": admitted.queue_position,
            "predicted_start_ms": admitted.predicted_start_ms,
            "backoff_ms": admitted.backoff_ms,
            "streams": {"sse": f"/v1/tasks/{task_id}/events"},
        }


class TaskResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        try:
            task = self._ctx.tasks.get(task_id)
        except TaskNotFound:
            # Finished tasks leave memory after a while (or a restart); their record stays.
            record = self._ctx.db.get_task(task_id)
            if record is None:
                raise
            resp.media = record.summary()
            return
        summary = task.summary()
        position = self._ctx.tasks.queue_position(task)
        if position is not None:
            summary["queue_position"] = position
        elif summary["state"] == "queued":
            # Taken off the queue by the dispatcher, its stream not started yet: next, not where
            # it stood when admitted.
            summary["queue_position"] = 0
        resp.media = summary


class TaskEventsResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        task = self._ctx.tasks.get(task_id)
        last = req.get_header("Last-Event-ID")
        try:
            after = int(last) if last is not None else -1
        except ValueError as exc:
            raise RequestError(
                ErrorCode.INVALID_PARAMS, f"Last-Event-ID must be a frame id, got {last!r}"
            ) from exc
        stream_frames(self._ctx, req, resp, task, after)


def stream_frames(
    ctx: AppContext, req: falcon.Request, resp: falcon.Response, task: Task, after: int
) -> None:
    resp.content_type = "text/event-stream"
    resp.set_headers(sse.HEADERS)
    tasks = ctx.tasks
    resp.stream = sse.task_stream(
        task, after, sse.client_gone(req.env), on_abandon=lambda: tasks.abandon(task)
    )


def budget_headers(resp: falcon.Response, budget: Budget) -> None:
    if budget.tokens is not None:
        resp.set_header("X-Budget-Tokens-Remaining", str(budget.tokens))
    if budget.time_ms is not None:
        resp.set_header("X-Budget-Time-Remaining-Ms", str(int(budget.time_ms)))
    if budget.cost is not None:
        resp.set_header("X-Budget-Cost-Remaining", f"{budget.cost:g}")


class TaskCancelResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, task_id: str) -> None:
        self._ctx.tasks.cancel(task_id)
        resp.status = falcon.HTTP_204
