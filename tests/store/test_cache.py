"""The weights cache with a frozen clock: least recently used first, never an Active model's,
a Retired model's only after the grace period, and only while over cache.maxBytes (or all on prune)."""

from __future__ import annotations

from pathlib import Path

import pytest
from freezegun import freeze_time

from llorch.resources.config import Cache
from llorch.store.cache import Reference, WeightsCache
from llorch.store.db import StateDB

DAY = 86_400


def entry(root: Path, name: str, size: int) -> str:
    folder = root / "models" / "by-url" / name
    folder.mkdir(parents=True)
    (folder / "w.gguf").write_bytes(b"x" * size)
    (folder / ".w.gguf.partial").write_bytes(b"")
    return f"models/by-url/{name}"


@pytest.fixture
def db(tmp_path: Path) -> StateDB:
    return StateDB(tmp_path / "state.sqlite")


def cache(db: StateDB, root: Path, **settings: object) -> WeightsCache:
    return WeightsCache(db, root, Cache.model_validate(settings))


def test_lru_removal_spares_active_and_retired_within_grace(db: StateDB, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with freeze_time("2026-03-01") as clock:
        weights = cache(db, root, maxBytes=250, retiredGraceSeconds=DAY)
        active, retired, old, newer = (entry(root, n, 100) for n in ("active", "retired", "old", "newer"))
        for name in (active, retired, old, newer):
            weights.touch(root / name / "w.gguf")
            clock.tick(60)
        weights.touch(root / active / "w.gguf")
        references = {
            active: Reference(("a",), active=True),
            retired: Reference(("r",), active=False, retired_since=clock.time_to_freeze.timestamp()),
        }
        listed = weights.entries(references)
        assert [e.name for e in listed] == [retired, old, newer, active], "least recently used first"
        assert [e.state for e in listed] == ["retired", "unreferenced", "unreferenced", "active"]

        pruned = weights.prune(references, everything=False)
        assert [e.name for e in pruned.removed] == [old, newer], "the retired one is within its grace"
        assert pruned.total_bytes == 400 and not (root / old).exists() and (root / retired).exists()

        clock.tick(DAY)
        entry(root, "fresh", 100)
        pruned = weights.prune(references, everything=False)
        assert [e.name for e in pruned.removed] == [retired], "past its grace, and the cache is over"
        assert (root / active).exists() and (root / "models/by-url/fresh").exists()


def test_nothing_goes_under_the_limit_but_prune_takes_every_removable_entry(
    db: StateDB, tmp_path: Path
) -> None:
    root = tmp_path / "cache"
    weights = cache(db, root, maxBytes=10_000)
    spare = entry(root, "spare", 100)
    used = entry(root, "used", 100)
    references = {used: Reference(("m",), active=True)}
    assert weights.prune(references, everything=False).removed == []
    dry = weights.prune(references, everything=True, dry_run=True)
    assert [e.name for e in dry.removed] == [spare] and (root / spare).exists()
    assert [e.name for e in weights.prune(references, everything=True).removed] == [spare]
    assert not (root / spare).exists() and (root / used).exists()


def test_files_outside_the_cache_are_no_entries(db: StateDB, tmp_path: Path) -> None:
    weights = cache(db, tmp_path / "cache")
    assert weights.entry_of(tmp_path / "manifests" / "w.gguf") is None
    assert weights.entry_of(tmp_path / "cache" / "models" / "by-url" / "ab" / "w.gguf") == "models/by-url/ab"
    assert weights.entries({}) == []
