"""What every engine adapter provides: how to launch it and how to talk to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

from llorch.resources import PoolSpec


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class CompletionRequest:
    prompt: str
    max_tokens: int
    seed: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    correlation_id: str | None = None


@dataclass(frozen=True)
class Token:
    """One generated token. `text` may be empty: engines hold back the pieces of an unfinished
    UTF-8 character or a possible stop word and send the text with a later token."""

    text: str


@dataclass(frozen=True)
class Finished:
    tokens_out: int
    tokens_in: int | None
    finish_reason: str  # stop | length | cancelled | budget


StreamEvent = Token | Finished


class CompletionStream(Protocol):
    def __iter__(self) -> Iterator[StreamEvent]: ...

    def close(self) -> None:
        """Drop the upstream request so the engine stops decoding; safe from another thread."""


class EngineAdapter(Protocol):
    name: str

    def launch(self, *, binary: Path, model_path: Path, port: int, spec: PoolSpec) -> Launch: ...

    def healthy(self, client: httpx.Client, base_url: str) -> bool: ...

    def complete(
        self, client: httpx.Client, base_url: str, request: CompletionRequest
    ) -> CompletionStream: ...
