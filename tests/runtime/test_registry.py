from __future__ import annotations

from llorch.runtime.engines.base import Upstream
from llorch.runtime.engines.llamacpp import LlamaCpp
from llorch.runtime.registry import Replica, ReplicaRegistry


def replica(id_: str, pool: str = "demo", slots: int = 2) -> Replica:
    return Replica(
        id=id_,
        pool=pool,
        engine="llamacpp",
        upstream=Upstream("http://x", "m"),
        slots=slots,
        adapter=LlamaCpp(),
    )


def test_acquire_prefers_the_least_busy_replica_then_the_lowest_id() -> None:
    registry = ReplicaRegistry()
    registry.add(replica("demo-1"))
    registry.add(replica("demo-0"))
    leases = [lease for lease in (registry.acquire("demo") for _ in range(4)) if lease is not None]
    assert [lease.replica.id for lease in leases] == ["demo-0", "demo-1", "demo-0", "demo-1"]
    assert registry.acquire("demo") is None, "never more tasks than slots"
    registry.release(leases[1])
    got = registry.acquire("demo")
    assert got is not None and got.replica.id == "demo-1"


def test_draining_replicas_take_no_new_work_but_keep_their_count() -> None:
    registry = ReplicaRegistry()
    registry.add(replica("demo-0"))
    lease = registry.acquire("demo")
    assert lease is not None
    registry.set_draining("demo-0")
    assert registry.acquire("demo") is None
    assert registry.busy("demo-0") == 1 and registry.serving("demo") == 0
    registry.release(lease)
    assert registry.busy("demo-0") == 0


def test_pools_are_separate_and_listeners_hear_changes() -> None:
    registry = ReplicaRegistry()
    heard: list[int] = []
    registry.subscribe(lambda: heard.append(1))
    registry.add(replica("a-0", pool="a"))
    assert registry.acquire("b") is None
    registry.remove("a-0")
    assert registry.replicas() == [] and len(heard) == 2


def test_an_exclusive_lease_waits_for_an_idle_replica_and_takes_every_slot() -> None:
    registry = ReplicaRegistry()
    registry.add(replica("demo-0", slots=4))
    shared = registry.acquire("demo")
    assert shared is not None
    assert registry.acquire("demo", exclusive=True) is None, "a strict task never shares a replica"
    registry.release(shared)
    strict = registry.acquire("demo", exclusive=True)
    assert strict is not None and strict.slots == 4 and registry.busy("demo-0") == 4
    assert registry.acquire("demo") is None
    registry.release(strict)
    assert registry.busy("demo-0") == 0
