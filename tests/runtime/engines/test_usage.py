"""What the relay reads of each endpoint's answer: decode steps, the engine's usage, the finish."""

from __future__ import annotations

from typing import Any

import pytest

from llorch.runtime.engines.base import Finished
from llorch.runtime.engines.usage import UsageReader, is_usage_chunk


def read(events: list[dict[str, Any]]) -> tuple[int, Finished]:
    reader = UsageReader()
    steps = sum(reader.chunk(event) for event in events)
    return steps, reader.finished()


def test_an_anthropic_message_stream() -> None:
    # The event sequence llama-server's /v1/messages streams (message_start ... message_stop).
    steps, end = read(
        [
            {"type": "message_start", "message": {"usage": {"input_tokens": 29, "output_tokens": 0}}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "a"}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "b"}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 2}},
            {"type": "message_stop"},
        ]
    )
    assert steps == 2
    assert end == Finished(tokens_out=2, tokens_in=29, finish_reason="length")


def test_a_responses_stream() -> None:
    steps, end = read(
        [
            {"type": "response.created", "response": {"status": "in_progress"}},
            {"type": "response.output_text.delta", "delta": "ab"},
            {"type": "response.output_text.delta", "delta": "c"},
            {"type": "response.output_text.done", "text": "abc"},
            {
                "type": "response.completed",
                "response": {"status": "completed", "usage": {"input_tokens": 29, "output_tokens": 3}},
            },
        ]
    )
    assert steps == 2
    assert end == Finished(tokens_out=3, tokens_in=29, finish_reason="stop")


def test_n_choices_each_count_their_steps() -> None:
    steps, end = read(
        [
            {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]},
            {"choices": [{"index": 1, "delta": {"content": "b"}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
        ]
    )
    assert steps == 2 and end.finish_reason == "length"
    assert end.tokens_out == 2, "without usage, what streamed is the count"


@pytest.mark.parametrize(
    ("body", "tokens_in", "tokens_out", "finish"),
    [
        ({"object": "list", "data": [], "usage": {"prompt_tokens": 4, "total_tokens": 4}}, 4, 0, "stop"),
        ({"results": [], "usage": {"prompt_tokens": 9, "total_tokens": 9}}, 9, 0, "stop"),
        ({"input_tokens": 29}, 29, 0, "stop"),
        (
            {
                "type": "message",
                "stop_reason": "max_tokens",
                "usage": {"input_tokens": 1, "output_tokens": 3},
            },
            1,
            3,
            "length",
        ),
        (
            {"object": "response", "status": "incomplete", "usage": {"input_tokens": 5, "output_tokens": 8}},
            5,
            8,
            "length",
        ),
    ],
)
def test_whole_bodies(body: dict[str, Any], tokens_in: int, tokens_out: int, finish: str) -> None:
    reader = UsageReader()
    reader.whole(body)
    assert reader.finished() == Finished(tokens_out=tokens_out, tokens_in=tokens_in, finish_reason=finish)


def test_an_error_event_is_noted_and_counts_nothing() -> None:
    reader = UsageReader()
    assert reader.chunk({"error": {"message": "boom", "code": 500}}) == 0
    assert reader.error == {"message": "boom", "code": 500}


def test_only_the_empty_choices_chunk_is_the_usage_chunk() -> None:
    assert is_usage_chunk({"choices": [], "usage": {"prompt_tokens": 1}})
    assert not is_usage_chunk({"choices": [{"index": 0}], "usage": {"prompt_tokens": 1}})
    assert not is_usage_chunk({"choices": [], "usage": None})
