from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from llorch.store.artifacts import ArtifactStore, is_artifact_id
from llorch.store.db import StateDB
from llorch.store.errors import ArtifactInvalid, ArtifactNotFound, ArtifactTooLarge

PLAN = "1. read the code\r\n2. change it ✓\n"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(tmp_path / "state.sqlite")
    yield db
    db.close()


def store_on(db: StateDB, tmp_path: Path, max_bytes: int = 1 << 20) -> ArtifactStore:
    return ArtifactStore(db, tmp_path / "artifacts", max_bytes=max_bytes)


@pytest.fixture
def store(db: StateDB, tmp_path: Path) -> ArtifactStore:
    return store_on(db, tmp_path)


def files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_the_id_is_the_sha256_of_the_utf8_content_and_names_the_file(
    store: ArtifactStore, tmp_path: Path
) -> None:
    record, created = store.put("plan", PLAN, tags=["a"], metadata={"agent": "coder", "step": 1})
    data = PLAN.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    assert created and record.id == digest and is_artifact_id(record.id)
    assert record.to_wire()["digest"] == f"sha256:{digest}"
    assert record.size_bytes == len(data) > len(PLAN), "bytes, not characters"
    assert (record.kind, record.tags, record.parent) == ("plan", ("a",), None)
    assert record.metadata == {"agent": "coder", "step": 1}
    path = tmp_path / "artifacts" / digest[:2] / digest
    assert path.read_bytes() == data, "stored byte for byte, line endings included"
    assert files(tmp_path / "artifacts") == [f"{digest[:2]}/{digest}"], "no temp file left behind"
    assert store.read(digest) == (record, PLAN)


def test_the_same_content_again_is_the_same_artifact_with_more_tags(store: ArtifactStore) -> None:
    first, _ = store.put("plan", PLAN, tags=["x", "y", "x"], metadata={"v": 1})
    assert first.tags == ("x", "y")
    again, created = store.put("diff", PLAN, tags=["z", "x"], metadata={"v": 2})
    assert not created
    assert again.tags == ("x", "y", "z")
    assert (again.id, again.kind, again.metadata, again.created_ms) == (
        first.id,
        "plan",
        {"v": 1},
        first.created_ms,
    )
    assert store.get(first.id) == again


def test_a_parent_must_be_a_stored_artifact(store: ArtifactStore, tmp_path: Path) -> None:
    parent, _ = store.put("plan", PLAN)
    child, _ = store.put("diff", "+ line\n", parent=parent.id)
    assert child.parent == parent.id
    for bad in ("0" * 64, parent.id.upper(), "../state.sqlite"):
        with pytest.raises(ArtifactInvalid, match="parent") as caught:
            store.put("diff", "- line\n", parent=bad)
        assert repr(bad) in str(caught.value)
    digest = hashlib.sha256(b"- line\n").hexdigest()
    assert not (tmp_path / "artifacts" / digest[:2] / digest).exists(), "nothing written for a refusal"


def test_artifacts_survive_reopening_the_state(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.sqlite")
    record, _ = store_on(db, tmp_path).put("trace", PLAN, tags=["t"])
    db.close()
    reopened = StateDB(tmp_path / "state.sqlite")
    store = store_on(reopened, tmp_path)
    assert store.read(record.id) == (record, PLAN)
    assert store.put("trace", PLAN)[1] is False
    reopened.close()


def test_listing_is_newest_first_and_filters(store: ArtifactStore) -> None:
    plan, _ = store.put("plan", "p1", tags=["run-1"])
    diff, _ = store.put("diff", "d1", tags=["run-1", "big"])
    other, _ = store.put("plan", "p2", tags=["run-2"])
    assert [r.id for r in store.find()] == [other.id, diff.id, plan.id]
    assert [r.id for r in store.find(kind="plan")] == [other.id, plan.id]
    assert [r.id for r in store.find(tag="run-1")] == [diff.id, plan.id]
    assert [r.id for r in store.find(kind="plan", tag="run-1")] == [plan.id]
    assert [r.id for r in store.find(limit=1)] == [other.id]
    assert store.find(tag="run") == [], "a tag matches whole, not as a prefix"
    assert store.find(kind="summary") == []


def test_content_is_limited_in_utf8_bytes(db: StateDB, tmp_path: Path) -> None:
    store = store_on(db, tmp_path, max_bytes=4)
    assert store.put("other", "éé")[0].size_bytes == 4
    with pytest.raises(ArtifactTooLarge) as caught:
        store.put("other", "ééé")
    assert (caught.value.size_bytes, caught.value.limit_bytes) == (6, 4)


@pytest.mark.parametrize(
    ("content", "tags", "metadata", "problem"),
    [
        ("a\ud800b", [], {}, "content is not valid Unicode"),
        ("x", ["\udc00"], {}, "tag"),
        ("x", [], {"k": "\ud800"}, "metadata is not valid Unicode"),
        ("x", [], {"k": float("nan")}, "metadata cannot be stored as JSON"),
    ],
)
def test_what_json_cannot_answer_is_refused(
    store: ArtifactStore, content: str, tags: list[str], metadata: dict[str, object], problem: str
) -> None:
    with pytest.raises(ArtifactInvalid, match=problem):
        store.put("other", content, tags=tags, metadata=metadata)
    assert store.find() == []


@pytest.mark.parametrize("bad", ["0" * 64, "A" * 64, "0" * 63, "../state.sqlite", "0" * 64 + "\n"])
def test_unknown_or_malformed_ids_are_not_found(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(ArtifactNotFound):
        store.get(bad)
    with pytest.raises(ArtifactNotFound):
        store.read(bad)


def test_a_failed_write_leaves_neither_a_file_nor_a_row(
    store: ArtifactStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        store.put("plan", PLAN)
    monkeypatch.undo()
    assert files(tmp_path / "artifacts") == []
    assert store.find() == []


def test_a_lost_content_file_is_reported_and_healed_by_a_new_put(store: ArtifactStore) -> None:
    record, _ = store.put("plan", PLAN)
    store.path(record.id).unlink()
    with pytest.raises(ArtifactNotFound, match="content file is gone"):
        store.read(record.id)
    assert store.put("plan", PLAN)[1] is False
    assert store.read(record.id)[1] == PLAN
