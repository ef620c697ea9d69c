"""sqlite state: generations, status, events, spawned workers, finished tasks and artifacts' metadata.

Status never goes into the user's manifests; it lives here, keyed by "Kind/name".
One connection guarded by a lock: the API threads, controllers and dispatcher all write,
and sqlite serialises writers anyway.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from llorch.resources.status import EventView, ModelStatus, PoolStatus, Status
from llorch.store.changes import ChangeFeed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY, generation INTEGER NOT NULL, spec_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS status (
    key TEXT PRIMARY KEY, body TEXT NOT NULL, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL,
    message TEXT NOT NULL, count INTEGER NOT NULL, first_at REAL NOT NULL, last_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_key ON events (key, last_at);
CREATE TABLE IF NOT EXISTS workers (
    replica_id TEXT PRIMARY KEY, pool TEXT NOT NULL, idx INTEGER NOT NULL, pid INTEGER NOT NULL,
    create_time REAL NOT NULL, port INTEGER NOT NULL, command_hash TEXT NOT NULL, log_path TEXT NOT NULL,
    started_at REAL NOT NULL, gpus TEXT NOT NULL, tensor_split TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, body TEXT NOT NULL, expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pool_runtime (
    pool TEXT PRIMARY KEY, draining INTEGER NOT NULL, drain_deadline REAL, reload_token TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, pool TEXT NOT NULL, replica_id TEXT, state TEXT NOT NULL, correlation_id TEXT,
    session_id TEXT, created_at REAL NOT NULL, ended_at REAL, tokens_in INTEGER, tokens_out INTEGER,
    ttft_ms REAL, decode_ms REAL, finish_reason TEXT, error_code TEXT
);
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, size_bytes INTEGER NOT NULL, tags TEXT NOT NULL,
    parent TEXT, metadata TEXT NOT NULL, created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS artifacts_by_created ON artifacts (created_ms);
CREATE TABLE IF NOT EXISTS model_runtime (
    model TEXT PRIMARY KEY, verify_token TEXT NOT NULL, retire_deadline REAL, retired_at REAL
);
CREATE TABLE IF NOT EXISTS cache_use (
    entry TEXT PRIMARY KEY, last_used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pool_purges (
    pool TEXT PRIMARY KEY, body TEXT NOT NULL, requested_at REAL NOT NULL
);
"""

# PRAGMA user_version of a state folder this llorchd wrote; older ones are migrated on open.
_RFC3339_STATUS = 1
SCHEMA_VERSION = _RFC3339_STATUS
_STATUS_SHAPES: dict[str, type[Status]] = {"Pool": PoolStatus, "Model": ModelStatus}
S = TypeVar("S", bound=Status)

# Kubernetes keeps a bounded event history per object; so do we.
EVENTS_KEPT_PER_OBJECT = 100


@dataclass(frozen=True)
class Event:
    key: str
    type: str  # Normal | Warning
    reason: str
    message: str
    count: int
    first_at: float
    last_at: float

    def to_wire(self) -> dict[str, Any]:
        return EventView.model_validate(
            {
                "type": self.type,
                "object": self.key,
                "reason": self.reason,
                "message": self.message,
                "count": self.count,
                "firstTimestamp": self.first_at,
                "lastTimestamp": self.last_at,
            }
        ).to_wire()


@dataclass(frozen=True)
class WorkerRecord:
    """A spawned engine process, kept so a restarted llorchd can adopt it."""

    replica_id: str
    pool: str
    index: int
    pid: int
    create_time: float
    port: int
    command_hash: str
    log_path: str
    started_at: float
    gpus: tuple[int, ...] = ()
    tensor_split: tuple[float, ...] = ()


@dataclass(frozen=True)
class PoolRuntime:
    """What a person asked of a pool at run time (drain, reload): never written into manifests."""

    pool: str
    draining: bool = False
    drain_deadline: float | None = None
    reload_token: str = ""


@dataclass(frozen=True)
class ModelRuntime:
    """What a person asked of a Model at run time, and when it was retired: never in manifests.

    `verify_token` changes with each POST .../verify; `retire_deadline` (unix seconds) is how long
    its pools' running tasks may finish after a Retired state change; `retired_at` is when the
    Model controller first saw it Retired (the cache's grace period counts from it)."""

    model: str
    verify_token: str = ""
    retire_deadline: float | None = None
    retired_at: float | None = None


