"""The Model controller against real files, a real sqlite and a real loopback HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llorch.controllers.model import ModelController
from llorch.resources.status import ModelStatus
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore

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
    assert [e.reason for e in db.events("Model/m")] == ["Resolved"]


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


@pytest.fixture
def weights_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/w.gguf":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(WEIGHTS)))
            self.end_headers()
            self.wfile.write(WEIGHTS)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_url_sources_are_downloaded_once_into_the_cache(setup: Setup, weights_server: str) -> None:
    store, db, controller, folder = setup
    (folder / "m.yaml").write_text(model_yaml(f"url: {weights_server}/w.gguf"))
    store.load()
    controller.reconcile("m")
    status = wire(db.model_status("m"))
    assert status is not None and ready(db)["status"] == "True"
    path = Path(status["resolvedPath"])
    assert path.read_bytes() == WEIGHTS and "cache" in path.parts
    (folder / "m.yaml").write_text(model_yaml(f"url: {weights_server}/missing.gguf"))
    store.load()
    controller.reconcile("m")
    assert ready(db)["reason"] == "DownloadFailed"
    assert not [p for p in path.parent.parent.rglob(".download-*")], "no partial download is left behind"
