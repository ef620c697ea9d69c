"""What controllers observe, as typed status: Pool, Model and replica status, conditions, events.

Controllers write these, the API serves them inside each object, `llorchctl` reads them, and
`schema/` carries their JSON Schemas. Shapes follow Kubernetes': camelCase fields, a list of
conditions, times as RFC 3339 UTC strings (`2026-12-01T18:43:56Z`). Status written by an older
llorchd (times as epoch seconds, fields since renamed or added) still loads: numbers are read as
epoch seconds and fields this version does not know are ignored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel


def to_datetime(value: Any) -> Any:
    """Epoch seconds (what status held before RFC 3339) or any datetime, as an aware UTC datetime."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError) as error:
            # Raised as ValueError, pydantic reports it as this field's validation error.
            raise ValueError(f"epoch seconds out of range: {value}") from error
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return value


def rfc3339(moment: datetime) -> str:
    """UTC, whole seconds, `Z`: what Kubernetes' metav1.Time writes and kubectl and Go parse."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(epoch_seconds: float) -> datetime:
    """time.time() as the datetime status fields hold."""
    return datetime.fromtimestamp(epoch_seconds, UTC)


Timestamp = Annotated[
    datetime,
    BeforeValidator(to_datetime),
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time", "description": "RFC 3339, UTC"}),
]


class Status(BaseModel):
    """Base of every status shape: camelCase on the wire, unknown fields ignored (older or newer
    llorchd wrote them), values replaced as a whole rather than mutated."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True, validate_default=True
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Status):
    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    last_transition_time: Timestamp = Field(description="When status last changed (not reason or message).")

    @property
    def is_true(self) -> bool:
        return self.status == "True"


class GpuRef(Status):
    index: int
    uuid: str
    name: str


ReplicaPhase = Literal["Pending", "Starting", "Ready", "NotReady", "BackOff", "Terminating"]


class ReplicaStatus(Status):
    id: str
    index: int
    revision: str
    phase: ReplicaPhase
    reason: str | None = None
    pid: int | None = None
    port: int | None = None
    url: str | None = None
    gpus: list[GpuRef] = Field(default_factory=list)
    vram_bytes: list[int] = Field(default_factory=list, description="Reserved on each of `gpus`.")
    restarts: int = 0
    last_exit: str | None = None
    last_error: str | None = None
    log_tail: list[str] = Field(default_factory=list, description="The last log lines after a crash.")
    started_at: Timestamp | None = None
    ready_at: Timestamp | None = None
    adopted: bool = False
    engine_version: str | None = None
    context: int | None = Field(default=None, description="Tokens per sequence as the engine reports it.")
    log_path: str | None = None
    slots: int = 0
    memory_bytes: int = Field(
        default=0, description="Reserved: VRAM over its GPUs, or host memory on the CPU."
    )
    last_used: Timestamp | None = Field(default=None, description="When its last task ended.")
    slots_busy: int | None = Field(
        default=None, description="Live from the data plane, filled in by the API."
    )


class RolloutStatus(Status):
    failed_revision: str
    message: str


