"""llorchctl's global options (server, token) and the failures every command turns into one error line."""

from __future__ import annotations

import importlib
import pkgutil
import socket

import pytest
from click.testing import CliRunner

import llorch.cli.ctl
from llorch.cli.ctl import main
from tests.cli.ctl.fake_llorchd import FakeLlorchd, clean, ctl


def test_token_is_sent_as_bearer(fake_llorchd: FakeLlorchd) -> None:
    fake_llorchd.token = "s3cret"
    result = ctl(fake_llorchd, "--token", "s3cret", "get", "models")
    assert result.exit_code == 0, result.output
    assert fake_llorchd.last("GET").headers["authorization"] == "Bearer s3cret"


def test_token_from_environment(fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_llorchd.token = "from-env"
    monkeypatch.setenv("LLORCH_TOKEN", "from-env")
    assert ctl(fake_llorchd, "get", "models").exit_code == 0


def test_missing_token_is_an_error_line(fake_llorchd: FakeLlorchd) -> None:
    fake_llorchd.token = "s3cret"
    result = ctl(fake_llorchd, "get", "pools")
    assert result.exit_code == 1
    assert result.stderr == "error: an Authorization: Bearer token is required (MISSING_TOKEN)\n"
    assert "authorization" not in fake_llorchd.last("GET").headers
    clean(result)


def test_llorch_url_is_honoured(fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLORCH_URL", fake_llorchd.url.removeprefix("http://"))  # scheme optional
    result = CliRunner().invoke(main, ["get", "models"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("NAME")
    assert fake_llorchd.requests[-1].path == "/v1/catalog/models"


def test_unreachable_daemon() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = CliRunner().invoke(main, ["-s", f"http://127.0.0.1:{port}", "get", "pools"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot reach llorchd at http://127.0.0.1:{port}: ")
    clean(result)


def test_unknown_resource_type(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "get", "pods")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unknown resource type 'pods'")
    assert fake_llorchd.requests == []


def test_every_area_module_registers_its_commands() -> None:
    registered = {}
    for info in pkgutil.iter_modules(llorch.cli.ctl.__path__):
        module = importlib.import_module(f"llorch.cli.ctl.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            assert main.commands.get(str(command.name)) is command, f"{info.name}: {command.name}"
            registered[command.name] = info.name
    assert registered == {
        "apply": "apply",
        "diff": "apply",
        "artifact": "artifacts",
        "get": "objects",
        "describe": "objects",
        "delete": "objects",
        "drain": "pools",
        "resume": "pools",
        "reload": "pools",
        "health": "pools",
        "run": "run",
        "top": "top",
        "pull": "pull",
        "cache": "cache",
        "audit": "audit",
        "token": "token",
        "config": "config",
        "tunnel": "tunnel",
        "doctor": "doctor",
        "version": "version",
        "logs": "logs",
        "events": "events",
        "queue": "queue",
        "chat": "chat",
        "completion": "completion",
    }
    assert set(main.commands) == set(registered)
