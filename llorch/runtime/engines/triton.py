"""NVIDIA Triton Inference Server (`tritonserver`) serving an LLM through the KServe v2 generate
extension, `POST /v2/models/{model}/generate_stream`.

Backend convention: Triton's **vLLM backend** (triton-inference-server/vllm_backend), not the
TensorRT-LLM ensemble. The generate extension turns top-level request fields that name a model
input into input tensors, so the request carries the backend's own inputs: `text_input`,
`stream`, `exclude_input_in_output`, `sampling_parameters` (a JSON *string* of vLLM
SamplingParams: max_tokens, seed, temperature, top_p, top_k, stop, and a task's output
constraint as `structured_outputs`, itself a JSON string the backend decodes into vLLM's
StructuredOutputsParams from r25.11 on; older backends fail such a request, an unknown key
failing the whole SamplingParams) and the `return_*` switches for the additional outputs
`finish_reason`, `num_input_tokens`, `num_output_tokens` (vLLM backend
r24.12 and later; on older backends they are ignored as unknown request parameters).

Each event is `data: {"model_name", "model_version", "text_output", ...outputs}` where
`text_output` is the new text since the previous event. Token counts: with
`num_output_tokens` an event counts as that many tokens; without it (older backends, other
backends) every event with text counts as one token, which is exact for vLLM streaming one
decode step per response but undercounts when a step yields several tokens. Errors arrive as
`{"error": "..."}`: as a JSON body with an error status before inference starts, or as an event,
whose HTTP status is the error's when it is the first response (Triton sets the status from the
first response). See tests/fixtures/engines/triton/NOTE.md.

The model repository is the operator's: its `config.pbtxt`/`model.json` set max_num_seqs,
max_model_len and tensor_parallel_size, which llorch cannot pass on the command line. Use
`instance_group { kind: KIND_MODEL }` so the backend keeps the CUDA_VISIBLE_DEVICES llorch sets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
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
from llorch.runtime.engines.probe import answers_ok, json_text
from llorch.runtime.engines.relay import CHAT, COMPLETIONS, EMBEDDINGS
from llorch.runtime.engines.sse import SseCompletion, decode, json_body, request_headers, status_error
from llorch.runtime.engines.vllm import structured_outputs
from llorch.runtime.errors import EngineError

ENGINE = "triton"

# vLLM's finish reasons as the vLLM backend stringifies them; "None" while still generating.
_FINISH = {"length": "length", "stop": "stop", "abort": "stop"}
_CONTEXT_ERRORS = ("maximum model length", "maximum context length", "is too long")


# Triton's OpenAI-compatible frontend (server repo, python/openai/openai_frontend: routers
# chat.py, completions.py, embeddings.py), which a pool names with capabilities.openaiFrontend.
_FRONTEND_PATHS = {
    Workload.COMPLETION: frozenset({CHAT, COMPLETIONS}),
    Workload.EMBEDDING: frozenset({EMBEDDINGS}),
    Workload.RERANK: frozenset[str](),
}


class Triton:
    name = ENGINE
    # The vLLM backend's `structured_outputs` sampling parameter (r25.11 and later).
    structured_outputs = frozenset({"json_schema", "grammar"})
    # The frontend's streams end with a usage chunk on `stream_options.include_usage`
    # (`engine/triton_engine.py`).
    stream_usage = True

    def relay_paths(self, spec: PoolSpec) -> frozenset[str]:
        """None on tritonserver's own KServe v2 HTTP; the frontend's where the pool says it runs one."""
        return _FRONTEND_PATHS[spec.workload] if spec.capabilities.openai_frontend else frozenset()

    def launch(self, request: LaunchRequest) -> Launch:
        # gRPC and metrics are switched off rather than given ports: llorch talks HTTP only and
        # scrapes nothing, and each extra fixed port is one more collision between replicas.
        argv = [
            str(request.binary),
            f"--model-repository={request.model_path}",
            "--http-address=127.0.0.1",
            f"--http-port={request.port}",
            "--allow-grpc=false",
            "--allow-metrics=false",
            # Python-based backends (vLLM's is one) talk to their stub through /dev/shm regions
            # named by this prefix; two servers sharing a prefix corrupt each other.
            f"--backend-config=python,shm-region-prefix-name=llorch{request.port}",
        ]
        argv += request.spec.engine_args
        return Launch(argv=argv, env=request.gpus.env())

    def healthy(self, client: httpx.Client, upstream: Upstream) -> bool:
        """Server ready (every model loaded, by default strict readiness) and our model ready."""
        return answers_ok(client, upstream, "/v2/health/ready", f"/v2/models/{upstream.model}/ready")

    def busy_slots(self, client: httpx.Client, upstream: Upstream) -> int | None:
        """Triton's metrics count requests per model, not sequences in a batch: it cannot tell."""
        return None

    def kv_cache_usage(self, client: httpx.Client, upstream: Upstream) -> float | None:
        """Triton's metrics are per model and per GPU, with nothing about a backend's KV cache."""
        return None

    def version(self, client: httpx.Client, upstream: Upstream) -> str | None:
        """Server metadata, `GET /v2` → `{"name": "triton", "version": "2.x.y", "extensions": [...]}`."""
        return json_text(client, upstream, "/v2", "version")

    def context_per_slot(self, client: httpx.Client, upstream: Upstream) -> int | None:
        """KServe v2 model metadata (`/v2/models/{m}`) names tensors, not a context size, and the
        backend's own limit (vLLM's max_model_len) is not exposed over HTTP: the pool's word
        stands."""
        return None

    def complete(self, client: httpx.Client, upstream: Upstream, request: CompletionRequest) -> SseCompletion:
        return SseCompletion(
            client,
            f"{upstream.base_url}/v2/models/{upstream.model}/generate_stream",
            generate_body(request),
            request_headers(upstream.headers, request.correlation_id),
            engine=ENGINE,
            parse=stream_parser(request.max_tokens),
            error=error_for,
        )


