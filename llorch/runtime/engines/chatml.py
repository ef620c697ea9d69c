"""Chat turns as one ChatML prompt, for engines whose protocol takes text only (TGI's
/generate_stream, Triton's generate extension). Engines with a chat endpoint get the turns
themselves and apply the model's own template."""

from __future__ import annotations

from collections.abc import Iterable

from llorch.runtime.engines.base import ChatTurn, CompletionRequest

# A ChatML model ends its turn with <|im_end|>; one that goes on would start a new turn.
STOPS = ("<|im_end|>", "<|im_start|>")


def render(turns: Iterable[ChatTurn]) -> str:
    """The turns as one ChatML prompt, ending where the assistant's answer begins."""
    text = "".join(f"<|im_start|>{turn.role}\n{turn.content}<|im_end|>\n" for turn in turns)
    return text + "<|im_start|>assistant\n"


def text_stops(request: CompletionRequest) -> list[str]:
    """The stop strings to send with `request.prompt`: a chat's end of turn, then the client's."""
    return [*STOPS, *request.stop] if request.messages else list(request.stop)