class PoolStatus(Status):
    observed_generation: int = 0
    replicas: int = Field(default=0, description="Replicas wanted now (fixed, or what autoscale decided).")
    desired_replicas: int | None = Field(default=None, description="Autoscale: the count it decided.")
    autoscale_reason: str | None = Field(default=None, description="Autoscale: why it has that count.")
    last_activity: Timestamp | None = Field(
        default=None, description="The pool's latest admission or task end."
    )
    scale_down_at: Timestamp | None = Field(
        default=None, description="Autoscale: when the pool goes back to min if no task comes."
    )
    idle: bool = Field(default=False, description="Autoscaled to zero: the next task starts a replica.")
    memory_per_replica_mib: int | None = Field(
        default=None,
        alias="memoryPerReplicaMiB",
        description="What each replica reserves: VRAM on GPUs, host memory on the CPU.",
    )
    cold_start_seconds: float | None = Field(
        default=None, description="Spawn to Ready, the median of recent starts: what an idle pool costs."
    )
    last_cold_start_seconds: float | None = None
    ready_replicas: int = 0
    slots_total: int = Field(default=0, description="Slots on ready replicas.")
    slots_busy: int | None = Field(
        default=None, description="Live from the data plane, filled in by the API."
    )
    draining: bool = False
    drain_deadline: Timestamp | None = None
    blocked_by: str | None = Field(default=None, description="Why the pool cannot run at all (a reason).")
    vram_estimate: str | None = None
    revision: str | None = None
    rollout: RolloutStatus | None = None
    replica_statuses: list[ReplicaStatus] = Field(default_factory=list)
    conditions: list[Condition] = Field(default_factory=list)

    @property
    def state(self) -> str:
        """One word for the pool, the most urgent thing first (as kubectl shows CrashLoopBackOff
        over Running): what `get pools` and `top` print."""
        if self.draining:
            # Asked for by a person, so it outranks whatever the stopping replicas look like.
            return "Drained" if self.ready_replicas == 0 else "Draining"
        if self.blocked_by:
            return self.blocked_by
        if self.idle:
            return "Idle"
        degraded = condition(self.conditions, "Degraded")
        if degraded is not None and degraded.is_true:
            return degraded.reason or "Degraded"
        if is_true(self.conditions, "Ready"):
            return "Ready"
        return "Progressing"


class SbomSummary(Status):
    """What a Model's software bill of materials says, in short."""

    format: str = Field(description="CycloneDX or SPDX, with the document's spec version.")
    components: int = Field(description="Components (CycloneDX) or packages (SPDX) listed.")
    licenses: list[str] = Field(default_factory=list, description="Every license named, once each, sorted.")


class Verification(Status):
    """The last check asked for with POST /v1/catalog/models/{id}/verify."""

    result: Literal["ok", "mismatch", "missing", "untrusted"]
    reason: str
    message: str = ""
    at: Timestamp
    token: str = Field(description="The id the verify request was answered with.")


class ModelStatus(Status):
    observed_generation: int = 0
    lifecycle: str | None = None
    trust: Literal["signed", "unsigned", "unverified"] | None = Field(
        default=None,
        description="signed: the signature verified against trust.keys; "
        "unverified: there is a signature and it did not.",
    )
    trust_warning: str | None = None
    signer: str | None = Field(default=None, description="The trusted key that made the signature.")
    resolved_path: str | None = None
    size_bytes: int | None = None
    digest: str | None = None
    digest_verified: bool | None = None
    downloaded_bytes: int | None = Field(default=None, description="While the weights download.")
    total_bytes: int | None = Field(default=None, description="While the weights download, when known.")
    bytes_per_second: float | None = Field(default=None, description="While the weights download.")
    sbom: SbomSummary | None = None
    sbom_error: str | None = Field(default=None, description="Why the SBOM could not be read.")
    last_verification: Verification | None = None
    conditions: list[Condition] = Field(default_factory=list)

    @property
    def downloading(self) -> bool:
        return self.downloaded_bytes is not None

    def download_text(self) -> str:
        """`downloading 42%` (or the bytes so far when the size is not known yet)."""
        done = self.downloaded_bytes or 0
        if self.total_bytes:
            return f"downloading {min(100, done * 100 // self.total_bytes)}%"
        return f"downloading ({done} bytes so far)"


class EventView(Status):
    """An event as the API answers it (Kubernetes' core/v1 Event, reduced): repeats fold into `count`."""

    type: Literal["Normal", "Warning"]
    object: str | None = Field(default=None, description="`Kind/name` of the object it is about.")
    reason: str
    message: str
    count: int
    first_timestamp: Timestamp
    last_timestamp: Timestamp


def condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: list[Condition], type_: str) -> bool:
    found = condition(conditions, type_)
    return found is not None and found.is_true
