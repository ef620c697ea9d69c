"""Which Policy governs a pool: the first by name whose selector matches the pool's labels."""

from __future__ import annotations

from llorch.resources import Policy, Pool
from llorch.store.manifests import ManifestStore


def policy_for(store: ManifestStore, pool: Pool) -> Policy | None:
    for entry in store.entries("Policy"):
        if isinstance(entry.obj, Policy) and entry.obj.spec.selector.matches(pool.metadata.labels):
            return entry.obj
    return None
