"""What llorch reads of an engine's OpenAI- or Anthropic-shaped answer while relaying it: how
many tokens went by, why the generation ended, and the engine's own usage. Nothing else of the
answer is looked at, and nothing is rewritten.

One reader serves every relayed endpoint, since their shapes do not overlap:

* OpenAI chat and text completions: `choices[].delta` / `choices[].text` per decode step,
  `choices[].finish_reason`, and `usage` (`prompt_tokens`, `completion_tokens`), in streams on the
  chunk with `choices: []` that `stream_options.include_usage` asks for;
* OpenAI Responses: `response.*.delta` events per step, `response.completed` /
  `response.incomplete` carrying `response.status` and `response.usage` (`input_tokens`,
  `output_tokens`);
* Anthropic Messages: `content_block_delta` per step, `message_start` with `message.usage`,
  `message_delta` with `delta.stop_reason` and `usage.output_tokens`;
* embeddings, rerank and count_tokens bodies: `usage.prompt_tokens` or `input_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llorch.runtime.engines.base import Finished

# Engine finish reasons that mean "ran into the token limit"; every other one is a stop.
_LENGTH = frozenset({"length", "max_tokens", "incomplete", "model_context_window_exceeded"})
_STEP_DELTAS = ("content", "text", "tool_calls", "reasoning_content", "function_call")


@dataclass
class UsageReader:
    """Fed each payload of one answer in order; `finished()` says what it all came to."""

    tokens_in: int | None = None
    tokens_out: int | None = None
    counted: int = 0
    finish_reason: str | None = None
    error: dict[str, Any] | None = None

    def chunk(self, payload: dict[str, Any]) -> int:
        """One streamed event's JSON: the decode steps it carries (0, 1, or one per choice)."""
        if "error" in payload:
            error = payload["error"]
            self.error = error if isinstance(error, dict) else {"message": str(error)}
            return 0
        self._usage(payload)
        steps = 0
        choices = payload.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                if isinstance(choice, dict):
                    steps += _choice_step(choice)
                    self._finish(choice.get("finish_reason"))
        kind = payload.get("type")
        if isinstance(kind, str):
            steps += self._typed(kind, payload)
        self.counted += steps
        return steps

    def whole(self, payload: dict[str, Any]) -> None:
        """A whole (non-streamed) answer's JSON."""
        self._usage(payload)
        for choice in payload.get("choices") or ():
            if isinstance(choice, dict):
                self._finish(choice.get("finish_reason"))
        self._finish(payload.get("stop_reason"))
        if payload.get("object") == "response":
            self._finish(payload.get("status"))
        if isinstance(payload.get("input_tokens"), int):
            self.tokens_in = int(payload["input_tokens"])  # count_tokens answers with only this

    def finished(self) -> Finished:
        reason = self.finish_reason or "stop"
        return Finished(
            tokens_out=max(self.counted, self.tokens_out or 0),
            tokens_in=self.tokens_in,
            finish_reason="length" if reason in _LENGTH else "stop",
        )

    def _typed(self, kind: str, payload: dict[str, Any]) -> int:
        if kind == "message_start" and isinstance(payload.get("message"), dict):
            self._usage(payload["message"])
        elif kind == "message_delta" and isinstance(payload.get("delta"), dict):
            self._finish(payload["delta"].get("stop_reason"))
        elif kind in ("response.completed", "response.incomplete") and isinstance(
            payload.get("response"), dict
        ):
            response = payload["response"]
            self._usage(response)
            details = response.get("incomplete_details")
            self._finish(details.get("reason") if isinstance(details, dict) else response.get("status"))
        return (
            1
            if kind == "content_block_delta" or (kind.startswith("response.") and kind.endswith(".delta"))
            else 0
        )

    def _usage(self, payload: dict[str, Any]) -> None:
        usage = payload.get("usage")
        if not isinstance(usage, dict):
            return
        prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
        generated = usage.get("completion_tokens", usage.get("output_tokens"))
        # Anthropic's message_start says the input, message_delta later the output: keep both.
        if isinstance(prompt, int):
            self.tokens_in = prompt
        if isinstance(generated, int):
            self.tokens_out = generated

    def _finish(self, reason: object) -> None:
        if isinstance(reason, str) and reason:
            self.finish_reason = reason


def _choice_step(choice: dict[str, Any]) -> int:
    delta = choice.get("delta")
    where = delta if isinstance(delta, dict) else choice
    return 1 if any(where.get(name) for name in _STEP_DELTAS) else 0


def is_usage_chunk(payload: dict[str, Any]) -> bool:
    """The chunk `stream_options.include_usage` adds at the end of an OpenAI stream."""
    return payload.get("choices") == [] and isinstance(payload.get("usage"), dict)