@dataclass(frozen=True)
class TaskRecord:
    id: str
    pool: str
    replica_id: str | None
    state: str
    correlation_id: str | None
    session_id: str | None
    created_at: float
    ended_at: float | None
    tokens_in: int | None
    tokens_out: int | None
    ttft_ms: float | None
    decode_ms: float | None
    finish_reason: str | None
    error_code: str | None

    def summary(self) -> dict[str, Any]:
        """The shape of a live task's summary, for a task that has left memory."""
        result = {
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "ttft_ms": self.ttft_ms,
            "decode_ms": self.decode_ms,
            "finish_reason": self.finish_reason,
            "code": self.error_code,
        }
        return {
            "task_id": self.id,
            "pool": self.pool,
            "state": self.state,
            "replica": self.replica_id,
            "correlation_id": self.correlation_id,
            "session_id": self.session_id,
            "created_ms": int(self.created_at * 1000),
            "ended_ms": int(self.ended_at * 1000) if self.ended_at else None,
            "result": {k: v for k, v in result.items() if v is not None},
        }


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact's metadata; its content is a file named by its id (store/artifacts.py)."""

    id: str
    kind: str
    size_bytes: int
    tags: tuple[str, ...]
    parent: str | None
    metadata: dict[str, Any]
    created_ms: int

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "digest": f"sha256:{self.id}",
            "size_bytes": self.size_bytes,
            "created_ms": self.created_ms,
            "tags": list(self.tags),
            "parent": self.parent,
            "metadata": self.metadata,
        }


def _artifact(row: tuple[Any, ...]) -> ArtifactRecord:
    artifact_id, kind, size_bytes, tags, parent, metadata, created_ms = row
    return ArtifactRecord(
        artifact_id, kind, size_bytes, tuple(json.loads(tags)), parent, json.loads(metadata), created_ms
    )


