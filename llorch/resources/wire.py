"""Response shapes clients build on (capabilities, replica sets): one pydantic model each, so
`schema/` carries their JSON Schemas and contract tests can hold the API to them. Also the wire
names clients check before sending (artifact kinds)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

ArtifactKind = Literal["plan", "summary", "diff", "trace", "other"]
ARTIFACT_KINDS: tuple[ArtifactKind, ...] = get_args(ArtifactKind)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Features(_Wire):
    streaming: bool = True
    completion: bool = True
    chat: bool = False
    seed: bool = True
    determinism: str = Field(description="strict | best_effort: the bound Policy's default.")
    structured_outputs: list[str] = Field(
        default_factory=list,
        description="The output constraints a task may carry here (json_schema, grammar): those the "
        "pool's engine enforces; a task with another is refused.",
    )


class RateLimits(_Wire):
    queue_capacity: int
    overflow: str


class BudgetLimits(_Wire):
    tokens: int | None = None
    wall_time_seconds: float | None = None
    cost: float | None = None


class PoolCapabilities(_Wire):
    pool: str
    engine: str
    engine_version: str | None
    sampler_profile_version: str = Field(
        description="What the sampling parameters mean; a task may pin it (sampler_profile_version)."
    )
    model: str
    ctx_max: int = Field(description="Context tokens one task may use (prompt + output).")
    max_tokens_out: int
    slots_per_replica: int
    slots_total: int = Field(description="Slots on ready replicas: how many tasks run at once now.")
    replicas_ready: int
    replicas_desired: int
    idle: bool = Field(default=False, description="Scaled to zero: a task is admitted and starts a replica.")
    cold_start_ms: int | None = Field(default=None, description="What a task waits when the pool is idle.")
    supported_workloads: list[str]
    workload: str = Field(
        default="completion", description="The pool's workload: completion, embedding or rerank."
    )
    endpoints: list[str] = Field(
        default_factory=list,
        description="The OpenAI and Anthropic paths llorch relays to this pool's engine (under /v1; the "
        "OpenAI ones also under /openai/v1).",
    )
    features: Features
    rate_limits: RateLimits
    budgets: BudgetLimits
    policy: str | None = Field(description="The Policy bound to this pool, if any.")


class Capabilities(_Wire):
    api_version: str
    pools: list[PoolCapabilities]


class ReplicaLoad(_Wire):
    id: str
    state: str
    gpus: list[int]
    busy: int
    slots: int
    memory_bytes: int = Field(default=0, description="Reserved: VRAM over its GPUs, or host memory.")
    tokens_per_second: float = Field(default=0.0, description="What its running tasks stream, together, now.")
    idle_seconds: float | None = Field(
        default=None, description="Since its last task ended; None while it runs one."
    )


class Slo(_Wire):
    service_time_ms: int | None = Field(description="Moving average of finished tasks' time on a replica.")
    queue_depth: int


class ReplicaSet(_Wire):
    id: str
    model: str = ""
    state: str = Field(default="", description="Ready, Idle, Progressing, Draining, or what blocks the pool.")
    engine: str
    engine_version: str | None
    load: float = Field(description="Busy slots / total slots on ready replicas, 0..1.")
    slots_total: int
    slots_free: int
    replicas: list[ReplicaLoad]
    slo: Slo
    replicas_desired: int = 0
    scale_down_in_seconds: float | None = Field(
        default=None, description="Autoscale: when the pool goes back to its min if no task comes."
    )
    cold_start_ms: int | None = Field(
        default=None, description="Spawn to Ready, the median of recent starts."
    )


class ReplicaSets(_Wire):
    replicasets: list[ReplicaSet]
