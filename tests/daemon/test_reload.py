"""A reload: the settings file read again, what can change at run time taken, the rest logged."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from llorch.daemon.config import load_config
from llorch.daemon.reload import applied, changes
from llorch.daemon.wiring import Daemon
from llorch.resources import ServerConfig

KEY = "llorch_reload-test-key"
DIGEST = hashlib.sha256(KEY.encode()).hexdigest()


def config(**fields: object) -> ServerConfig:
    return ServerConfig.model_validate(fields)


def test_what_changes_at_run_time_and_what_waits_for_a_restart() -> None:
    running = config()
    reread = config(
        bind="127.0.0.1:9999",
        auth={"keys": [{"name": "ci", "sha256": DIGEST, "scopes": ["read"]}]},
        trust={"policy": "strict"},
        artifacts={"maxBytes": 2048, "retention": {"maxAgeDays": 7}},
        engines={"llamacpp": {"backend": "cuda"}},
    )
    found = changes(running, reread)
    assert found.live == ["artifacts.retention", "auth.keys", "trust.policy"]
    assert found.need_restart == ["artifacts.maxBytes", "bind", "engines.llamacpp"]
    after = applied(running, reread, found.live)
    assert after.auth.keys == reread.auth.keys and after.trust.policy == reread.trust.policy
    assert after.artifacts.retention.max_age_days == 7
    assert (after.bind, after.artifacts.max_bytes) == (running.bind, running.artifacts.max_bytes)
    assert not changes(running, config())


@pytest.fixture
def settings(tmp_path: Path) -> Path:
    path = tmp_path / "llorch.yaml"
    path.write_text(yaml.safe_dump({"stateDir": str(tmp_path / "state")}))
    return path


@pytest.fixture
def daemon(tmp_path: Path, settings: Path) -> Iterator[Daemon]:
    """The whole daemon, assembled but not started: a reload needs no thread and no engine."""
    built = Daemon(load_config(settings), base_dir=tmp_path, reread=lambda: load_config(settings))
    yield built
    built.audit.close()
    built.db.close()


def write(path: Path, **fields: object) -> None:
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **fields}))


def test_a_new_key_is_accepted_after_a_reload(
    daemon: Daemon, settings: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert daemon.keys.find(KEY) is None
    write(settings, auth={"keys": [{"name": "ci", "sha256": DIGEST, "scopes": ["read", "submit"]}]})
    with caplog.at_level(logging.INFO, logger="llorch.daemon"):
        daemon.reload()
    principal = daemon.keys.find(KEY)
    assert principal is not None and principal.identity == "token:ci"
    assert "reload: now in force: auth.keys" in caplog.text
    entry = daemon.audit.entries(limit=1)[0]
    assert (entry.action, entry.decision) == ("config.reload", "allow")


def test_what_needs_a_restart_is_logged_and_keeps_running(
    daemon: Daemon, settings: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(settings, bind="127.0.0.1:9999", server={"maxStreams": 8})
    daemon.reload()
    assert "bind, server.maxStreams changed in the settings file" in caplog.text
    assert daemon.config.bind == "127.0.0.1:8080"


def test_a_broken_file_or_an_unsafe_one_is_refused_whole(
    tmp_path: Path, settings: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = {"name": "ci", "sha256": DIGEST, "scopes": ["admin"]}
    write(settings, bind="0.0.0.0:8080", auth={"keys": [key]})
    daemon = Daemon(load_config(settings), base_dir=tmp_path, reread=lambda: load_config(settings))
    try:
        settings.write_text("bind: [\n")
        daemon.reload()
        assert "reload refused, the running settings stay" in caplog.text
        # Dropping every key of a daemon that listens beyond loopback would open it to everyone.
        write_fresh = {"stateDir": str(tmp_path / "state"), "bind": "0.0.0.0:8080"}
        settings.write_text(yaml.safe_dump(write_fresh))
        daemon.reload()
        assert "refusing to serve on 0.0.0.0 without a token" in caplog.text
        assert daemon.keys.find(KEY) is not None
        assert daemon.audit.entries(limit=1)[0].decision == "deny"
    finally:
        daemon.audit.close()
        daemon.db.close()
