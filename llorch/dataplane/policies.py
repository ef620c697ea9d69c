"""Which Policy governs a pool: the first by name whose selector matches the pool's labels."""

from __future__ import annotations

from llorch.resources import Policy, Pool
from llorch.store.manifests import ManifestStore


def policy_for(store: ManifestStore, pool: Pool) -> Policy | None:
    for entry in store.entries("Policy"):
        if isinstance(entry.obj, Policy) and entry.obj.spec.selector.matches(pool.metadata.labels):
            return entry.obj
    return None


def rule_label(policy: Policy | None, pool: str, rules: list[str]) -> str:
    """What a refusal's `policy_label` says: the Policy (or that none applies, so its defaults
    do) and the fields of its spec that refused, e.g. `Policy/default: sessions.maxTurns`."""
    owner = f"Policy/{policy.metadata.name}" if policy is not None else f"no Policy selects Pool/{pool}"
    return f"{owner}: {', '.join(rules)}"
