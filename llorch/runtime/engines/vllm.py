"""vLLM's OpenAI-compatible server (`vllm serve`): launch flags, and streamed `/v1/completions`.

Wire format followed: vLLM 0.10-0.11, `vllm/entrypoints/openai/serving_completion.py` and
`protocol.py` (see tests/fixtures/engines/vllm/NOTE.md), parsed by
llorch.runtime.engines.openai_wire; an error after the stream started is followed by `[DONE]`.
A task's output constraint goes in `structured_outputs`, which vLLM reads from 0.10.2 on (the
`guided_json`/`guided_grammar` fields it replaced were removed in 0.12).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx
from httpx_sse import ServerSentEvent

from llorch.resources import PoolSpec, Workload
from llorch.runtime.engines import openai_wire
from llorch.runtime.engines.base import CompletionRequest, Launch, LaunchRequest, StreamEvent, Upstream
from llorch.runtime.engines.openai_wire import completion_body
from llorch.runtime.engines.probe import answers_ok, gauge_max, gauge_sum, json_of, json_text, positive_int
from llorch.runtime.engines.relay import CHAT, COMPLETIONS, EMBEDDINGS, RERANK, RESPONSES
from llorch.runtime.engines.sse import SseCompletion, json_body, request_headers, status_error
from llorch.runtime.errors import EngineError

ENGINE = "vllm"

DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
# vLLM needs some headroom beyond its budget (CUDA context, activations) and refuses tiny budgets.
_MIN_UTILIZATION, _MAX_UTILIZATION = 0.05, 0.95


# vLLM's OpenAI server (`vllm/entrypoints/openai/api_server.py`) routes every one of these; a
# generative model answers the text ones, a pooling model embeddings, a cross-encoder rerank.
_PATHS = {
    Workload.COMPLETION: frozenset({CHAT, COMPLETIONS, RESPONSES}),
    Workload.EMBEDDING: frozenset({EMBEDDINGS}),
    Workload.RERANK: frozenset({RERANK}),
}


class VLlm:
    name = ENGINE
    # `structured_outputs` (vLLM >= 0.10.2): its `grammar` backends (xgrammar, guidance) read GBNF.
    structured_outputs = frozenset({"json_schema", "grammar"})
    stream_usage = True

    def relay_paths(self, spec: PoolSpec) -> frozenset[str]:
        return _PATHS[spec.workload]

    def launch(self, request: LaunchRequest) -> Launch:
        spec = request.spec
        gpus = request.gpus
        utilization = gpu_memory_utilization(spec.gpus.vram_mib, request.gpus.total_mib)
        argv = [
            str(request.binary), "serve", str(request.model_path),
            "--host", "127.0.0.1",
            "--port", str(request.port),
            "--served-model-name", request.model_name,
            # Unlike llama-server, vLLM's KV cache is shared by all sequences: the pool's per-slot
            # context is the longest sequence, and slots cap how many run at once.
            "--max-model-len", str(spec.context),
            "--max-num-seqs", str(spec.slots),
            # A CPU pool (a vLLM CPU build) still runs one worker.
            "--tensor-parallel-size", str(max(1, len(gpus.indexes))),
            "--gpu-memory-utilization", f"{utilization:g}",
        ]  # fmt: skip
        argv += spec.engine_args
        return Launch(argv=argv, env=gpus.env())

    def healthy(self, client: httpx.Client, upstream: Upstream) -> bool:
        """`/health` answers 200 once the engine core is up, and 503 if it died underneath."""
        return answers_ok(client, upstream, "/health")

    def busy_slots(self, client: httpx.Client, upstream: Upstream) -> int | None:
        """vLLM reports the sequences in its running batch on /metrics (`vllm:num_requests_running`)."""
        return gauge_sum(client, upstream, "vllm:num_requests_running")

    def kv_cache_usage(self, client: httpx.Client, upstream: Upstream) -> float | None:
        """vLLM's V1 engine exports `vllm:kv_cache_usage_perc`, the V0 engine
        `vllm:gpu_cache_usage_perc`; both are fractions (1 = full) despite the name."""
        return gauge_max(client, upstream, "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")

    def version(self, client: httpx.Client, upstream: Upstream) -> str | None:
        return json_text(client, upstream, "/version", "version")

    def context_per_slot(self, client: httpx.Client, upstream: Upstream) -> int | None:
        """`/v1/models` → the served model's card, `max_model_len` (vLLM's `ModelCard`)."""
        listing = json_of(client, upstream, "/v1/models")
        cards = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(cards, list):
            return None
        for card in cards:
            if isinstance(card, dict) and card.get("id") == upstream.model:
                return positive_int(card.get("max_model_len"))
        return None

    def complete(self, client: httpx.Client, upstream: Upstream, request: CompletionRequest) -> SseCompletion:
        body = completion_body(upstream.model, request)
        constraints = structured_outputs(request)
        if constraints:
            body["structured_outputs"] = constraints
        return SseCompletion(
            client,
            f"{upstream.base_url}/v1/completions",
            body,
            request_headers(upstream.headers, request.correlation_id),
            engine=ENGINE,
            parse=parse_stream,
            error=error_for,
        )


def structured_outputs(request: CompletionRequest) -> dict[str, Any]:
    """vLLM's StructuredOutputsParams for the task's constraint (also what Triton's vLLM backend
    takes): `json` is the schema, `grammar` the grammar."""
    chosen = {"json": request.json_schema, "grammar": request.grammar}
    return {name: value for name, value in chosen.items() if value is not None}


def gpu_memory_utilization(vram_mib: int | None, total_mib: Sequence[int]) -> float:
    """vLLM's budget is a fraction of each GPU's total memory, and tensor parallelism splits the
    replica evenly, so the fraction is the per-GPU share of `vram_mib` over the smallest GPU."""
    if vram_mib is None or not total_mib:
        return DEFAULT_GPU_MEMORY_UTILIZATION
    share = vram_mib / len(total_mib) / min(total_mib)
    return round(min(_MAX_UTILIZATION, max(_MIN_UTILIZATION, share)), 3)


def parse_stream(events: Iterator[ServerSentEvent]) -> Iterator[StreamEvent]:
    return openai_wire.parse_stream(events, engine=ENGINE, stream_error=_stream_error)


def _stream_error(error: Any) -> EngineError:
    if isinstance(error, dict):
        return _mapped(
            int(error.get("code") or 500), str(error.get("message", error)), str(error.get("type", ""))
        )
    return _mapped(500, str(error), "")


def error_for(status: int, body: str) -> EngineError:
    """vLLM >= 0.10 answers `{"error": {"message", "type", "param", "code"}}`; older releases put
    the same fields at the top level with `"object": "error"`."""
    payload = json_body(body)
    nested = payload.get("error")
    error: dict[str, Any] = nested if isinstance(nested, dict) else payload
    message = str(error.get("message") or body[:500])
    return _mapped(status, message, str(error.get("type", "")))


def _mapped(status: int, message: str, kind: str) -> EngineError:
    if kind == "NotFoundError":
        status = 404
    return status_error(status, message, ENGINE)
