"""Workers an earlier llorchd left running (SIGQUIT, an upgrade): adopt the ones that still run
what their pool's spec would launch, stop the rest."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from llorch.controllers.pool.lifecycle import LifecycleDeps, assignment_of
from llorch.controllers.pool.replica import ReplicaState
from llorch.controllers.pool.target import Targets, loopback
from llorch.resources import Pool
from llorch.runtime.process import command_hash
from llorch.store.db import WorkerRecord
from llorch.store.manifests import ManifestStore

log = logging.getLogger("llorch.controllers")


def adopt_workers(
    deps: LifecycleDeps, store: ManifestStore, targets: Targets, keep: Callable[[str, ReplicaState], None]
) -> None:
    """A worker is adopted only if it is the very process recorded (pid + create time) and the
    command the current spec would launch on its port and GPUs is the one it runs; `keep(pool,
    state)` takes each adopted one in, Starting (its next probe finds it Ready)."""
    grace = deps.supervision.stop_grace_seconds
    for record in deps.db.workers():
        state = _adoptable(deps, store, targets, record)
        worker = None
        if state is not None:
            worker = deps.processes.adopt(
                pid=record.pid,
                create_time=record.create_time,
                log_path=Path(record.log_path),
                started_at=record.started_at,
                on_exit=deps.on_exit(f"Pool/{record.pool}"),
            )
        if state is None or worker is None:
            if deps.processes.stop_orphan(record.pid, record.create_time, grace):
                log.warning(
                    "stopped worker %s (pid %d): it no longer matches its pool", record.replica_id, record.pid
                )
            deps.db.delete_worker(record.replica_id)
            continue
        state.worker, state.phase = worker, "Starting"
        keep(record.pool, state)
        message = f"adopted replica {state.id} (pid {record.pid}, port {record.port}) from an earlier llorchd"
        deps.db.record_event(f"Pool/{record.pool}", "Normal", "Adopted", message)
        log.info("Pool/%s: %s", record.pool, message)


def _adoptable(
    deps: LifecycleDeps, store: ManifestStore, targets: Targets, record: WorkerRecord
) -> ReplicaState | None:
    entry = store.get(f"Pool/{record.pool}")
    if entry is None or not isinstance(entry.obj, Pool) or targets.blocker(entry.obj.spec) is not None:
        return None
    try:
        target = targets.target(record.pool, entry.obj.spec)
    except ValueError:
        return None
    if target.template is None:
        return None
    by_index = {g.index: g for g in deps.inventory.gpus()}
    gpus = tuple(by_index[i] for i in record.gpus if i in by_index)
    assignment = assignment_of(gpus, record.tensor_split)
    template = replace(target.template, port=record.port, gpus=assignment)
    launch = target.adapter.launch(template)
    if command_hash(launch.argv, launch.env) != record.command_hash:
        return None
    # What it reserved is not recorded; what the spec asks for now is what it runs.
    shares = record.tensor_split or (1.0,) * len(gpus)
    return ReplicaState(
        id=record.replica_id,
        index=record.index,
        revision=target.revision,
        template=template,
        adapter=target.adapter,
        upstream=loopback(target.spec, record.port),
        gpus=gpus,
        assignment=assignment,
        memory_bytes=target.memory_bytes,
        vram_per_gpu=tuple(int(target.memory_bytes * s / sum(shares)) for s in shares) if gpus else (),
    )
