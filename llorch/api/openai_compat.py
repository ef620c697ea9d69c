"""OpenAI-compatible endpoints: models, completions and chat completions over llorch's own task path.

Where they live: under `/v1` (an OpenAI client takes `base_url=<llorchd>/v1`; llorch's own
Model objects are listed at `/v1/catalog/models`), and the same surface again under
`/openai/v1` for clients configured with a prefix of their own.

Every request goes through the same admission queue, dispatcher, leases and cancel paths as
`POST /v1/tasks`: a completion is a task, and its OpenAI id ends with the task id
(`cmpl-<task_id>`, `chatcmpl-<task_id>`), so `GET /v1/tasks/{id}` and
`POST /v1/tasks/{id}/cancel` work on it. A streaming client that disconnects abandons (cancels)
its task, exactly like an SSE subscriber of /v1/tasks.

`model` names a pool, or a Model that exactly one pool serves (a Model behind several pools is
ambiguous here: name the pool).

Chat prompts: llama-server applies a model's own chat template only on its
`/v1/chat/completions`, while llorch's engine path is the native `/completion`, so the messages
are rendered here with one fixed ChatML template, one block per message, then the assistant's
opening (a role of `developer` is written as `system`)::

    <|im_start|>system
    {content}<|im_end|>
    <|im_start|>user
    {content}<|im_end|>
    <|im_start|>assistant

and generation stops at `<|im_end|>` (or a new `<|im_start|>`). A model's own template arrives
with per-pool chat support later; until then models trained on another template see ChatML.

Errors answer in OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`), which its
SDKs parse, with the HTTP status from llorch's code mapping; the code is llorch's, lowercased
(`admission_reject`, `pool_unready`), except `model_not_found`, `model_ambiguous` and
`unsupported_value`. Errors raised before a resource runs (auth, body size) still come in
llorch's envelope from the global handler. Parameters llorch does not implement are accepted
only at the value that means "off" (`n: 1`, `frequency_penalty: 0`, `echo: false`, ...); any
other value is a 400, never silently ignored.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any, ClassVar, Literal, TypeVar

import falcon
from pydantic import BaseModel, ConfigDict, Field, field_validator

from llorch.api import sse
from llorch.api.context import AppContext
from llorch.api.errors import as_llorch_error
from llorch.api.openai_errors import OpenAIRequestError, openai_body, respond_openai
from llorch.api.tasks import completion_request, read_json
from llorch.dataplane.routing import Want
from llorch.dataplane.service import TaskService
from llorch.dataplane.tasks import Task
from llorch.resources import Pool
from llorch.resources.errors import ErrorCode, LlorchError
from llorch.runtime.engines import chatml
from llorch.runtime.engines.base import ChatTurn, CompletionRequest

log = logging.getLogger("llorch.api")

PREFIX = "/openai/v1"
OWNED_BY = "llorch"
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /completions
# The engine reports stop | length | cancelled | budget; OpenAI knows stop and length. A budget
# cut is a length limit the caller did not set, but a limit all the same.
_FINISH_REASON = {"stop": "stop", "length": "length", "budget": "length"}


# -- request bodies ----------------------------------------------------------------------------------


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool = False


def _refusals_in_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """What `unsupported()` refuses, in the JSON Schema contracts/openapi.yaml carries: each field
    llorch does not implement takes only its "off" values, and stream_options needs stream."""
    off_values: dict[str, tuple[object, ...]] = getattr(model, "OFF_VALUES", {})
    for name, off in off_values.items():
        field = schema["properties"][name]
        schema["properties"][name] = {
            "title": field["title"],
            "default": field.get("default"),
            "enum": list(off),
            "description": "Not implemented by llorch: only the value that means off (or leaving it out).",
        }
    schema["if"] = {"required": ["stream_options"], "properties": {"stream_options": {"type": "object"}}}
    schema["then"] = {"required": ["stream"], "properties": {"stream": {"const": True}}}


class _SamplingBody(BaseModel):
    """What both endpoints take. Unknown fields are refused, as OpenAI itself does."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_refusals_in_schema)

    # Fields llorch does not implement, each with the values that mean "off": those are accepted
    # (clients send them by default) and anything else is refused by `unsupported()`.
    OFF_VALUES: ClassVar[dict[str, tuple[object, ...]]] = {
        "n": (None, 1),
        "frequency_penalty": (None, 0),
        "presence_penalty": (None, 0),
        "logit_bias": (None, {}),
    }

    model: str = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=1_048_576)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)  # not OpenAI's; llama.cpp and vLLM clients send it
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    # At most 4 stop sequences (`_at_most_four_stops`); maxItems constrains only the list form.
    stop: str | list[str] | None = Field(default=None, json_schema_extra={"maxItems": 4})
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None  # an end-user id for OpenAI's abuse monitoring: nothing to do here
    n: int | None = Field(default=None, ge=1, le=128)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = None

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("at most 4 stop sequences")
        return value

    def unsupported(self) -> OpenAIRequestError | None:
        for name, off in self.OFF_VALUES.items():
            value = getattr(self, name)
            if value not in off:
                allowed = " or ".join(json.dumps(v) for v in off if v is not None)
                return OpenAIRequestError(
                    ErrorCode.INVALID_PARAMS,
                    f"Unsupported value: {name!r} does not support {json.dumps(value)} in llorch;"
                    f" only {allowed} (or leaving it out) is supported",
                    openai_code="unsupported_value",
                    param=name,
                )
        if self.stream_options is not None and not self.stream:
            return OpenAIRequestError(
                ErrorCode.INVALID_PARAMS,
                "stream_options is only allowed when stream is true",
                openai_code="invalid_params",
                param="stream_options",
            )
        return None

    @property
    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage


BodyT = TypeVar("BodyT", bound=_SamplingBody)


def _one_prompt(schema: dict[str, Any]) -> None:
    """What `prompt_text()` refuses, in the JSON Schema: one non-empty prompt, bare or in a list."""
    text = {"type": "string", "minLength": 1}
    schema["anyOf"] = [text, {"type": "array", "items": text, "minItems": 1, "maxItems": 1}]
    schema["description"] = "One non-empty prompt, or a list of exactly one (batching is refused)."


class CompletionBody(_SamplingBody):
    OFF_VALUES: ClassVar[dict[str, tuple[object, ...]]] = {
        **_SamplingBody.OFF_VALUES,
        "logprobs": (None,),
        "echo": (None, False),
        "best_of": (None, 1),
        "suffix": (None, ""),
    }

    prompt: str | list[str] = Field(json_schema_extra=_one_prompt)
    logprobs: int | None = Field(default=None, ge=0, le=20)
    echo: bool | None = None
    best_of: int | None = Field(default=None, ge=1, le=20)
    suffix: str | None = None

    def prompt_text(self) -> str:
        """One prompt per request: a list is accepted only as a list of one (batching is n > 1 too)."""
        prompts = [self.prompt] if isinstance(self.prompt, str) else self.prompt
        if len(prompts) != 1:
            raise OpenAIRequestError(
                ErrorCode.INVALID_PARAMS,
                f"exactly one prompt per request is supported, got {len(prompts)}",
                openai_code="unsupported_value",
                param="prompt",
            )
        if not prompts[0]:
            raise OpenAIRequestError(
                ErrorCode.INVALID_PARAMS,
                "prompt must not be empty",
                openai_code="invalid_params",
                param="prompt",
            )
        return prompts[0]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "developer", "user", "assistant"]
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts(cls, value: object) -> object:
        """OpenAI's content may be a list of parts; only text parts mean anything to a text model."""
        if not isinstance(value, list):
            return value
        texts = []
        for part in value:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise ValueError(f"only text content parts are supported, got {kind!r}")
            texts.append(part["text"])
        return "".join(texts)


