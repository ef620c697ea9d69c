"""One resource per relayed endpoint: the request admitted as a task of the pool `model` names,
then answered with the engine's bytes (llorch.api.relay.answer)."""

from __future__ import annotations

import falcon

from llorch.api import sse
from llorch.api.context import AppContext
from llorch.api.errors import as_llorch_error
from llorch.api.openai_errors import OpenAIRequestError
from llorch.api.relay import answer
from llorch.api.relay.body import RelayBody, read_body
from llorch.api.relay.models import resolve_pool
from llorch.api.relay.shapes import Dialect, respond_error
from llorch.api.tasks import budget_headers
from llorch.resources import Pool
from llorch.resources.errors import ErrorCode
from llorch.runtime.engines import adapter_for
from llorch.runtime.engines.relay import USAGE_OPTION_PATHS, RelayRequest

# Client headers that mean something to an engine speaking the client's API.
_PASSED_HEADERS = ("anthropic-version", "anthropic-beta")
# Endpoints that generate nothing: one token of "output" for the admission checks.
_NO_OUTPUT = 1


class RelayResource:
    def __init__(self, ctx: AppContext, path: str, dialect: Dialect, generates: bool) -> None:
        """`path` is the engine's; `generates`: the endpoint decodes tokens (not embeddings,
        rerank or count_tokens), so a missing token limit means "up to the context"."""
        self._ctx = ctx
        self._path = path
        self._dialect = dialect
        self._generates = generates

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        try:
            self._post(req, resp)
        except Exception as exc:
            respond_error(self._dialect, resp, as_llorch_error(req, exc))

    def _post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_body(req)
        pool = resolve_pool(self._ctx, body.model)
        request = self._request(req, body, pool)
        admitted = self._ctx.tasks.submit(
            request,
            pool=pool,
            priority=body.llorch.priority,
            session_id=body.llorch.session_id,
            deadline_ms=body.llorch.deadline_ms,
        )
        task = admitted.task
        resp.set_header("X-Task-Id", task.id)
        budget_headers(resp, task.budget)
        gone = sse.client_gone(req.env)
        try:
            if not body.stream:
                answer.respond_whole(resp, self._dialect, answer.whole(task, self._ctx.tasks, gone))
                return
            opening = answer.first_frames(task, self._ctx.tasks, gone)
        except sse.ClientLeft:
            # Nobody will read it; nginx's code for a request its client gave up on, for the log.
            resp.status = "499 Client Closed Request"
            return
        if not answer.is_success(opening[-1]):
            answer.respond_failure(resp, self._dialect, opening[-1])
            return
        resp.content_type = "text/event-stream"
        resp.set_headers(sse.HEADERS)
        resp.stream = answer.relay_stream(task, self._ctx.tasks, self._dialect, opening, gone)

    def _request(self, req: falcon.Request, body: RelayBody, pool: Pool) -> RelayRequest:
        adapter = adapter_for(pool.spec.engine.value)
        served = adapter.relay_paths(pool.spec)
        if self._path not in served:
            raise OpenAIRequestError(
                ErrorCode.INVALID_PARAMS,
                f"pool {pool.metadata.name!r} ({pool.spec.engine.value}, workload "
                f"{pool.spec.workload.value}) does not serve {self._path}; it serves "
                f"{', '.join(sorted(served)) or 'none of the OpenAI or Anthropic endpoints'}",
                openai_code="unsupported_endpoint",
                param="model",
            )
        engine_body = body.body
        strip = False
        if body.stream and self._path in USAGE_OPTION_PATHS and adapter.stream_usage and not body.asks_usage:
            # llorch counts the engine's own usage; the client, who did not ask, never sees it.
            options = engine_body.get("stream_options")
            engine_body = {
                **engine_body,
                "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True},
            }
            strip = True
        limit = body.max_tokens
        if limit is None:
            limit = self._ctx.tasks.context_limit(pool) if self._generates else _NO_OUTPUT
        return RelayRequest(
            path=self._path,
            body=engine_body,
            stream=body.stream,
            max_tokens=limit,
            strip_usage=strip,
            seed=body.seed,
            correlation_id=req.context.get("correlation_id"),
            headers=tuple((h, v) for h in _PASSED_HEADERS if (v := req.get_header(h)) is not None),
        )
