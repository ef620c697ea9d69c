"""llama.cpp's `llama-server`: launch flags and its native /completion streaming protocol."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import psutil
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
from llorch.runtime.engines.probe import answers_ok, gauge_max, json_of, json_text, positive_int
from llorch.runtime.engines.relay import (
    CHAT,
    COMPLETIONS,
    COUNT_TOKENS,
    EMBEDDINGS,
    MESSAGES,
    RERANK,
    RESPONSES,
)
from llorch.runtime.engines.sse import SseCompletion, decode, request_headers
from llorch.runtime.errors import EngineError

ENGINE = "llamacpp"

_THREAD_FLAGS = ("-t", "--threads")


def cpu_threads() -> int:
    """Decode threads for a replica on the CPU: llama.cpp's own default (one per physical core
    this process may use) less one. Its threads spin-wait for each other, so without a core
    left over they fight llorchd, which relays every token: on 2 cores, 1 thread streamed more
    tokens through llorch at every concurrency the bench measures than 2 threads did. Not
    divided among a pool's replicas: the count would be part of every replica's command line,
    which the pool's revision hashes, so scaling would roll the replicas already serving."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or usable
    return max(1, min(usable, physical) - 1)


def cpu_thread_args(engine_args: Sequence[str]) -> list[str]:
    """`--threads N` for a replica on the CPU, unless its engine args choose the threads."""
    chosen = any(arg in _THREAD_FLAGS or arg.startswith("--threads=") for arg in engine_args)
    return [] if chosen else ["--threads", str(cpu_threads())]


# llama-server's stop_type → OpenAI-style finish reasons, which the contract uses.
_FINISH = {"eos": "stop", "word": "stop", "limit": "length", "none": "stop"}


# What llama-server serves in each mode: its chat, completion, Responses and Anthropic Messages
# endpoints share one text mode; --embeddings and --reranking each turn the server into that.
_PATHS = {
    Workload.COMPLETION: frozenset({CHAT, COMPLETIONS, RESPONSES, MESSAGES, COUNT_TOKENS}),
    Workload.EMBEDDING: frozenset({EMBEDDINGS}),
    Workload.RERANK: frozenset({RERANK}),
}


def workload_args(spec: PoolSpec) -> list[str]:
    """--jinja: the model's own chat template (tool use included) instead of llama-server's
    built-in guess; embedding pools pool as the spec says, or as the model's metadata does."""
    if spec.workload is Workload.EMBEDDING:
        return ["--embeddings", *(["--pooling", spec.pooling] if spec.pooling else [])]
    if spec.workload is Workload.RERANK:
        return ["--reranking"]
    return ["--jinja"]


class LlamaCpp:
    name = ENGINE
    # /completion takes `json_schema` (the server derives a grammar from it) and `grammar` (GBNF).
    structured_outputs = frozenset({"json_schema", "grammar"})
    stream_usage = True

    def relay_paths(self, spec: PoolSpec) -> frozenset[str]:
        return _PATHS[spec.workload]

    def launch(self, request: LaunchRequest) -> Launch:
        spec = request.spec
        # -c is the whole KV cache; llama-server divides it among the -np slots, and the pool's
        # `context` is what each slot (each task) gets.
        argv = [
            str(request.binary),
            "--model", str(request.model_path),
            "--alias", request.model_name,
            "--host", "127.0.0.1",
            "--port", str(request.port),
            "--ctx-size", str(spec.context * spec.slots),
            "--parallel", str(spec.slots),
            "--metrics",
            "--slots",
            "--no-webui",
            *workload_args(spec),
        ]  # fmt: skip
        gpus = request.gpus
        if not gpus.indexes:
            argv += ["--n-gpu-layers", "0", *cpu_thread_args(spec.engine_args)]
        else:
            argv += ["--n-gpu-layers", str(spec.gpus.layers if spec.gpus.layers is not None else 999)]
            if len(gpus.indexes) > 1:
                argv += [
                    "--split-mode",
                    "layer",
                    "--tensor-split",
                    ",".join(f"{s:g}" for s in gpus.tensor_split),
                ]
        argv += spec.engine_args
        return Launch(argv=argv, env=gpus.env())

    def healthy(self, client: httpx.Client, upstream: Upstream) -> bool:
        """200 once the model is loaded; 503 while loading; nothing at all before it listens."""
        return answers_ok(client, upstream, "/health")

    def busy_slots(self, client: httpx.Client, upstream: Upstream) -> int | None:
        """From `/slots` (on with --slots): the engine's truth about which slots still decode."""
        slots = json_of(client, upstream, "/slots")
        if not isinstance(slots, list):
            return None
        return sum(1 for slot in slots if isinstance(slot, dict) and slot.get("is_processing"))

    def kv_cache_usage(self, client: httpx.Client, upstream: Upstream) -> float | None:
        """`llamacpp:kv_cache_usage_ratio` on /metrics (on with --metrics) where the release still
        exports it; later releases dropped it, and then `/slots` (on with --slots) tells: the
        tokens each slot holds (its prompt, and what it decoded so far while it runs) of the
        slots' contexts. A finished slot reports its prompt only, though its answer stays
        cached too, so this can read low between tasks, never high."""
        reported = gauge_max(client, upstream, "llamacpp:kv_cache_usage_ratio")
        if reported is not None:
            return reported
        slots = json_of(client, upstream, "/slots")
        if not isinstance(slots, list):
            return None
        held = room = 0
        for slot in slots:
            if not isinstance(slot, dict):
                continue
            room += positive_int(slot.get("n_ctx")) or 0
            held += positive_int(slot.get("n_prompt_tokens")) or 0
            decoding = slot.get("next_token")
            if isinstance(decoding, list) and decoding and isinstance(decoding[0], dict):
                held += positive_int(decoding[0].get("n_decoded")) or 0
        return min(1.0, held / room) if room else None

    def version(self, client: httpx.Client, upstream: Upstream) -> str | None:
        """`/props` carries `build_info` ("b1234-abcdef") in current llama-server releases."""
        return json_text(client, upstream, "/props", "build_info")

    def context_per_slot(self, client: httpx.Client, upstream: Upstream) -> int | None:
        """`/props` → `default_generation_settings.n_ctx`: the slot's context after the server's
        own cap at the model's trained context (it logs "the slot context (N) exceeds the
        training context of the model (M) - capping")."""
        props = json_of(client, upstream, "/props")
        settings = props.get("default_generation_settings") if isinstance(props, dict) else None
        return positive_int(settings.get("n_ctx")) if isinstance(settings, dict) else None

    def complete(self, client: httpx.Client, upstream: Upstream, request: CompletionRequest) -> SseCompletion:
        return SseCompletion(
            client,
            f"{upstream.base_url}/completion",
            _completion_body(request),
            request_headers(upstream.headers, request.correlation_id),
            engine=ENGINE,
            parse=_parse,
            error=_engine_error,
        )


