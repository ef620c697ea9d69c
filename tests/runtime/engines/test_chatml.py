"""Chat turns as ChatML text, for the engines that take text only."""

from __future__ import annotations

from llorch.runtime.engines.base import ChatTurn, CompletionRequest
from llorch.runtime.engines.chatml import STOPS, render, text_stops


def test_turns_render_as_chatml_ending_where_the_answer_begins() -> None:
    turns = [
        ChatTurn("system", "Be brief."),
        ChatTurn("user", "Hi"),
        ChatTurn("assistant", "Hello."),
        ChatTurn("user", "Again"),
    ]
    assert render(turns) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello.<|im_end|>\n"
        "<|im_start|>user\nAgain<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_a_chat_sent_as_text_stops_at_the_end_of_the_turn() -> None:
    turns = (ChatTurn("user", "Hi"),)
    chat = CompletionRequest(prompt=render(turns), max_tokens=8, stop=["\n\n"], messages=turns)
    assert text_stops(chat) == [*STOPS, "\n\n"]
    plain = CompletionRequest(prompt="Once", max_tokens=8, stop=["\n\n"])
    assert text_stops(plain) == ["\n\n"], "plain text keeps the client's stops alone"
