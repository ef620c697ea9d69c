"""One adapter per engine; `adapter_for` is how everything else picks one."""

from __future__ import annotations

from llorch.runtime.engines.base import EngineAdapter
from llorch.runtime.engines.llamacpp import LlamaCpp
from llorch.runtime.engines.tgi import Tgi
from llorch.runtime.engines.triton import Triton
from llorch.runtime.engines.vllm import VLlm
from llorch.runtime.errors import UnsupportedEngine

__all__ = ["UnsupportedEngine", "adapter_for", "engines_enforcing"]

_ADAPTERS: dict[str, EngineAdapter] = {
    "llamacpp": LlamaCpp(),
    "vllm": VLlm(),
    "tgi": Tgi(),
    "triton": Triton(),
}


def adapter_for(engine: str) -> EngineAdapter:
    try:
        return _ADAPTERS[engine]
    except KeyError:
        raise UnsupportedEngine(
            f"engine {engine!r} has no adapter in this build (available: {', '.join(_ADAPTERS)})"
        ) from None


def engines_enforcing(constraint: str) -> list[str]:
    """The engines that constrain decoding to `constraint` (`json_schema`, `grammar`) themselves."""
    return [name for name, adapter in _ADAPTERS.items() if constraint in adapter.structured_outputs]