class StateDB:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._migrate()
        # What changed, for watchers (status here; manifests and events publish too).
        self.changes = ChangeFeed()

    def _migrate(self) -> None:
        """Bring a state folder written by an older llorchd up to this one's shapes, once."""
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        if version < _RFC3339_STATUS:
            # Status times were epoch seconds; the typed shapes read those and write RFC 3339.
            with self._tx() as conn:
                for key, body in conn.execute("SELECT key, body FROM status").fetchall():
                    shape = _STATUS_SHAPES.get(str(key).split("/", 1)[0])
                    if shape is not None:
                        migrated = shape.model_validate(json.loads(body)).to_wire()
                        conn.execute(
                            "UPDATE status SET body = ? WHERE key = ?",
                            (json.dumps(migrated, sort_keys=True), key),
                        )
        self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def observe_generation(self, key: str, spec_hash: str) -> int:
        """Bump the object's generation when its spec hash changes, as the API server does."""
        with self._tx() as conn:
            row = conn.execute("SELECT generation, spec_hash FROM objects WHERE key = ?", (key,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO objects VALUES (?, 1, ?)", (key, spec_hash))
                return 1
            generation, known = int(row[0]), str(row[1])
            if known != spec_hash:
                generation += 1
                conn.execute(
                    "UPDATE objects SET generation = ?, spec_hash = ? WHERE key = ?",
                    (generation, spec_hash, key),
                )
            return generation

    def forget_object(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM objects WHERE key = ?", (key,))
            conn.execute("DELETE FROM status WHERE key = ?", (key,))

    def put_status(self, key: str, status: Status) -> None:
        body = json.dumps(status.to_wire(), sort_keys=True)
        with self._tx() as conn:
            row = conn.execute("SELECT body FROM status WHERE key = ?", (key,)).fetchone()
            conn.execute(
                "INSERT INTO status VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET body = excluded.body, "
                "updated_at = excluded.updated_at",
                (key, body, time.time()),
            )
        # Most reconciles write what was there: only a change is news to a watcher.
        if row is None or row[0] != body:
            self.changes.publish([key], "status")

    def status(self, key: str, shape: type[S]) -> S | None:
        """The object's status as `shape` (PoolStatus for "Pool/x", ModelStatus for "Model/x")."""
        with self._lock:
            row = self._conn.execute("SELECT body FROM status WHERE key = ?", (key,)).fetchone()
        return None if row is None else shape.model_validate(json.loads(row[0]))

    def pool_status(self, name: str) -> PoolStatus | None:
        return self.status(f"Pool/{name}", PoolStatus)

    def model_status(self, name: str) -> ModelStatus | None:
        return self.status(f"Model/{name}", ModelStatus)

    def record_event(self, key: str, type_: str, reason: str, message: str) -> None:
        """Repeats of the newest event fold into a count, as `kubectl describe` shows 'x5 over 2m'."""
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT id, reason, message FROM events WHERE key = ? ORDER BY id DESC LIMIT 1", (key,)
            ).fetchone()
            if row is not None and row[1] == reason and row[2] == message:
                conn.execute("UPDATE events SET count = count + 1, last_at = ? WHERE id = ?", (now, row[0]))
            else:
                conn.execute(
                    "INSERT INTO events (key, type, reason, message, count, first_at, last_at) "
                    "VALUES (?, ?, ?, ?, 1, ?, ?)",
                    (key, type_, reason, message, now, now),
                )
                conn.execute(
                    "DELETE FROM events WHERE key = ? AND id NOT IN "
                    "(SELECT id FROM events WHERE key = ? ORDER BY id DESC LIMIT ?)",
                    (key, key, EVENTS_KEPT_PER_OBJECT),
                )
        self.changes.publish([key], "event")

    def all_events(self, *, keys: list[str] | None = None, limit: int = 100) -> list[Event]:
        """The newest `limit` events (of `keys`, when given), oldest first, as `kubectl get events`."""
        where = f" WHERE key IN ({', '.join('?' * len(keys))})" if keys else ""
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, type, reason, message, count, first_at, last_at FROM events"
                f"{where} ORDER BY last_at DESC, id DESC LIMIT ?",
                (*(keys or ()), limit),
            ).fetchall()
        return [Event(*row) for row in reversed(rows)]

    def events(self, key: str, limit: int = 50) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT key, type, reason, message, count, first_at, last_at FROM events WHERE key = ? "
                "ORDER BY id DESC LIMIT ?",
                (key, limit),
            ).fetchall()
        return [Event(*row) for row in reversed(rows)]

    def save_worker(self, record: WorkerRecord) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO workers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.replica_id,
                    record.pool,
                    record.index,
                    record.pid,
                    record.create_time,
                    record.port,
                    record.command_hash,
                    record.log_path,
                    record.started_at,
                    json.dumps(record.gpus),
                    json.dumps(record.tensor_split),
                ),
            )

    def delete_worker(self, replica_id: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM workers WHERE replica_id = ?", (replica_id,))

    def workers(self, pool: str | None = None) -> list[WorkerRecord]:
        query = (
            "SELECT * FROM workers" + (" WHERE pool = ?" if pool is not None else "") + " ORDER BY replica_id"
        )
        with self._lock:
            rows = self._conn.execute(query, (pool,) if pool is not None else ()).fetchall()
        return [
            WorkerRecord(*row[:9], gpus=tuple(json.loads(row[9])), tensor_split=tuple(json.loads(row[10])))  # type: ignore[misc]
            for row in rows
        ]

    def get_session(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT body FROM sessions WHERE id = ?", (session_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put_session(self, session_id: str, body: dict[str, Any], expires_at: float) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)", (session_id, json.dumps(body), expires_at)
            )

    def delete_session(self, session_id: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def pool_runtime(self, pool: str) -> PoolRuntime:
        with self._lock:
            row = self._conn.execute(
                "SELECT draining, drain_deadline, reload_token FROM pool_runtime WHERE pool = ?", (pool,)
            ).fetchone()
        if row is None:
            return PoolRuntime(pool)
        return PoolRuntime(pool, draining=bool(row[0]), drain_deadline=row[1], reload_token=row[2])

    def save_pool_runtime(self, runtime: PoolRuntime) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO pool_runtime VALUES (?, ?, ?, ?)",
                (runtime.pool, int(runtime.draining), runtime.drain_deadline, runtime.reload_token),
            )

    # -- catalog: a Model's run-time state, cache use, pending purges ----------------------------------

    def model_runtime(self, model: str) -> ModelRuntime:
        with self._lock:
            row = self._conn.execute(
                "SELECT verify_token, retire_deadline, retired_at FROM model_runtime WHERE model = ?",
                (model,),
            ).fetchone()
        return ModelRuntime(model) if row is None else ModelRuntime(model, *row)

    def save_model_runtime(self, runtime: ModelRuntime) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO model_runtime VALUES (?, ?, ?, ?)",
                (runtime.model, runtime.verify_token, runtime.retire_deadline, runtime.retired_at),
            )

    def touch_cache_entry(self, entry: str, at: float) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO cache_use VALUES (?, ?) ON CONFLICT(entry) DO UPDATE SET "
                "last_used = MAX(last_used, excluded.last_used)",
                (entry, at),
            )

    def cache_uses(self) -> dict[str, float]:
        with self._lock:
            rows = self._conn.execute("SELECT entry, last_used FROM cache_use").fetchall()
        return {str(entry): float(at) for entry, at in rows}

    def forget_cache_entry(self, entry: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM cache_use WHERE entry = ?", (entry,))

    def save_purge(self, pool: str, body: dict[str, Any], at: float) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO pool_purges VALUES (?, ?, ?)", (pool, json.dumps(body), at))

    def purges(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute("SELECT pool, body FROM pool_purges ORDER BY requested_at").fetchall()
        return {str(pool): dict(json.loads(body)) for pool, body in rows}

    def delete_purge(self, pool: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM pool_purges WHERE pool = ?", (pool,))

    def save_task(self, record: TaskRecord) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.pool,
                    record.replica_id,
                    record.state,
                    record.correlation_id,
                    record.session_id,
                    record.created_at,
                    record.ended_at,
                    record.tokens_in,
                    record.tokens_out,
                    record.ttft_ms,
                    record.decode_ms,
                    record.finish_reason,
                    record.error_code,
                ),
            )

    def get_task(self, task_id: str) -> TaskRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return None if row is None else TaskRecord(*row)

    def put_artifact(self, record: ArtifactRecord) -> tuple[ArtifactRecord, bool]:
        """Insert the record, or, when its id is known, add its tags to the stored ones (in order,
        once each); the stored record and whether it is new. The id is the content's digest, so a
        second put is the same artifact: its kind, parent, metadata and age stay as first stored."""
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM artifacts WHERE id = ?", (record.id,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id,
                        record.kind,
                        record.size_bytes,
                        json.dumps(record.tags),
                        record.parent,
                        json.dumps(record.metadata),
                        record.created_ms,
                    ),
                )
                return record, True
            known = _artifact(row)
            tags = tuple(dict.fromkeys(known.tags + record.tags))
            if tags != known.tags:
                conn.execute("UPDATE artifacts SET tags = ? WHERE id = ?", (json.dumps(tags), record.id))
            return dataclasses.replace(known, tags=tags), False

    def get_artifact(self, artifact_id: str) -> ArtifactRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT * FROM artifacts WHERE id = ?", (artifact_id,)).fetchone()
        return None if row is None else _artifact(row)

    def all_artifacts(self) -> list[ArtifactRecord]:
        """Oldest first (ties in put order): what retention walks."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM artifacts ORDER BY created_ms, rowid").fetchall()
        return [_artifact(row) for row in rows]

    def artifact_children(self, parent: str) -> list[ArtifactRecord]:
        """The artifacts put with `parent` as their parent, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM artifacts WHERE parent = ? ORDER BY created_ms, rowid", (parent,)
            ).fetchall()
        return [_artifact(row) for row in rows]

    def delete_artifacts(self, ids: list[str]) -> None:
        with self._tx() as conn:
            conn.executemany("DELETE FROM artifacts WHERE id = ?", [(artifact_id,) for artifact_id in ids])

    def artifacts(self, *, kind: str | None, tag: str | None, limit: int) -> list[ArtifactRecord]:
        """Newest first (ties in put order), of one kind and carrying one tag when those are given."""
        clauses: list[str] = []
        params: list[Any] = []
        if kind is not None:
            clauses.append("kind = ?")
            params.append(kind)
        if tag is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(artifacts.tags) WHERE value = ?)")
            params.append(tag)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT * FROM artifacts{where} ORDER BY created_ms DESC, rowid DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [_artifact(row) for row in rows]
