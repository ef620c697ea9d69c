"""Artifact retention with a frozen clock: age, total size, tags kept, lineage kept whole."""

from __future__ import annotations

from pathlib import Path

import pytest
from freezegun import freeze_time

from llorch.resources.config import ArtifactRetention
from llorch.store.artifacts import ArtifactStore
from llorch.store.db import StateDB

START = "2026-03-01T00:00:00Z"


@pytest.fixture
def db(tmp_path: Path) -> StateDB:
    return StateDB(tmp_path / "state.sqlite")


def store(db: StateDB, tmp_path: Path, **rules: object) -> ArtifactStore:
    return ArtifactStore(
        db, tmp_path / "artifacts", max_bytes=1_000_000, retention=ArtifactRetention.model_validate(rules)
    )


def test_artifacts_older_than_max_age_go_and_their_files_with_them(db: StateDB, tmp_path: Path) -> None:
    artifacts = store(db, tmp_path, maxAgeDays=7)
    with freeze_time(START) as clock:
        old, _ = artifacts.put("plan", "old plan")
        clock.tick(6 * 86400)
        young, _ = artifacts.put("plan", "young plan")
        clock.tick(2 * 86400)
        assert [r.id for r in artifacts.collect(dry_run=True)] == [old.id]
        assert db.get_artifact(old.id) is not None, "a dry run removes nothing"
        assert [r.id for r in artifacts.collect()] == [old.id]
    assert db.get_artifact(old.id) is None and not artifacts.path(old.id).exists()
    assert db.get_artifact(young.id) is not None and artifacts.path(young.id).exists()


def test_tagged_artifacts_are_kept_unless_keep_tagged_is_off(db: StateDB, tmp_path: Path) -> None:
    with freeze_time(START) as clock:
        tagged, _ = store(db, tmp_path, maxAgeDays=1).put("plan", "release plan", tags=["v1"])
        clock.tick(3 * 86400)
        assert store(db, tmp_path, maxAgeDays=1).collect() == []
        assert [r.id for r in store(db, tmp_path, maxAgeDays=1, keepTagged=False).collect()] == [tagged.id]


def test_a_parent_of_a_kept_artifact_is_kept(db: StateDB, tmp_path: Path) -> None:
    artifacts = store(db, tmp_path, maxAgeDays=7)
    with freeze_time(START) as clock:
        plan, _ = artifacts.put("plan", "the plan")
        first, _ = artifacts.put("diff", "+a", parent=plan.id)
        clock.tick(6 * 86400)
        second, _ = artifacts.put("diff", "+b", parent=first.id)
        clock.tick(2 * 86400)
        assert artifacts.collect() == [], "plan and first are old, but second (kept) descends from them"
        clock.tick(7 * 86400)
        assert [r.id for r in artifacts.collect()] == [plan.id, first.id, second.id]


def test_past_max_total_bytes_the_oldest_go_until_the_rest_fit(db: StateDB, tmp_path: Path) -> None:
    artifacts = store(db, tmp_path, maxTotalBytes=25)
    with freeze_time(START) as clock:
        ids = []
        for text in ("a" * 10, "b" * 10, "c" * 10, "d" * 10):
            ids.append(artifacts.put("other", text)[0].id)
            clock.tick(60)
        assert [r.id for r in artifacts.collect()] == ids[:2]
        assert sum(r.size_bytes for r in db.all_artifacts()) == 20


def test_size_retention_keeps_lineage_and_waits_for_descendants(db: StateDB, tmp_path: Path) -> None:
    artifacts = store(db, tmp_path, maxTotalBytes=15)
    with freeze_time(START) as clock:
        plan, _ = artifacts.put("plan", "p" * 10)
        clock.tick(60)
        child, _ = artifacts.put("diff", "c" * 10, parent=plan.id)
        clock.tick(60)
        newest, _ = artifacts.put("other", "n" * 10)
        removed = [r.id for r in artifacts.collect()]
    assert removed == [plan.id, child.id], "the plan could go only once its child had gone"
    assert [r.id for r in db.all_artifacts()] == [newest.id]


def test_no_limits_remove_nothing(db: StateDB, tmp_path: Path) -> None:
    artifacts = store(db, tmp_path)
    with freeze_time(START) as clock:
        artifacts.put("plan", "kept forever")
        clock.tick(10_000 * 86400)
        assert artifacts.collect() == []
