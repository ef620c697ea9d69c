"""What every engine adapter provides: how to launch it and how to talk to it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from llorch.resources import PoolSpec


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class GpuAssignment:
    """The GPUs a replica was placed on (NVML indexes) and how its layers split across them."""

    indexes: tuple[int, ...] = ()
    tensor_split: tuple[float, ...] = ()
    # Each GPU's size: engines that size their memory as a fraction of the card (vLLM) need it.
    total_mib: tuple[int, ...] = ()

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(str(i) for i in self.indexes)

    def env(self) -> dict[str, str]:
        """The environment that confines an engine to these GPUs (none: every GPU hidden)."""
        if not self.indexes:
            # A CPU replica must not grab VRAM a GPU pool was promised.
            return {"CUDA_VISIBLE_DEVICES": ""}
        # NVML numbers GPUs in PCI order; CUDA's default is fastest first. Say which we mean.
        return {"CUDA_DEVICE_ORDER": "PCI_BUS_ID", "CUDA_VISIBLE_DEVICES": self.cuda_visible_devices}


@dataclass(frozen=True)
class LaunchRequest:
    """Everything an adapter needs to build a managed replica's command line."""

    binary: Path
    model_path: Path
    model_name: str
    port: int
    spec: PoolSpec
    gpus: GpuAssignment = GpuAssignment()


@dataclass(frozen=True)
class Upstream:
    """Where a replica answers: a spawned engine on loopback or an endpoint someone else runs."""

    base_url: str
    model: str
    headers: tuple[tuple[str, str], ...] = ()


# What llorch's sampling parameters mean (temperature, top_p, top_k, seed, stop, each passed to
# the engine under its own name, unset ones left to the engine's defaults). A client that pins a
# profile version is refused rather than silently sampled differently if this ever changes.
SAMPLER_PROFILE_VERSION = "v1"


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
    # False (kv_hint "cold"): the engine must not reuse a cached prompt prefix. Only llama-server
    # takes this per request; vLLM, TGI and Triton decide prefix caching at launch.
    cache_prompt: bool = True
    # What the output must be (native tasks, at most one): text valid against a JSON Schema, or
    # text a GBNF grammar (llama.cpp's format) derives. Each adapter passes it under its engine's
    # own name; admission refuses a constraint the pool's engine has no equivalent of.
    json_schema: dict[str, Any] | None = None
    grammar: str | None = None

    def constraints(self) -> tuple[str, ...]:
        """The output constraints set, by their task field names (`json_schema`, `grammar`)."""
        chosen = {"json_schema": self.json_schema, "grammar": self.grammar}
        return tuple(name for name, value in chosen.items() if value is not None)

    def sampling(self) -> dict[str, float | int]:
        """The sampling parameters the client set, under the names llama.cpp, vLLM and Triton's
        vLLM backend share; unset ones are left to the engine's defaults."""
        chosen = {
            "seed": self.seed,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
        }
        return {name: value for name, value in chosen.items() if value is not None}


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
    # The output constraints (CompletionRequest.constraints) the engine enforces itself.
    structured_outputs: frozenset[str]
    # Whether its OpenAI-shaped streams end with a usage chunk on `stream_options.include_usage`.
    stream_usage: bool

    def relay_paths(self, spec: PoolSpec) -> frozenset[str]:
        """The OpenAI and Anthropic paths (llorch.runtime.engines.relay) the engine serves for
        the pool's workload, relayed to it as they are; empty when it speaks none of them."""
        ...

    def launch(self, request: LaunchRequest) -> Launch: ...

    def healthy(self, client: httpx.Client, upstream: Upstream) -> bool: ...

    def busy_slots(self, client: httpx.Client, upstream: Upstream) -> int | None:
        """Sequences the engine itself says it is decoding; None when it cannot tell."""
        ...

    def kv_cache_usage(self, client: httpx.Client, upstream: Upstream) -> float | None:
        """The fraction (0-1) of its KV cache the engine says is in use; None when it does not say."""
        ...

    def version(self, client: httpx.Client, upstream: Upstream) -> str | None:
        """The engine's own version string, from its info endpoint; None when it has none."""
        ...

    def context_per_slot(self, client: httpx.Client, upstream: Upstream) -> int | None:
        """Tokens (prompt + output) one sequence may use, as the engine itself says after loading
        the model; None when it does not say. It can be less than the pool asked for: llama-server
        caps a slot at the model's trained context, vLLM at the model's max length."""
        ...

    def complete(
        self, client: httpx.Client, upstream: Upstream, request: CompletionRequest
    ) -> CompletionStream: ...
