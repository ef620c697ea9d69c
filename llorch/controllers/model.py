"""The Model controller: find the weights, check size and digest, report trust."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from llorch.controllers.conditions import set_condition
from llorch.controllers.manager import Result
from llorch.resources import Model
from llorch.resources.status import ModelStatus
from llorch.runtime.weights import DigestCache, WeightsError, resolve
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore

log = logging.getLogger("llorch.controllers")

# A missing file may appear (a download finishing in another terminal); look again this often.
RETRY_MISSING_SECONDS = 10.0


def spec_hash(spec: Any) -> str:
    return hashlib.sha256(json.dumps(spec.to_wire(), sort_keys=True).encode()).hexdigest()[:16]


class ModelController:
    kind = "Model"

    def __init__(
        self,
        store: ManifestStore,
        db: StateDB,
        cache: Path,
        *,
        on_verification: Callable[[str, str], None] | None = None,
    ) -> None:
        """`on_verification(result, reason)` hears each weights check: ok|mismatch|missing (for metrics)."""
        self._store = store
        self._verified = on_verification or (lambda result, reason: None)
        self._db = db
        self._cache = cache
        self._digests = DigestCache()

    def known_names(self) -> Iterable[str]:
        return ()

    def dependents(self, key: str) -> Iterable[str]:
        return ()

    def reconcile(self, name: str) -> Result:
        key = f"Model/{name}"
        entry = self._store.get(key)
        if entry is None:
            self._db.forget_object(key)
            return Result()
        assert isinstance(entry.obj, Model)
        spec = entry.obj.spec
        generation = self._db.observe_generation(key, spec_hash(spec))
        previous = self._db.model_status(name) or ModelStatus()
        status = ModelStatus(
            observed_generation=generation,
            lifecycle=spec.lifecycle.value,
            trust="signed" if spec.signature else "unsigned",
            trust_warning=None
            if spec.signature
            else "no signature configured; the weights' origin is not verified",
        )
        conditions = previous.conditions
        base_dir = (self._store.folder / entry.file).parent
        try:
            path = resolve(spec.source, base_dir=base_dir, cache=self._cache)
            digest = self._digests.digest(path)
        except (WeightsError, OSError) as exc:
            reason = exc.reason if isinstance(exc, WeightsError) else "Unreadable"
            conditions = set_condition(conditions, "Ready", False, reason, str(exc))
            self._verified("missing", reason)
            self._report_failure(key, reason, str(exc))
            self._db.put_status(key, status.model_copy(update={"conditions": conditions}))
            return Result(requeue_after=RETRY_MISSING_SECONDS)
        found = {"resolved_path": str(path), "size_bytes": path.stat().st_size, "digest": digest}
        if spec.digest is not None and spec.digest != digest:
            message = f"{path} hashes to {digest}, the manifest expects {spec.digest}"
            conditions = set_condition(conditions, "Ready", False, "DigestMismatch", message)
            self._verified("mismatch", "DigestMismatch")
            self._report_failure(key, "DigestMismatch", message)
            self._db.put_status(
                key, status.model_copy(update={**found, "digest_verified": False, "conditions": conditions})
            )
            return Result(requeue_after=RETRY_MISSING_SECONDS)
        self._verified("ok", "DigestVerified" if spec.digest else "NoDigest")
        verified = "digest verified" if spec.digest else "no digest to verify"
        conditions = set_condition(conditions, "Ready", True, "Resolved", f"{path} ({verified})")
        if previous.resolved_path != str(path) or previous.digest != digest:
            self._db.record_event(key, "Normal", "Resolved", f"weights at {path}, {digest}")
        status = status.model_copy(
            update={**found, "digest_verified": spec.digest is not None, "conditions": conditions}
        )
        self._db.put_status(key, status)
        return Result()

    def _report_failure(self, key: str, reason: str, message: str) -> None:
        log.warning("%s: %s", key, message)
        self._db.record_event(key, "Warning", "Failed", f"{reason}: {message}")
