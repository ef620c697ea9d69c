"""The Policy kind: admission, budgets, sessions, determinism and tool rules for selected pools."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from llorch.resources.meta import API_VERSION, Labels, ObjectMeta, Spec


class Overflow(StrEnum):
    REJECT = "reject"
    DROP_LRU = "drop-lru"


class Selector(Spec):
    match_labels: Labels = Field(default_factory=dict, description="Empty selects every pool.")

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.match_labels.items())


Priority = Literal["interactive", "batch"]


def _both_priorities() -> list[Priority]:
    return ["interactive", "batch"]


class Admission(Spec):
    queue_capacity: int = Field(default=64, ge=0, le=100_000)
    overflow: Overflow = Overflow.REJECT
    priorities: list[Priority] = Field(default_factory=_both_priorities, min_length=1)
    activation_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a task waits for a replica of its pool to start (an idle pool waking, "
        "a replica restarting, memory being freed) before it ends with the reason.",
    )


class Budgets(Spec):
    tokens: int | None = Field(default=None, ge=0)
    wall_time_seconds: float | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, ge=0)


class Sessions(Spec):
    ttl_seconds: float = Field(default=600.0, gt=0)
    max_turns: int = Field(default=8, ge=1)


class Determinism(Spec):
    default: Literal["strict", "best_effort"] = "best_effort"


class HttpTools(Spec):
    allow: list[str] = Field(default_factory=list, description="URL prefixes tools may reach.")
    redact: list[str] = Field(default_factory=list, description="Header or field names to redact.")


class PolicySpec(Spec):
    selector: Selector = Field(default_factory=Selector)
    admission: Admission = Field(default_factory=Admission)
    budgets: Budgets = Field(default_factory=Budgets)
    sessions: Sessions = Field(default_factory=Sessions)
    determinism: Determinism = Field(default_factory=Determinism)
    http_tools: HttpTools = Field(default_factory=HttpTools)


class Policy(Spec):
    api_version: Literal["llorch.dev/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Policy"] = "Policy"
    metadata: ObjectMeta
    spec: PolicySpec
