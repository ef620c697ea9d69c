"""The Pool controller: make the running replicas match the Pool's spec.

Split by job: `controller` (the pool-level reconcile: blocked, draining, deleted, or rolling
toward its target), `target` (what the spec asks for now, and what blocks it), `rollout` (one
index at a time to a new revision, max surge one), `lifecycle` (one replica's state machine:
place, spawn, startup probe, liveness, crash and restart backoff, drain, stop), `adoption`
(workers an earlier llorchd left running), `status` (conditions and the PoolStatus written).
"""

from llorch.controllers.pool.controller import PoolController

__all__ = ["PoolController"]
