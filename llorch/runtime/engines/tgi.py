"""Hugging Face text-generation-inference (`text-generation-launcher`): launch flags and its native
`/generate_stream` protocol.

Wire format followed: TGI 3.x, `router/src/server.rs` (`generate_stream_internal`, the
`From<InferError> for Event` error events), `router/src/lib.rs` (`StreamResponse`,
`StreamDetails`, `Info`) and `router/src/validation.rs` (see tests/fixtures/engines/tgi/NOTE.md).
`/generate_stream` answers 200 and reports even validation and overload errors as an event
`data:{"error": ..., "error_type": ...}`; only a body that fails to deserialize gets a 4xx.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import ServerSentEvent

from llorch.resources import PoolSpec, Workload
from llorch.resources.errors import ErrorCode
from llorch.runtime.engines.base import (
    CompletionRequest,
    Finished,
    Launch,
    LaunchRequest,
    StreamEvent,
    Token,
    Upstream,
)
from llorch.runtime.engines.probe import answers_ok, gauge_sum, json_of, json_text, positive_int
from llorch.runtime.engines.relay import CHAT, COMPLETIONS
from llorch.runtime.engines.sse import SseCompletion, decode, json_body, request_headers, status_error
from llorch.runtime.errors import EngineError

ENGINE = "tgi"

# TGI's FinishReason, serialized snake_case, → the contract's finish reasons.
_FINISH = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


class Tgi:
    name = ENGINE
    # TGI's grammars are JSON Schema and regex (router/src/lib.rs, GrammarType): no GBNF.
    structured_outputs = frozenset({"json_schema"})
    # The Messages API (`router/src/server.rs`: /v1/chat/completions, /v1/completions) takes
    # `stream_options.include_usage` and then ends the stream with a usage chunk (`chat.rs`).
    stream_usage = True

    def relay_paths(self, spec: PoolSpec) -> frozenset[str]:
        """Text generation only: TGI computes no embeddings or rerank scores (that is TEI)."""
        return frozenset({CHAT, COMPLETIONS}) if spec.workload is Workload.COMPLETION else frozenset()

    def launch(self, request: LaunchRequest) -> Launch:
        spec = request.spec
        shards = max(1, len(request.gpus.indexes))
        argv = [
            str(request.binary),
            "--model-id", str(request.model_path),
            "--hostname", "127.0.0.1",
            "--port", str(request.port),
            "--num-shard", str(shards),
            # Past this many in flight TGI answers "Model is overloaded" instead of queueing.
            "--max-concurrent-requests", str(spec.slots),
            "--max-total-tokens", str(spec.context),
            "--max-input-tokens", str(spec.context - 1),
            # Two TGI replicas on one machine would otherwise share the router-to-shard socket
            # (default /tmp/text-generation-server) and talk to each other's shards.
            "--shard-uds-path", f"/tmp/llorch-tgi-{request.port}",
        ]  # fmt: skip
        if shards > 1:
            # torch.distributed's rendezvous port (default 29500) would collide the same way.
            argv += ["--master-port", str(master_port(request.port))]
        argv += spec.engine_args
        return Launch(argv=argv, env=request.gpus.env())

    def healthy(self, client: httpx.Client, upstream: Upstream) -> bool:
        """`/health` is 200 once the shards answer; 503 `{"error":"unhealthy"}` otherwise."""
        return answers_ok(client, upstream, "/health")

    def busy_slots(self, client: httpx.Client, upstream: Upstream) -> int | None:
        """TGI reports its current batch size on /metrics (`tgi_batch_current_size`)."""
        return gauge_sum(client, upstream, "tgi_batch_current_size")

    def kv_cache_usage(self, client: httpx.Client, upstream: Upstream) -> float | None:
        """TGI's /metrics counts batches and tokens, not KV cache blocks in use."""
        return None

    def version(self, client: httpx.Client, upstream: Upstream) -> str | None:
        """`/info` carries the router's `version` (and `sha`, `model_id`, `max_total_tokens`...)."""
        return json_text(client, upstream, "/info", "version")

    def context_per_slot(self, client: httpx.Client, upstream: Upstream) -> int | None:
        """`/info` → `max_total_tokens`, the router's bound on prompt + output per request."""
        info = json_of(client, upstream, "/info")
        return positive_int(info.get("max_total_tokens")) if isinstance(info, dict) else None

    def complete(self, client: httpx.Client, upstream: Upstream, request: CompletionRequest) -> SseCompletion:
        return SseCompletion(
            client,
            f"{upstream.base_url}/generate_stream",
            generate_body(request),
            request_headers(upstream.headers, request.correlation_id),
            engine=ENGINE,
            parse=parse_stream,
            error=error_for,
        )


