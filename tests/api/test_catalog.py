"""/v1/catalog/models over real loopback HTTP with a real store, sqlite and Model controller:
create writes a manifest, delete answers 204, verify answers in status and the metric, a state
change edits the Model's own document in place."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from llorch.api.app import create_app
from llorch.api.context import AppContext
from llorch.controllers.model import ModelController
from llorch.dataplane.metrics import Metrics
from tests.api.appctx import app_context, served

WEIGHTS = b"GGUF" + bytes(range(256)) * 16
DIGEST = "sha256:" + hashlib.sha256(WEIGHTS).hexdigest()

MODEL_FILE = f"""\
# Models of the chat box. Keep this comment.
apiVersion: llorch.dev/v1
kind: Model
metadata:
  name: tiny      # the small one
spec:
  source: {{path: w.gguf}}   # next to this file
  digest: {DIGEST}
---
# A second document nobody touches.
apiVersion: llorch.dev/v1
kind: Pool
metadata: {{name: chat}}
spec:
    model: tiny
    replicas: 0
"""


@dataclass
class Catalog:
    url: str
    http: httpx.Client
    ctx: AppContext
    metrics: Metrics
    folder: Path


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    metrics = Metrics(registry=CollectorRegistry())
    ctx = app_context(tmp_path, metrics=metrics)
    controller = ModelController(ctx.store, ctx.db, tmp_path / "cache", on_verification=metrics.verification)

    def changed(keys: set[str]) -> None:
        # What the daemon's manager does on its workers, done here at once.
        for key in sorted(keys):
            if key.startswith("Model/"):
                controller.reconcile(key.split("/", 1)[1])

    ctx = dataclasses.replace(ctx, changed=changed)
    (ctx.store.folder / "w.gguf").write_bytes(WEIGHTS)
    with served(create_app(ctx)) as url, httpx.Client(timeout=10) as http:
        yield Catalog(url, http, ctx, metrics, ctx.store.folder)
    ctx.tasks.stop()
    ctx.db.close()


def verifications(metrics: Metrics, result: str, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "llorch_catalog_verifications_total", {"result": result, "reason": reason}
    )
    return value or 0.0


def test_post_writes_a_manifest_like_apply_and_get_delete_follow(catalog: Catalog) -> None:
    body = {
        "id": "tiny",
        "source": {"path": "w.gguf"},
        "digest": DIGEST,
        "tags": ["chat", "q8"],
        "sbom": "bom.json",
        "trust_policy": "permissive",
    }
    created = catalog.http.post(f"{catalog.url}/v1/catalog/models", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == "/v1/catalog/models/tiny"
    answer = created.json()
    assert (answer["action"], answer["file"]) == ("created", "model-tiny.yaml")
    assert answer["model"]["metadata"]["annotations"] == {"llorch.dev/tags": "chat,q8"}
    written = (catalog.folder / "model-tiny.yaml").read_text()
    assert (
        "kind: Model" in written and f"digest: {DIGEST}" in written and "trustPolicy: permissive" in written
    )

    again = catalog.http.post(f"{catalog.url}/v1/catalog/models", json=body)
    assert again.status_code == 200 and again.json()["action"] == "unchanged"

    got = catalog.http.get(f"{catalog.url}/v1/catalog/models/tiny")
    assert got.status_code == 200 and got.json()["status"]["digest"] == DIGEST

    dry = catalog.http.delete(f"{catalog.url}/v1/catalog/models/tiny", params={"dryRun": "true"})
    assert dry.status_code == 200 and dry.json()["action"] == "deleted"
    assert (catalog.folder / "model-tiny.yaml").exists()
    gone = catalog.http.delete(f"{catalog.url}/v1/catalog/models/tiny")
    assert gone.status_code == 204 and gone.content == b""
    assert not (catalog.folder / "model-tiny.yaml").exists()
    assert catalog.http.get(f"{catalog.url}/v1/catalog/models/tiny").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"id": "Tiny", "source_url": "https://example.com/w.gguf"},
        {"id": "tiny"},
        {"id": "tiny", "source_url": "ftp://example.com/w.gguf"},
        {"id": "tiny", "source_url": "https://example.com/w", "source": {"path": "w.gguf"}},
        {"id": "tiny", "source_url": "https://example.com/w", "signatures": ["a.sig", "b.sig"]},
        {"id": "tiny", "source_url": "https://example.com/w", "digest": "md5:00"},
        {"id": "tiny", "source_url": "https://example.com/w", "trust_policy": "lenient"},
    ],
)
def test_bad_bodies_are_400_and_write_nothing(catalog: Catalog, body: dict[str, object]) -> None:
    refused = catalog.http.post(f"{catalog.url}/v1/catalog/models", json=body)
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_PARAMS", refused.text
    assert list(catalog.folder.glob("*.yaml")) == []


def test_verify_rehashes_and_answers_in_status_and_the_metric(catalog: Catalog) -> None:
    (catalog.folder / "models.yaml").write_text(MODEL_FILE)
    catalog.ctx.store.load()
    before = verifications(catalog.metrics, "ok", "DigestVerified")
    accepted = catalog.http.post(f"{catalog.url}/v1/catalog/models/tiny/verify")
    assert accepted.status_code == 202
    token = accepted.json()["verify_token"]
    status = catalog.http.get(f"{catalog.url}/v1/catalog/models/tiny").json()["status"]
    assert status["lastVerification"]["token"] == token
    assert (status["lastVerification"]["result"], status["lastVerification"]["reason"]) == ("ok", "Verified")
    assert verifications(catalog.metrics, "ok", "DigestVerified") == before + 1

    (catalog.folder / "w.gguf").write_bytes(WEIGHTS + b"tampered")
    catalog.http.post(f"{catalog.url}/v1/catalog/models/tiny/verify")
    status = catalog.http.get(f"{catalog.url}/v1/catalog/models/tiny").json()["status"]
    assert status["lastVerification"]["result"] == "mismatch"
    assert verifications(catalog.metrics, "mismatch", "DigestMismatch") >= 1
    assert catalog.http.post(f"{catalog.url}/v1/catalog/models/absent/verify").status_code == 404


def test_a_state_change_edits_only_the_lifecycle_of_the_models_document(catalog: Catalog) -> None:
    path = catalog.folder / "models.yaml"
    path.write_text(MODEL_FILE)
    catalog.ctx.store.load()
    retired = catalog.http.post(
        f"{catalog.url}/v1/catalog/models/tiny/state", json={"state": "Retired", "deadline_ms": 5000}
    )
    assert retired.status_code == 202, retired.text
    answer = retired.json()
    assert (answer["state"], answer["pools"], answer["file"]) == ("Retired", ["chat"], "models.yaml")
    expected = MODEL_FILE.replace(
        "  source: {path: w.gguf}", "  lifecycle: Retired\n  source: {path: w.gguf}"
    )
    assert path.read_text() == expected, "one line added; comments, layout and the other document kept"
    deadline = catalog.ctx.db.model_runtime("tiny").retire_deadline
    assert deadline is not None and abs(deadline * 1000 - answer["deadline_ms"]) < 1

    active = catalog.http.post(f"{catalog.url}/v1/catalog/models/tiny/state", json={"state": "Active"})
    assert active.status_code == 202
    assert path.read_text() == expected.replace("lifecycle: Retired", "lifecycle: Active")
    assert catalog.ctx.db.model_runtime("tiny").retire_deadline is None


@pytest.mark.parametrize(
    "body", [{"state": "Deprecated"}, {"state": "retired"}, {"state": "Retired", "deadline_ms": -1}, {}]
)
def test_any_other_state_is_400_and_the_file_is_untouched(catalog: Catalog, body: dict[str, object]) -> None:
    path = catalog.folder / "models.yaml"
    path.write_text(MODEL_FILE)
    catalog.ctx.store.load()
    refused = catalog.http.post(f"{catalog.url}/v1/catalog/models/tiny/state", json=body)
    assert refused.status_code == 400 and refused.json()["code"] == "INVALID_PARAMS"
    assert path.read_text() == MODEL_FILE


def test_catalog_actions_are_in_the_audit_trail(catalog: Catalog) -> None:
    (catalog.folder / "models.yaml").write_text(MODEL_FILE)
    catalog.ctx.store.load()
    created = catalog.http.post(
        catalog.url + "/v1/catalog/models", json={"id": "other", "source": {"path": "w.gguf"}}
    )
    assert created.status_code == 201, created.text
    dry = catalog.http.post(
        catalog.url + "/v1/catalog/models?dryRun=true", json={"id": "third", "source": {"path": "w.gguf"}}
    )
    assert dry.status_code == 200 and dry.json()["action"] == "created"
    assert not (catalog.folder / "model-third.yaml").exists(), "a dry run writes nothing"
    assert catalog.http.post(catalog.url + "/v1/catalog/models/tiny/verify").status_code == 202
    state = catalog.http.post(catalog.url + "/v1/catalog/models/tiny/state", json={"state": "Retired"})
    assert state.status_code == 202, state.text
    assert catalog.http.delete(catalog.url + "/v1/catalog/models/other").status_code == 204
    entries = [(e.action, e.target, e.reason) for e in catalog.ctx.audit.entries(limit=10)]
    assert ("model.lifecycle", "Model/tiny", "Active -> Retired") in entries
    assert [a for a, _, _ in reversed(entries)] == [
        "catalog.put",
        "model.verify",
        "model.lifecycle",
        "object.delete",
    ]
