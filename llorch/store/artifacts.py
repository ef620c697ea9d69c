"""Artifacts: text that coding agents keep (plans, summaries, diffs, traces) and refer to by id.

Content-addressed: the id is the lowercase hex sha256 of the content's UTF-8 bytes, so the same
text is the same artifact however often it is put. The content lives in a file named by its id
under `<state>/artifacts/`, its metadata in sqlite; the file is written before the row, so a row
never names a file that is not there.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from llorch.resources import ArtifactKind
from llorch.resources.config import ArtifactRetention
from llorch.store.db import ArtifactRecord, StateDB
from llorch.store.errors import ArtifactInvalid, ArtifactNotFound, ArtifactTooLarge
from llorch.store.retention import expired
from llorch.store.writer import atomic_write

_ID = re.compile(r"[0-9a-f]{64}")

DEFAULT_LIST_LIMIT = 100


def is_artifact_id(value: str) -> bool:
    """Whether `value` can name an artifact; anything else never reaches the file system."""
    return _ID.fullmatch(value) is not None


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # JSON lets a client send a lone surrogate; stored, it would break every answer that shows it.
        raise ArtifactInvalid(f"{what} is not valid Unicode text (it holds a lone surrogate)") from None


class ArtifactStore:
    def __init__(
        self,
        db: StateDB,
        folder: Path,
        *,
        max_bytes: int,
        retention: ArtifactRetention | None = None,
    ) -> None:
        self._db = db
        self._folder = folder
        self._max_bytes = max_bytes
        self._retention = retention or ArtifactRetention()
        # A put that checks its parent and a collection that removes it must not interleave.
        self._lock = threading.Lock()

    def set_retention(self, retention: ArtifactRetention) -> None:
        """What the next collection removes (a config reload)."""
        self._retention = retention

    def path(self, artifact_id: str) -> Path:
        # Two hex characters of fan-out keep any one folder small.
        return self._folder / artifact_id[:2] / artifact_id

    def put(
        self,
        kind: ArtifactKind,
        content: str,
        *,
        tags: Iterable[str] = (),
        parent: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> tuple[ArtifactRecord, bool]:
        """Store `content`; the artifact and whether it is new. Content already stored keeps its
        artifact, whose tags gain the new ones."""
        data = _utf8(content, "content")
        if len(data) > self._max_bytes:
            raise ArtifactTooLarge(len(data), self._max_bytes)
        unique_tags = tuple(dict.fromkeys(tags))
        for tag in unique_tags:
            _utf8(tag, f"tag {tag!r}")
        meta = dict(metadata or {})
        try:
            _utf8(json.dumps(meta, ensure_ascii=False, allow_nan=False), "metadata")
        except ValueError as exc:
            raise ArtifactInvalid(f"metadata cannot be stored as JSON: {exc}") from None
        with self._lock:
            # Held with the collection's lock, so a parent seen here is still there when the row is written.
            if parent is not None and not (is_artifact_id(parent) and self._db.get_artifact(parent)):
                raise ArtifactInvalid(f"parent {parent!r} is not the id of a stored artifact")
            artifact_id = hashlib.sha256(data).hexdigest()
            path = self.path(artifact_id)
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, content)
            record = ArtifactRecord(
                artifact_id, kind, len(data), unique_tags, parent, meta, created_ms=int(time.time() * 1000)
            )
            return self._db.put_artifact(record)

    def collect(self, *, dry_run: bool = False) -> list[ArtifactRecord]:
        """Remove what `artifacts.retention` lets go (see store/retention.py); what was (or, with
        `dry_run`, would be) removed, oldest first. Rows go before files, so a row never names a
        file that is gone."""
        with self._lock:
            records = self._db.all_artifacts()
            doomed = expired(records, self._retention, int(time.time() * 1000))
            if not dry_run and doomed:
                self._db.delete_artifacts([r.id for r in doomed])
                for record in doomed:
                    self.path(record.id).unlink(missing_ok=True)
            return doomed

    def get(self, artifact_id: str) -> ArtifactRecord:
        record = self._db.get_artifact(artifact_id) if is_artifact_id(artifact_id) else None
        if record is None:
            raise ArtifactNotFound(f"no artifact {artifact_id!r}")
        return record

    def read(self, artifact_id: str) -> tuple[ArtifactRecord, str]:
        """The artifact and its content."""
        record = self.get(artifact_id)
        try:
            return record, self.path(record.id).read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise ArtifactNotFound(
                f"artifact {record.id} is recorded but its content file is gone; put the content again"
            ) from None

    def lineage(self, artifact_id: str) -> tuple[list[ArtifactRecord], list[ArtifactRecord]]:
        """What `artifact_id` derives from (its parent first, up to the root) and what derives
        from it (its children, oldest first)."""
        record = self.get(artifact_id)
        ancestors: list[ArtifactRecord] = []
        seen = {record.id}
        parent = record.parent
        # Retention keeps every parent of a kept artifact, so a missing one only ends the walk early.
        while parent is not None and parent not in seen:
            found = self._db.get_artifact(parent)
            if found is None:
                break
            ancestors.append(found)
            seen.add(found.id)
            parent = found.parent
        return ancestors, self._db.artifact_children(record.id)

    def find(
        self, *, kind: str | None = None, tag: str | None = None, limit: int = DEFAULT_LIST_LIMIT
    ) -> list[ArtifactRecord]:
        """Newest first."""
        return self._db.artifacts(kind=kind, tag=tag, limit=limit)