class ChatBody(_SamplingBody):
    OFF_VALUES: ClassVar[dict[str, tuple[object, ...]]] = {
        **_SamplingBody.OFF_VALUES,
        "logprobs": (None, False),
        "top_logprobs": (None, 0),
        "tools": (None, []),
        "tool_choice": (None, "none"),
        "functions": (None, []),
        "function_call": (None, "none"),
        "response_format": (None, {"type": "text"}),
    }

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1_048_576)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None


# -- models ------------------------------------------------------------------------------------------


def _pools(ctx: AppContext) -> list[Pool]:
    return [e.obj for e in ctx.store.entries("Pool") if isinstance(e.obj, Pool)]


def _served_models(pools: list[Pool]) -> dict[str, str]:
    """Model name → its pool, for the Models exactly one pool serves and no pool is named after."""
    names = {p.metadata.name for p in pools}
    counts = Counter(p.spec.model for p in pools)
    return {
        p.spec.model: p.metadata.name
        for p in pools
        if counts[p.spec.model] == 1 and p.spec.model not in names
    }


def _created(ctx: AppContext, key: str) -> int:
    """When the object's manifest file last changed: the nearest thing to OpenAI's `created`."""
    entry = ctx.store.get(key)
    if entry is None:
        return 0
    try:
        return int((ctx.store.folder / entry.file).stat().st_mtime)
    except OSError:
        return 0


def _model_object(ctx: AppContext, name: str, key: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _created(ctx, key), "owned_by": OWNED_BY}


def model_objects(ctx: AppContext) -> list[dict[str, Any]]:
    pools = _pools(ctx)
    listed = [_model_object(ctx, p.metadata.name, f"Pool/{p.metadata.name}") for p in pools]
    for model, pool in sorted(_served_models(pools).items()):
        key = f"Model/{model}" if ctx.store.get(f"Model/{model}") else f"Pool/{pool}"
        listed.append(_model_object(ctx, model, key))
    return listed


def _model_not_found(model: str) -> OpenAIRequestError:
    return OpenAIRequestError(
        ErrorCode.NOT_FOUND,
        f"The model {model!r} does not exist: name a pool, or a Model exactly one pool serves",
        openai_code="model_not_found",
        param="model",
    )


def resolve_pool(ctx: AppContext, model: str) -> Pool:
    """`model` as a pool name first, then as the Model of exactly one pool."""
    if ctx.store.get(f"Pool/{model}") is not None:
        return ctx.tasks.resolve_pool(Want(pool=model))
    serving = sorted(p.metadata.name for p in _pools(ctx) if p.spec.model == model)
    if len(serving) > 1:
        raise OpenAIRequestError(
            ErrorCode.INVALID_PARAMS,
            f"model {model!r} is served by several pools ({', '.join(serving)}): name one of them",
            openai_code="model_ambiguous",
            param="model",
        )
    if not serving:
        raise _model_not_found(model)
    return ctx.tasks.resolve_pool(Want(model_ref=model))


# -- reply shapes ------------------------------------------------------------------------------------


