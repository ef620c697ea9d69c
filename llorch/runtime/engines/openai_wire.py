"""OpenAI's text-completion wire format, as vLLM's OpenAI-compatible server speaks it: the
request body and the streamed chunks. With `stream_options.include_usage` the stream is one
chunk per decode step, then a chunk with `choices: []` and the request's `usage`, then
`data: [DONE]`. Errors raised after the stream started arrive as `data: {"error": {...}}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from httpx_sse import ServerSentEvent

from llorch.runtime.engines.base import CompletionRequest, Finished, StreamEvent, Token
from llorch.runtime.engines.sse import decode
from llorch.runtime.errors import EngineError


def completion_body(model: str, request: CompletionRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "prompt": request.prompt,
        "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
        # top_k is an extension to OpenAI's schema, which vLLM takes.
        **request.sampling(),
    }
    if request.stop:
        body["stop"] = request.stop
    return body


def parse_stream(
    events: Iterator[ServerSentEvent], *, engine: str, stream_error: Callable[[Any], EngineError]
) -> Iterator[StreamEvent]:
    """Completion chunks carry the new text in `choices[].text`."""
    sent = 0
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    for event in events:
        if event.data == "[DONE]":
            if finish_reason is None:
                break  # no choice ever finished: the stream is incomplete, not done
            yield from _finish(sent, usage, finish_reason)
            return
        chunk = decode(event, engine)
        if "error" in chunk:
            raise stream_error(chunk["error"])
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]  # the last one seen is the request's total
        for choice in chunk.get("choices") or ():
            text = str(choice.get("text") or "")
            # The final chunk often carries no text (EOS, a matched stop string); it still counts
            # through `usage` below, not as a frame of its own.
            if text:
                yield Token(text)
                sent += 1
            if choice.get("finish_reason") is not None:
                finish_reason = str(choice["finish_reason"])


def _finish(sent: int, usage: dict[str, Any] | None, finish_reason: str) -> Iterator[StreamEvent]:
    """Pad with empty tokens up to the engine's own count (EOS, text it held back, a stop string
    it cut) so there is one frame per generated token, as the contract's contiguous `i` expects."""
    usage = usage or {}
    counted = usage.get("completion_tokens")
    total = max(sent, int(counted)) if isinstance(counted, int) else sent
    for _ in range(total - sent):
        yield Token("")
    prompt = usage.get("prompt_tokens")
    yield Finished(
        tokens_out=total,
        tokens_in=int(prompt) if isinstance(prompt, int) else None,
        finish_reason="length" if finish_reason == "length" else "stop",
    )