def _completion_body(request: CompletionRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": request.prompt,
        "n_predict": request.max_tokens,
        "stream": True,
        "cache_prompt": request.cache_prompt,
        **request.sampling(),
        **_constraints(request),
    }
    if request.stop:
        body["stop"] = request.stop
    return body


def _constraints(request: CompletionRequest) -> dict[str, Any]:
    """llama-server's own names on /completion, the same as the task's."""
    chosen = {"json_schema": request.json_schema, "grammar": request.grammar}
    return {name: value for name, value in chosen.items() if value is not None}


def _stream_error(error: Any) -> EngineError:
    code = error.get("code", 500) if isinstance(error, dict) else 500
    return _engine_error(int(code), json.dumps({"error": error}))


def _parse(events: Iterator[ServerSentEvent]) -> Iterator[StreamEvent]:
    """llama-server's /completion chunks: one per generated token, then one with `stop: true`."""
    sent = 0
    for sse in events:
        chunk = decode(sse, ENGINE)
        if "error" in chunk:
            raise _stream_error(chunk["error"])
        decoded = int(chunk.get("tokens_predicted", sent))
        if chunk.get("stop"):
            # Tokens held back at the very end (an unfinished UTF-8 character) never got a
            # partial chunk of their own; they still count as generated tokens.
            for _ in range(max(0, decoded - sent)):
                yield Token("")
                sent += 1
            reason = _FINISH.get(str(chunk.get("stop_type", "none")), "stop")
            yield Finished(tokens_out=sent, tokens_in=chunk.get("tokens_evaluated"), finish_reason=reason)
            return
        if not chunk.get("tokens"):
            continue  # the "headers now" chunk llama-server sends when a slot picks the task up
        # A chunk carries one token; when earlier tokens were held back (an unfinished UTF-8
        # character), tokens_predicted jumps and their text arrives here, so emit the held
        # ones as empty tokens first and keep one frame per generated token.
        for _ in range(max(0, decoded - sent - 1)):
            yield Token("")
            sent += 1
        yield Token(str(chunk.get("content", "")))
        sent += 1


def _engine_error(status: int, body: str) -> EngineError:
    """llama-server answers {"error": {"code", "message", "type"}}; map its types to contract codes."""
    try:
        error = json.loads(body).get("error", {})
        message = str(error.get("message", body))
        kind = str(error.get("type", ""))
    except (ValueError, AttributeError):
        message, kind = body, ""
    if status == 503 or kind == "unavailable_error":
        return EngineError(
            ErrorCode.POOL_UNREADY, f"llama-server is not ready: {message}", retriable=True, engine=ENGINE
        )
    if status in (400, 404, 422) or kind in (
        "invalid_request_error",
        "exceed_context_size_error",
        "not_supported_error",
    ):
        return EngineError(ErrorCode.INVALID_PARAMS, message, engine=ENGINE)
    return EngineError(ErrorCode.INTERNAL, f"llama-server error {status}: {message}", engine=ENGINE)