def _usage(end: dict[str, Any]) -> dict[str, int]:
    prompt = int(end.get("tokens_in") or 0)
    completion = int(end.get("tokens_out") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish_reason(end: dict[str, Any]) -> str:
    return _FINISH_REASON.get(str(end.get("finish_reason")), "stop")


class _Reply:
    """The envelope every object and chunk of one answer shares (id, created, model)."""

    id_prefix: ClassVar[str]
    object_name: ClassVar[str]
    chunk_name: ClassVar[str]

    def __init__(self, task: Task, model: str, include_usage: bool) -> None:
        self.id = f"{self.id_prefix}-{task.id}"
        self.created = int(task.created_at)
        self.model = model
        self.include_usage = include_usage

    def _head(self, name: str) -> dict[str, Any]:
        return {"id": self.id, "object": name, "created": self.created, "model": self.model}

    def chunk(self, choice: dict[str, Any]) -> dict[str, Any]:
        body = {**self._head(self.chunk_name), "choices": [{"index": 0, **choice}]}
        if self.include_usage:
            body["usage"] = None  # as OpenAI: only the last chunk carries usage
        return body

    def usage_chunk(self, end: dict[str, Any]) -> dict[str, Any]:
        return {**self._head(self.chunk_name), "choices": [], "usage": _usage(end)}

    def opening(self) -> list[dict[str, Any]]:
        return []

    def text_chunk(self, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def final_chunk(self, end: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def whole(self, text: str, end: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError


class _CompletionReply(_Reply):
    id_prefix = "cmpl"
    object_name = "text_completion"
    chunk_name = "text_completion"

    def text_chunk(self, text: str) -> dict[str, Any]:
        return self.chunk({"text": text, "logprobs": None, "finish_reason": None})

    def final_chunk(self, end: dict[str, Any]) -> dict[str, Any]:
        return self.chunk({"text": "", "logprobs": None, "finish_reason": _finish_reason(end)})

    def whole(self, text: str, end: dict[str, Any]) -> dict[str, Any]:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": _finish_reason(end)}
        return {**self._head(self.object_name), "choices": [choice], "usage": _usage(end)}


class _ChatReply(_Reply):
    id_prefix = "chatcmpl"
    object_name = "chat.completion"
    chunk_name = "chat.completion.chunk"

    def opening(self) -> list[dict[str, Any]]:
        # OpenAI's first chunk names the role; it also sends the headers before the first token.
        return [
            self.chunk(
                {"delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
            )
        ]

    def text_chunk(self, text: str) -> dict[str, Any]:
        return self.chunk({"delta": {"content": text}, "logprobs": None, "finish_reason": None})

    def final_chunk(self, end: dict[str, Any]) -> dict[str, Any]:
        return self.chunk({"delta": {}, "logprobs": None, "finish_reason": _finish_reason(end)})

    def whole(self, text: str, end: dict[str, Any]) -> dict[str, Any]:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": _finish_reason(end),
        }
        return {**self._head(self.object_name), "choices": [choice], "usage": _usage(end)}


# -- running a task ----------------------------------------------------------------------------------


def _data(payload: dict[str, Any] | str) -> bytes:
    # ASCII-only JSON, for the reason llorch.api.sse.encode gives.
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def stream_reply(task: Task, tasks: TaskService, reply: _Reply, gone: sse.ClientGone) -> Iterator[bytes]:
    """The task's tokens as OpenAI chunks, written as they come, ending in `data: [DONE]`.

    An error frame becomes one `data: {"error": ...}` chunk and the stream ends there (OpenAI's
    SDKs raise on it). A client that goes away before the end abandons the task: nobody reads
    the tokens, so its slot is freed.
    """
    done = False
    try:
        opening = reply.opening()
        # A first write makes waitress send the headers now, not with the first token.
        yield b"".join(_data(c) for c in opening) if opening else sse.comment("stream open")
        after = -1
        while not done:
            frames, _ = sse.next_frames(task, after, gone)
            if not frames:
                yield sse.comment("heartbeat")
                continue
            chunks: list[dict[str, Any] | str] = []
            for frame in frames:
                after = frame.id
                if frame.event == "token" and frame.data["t"]:
                    chunks.append(reply.text_chunk(frame.data["t"]))
                elif frame.event == "end":
                    done = True
                    chunks.append(reply.final_chunk(frame.data))
                    if reply.include_usage:
                        chunks.append(reply.usage_chunk(frame.data))
                    chunks.append("[DONE]")
                elif frame.event == "error":
                    done = True
                    chunks.append(openai_body(LlorchError.from_frame(frame.data)))
            if chunks:
                yield b"".join(_data(chunk) for chunk in chunks)
    except sse.ClientLeft:
        return
    finally:
        if not done:
            tasks.abandon(task)


def collect_reply(task: Task, tasks: TaskService, gone: sse.ClientGone) -> tuple[str, dict[str, Any]]:
    """Wait for the task's end: its whole text and the end frame; an error frame raises. A client
    that leaves meanwhile raises sse.ClientLeft and abandons the task."""
    try:
        while not task.wait_end(sse.CLIENT_CHECK_SECONDS):
            if gone():
                raise sse.ClientLeft
    except BaseException:
        tasks.abandon(task)
        raise
    frames, _ = task.wait_frames(-1, 0)
    last = frames[-1]
    if last.event == "error":
        raise LlorchError.from_frame(last.data)
    return "".join(frame.data["t"] for frame in frames if frame.event == "token"), last.data


# -- resources ---------------------------------------------------------------------------------------


class _OpenAIResource:
    """Answers every failure in OpenAI's shape, before the global handler can use llorch's."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            self._post(req, resp)
        except Exception as exc:
            respond_openai(resp, as_llorch_error(req, exc))

    def _post(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise NotImplementedError

    def _run(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        body: _SamplingBody,
        request: CompletionRequest,
        pool: Pool,
    ) -> None:
        gone = sse.client_gone(req.env)
        reply_type = _ChatReply if isinstance(body, ChatBody) else _CompletionReply
        task = self._ctx.tasks.submit(request, pool=pool).task
        reply = reply_type(task, body.model, body.include_usage)
        if body.stream:
            resp.content_type = "text/event-stream"
            resp.set_headers(sse.HEADERS)
            resp.stream = stream_reply(task, self._ctx.tasks, reply, gone)
            return
        try:
            text, end = collect_reply(task, self._ctx.tasks, gone)
        except sse.ClientLeft:
            # Nobody will read it; nginx's code for a request its client gave up on, for the log.
            resp.status = "499 Client Closed Request"
            return
        resp.media = reply.whole(text, end)


def _validated(model: type[BodyT], req: falcon.Request) -> BodyT:
    body = model.model_validate(read_json(req))
    refused = body.unsupported()
    if refused is not None:
        raise refused
    return body


class CompletionsResource(_OpenAIResource):
    def _post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _validated(CompletionBody, req)
        prompt = body.prompt_text()
        pool = resolve_pool(self._ctx, body.model)
        request = completion_request(
            req,
            body,
            prompt=prompt,
            max_tokens=body.max_tokens or DEFAULT_COMPLETION_MAX_TOKENS,
            stop=body.stops,
        )
        self._run(req, resp, body, request, pool)


class ChatCompletionsResource(_OpenAIResource):
    def _post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _validated(ChatBody, req)
        pool = resolve_pool(self._ctx, body.model)
        # OpenAI's chat default is "until the model stops"; a slot's context is that bound here.
        max_tokens = body.max_completion_tokens or body.max_tokens or self._ctx.tasks.context_limit(pool)
        # `developer` is OpenAI's newer name for the system role, which chat templates know.
        turns = tuple(
            ChatTurn("system" if m.role == "developer" else m.role, m.content) for m in body.messages
        )
        request = completion_request(
            req, body, prompt=chatml.render(turns), messages=turns, max_tokens=max_tokens, stop=body.stops
        )
        self._run(req, resp, body, request, pool)


class ModelsResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"object": "list", "data": model_objects(self._ctx)}


class ModelResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, model: str) -> None:
        found = next((m for m in model_objects(self._ctx) if m["id"] == model), None)
        if found is None:
            respond_openai(resp, _model_not_found(model))
            return
        resp.media = found


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    completions, chat = CompletionsResource(ctx), ChatCompletionsResource(ctx)
    app.add_route(f"{PREFIX}/models", ModelsResource(ctx))
    app.add_route(f"{PREFIX}/models/{{model}}", ModelResource(ctx))
    app.add_route(f"{PREFIX}/completions", completions)
    app.add_route(f"{PREFIX}/chat/completions", chat)
    app.add_route("/v1/models", ModelsResource(ctx))
    app.add_route("/v1/models/{model}", ModelResource(ctx))
    app.add_route("/v1/completions", completions)
    app.add_route("/v1/chat/completions", chat)
