"""The Model controller against real files, a real sqlite, real loopback HTTP servers and the real
ssh-keygen."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from llorch.controllers.model import RETRY_MISSING_SECONDS, ModelController
from llorch.resources.config import Trust
from llorch.resources.model import TrustPolicy
from llorch.resources.status import ModelStatus
from llorch.store.db import ModelRuntime, StateDB
from llorch.store.manifests import ManifestStore
from tests.runtime.range_server import range_server
from tests.runtime.signing import make_key, sign

Setup = tuple[ManifestStore, StateDB, ModelController, Path]
WEIGHTS = b"GGUF" + bytes(range(256)) * 64


def model_yaml(source: str, extra: str = "") -> str:
    return f"""apiVersion: llorch.dev/v1
kind: Model
metadata:
  name: m
spec:
  source:
    {source}
{extra}"""


def wire(status: ModelStatus | None) -> dict[str, Any] | None:
    return None if status is None else status.to_wire()


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    folder = tmp_path / "manifests"
    folder.mkdir()
    store = ManifestStore(folder)
    db = StateDB(tmp_path / "state.sqlite")
    return store, db, ModelController(store, db, tmp_path / "cache"), folder


def ready(db: StateDB) -> dict[str, str]:
    status = wire(db.model_status("m"))
    assert status is not None
    condition = next((c for c in status["conditions"] if c["type"] == "Ready"), None)
    assert condition is not None
    return condition


def test_relative_path_resolves_next_to_the_manifest_and_digest_is_checked(setup: Setup) -> None:
    store, db, controller, folder = setup
    (folder / "w.gguf").write_bytes(WEIGHTS)
    digest = "sha256:" + hashlib.sha256(WEIGHTS).hexdigest()
    (folder / "m.yaml").write_text(model_yaml("path: w.gguf", f"  digest: {digest}\n"))
    store.load()
    result = controller.reconcile("m")
    assert result.requeue_after is None
    status = wire(db.model_status("m"))
    assert status is not None
    assert status["resolvedPath"] == str(folder / "w.gguf") and status["sizeBytes"] == len(WEIGHTS)
    assert status["digest"] == digest and status["digestVerified"] is True
    assert status["trust"] == "unsigned" and "not verified" in status["trustWarning"]
    assert ready(db)["status"] == "True"
    assert [e.reason for e in db.events("Model/m")] == ["Untrusted", "Resolved"]


def test_a_digest_mismatch_is_not_ready(setup: Setup) -> None:
    store, db, controller, folder = setup
    (folder / "w.gguf").write_bytes(WEIGHTS)
    (folder / "m.yaml").write_text(model_yaml("path: w.gguf", "  digest: sha256:" + "0" * 64 + "\n"))
    store.load()
    assert controller.reconcile("m").requeue_after is not None
    condition = ready(db)
    assert condition["status"] == "False" and condition["reason"] == "DigestMismatch"
    assert db.events("Model/m")[-1].type == "Warning"


def test_a_missing_file_is_retried_and_heals(setup: Setup) -> None:
    store, db, controller, folder = setup
    (folder / "m.yaml").write_text(model_yaml("path: later.gguf"))
    store.load()
    assert controller.reconcile("m").requeue_after is not None
    assert ready(db)["reason"] == "NotFound"
    (folder / "later.gguf").write_bytes(WEIGHTS)
    assert controller.reconcile("m").requeue_after is None
    assert ready(db)["status"] == "True"


def test_a_deleted_model_forgets_its_status(setup: Setup) -> None:
    store, db, controller, folder = setup
    (folder / "w.gguf").write_bytes(WEIGHTS)
    (folder / "m.yaml").write_text(model_yaml("path: w.gguf"))
    store.load()
    controller.reconcile("m")
    (folder / "m.yaml").unlink()
    store.load()
    controller.reconcile("m")
    assert wire(db.model_status("m")) is None


def settle(controller: ModelController, db: StateDB, timeout: float = 30.0) -> float | None:
    """Reconcile until nothing is downloading any more (a download runs on its own thread)."""
    deadline = time.monotonic() + timeout
    while True:
        result = controller.reconcile("m")
        status = db.model_status("m")
        if status is None or not status.downloading or time.monotonic() > deadline:
            return result.requeue_after
        time.sleep(0.05)


def test_url_sources_are_downloaded_into_the_cache_with_progress(setup: Setup) -> None:
    store, db, controller, folder = setup
    with range_server({"w.gguf": WEIGHTS * 64}) as server:
        server.bytes_per_chunk = 4096
        (folder / "m.yaml").write_text(model_yaml(f"url: {server.url}/w.gguf"))
        store.load()
        assert controller.reconcile("m").requeue_after == 1.0
        first = db.model_status("m")
        assert first is not None and first.downloading
        assert ready(db)["reason"] == "Downloading" and ready(db)["message"].startswith("downloading")
        assert settle(controller, db) is None
    status = wire(db.model_status("m"))
    assert status is not None and ready(db)["status"] == "True"
    assert status["downloadedBytes"] is None, "progress shows only while downloading"
    path = Path(status["resolvedPath"])
    assert path.read_bytes() == WEIGHTS * 64 and "cache" in path.parts
    assert [e.reason for e in db.events("Model/m")][:1] == ["Downloading"]


def test_a_failed_download_is_reported_and_retried(setup: Setup) -> None:
    store, db, controller, folder = setup
    with range_server({}) as server:
        (folder / "m.yaml").write_text(model_yaml(f"url: {server.url}/missing.gguf"))
        store.load()
        assert settle(controller, db) == RETRY_MISSING_SECONDS
    assert ready(db)["reason"] == "DownloadFailed" and "404" in ready(db)["message"]


def test_a_retired_model_is_not_downloaded(setup: Setup) -> None:
    store, db, controller, folder = setup
    with range_server({"w.gguf": WEIGHTS}) as server:
        (folder / "m.yaml").write_text(model_yaml(f"url: {server.url}/w.gguf", "  lifecycle: Retired\n"))
        store.load()
        assert controller.reconcile("m").requeue_after is None
        assert server.ranges == [], "nothing was fetched"
    assert ready(db)["reason"] == "Retired"
    assert db.model_runtime("m").retired_at is not None


# -- trust --------------------------------------------------------------------------------------------


def trusted_setup(tmp_path: Path, policy: str, keys: list[str]) -> Setup:
    folder = tmp_path / "manifests"
    folder.mkdir()
    store = ManifestStore(folder)
    db = StateDB(tmp_path / "state.sqlite")
    trust = Trust(policy=TrustPolicy(policy), keys=keys)
    return store, db, ModelController(store, db, tmp_path / "cache", trust=trust), folder


def condition_of(db: StateDB, kind: str) -> dict[str, str]:
    status = wire(db.model_status("m"))
    assert status is not None
    found = next((c for c in status["conditions"] if c["type"] == kind), None)
    assert found is not None
    return found


DIGEST = "sha256:" + hashlib.sha256(WEIGHTS).hexdigest()


@pytest.mark.parametrize("policy", ["permissive", "strict"])
@pytest.mark.parametrize(
    ("case", "trusted_reason"),
    [
        ("valid", "Verified"),
        ("wrong-key", "UnknownSigner"),
        ("tampered-file", "SignatureInvalid"),
        ("missing", "SignatureUnreadable"),
        ("unsigned", "Unsigned"),
    ],
)
def test_signatures_under_both_policies(
    tmp_path: Path, policy: str, case: str, trusted_reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    release, stranger = make_key(tmp_path, "release"), make_key(tmp_path, "stranger")
    store, db, controller, folder = trusted_setup(tmp_path, policy, [release.public_line])
    (folder / "w.gguf").write_bytes(WEIGHTS)
    signer = stranger if case == "wrong-key" else release
    sign(signer, DIGEST, folder / "w.gguf.sig")
    if case == "tampered-file":
        (folder / "w.gguf").write_bytes(WEIGHTS + b"!")
    if case == "missing":
        (folder / "w.gguf.sig").unlink()
    signature = "" if case == "unsigned" else "  signature: w.gguf.sig\n"
    (folder / "m.yaml").write_text(model_yaml("path: w.gguf", signature))
    store.load()
    caplog.set_level(logging.WARNING, logger="llorch.controllers")
    controller.reconcile("m")
    trusted = condition_of(db, "Trusted")
    assert trusted["reason"] == trusted_reason
    status = db.model_status("m")
    assert status is not None
    if case == "valid":
        assert trusted["status"] == "True" and status.trust == "signed" and status.signer == "release@test"
        assert ready(db)["status"] == "True"
        assert "Untrusted" not in [e.reason for e in db.events("Model/m")]
        return
    assert trusted["status"] == "False" and status.trust_warning
    assert status.trust == ("unsigned" if case == "unsigned" else "unverified")
    warnings = [e for e in db.events("Model/m") if e.reason == "Untrusted"]
    assert len(warnings) == 1 and warnings[0].type == "Warning"
    assert any("not trusted" in r.getMessage() for r in caplog.records)
    if policy == "permissive":
        assert ready(db)["status"] == "True", "permissive: it still runs"
    else:
        assert ready(db)["status"] == "False" and ready(db)["reason"] == "Untrusted"
    controller.reconcile("m")
    assert len([e for e in db.events("Model/m") if e.reason == "Untrusted"]) == 1, "said once, not per resync"


def test_a_model_can_only_tighten_the_policy(tmp_path: Path) -> None:
    store, db, controller, folder = trusted_setup(tmp_path, "permissive", [])
    (folder / "w.gguf").write_bytes(WEIGHTS)
    (folder / "m.yaml").write_text(model_yaml("path: w.gguf", "  trustPolicy: strict\n"))
    store.load()
    controller.reconcile("m")
    assert ready(db)["reason"] == "Untrusted"


def test_sbom_is_summarized_and_an_unreadable_one_is_a_warning(setup: Setup) -> None:
    store, db, controller, folder = setup
    (folder / "w.gguf").write_bytes(WEIGHTS)
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "components": [{"licenses": [{"expression": "MIT"}]}],
    }
    (folder / "bom.json").write_text(json.dumps(bom))
    (folder / "m.yaml").write_text(model_yaml("path: w.gguf", "  sbom: bom.json\n"))
    store.load()
    controller.reconcile("m")
    status = db.model_status("m")
    assert status is not None and status.sbom is not None
    assert (status.sbom.format, status.sbom.components, status.sbom.licenses) == ("CycloneDX 1.6", 1, ["MIT"])
    (folder / "m.yaml").write_text(model_yaml("path: w.gguf", "  sbom: absent.json\n"))
    store.load()
    controller.reconcile("m")
    status = db.model_status("m")
    assert status is not None and status.sbom is None and "absent.json" in (status.sbom_error or "")
    assert ready(db)["status"] == "True", "an unreadable SBOM never keeps a model from running"
    assert db.events("Model/m")[-1].reason == "SbomUnreadable"


def test_a_verify_request_rehashes_and_answers_in_status(setup: Setup) -> None:
    store, db, controller, folder = setup
    (folder / "w.gguf").write_bytes(WEIGHTS)
    (folder / "m.yaml").write_text(model_yaml("path: w.gguf", f"  digest: {DIGEST}\n"))
    store.load()
    controller.reconcile("m")
    weights = folder / "w.gguf"
    stat = weights.stat()
    # Same size and mtime: the digest cache alone would not notice the change.
    weights.write_bytes(WEIGHTS[:-1] + b"X")
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    controller.reconcile("m")
    assert ready(db)["status"] == "True"
    db.save_model_runtime(ModelRuntime("m", verify_token="v1"))
    controller.reconcile("m")
    status = db.model_status("m")
    assert status is not None and status.last_verification is not None
    assert (status.last_verification.result, status.last_verification.token) == ("mismatch", "v1")
    assert ready(db)["reason"] == "DigestMismatch"
