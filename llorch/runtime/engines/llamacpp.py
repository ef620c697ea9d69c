"""llama.cpp's `llama-server`: launch flags and its native /completion streaming protocol."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import EventSource

from llorch.runtime.engines.base import (
    CompletionRequest,
    Finished,
    Launch,
    LaunchRequest,
    StreamEvent,
    Token,
    Upstream,
)
from llorch.runtime.errors import EngineError

ENGINE = "llamacpp"

# llama-server's stop_type → OpenAI-style finish reasons, which the contract uses.
_FINISH = {"eos": "stop", "word": "stop", "limit": "length", "none": "stop"}


class LlamaCpp:
    name = ENGINE

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
        ]  # fmt: skip
        env: dict[str, str] = {}
        gpus = request.gpus
        if not gpus.indexes:
            # Hide every GPU: a CPU pool must not grab VRAM a GPU pool was promised.
            argv += ["--n-gpu-layers", "0"]
            env["CUDA_VISIBLE_DEVICES"] = ""
        else:
            # NVML numbers GPUs in PCI order; CUDA's default is fastest first. Say which we mean.
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
            env["CUDA_VISIBLE_DEVICES"] = gpus.cuda_visible_devices
            argv += ["--n-gpu-layers", str(spec.gpus.layers if spec.gpus.layers is not None else 999)]
            if len(gpus.indexes) > 1:
                argv += [
                    "--split-mode",
                    "layer",
                    "--tensor-split",
                    ",".join(f"{s:g}" for s in gpus.tensor_split),
                ]
        argv += spec.engine_args
        return Launch(argv=argv, env=env)

    def healthy(self, client: httpx.Client, upstream: Upstream) -> bool:
        """200 once the model is loaded; 503 while loading; nothing at all before it listens."""
        try:
            resp = client.get(f"{upstream.base_url}/health", headers=dict(upstream.headers), timeout=1.0)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def version(self, client: httpx.Client, upstream: Upstream) -> str | None:
        """`/props` carries `build_info` ("b1234-abcdef") in current llama-server releases."""
        try:
            resp = client.get(f"{upstream.base_url}/props", headers=dict(upstream.headers), timeout=2.0)
            build = resp.json().get("build_info") if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        return str(build) if build else None

    def complete(self, client: httpx.Client, upstream: Upstream, request: CompletionRequest) -> _Stream:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "n_predict": request.max_tokens,
            "stream": True,
            "cache_prompt": True,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.top_k is not None:
            body["top_k"] = request.top_k
        if request.stop:
            body["stop"] = request.stop
        headers = dict(upstream.headers)
        if request.correlation_id:
            headers["X-Correlation-Id"] = request.correlation_id
        return _Stream(client, f"{upstream.base_url}/completion", body, headers)


class _Stream:
    def __init__(self, client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        self._client = client
        self._url = url
        self._body = body
        self._headers = headers
        self._response: httpx.Response | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            response = self._response
        if response is not None:
            response.close()

    def __iter__(self) -> Iterator[StreamEvent]:
        request = self._client.build_request(
            "POST", self._url, json=self._body, headers=self._headers, timeout=httpx.Timeout(10.0, read=None)
        )
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise EngineError(
                "WORKER_RESET", f"llama-server unreachable: {exc}", retriable=True, engine=ENGINE
            ) from exc
        with self._lock:
            self._response = response
        try:
            if self._closed.is_set():
                return
            if response.status_code != 200:
                response.read()
                raise _engine_error(response.status_code, response.text)
            yield from self._events(response)
        except httpx.HTTPError as exc:
            if self._closed.is_set():
                return
            raise EngineError(
                "WORKER_RESET", f"llama-server stream broke: {exc}", retriable=True, engine=ENGINE
            ) from exc
        finally:
            response.close()

    def _events(self, response: httpx.Response) -> Iterator[StreamEvent]:
        sent = 0
        for sse in EventSource(response).iter_sse():
            if self._closed.is_set():
                return
            chunk = json.loads(sse.data)
            if "error" in chunk:
                error = chunk["error"]
                raise _engine_error(int(error.get("code", 500)), json.dumps(chunk))
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
        raise EngineError(
            "WORKER_RESET",
            "llama-server ended the stream without a final chunk",
            retriable=True,
            engine=ENGINE,
        )


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
            "POOL_UNREADY", f"llama-server is not ready: {message}", retriable=True, engine=ENGINE
        )
    if status in (400, 404, 422) or kind in (
        "invalid_request_error",
        "exceed_context_size_error",
        "not_supported_error",
    ):
        return EngineError("INVALID_PARAMS", message, engine=ENGINE)
    return EngineError("INTERNAL", f"llama-server error {status}: {message}", engine=ENGINE)
