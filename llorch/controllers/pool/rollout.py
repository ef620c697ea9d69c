"""Rolling a pool to its target revision: one index at a time, the new replica next to the old
(max surge one), the old drained only once the new one is Ready. A new revision that crashes or
misses its startup deadline before it was ever Ready is abandoned: the old keeps serving, and
the revision is not tried again until the spec changes or a reload asks for it."""

from __future__ import annotations

import logging

from llorch.controllers.pool.lifecycle import STARTING_PROBE_SECONDS, Lifecycle
from llorch.controllers.pool.replica import ReplicaState
from llorch.controllers.pool.target import Target, endpoint_upstream
from llorch.resources.status import RolloutStatus
from llorch.store.db import StateDB

log = logging.getLogger("llorch.controllers")


class Rollouts:
    """Per pool, the revision whose rollout failed (and why), remembered across reconciles."""

    def __init__(self, lifecycle: Lifecycle, db: StateDB) -> None:
        self._lifecycle = lifecycle
        self._db = db
        self._failed: dict[str, RolloutStatus] = {}

    def failed(self, pool: str) -> RolloutStatus | None:
        return self._failed.get(pool)

    def forget(self, pool: str) -> None:
        self._failed.pop(pool, None)

    def roll(
        self, key: str, pool: str, target: Target, replicas: dict[str, ReplicaState], wanted: int
    ) -> list[float]:
        """Bring indexes 0..wanted-1 to the target revision; returns when to look at each again."""
        waits: list[float] = []
        failed = self._failed.get(pool)
        abandoned = failed is not None and failed.failed_revision == target.revision
        rolling = False
        for index in range(wanted):
            at_index = [s for s in replicas.values() if s.index == index]
            current = next((s for s in at_index if s.revision == target.revision), None)
            old = [s for s in at_index if s.revision != target.revision]
            for state in old:
                waits.append(self._lifecycle.step(key, pool, state, surge=False, target=None))
            if old and (abandoned or (rolling and current is None)):
                continue
            if current is None:
                current = new_replica(pool, index, target)
                replicas[current.id] = current
            else:
                self._lifecycle.revive(current)
            rolling = rolling or bool(old)
            waits.append(self._lifecycle.step(key, pool, current, surge=bool(old), target=target))
            if current.rollout_failure:
                self._abandon(key, pool, current, target.revision)
                replicas.pop(current.id, None)
            elif old and current.phase == "Ready":
                for state in old:
                    if self._lifecycle.drain(key, state, f"replaced by {current.id}"):
                        replicas.pop(state.id, None)
                    else:
                        waits.append(STARTING_PROBE_SECONDS)
        return waits

    def _abandon(self, key: str, pool: str, state: ReplicaState, revision: str) -> None:
        """The new revision never became Ready: stop it, keep the old serving, and say so."""
        self._failed[pool] = RolloutStatus(
            failed_revision=revision, message=f"replica {state.id}: {state.rollout_failure}"
        )
        self._lifecycle.stop(state)
        message = (
            f"revision {revision[:5]} failed, the previous revision keeps serving: {state.rollout_failure}"
        )
        self._db.record_event(key, "Warning", "RolloutFailed", message)
        log.warning("%s: %s", key, message)


def new_replica(pool: str, index: int, target: Target) -> ReplicaState:
    suffix = "endpoint" if target.template is None else target.revision[:5]
    return ReplicaState(
        id=f"{pool}-{index}-{suffix}",
        index=index,
        revision=target.revision,
        template=target.template,
        adapter=target.adapter,
        upstream=endpoint_upstream(target.spec) if target.template is None else None,
    )
