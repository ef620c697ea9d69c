"""SIGHUP (`systemctl reload llorchd`) on a real llorchd: a key added to llorch.yaml is taken
without a restart, and a setting that needs one is said in the log."""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import httpx
import yaml

from tests.e2e.conftest import TEST_CONFIG, start_llorchd, stop_llorchd, wait_for

KEY = "llorch_e2e-reload-key"


def test_sighup_rereads_the_settings_file(tmp_path: Path, llama_server_bin: Path) -> None:
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    daemon = start_llorchd(tmp_path, manifests, tmp_path / "state")
    try:
        assert daemon.http.get(daemon.url + "/v1/pools").status_code == 200, "no key yet: loopback is open"
        key = {"name": "laptop", "sha256": hashlib.sha256(KEY.encode()).hexdigest(), "scopes": ["read"]}
        changed = {**TEST_CONFIG, "auth": {"keys": [key]}, "server": {"maxStreams": 8}}
        (tmp_path / "llorch.yaml").write_text(yaml.safe_dump(changed))
        daemon.proc.send_signal(signal.SIGHUP)

        def locked() -> bool:
            return daemon.http.get(daemon.url + "/v1/pools").status_code == 401

        wait_for("the new key to be required", locked, timeout=10)
        with_key = httpx.get(daemon.url + "/v1/pools", headers={"Authorization": f"Bearer {KEY}"})
        assert with_key.status_code == 200
        wait_for("the restart-only change in the log", lambda: "server.maxStreams changed" in daemon.logs())
        assert "reload: now in force: auth.keys" in daemon.logs()
        assert daemon.proc.poll() is None, "SIGHUP does not end llorchd"
    finally:
        assert stop_llorchd(daemon) == 0