def generate_body(request: CompletionRequest) -> dict[str, Any]:
    sampling: dict[str, Any] = {"max_tokens": request.max_tokens, **request.sampling()}
    if request.stop:
        sampling["stop"] = list(request.stop)
    constraints = structured_outputs(request)
    if constraints:
        # A JSON string inside the JSON string: the backend decodes it into StructuredOutputsParams.
        sampling["structured_outputs"] = json.dumps(constraints, separators=(",", ":"))
    return {
        "text_input": request.prompt,
        "stream": True,
        "exclude_input_in_output": True,
        "return_finish_reason": True,
        "return_num_input_tokens": True,
        "return_num_output_tokens": True,
        "sampling_parameters": json.dumps(sampling, separators=(",", ":")),
    }


def stream_parser(max_tokens: int) -> Callable[[Iterator[ServerSentEvent]], Iterator[StreamEvent]]:
    def parse(events: Iterator[ServerSentEvent]) -> Iterator[StreamEvent]:
        sent = 0
        tokens_in: int | None = None
        reports_finish = False
        for event in events:
            chunk = decode(event, ENGINE)
            if "error" in chunk:
                raise _mapped(500, str(chunk["error"]))
            tokens_in = _number(chunk.get("num_input_tokens"), tokens_in)
            for token in _tokens(chunk):
                yield token
                sent += 1
            reason = _scalar(chunk.get("finish_reason"))
            reports_finish = reports_finish or reason is not None
            if reason not in (None, "None"):
                yield Finished(
                    tokens_out=sent, tokens_in=tokens_in, finish_reason=_FINISH.get(str(reason), "stop")
                )
                return
        if not reports_finish:
            # A backend without finish_reason: the end of the body is the end of generation,
            # and running into max_tokens is the only way to tell "length" from "stop".
            yield Finished(
                tokens_out=sent, tokens_in=tokens_in, finish_reason="length" if sent >= max_tokens else "stop"
            )

    return parse


def _tokens(chunk: dict[str, Any]) -> Iterator[Token]:
    text = str(_scalar(chunk.get("text_output")) or "")
    counted = _number(chunk.get("num_output_tokens"), None)
    frames = counted if counted is not None else (1 if text else 0)
    if text and frames == 0:
        frames = 1  # text is never dropped, whatever the count says
    # Text that needed several tokens (an unfinished UTF-8 character held back) arrives with
    # the last of them: the others are frames with no text.
    for _ in range(frames - 1):
        yield Token("")
    if frames:
        yield Token(text)


def _scalar(value: Any) -> Any:
    # Triton writes a one-element output tensor as a bare value; accept the list form too.
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _number(value: Any, default: int | None) -> int | None:
    value = _scalar(value)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def error_for(status: int, body: str) -> EngineError:
    """`{"error": "..."}`, or the same as an SSE event when the first response was the error."""
    payload = json_body(body)
    if not payload and body.lstrip().startswith("data:"):
        payload = json_body(body.lstrip()[len("data:") :].split("\n", 1)[0])
    return _mapped(status, str(payload.get("error") or body[:500]))


def _mapped(status: int, message: str) -> EngineError:
    lowered = message.lower()
    if "unknown model" in lowered:
        # Triton reports a model it does not serve as INVALID_ARG (400), not 404.
        return EngineError(
            ErrorCode.POOL_UNAVAILABLE, f"triton does not serve the model: {message}", engine=ENGINE
        )
    if any(marker in lowered for marker in _CONTEXT_ERRORS):
        # The vLLM backend wraps vLLM's own validation errors as INTERNAL (500).
        return EngineError(ErrorCode.INVALID_PARAMS, message, engine=ENGINE)
    return status_error(status, message, ENGINE)
