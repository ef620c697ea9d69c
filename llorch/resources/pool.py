"""The Pool kind: a model served by N replicas of one engine, with slots and GPU needs."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from llorch.resources.meta import API_VERSION, HTTP_URL, DnsLabel, ObjectMeta, Spec

MAX_GPUS = 16


class Engine(StrEnum):
    LLAMACPP = "llamacpp"
    VLLM = "vllm"
    TGI = "tgi"
    TRITON = "triton"


class Workload(StrEnum):
    """What a pool's replicas compute: text (chat, completions, Responses, Messages), embedding
    vectors, or rerank scores. llama.cpp starts a replica in the matching mode."""

    COMPLETION = "completion"
    EMBEDDING = "embedding"
    RERANK = "rerank"


def _pins_cover_count_schema(schema: dict[str, Any]) -> None:
    """`_pins_cover_count` in the generated JSON Schema, which cannot compare a count with a length:
    no pins, or a count of at most 1, or for some k a count of at most k and at least k pins."""
    schema["anyOf"] = [
        {"properties": {"devices": {"maxItems": 0}}},
        {"properties": {"count": {"maximum": 1}}},
        *(
            {"properties": {"count": {"maximum": k}, "devices": {"minItems": k}}}
            for k in range(2, MAX_GPUS + 1)
        ),
    ]


class GpuNeeds(Spec):
    model_config = ConfigDict(json_schema_extra=_pins_cover_count_schema)

    count: int = Field(default=0, ge=0, le=MAX_GPUS, description="GPUs per replica; 0 runs on the CPU.")
    vram_mib: int | None = Field(
        default=None,
        ge=1,
        alias="vramMiB",
        description="VRAM per replica in MiB; overrides the estimate from the model file.",
    )
    devices: list[str | int] = Field(
        default_factory=list, description="Pin to these GPUs (index or UUID); empty means any."
    )
    split: Literal["free-vram", "even"] = Field(
        default="free-vram", description="How layers are split when count > 1."
    )
    layers: int | None = Field(
        default=None, ge=0, description="Layers to offload (-ngl); all when GPUs are used and unset."
    )

    @model_validator(mode="after")
    def _pins_cover_count(self) -> GpuNeeds:
        if self.devices and len(self.devices) < self.count:
            raise ValueError(f"devices pins {len(self.devices)} GPU(s) but count asks for {self.count}")
        return self


class Endpoint(Spec):
    """An engine someone else runs: probed, never spawned."""

    url: str = Field(
        description="Base URL, e.g. http://192.168.1.20:8000", json_schema_extra={"pattern": HTTP_URL}
    )
    served_model: str | None = Field(
        default=None, description="The model's name on that server; the Pool's model name when unset."
    )
    auth_header_env: str | None = Field(
        default=None, description="Environment variable holding the Authorization header value."
    )

    @model_validator(mode="after")
    def _http(self) -> Endpoint:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return self


class CapabilityOverrides(Spec):
    """What `GET /v1/capabilities` says of the pool where the engine's own answer is not the whole story."""

    max_tokens_out: int | None = Field(
        default=None, ge=1, description="Cap on max_tokens; context when unset."
    )
    chat: bool | None = Field(default=None, description="Whether the model has a chat template worth using.")
    openai_frontend: bool = Field(
        default=False,
        description="The engine answers OpenAI's HTTP API at its base URL (Triton's OpenAI-compatible "
        "frontend): llorch relays the OpenAI endpoints to it. vLLM, TGI and llama.cpp always do.",
    )


def _pool_spec_schema(schema: dict[str, Any]) -> None:
    """`_endpoint_is_not_spawned` and `_replicas_or_autoscale` in the generated JSON Schema."""
    schema["if"] = {"required": ["endpoint"], "properties": {"endpoint": {"type": "object"}}}
    schema["then"] = {
        "properties": {
            "engineArgs": {"maxItems": 0},
            "gpus": {"properties": {"count": {"const": 0}}},
            "autoscale": False,
        }
    }
    schema["not"] = {"required": ["replicas", "autoscale"]}


class Autoscale(Spec):
    """Replicas from observed demand instead of a fixed count, down to zero when idle."""

    min: int = Field(default=0, ge=0, le=64, description="Never fewer replicas; 0 lets the pool go idle.")
    max: int = Field(default=1, ge=1, le=64, description="Never more replicas.")
    idle_seconds: float = Field(
        default=600.0, gt=0, description="With no task for this long the pool goes back to min."
    )
    queue_per_replica: int = Field(
        default=4, ge=1, description="More queued tasks than this per ready replica grow the pool toward max."
    )
    stabilization_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Demand must stay low this long before a replica above min goes, so the pool does "
        "not flap.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> Autoscale:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be at least min ({self.min})")
        return self


class PoolSpec(Spec):
    model_config = ConfigDict(json_schema_extra=_pool_spec_schema)

    model: DnsLabel = Field(description="Name of the Model this pool serves.")
    engine: Engine = Engine.LLAMACPP
    workload: Workload = Field(
        default=Workload.COMPLETION,
        description="completion, embedding or rerank: which endpoints the pool serves.",
    )
    pooling: Literal["none", "mean", "cls", "last", "rank"] | None = Field(
        default=None,
        description="Embedding pools: how token vectors pool into one (llama.cpp --pooling); the "
        "model's own default when unset.",
    )
    replicas: int = Field(default=1, ge=0, le=64, description="A fixed count; exclusive with autoscale.")
    autoscale: Autoscale | None = None
    priority: int = Field(
        default=0,
        ge=-1_000_000,
        le=1_000_000,
        description="When memory is short, idle replicas of pools of lower or equal priority make room "
        "(like a PriorityClass); never one of a higher priority.",
    )
    slots: int = Field(default=1, ge=1, le=256, description="Parallel sequences per replica.")
    context: int = Field(
        default=2048,
        ge=64,
        le=1_048_576,
        description="Context tokens each slot gets (the engine gets slots x context).",
    )
    gpus: GpuNeeds = Field(default_factory=GpuNeeds)
    engine_args: list[str] = Field(default_factory=list, description="Extra engine command-line arguments.")
    endpoint: Endpoint | None = None
    startup_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    decode_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="A task whose engine sends nothing for this long mid-stream (after its first token) "
        "ends with DECODE_TIMEOUT and its replica is restarted.",
    )
    cost_per_1k_tokens: float = Field(default=0.0, ge=0, alias="costPer1kTokens")
    capabilities: CapabilityOverrides = Field(default_factory=CapabilityOverrides)

    @model_validator(mode="after")
    def _replicas_or_autoscale(self) -> PoolSpec:
        if self.autoscale is not None and "replicas" in self.model_fields_set:
            raise ValueError("replicas and autoscale are exclusive: give a fixed count or a range, not both")
        if self.autoscale is not None and self.endpoint is not None:
            raise ValueError(
                "autoscale applies to engines llorch spawns; a pool with endpoint has one replica"
            )
        return self

    @model_validator(mode="after")
    def _endpoint_is_not_spawned(self) -> PoolSpec:
        if self.endpoint is not None and self.engine_args:
            raise ValueError("engineArgs apply to engines llorch spawns; a pool with endpoint has none")
        if self.endpoint is not None and self.gpus.count:
            raise ValueError("gpus apply to engines llorch spawns; a pool with endpoint places nothing")
        return self


class Pool(Spec):
    api_version: Literal["llorch.dev/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Pool"] = "Pool"
    metadata: ObjectMeta
    spec: PoolSpec
