"""The Model controller: get the weights (downloading them on their own thread), check digest,
signature and SBOM, and report all of it, with trust, in status.

A Retired Model's weights are never downloaded: nothing may run it, and the cache may prune
what it had. Trust follows `trust.policy`: permissive runs an unsigned or unverifiable Model
with a `Trusted=False` condition, a Warning event and a log line; strict keeps it from Ready.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llorch.controllers.conditions import set_condition
from llorch.controllers.manager import Result
from llorch.resources import Lifecycle, Model, ModelSpec
from llorch.resources.config import Trust
from llorch.resources.model import TrustPolicy
from llorch.resources.status import Condition, ModelStatus, SbomSummary, Verification, condition, stamp
from llorch.runtime import signatures
from llorch.runtime.downloads import Done, Downloads, Progress, download_for
from llorch.runtime.errors import WeightsError
from llorch.runtime.references import ReferenceError, read_reference
from llorch.runtime.sbom import SBOM_MAX_BYTES, SbomError, summarize
from llorch.runtime.weights import DigestCache, resolve_local
from llorch.store.cache import WeightsCache
from llorch.store.db import ModelRuntime, StateDB
from llorch.store.manifests import ManifestStore

log = logging.getLogger("llorch.controllers")

# A missing file may appear (a download finishing in another terminal); look again this often.
RETRY_MISSING_SECONDS = 10.0
# How often status shows a running download's progress.
PROGRESS_SECONDS = 1.0


def spec_hash(spec: Any) -> str:
    return hashlib.sha256(json.dumps(spec.to_wire(), sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Pass:
    """One reconcile's context: what every step reads."""

    key: str
    previous: ModelStatus
    runtime: ModelRuntime
    verify: bool
    """A verify request is waiting for this reconcile's answer."""
    now: float


@dataclass(frozen=True)
class _Checked:
    """What one reconcile found about the weights it could read."""

    trusted: signatures.Verdict
    sbom: SbomSummary | None
    sbom_error: str | None