def master_port(port: int) -> int:
    """A rendezvous port derived from the HTTP port so argv stays a pure function of the request
    (the pool controller re-derives it to adopt running workers). If it happens to be taken, the
    shards fail, TGI exits and the controller restarts the replica on a fresh port."""
    return port + 1 if port < 65535 else port - 1


def generate_body(request: CompletionRequest) -> dict[str, Any]:
    # TGI samples whenever a warper is set (temperature != 1, top_k, top_p < 1), whatever
    # do_sample says, and rejects temperature 0: greedy means sending none of them.
    greedy = request.temperature is not None and request.temperature == 0
    parameters: dict[str, Any] = {
        "max_new_tokens": request.max_tokens,
        "details": True,
        "do_sample": request.temperature is not None and request.temperature > 0,
    }
    if request.seed is not None:
        parameters["seed"] = request.seed
    if not greedy:
        if request.temperature is not None:
            parameters["temperature"] = request.temperature
        # TGI wants 0 < top_p < 1 and top_k > 0; 1.0 and 0 (or -1) mean "off" elsewhere, so drop them.
        if request.top_p is not None and request.top_p < 1.0:
            parameters["top_p"] = request.top_p
        if request.top_k is not None and request.top_k > 0:
            parameters["top_k"] = request.top_k
    if request.stop:
        parameters["stop"] = list(request.stop)
    if request.json_schema is not None:
        parameters["grammar"] = {"type": "json", "value": request.json_schema}
    return {"inputs": request.prompt, "parameters": parameters}


def parse_stream(events: Iterator[ServerSentEvent]) -> Iterator[StreamEvent]:
    for sent, event in enumerate(events, start=1):
        chunk = decode(event, ENGINE)
        if "error" in chunk:
            raise _mapped(str(chunk.get("error_type", "")), str(chunk["error"]), 200)
        token = chunk.get("token") or {}
        # Special tokens (the final EOS) are generated tokens, but TGI leaves their text out of
        # generated_text, so they become frames with no text.
        yield Token("" if token.get("special") else str(token.get("text", "")))
        if chunk.get("generated_text") is not None:
            yield from _finish(sent, chunk.get("details"))
            return


def _finish(sent: int, details: Any) -> Iterator[StreamEvent]:
    details = details if isinstance(details, dict) else {}
    counted = details.get("generated_tokens")
    total = max(sent, counted) if isinstance(counted, int) else sent
    for _ in range(total - sent):
        yield Token("")
    prompt = details.get("input_length")
    yield Finished(
        tokens_out=total,
        tokens_in=prompt if isinstance(prompt, int) else None,
        finish_reason=_FINISH.get(str(details.get("finish_reason")), "stop"),
    )


def error_for(status: int, body: str) -> EngineError:
    """TGI's error body is `{"error", "error_type"}`; a body axum could not deserialize comes back
    as plain text with 422."""
    payload = json_body(body)
    return _mapped(str(payload.get("error_type", "")), str(payload.get("error") or body[:500]), status)


def _mapped(error_type: str, message: str, status: int) -> EngineError:
    if error_type == "validation":
        return EngineError(ErrorCode.INVALID_PARAMS, message, engine=ENGINE)
    if error_type == "overloaded":
        return EngineError(ErrorCode.REPLICA_EXHAUSTED, message, retriable=True, engine=ENGINE)
    if error_type in ("incomplete_generation", "incomplete_generation_stream"):
        # The router lost the shard's stream: the same as losing ours.
        return EngineError(ErrorCode.WORKER_RESET, message, retriable=True, engine=ENGINE)
    if status == 200:
        return EngineError(
            ErrorCode.INTERNAL, f"tgi error ({error_type or 'unknown'}): {message}", engine=ENGINE
        )
    return status_error(status, message, ENGINE)