class ModelController:
    kind = "Model"

    def __init__(
        self,
        store: ManifestStore,
        db: StateDB,
        cache: Path,
        *,
        trust: Trust | None = None,
        downloads: Downloads | None = None,
        weights_cache: WeightsCache | None = None,
        on_verification: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`on_verification(result, reason)` hears each check: ok|mismatch|missing|untrusted (for
        metrics). `weights_cache` hears which cached weights Active Models use."""
        self._store = store
        self._verified = on_verification or (lambda result, reason: None)
        self._db = db
        self._cache = cache
        self._trust = trust or Trust()
        self._downloads = downloads or Downloads()
        self._weights_cache = weights_cache
        self._clock = clock
        self._digests = DigestCache()
        # Signature and SBOM checks are remembered per input, so a resync does not run ssh-keygen
        # or fetch an SBOM URL again for nothing; a verify request clears them.
        self._verdicts: dict[tuple[str, str, str], signatures.Verdict] = {}
        self._sboms: dict[str, SbomSummary | str] = {}

    def retrust(self, trust: Trust) -> None:
        """New trust settings (a config reload): each Model's next reconcile checks against them."""
        self._trust = trust

    def known_names(self) -> Iterable[str]:
        return ()

    def dependents(self, key: str) -> Iterable[str]:
        return ()

    def reconcile(self, name: str) -> Result:
        key = f"Model/{name}"
        entry = self._store.get(key)
        if entry is None:
            self._downloads.cancel(key)
            self._db.forget_object(key)
            return Result()
        assert isinstance(entry.obj, Model)
        spec = entry.obj.spec
        now = self._clock()
        runtime = self._lifecycle_moments(name, spec, now)
        generation = self._db.observe_generation(key, spec_hash(spec))
        previous = self._db.model_status(name) or ModelStatus()
        verify = bool(runtime.verify_token) and (
            previous.last_verification is None or previous.last_verification.token != runtime.verify_token
        )
        at = _Pass(key, previous, runtime, verify, now)
        status = ModelStatus(
            observed_generation=generation,
            lifecycle=spec.lifecycle.value,
            last_verification=previous.last_verification,
        )
        base_dir = (self._store.folder / entry.file).parent
        located = self._locate(at, spec, base_dir, status)
        if isinstance(located, Result):
            return located
        path = located
        if verify:
            self._digests.forget(path)
            self._verdicts.clear()
            self._sboms.pop(spec.sbom or "", None)
        try:
            digest = self._digests.digest(path)
        except OSError as exc:
            return self._failed(at, status, "missing", "Unreadable", str(exc))
        found = {"resolved_path": str(path), "size_bytes": path.stat().st_size, "digest": digest}
        status = status.model_copy(update=found)
        if spec.digest is not None and spec.digest != digest:
            message = f"{path} hashes to {digest}, the manifest expects {spec.digest}"
            status = status.model_copy(update={"digest_verified": False})
            return self._failed(at, status, "mismatch", "DigestMismatch", message)
        checked = self._check(at, spec, digest, base_dir)
        status = self._trusted(at, status, spec, checked)
        strict = TrustPolicy.STRICT in (self._trust.policy, spec.trust_policy)
        if strict and not checked.trusted.trusted:
            message = f"trust.policy is strict: {checked.trusted.message}"
            return self._failed(at, status, "untrusted", "Untrusted", message)
        self._verified("ok", "DigestVerified" if spec.digest else "NoDigest")
        verified = "digest verified" if spec.digest else "no digest to verify"
        conditions = set_condition(
            status.conditions, "Ready", True, "Resolved", f"{path} ({verified})", now=now
        )
        if previous.resolved_path != str(path) or previous.digest != digest:
            self._db.record_event(key, "Normal", "Resolved", f"weights at {path}, {digest}")
        if verify:
            status = self._verification(at, status, "ok", "Verified", f"{digest} ({verified})")
        if spec.lifecycle is Lifecycle.ACTIVE and self._weights_cache is not None:
            self._weights_cache.touch(path)
        status = status.model_copy(
            update={"digest_verified": spec.digest is not None, "conditions": conditions}
        )
        self._db.put_status(key, status)
        return Result()

    # -- weights ----------------------------------------------------------------------------------

    def _lifecycle_moments(self, name: str, spec: ModelSpec, now: float) -> ModelRuntime:
        """Record when the Model was first seen Retired; going Active again clears that and the
        retire deadline."""
        runtime = self._db.model_runtime(name)
        if spec.lifecycle is Lifecycle.RETIRED and runtime.retired_at is None:
            runtime = replace(runtime, retired_at=now)
            self._db.save_model_runtime(runtime)
        elif spec.lifecycle is Lifecycle.ACTIVE and runtime.retired_at is not None:
            # Only once it was seen Retired: a deadline saved just before the file says Retired
            # (POST .../state) must survive a reconcile that still reads the old file.
            runtime = replace(runtime, retired_at=None, retire_deadline=None)
            self._db.save_model_runtime(runtime)
        return runtime

    def _locate(self, at: _Pass, spec: ModelSpec, base_dir: Path, status: ModelStatus) -> Path | Result:
        """The weights file, or the Result of a reconcile that must wait (a download, a failure)."""
        key, previous = at.key, at.previous
        download = download_for(spec.source, self._cache, spec.digest)
        if download is None:
            try:
                return resolve_local(spec.source, base_dir=base_dir, cache=self._cache)
            except WeightsError as exc:
                return self._failed(at, status, "missing", exc.reason, exc.message)
        if spec.lifecycle is Lifecycle.RETIRED and not download.target.is_file():
            self._downloads.cancel(key)
            message = "the Model is Retired: its weights are not downloaded"
            conditions = set_condition(previous.conditions, "Ready", False, "Retired", message, now=at.now)
            self._db.put_status(key, status.model_copy(update={"conditions": conditions}))
            return Result()
        outcome = self._downloads.poll(key, download)
        if isinstance(outcome, Progress):
            if not previous.downloading:
                self._db.record_event(key, "Normal", "Downloading", f"fetching {_source_text(spec)}")
            shown = status.model_copy(
                update={
                    "downloaded_bytes": outcome.downloaded_bytes,
                    "total_bytes": outcome.total_bytes,
                    "bytes_per_second": outcome.bytes_per_second,
                }
            )
            conditions = set_condition(
                previous.conditions, "Ready", False, "Downloading", shown.download_text(), now=at.now
            )
            self._db.put_status(key, shown.model_copy(update={"conditions": conditions}))
            return Result(requeue_after=PROGRESS_SECONDS)
        if isinstance(outcome, WeightsError):
            result = "mismatch" if outcome.reason == "DigestMismatch" else "missing"
            return self._failed(at, status, result, outcome.reason, outcome.message)
        assert isinstance(outcome, Done)
        if outcome.digest is not None:
            self._digests.remember(outcome.path, outcome.digest)
        return outcome.path

    def _failed(self, at: _Pass, status: ModelStatus, result: str, reason: str, message: str) -> Result:
        conditions = set_condition(
            status.conditions or at.previous.conditions, "Ready", False, reason, message, now=at.now
        )
        self._verified(result, reason)
        log.warning("%s: %s", at.key, message)
        self._db.record_event(at.key, "Warning", "Failed", f"{reason}: {message}")
        if at.verify:
            status = self._verification(at, status, result, reason, message)
        self._db.put_status(at.key, status.model_copy(update={"conditions": conditions}))
        return Result(requeue_after=RETRY_MISSING_SECONDS)

    def _verification(
        self, at: _Pass, status: ModelStatus, result: str, reason: str, message: str
    ) -> ModelStatus:
        done = Verification.model_validate(
            {
                "result": result,
                "reason": reason,
                "message": message,
                "at": stamp(at.now),
                "token": at.runtime.verify_token,
            }
        )
        return status.model_copy(update={"last_verification": done})

    # -- trust and SBOM ---------------------------------------------------------------------------

    def _check(self, at: _Pass, spec: ModelSpec, digest: str, base_dir: Path) -> _Checked:
        verdict = self._signature(spec, digest, base_dir)
        sbom, sbom_error = None, None
        if spec.sbom is not None:
            known = self._sboms.get(spec.sbom)
            if known is None:
                try:
                    known = summarize(
                        read_reference(spec.sbom, base_dir=base_dir, limit_bytes=SBOM_MAX_BYTES)
                    )
                except (ReferenceError, SbomError) as exc:
                    known = f"SBOM {spec.sbom}: {exc.message}"
                self._sboms[spec.sbom] = known
            if isinstance(known, str):
                sbom_error = known
                if at.previous.sbom_error != known:
                    log.warning("%s: %s", at.key, known)
                    self._db.record_event(at.key, "Warning", "SbomUnreadable", known)
            else:
                sbom = known
        return _Checked(verdict, sbom, sbom_error)

    def _signature(self, spec: ModelSpec, digest: str, base_dir: Path) -> signatures.Verdict:
        if spec.signature is None:
            return signatures.Verdict(
                False, "Unsigned", "no signature configured; the weights' origin is not verified"
            )
        try:
            data = read_reference(
                spec.signature, base_dir=base_dir, limit_bytes=signatures.SIGNATURE_MAX_BYTES
            )
        except ReferenceError as exc:
            return signatures.Verdict(False, "SignatureUnreadable", exc.message)
        memo = (digest, hashlib.sha256(data).hexdigest(), "\n".join(self._trust.keys))
        verdict = self._verdicts.get(memo)
        if verdict is None:
            verdict = signatures.verify(digest, data, self._trust.keys)
            self._verdicts[memo] = verdict
        return verdict

    def _trusted(self, at: _Pass, status: ModelStatus, spec: ModelSpec, checked: _Checked) -> ModelStatus:
        verdict = checked.trusted
        was = condition(at.previous.conditions, "Trusted")
        conditions: list[Condition] = set_condition(
            status.conditions or at.previous.conditions,
            "Trusted",
            verdict.trusted,
            verdict.reason,
            verdict.message,
            now=at.now,
        )
        if not verdict.trusted and (was is None or was.is_true or was.reason != verdict.reason):
            log.warning("%s is not trusted: %s", at.key, verdict.message)
            self._db.record_event(at.key, "Warning", "Untrusted", verdict.message)
        trust = "signed" if verdict.trusted else "unsigned" if spec.signature is None else "unverified"
        return status.model_copy(
            update={
                "trust": trust,
                "trust_warning": None if verdict.trusted else verdict.message,
                "signer": verdict.signer,
                "sbom": checked.sbom,
                "sbom_error": checked.sbom_error,
                "conditions": conditions,
            }
        )


def _source_text(spec: ModelSpec) -> str:
    source = spec.source
    if source.huggingface is not None:
        hf = source.huggingface
        return f"{hf.repo}/{hf.file}@{hf.revision} from Hugging Face"
    return str(source.url)
