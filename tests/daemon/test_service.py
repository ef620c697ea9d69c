"""`llorchd install-service`: what it writes where, and what it leaves alone."""

from __future__ import annotations

import getpass
from pathlib import Path

import pytest
from click.testing import CliRunner

from llorch.daemon.main import main
from llorch.daemon.unit import UNIT_NAME


def install(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["install-service", *args])
    return result.exit_code, result.output


def test_dry_run_prints_the_unit_and_writes_nothing(tmp_path: Path) -> None:
    code, output = install("--user", "--dry-run", "--unit-dir", str(tmp_path / "units"))
    assert code == 0, output
    assert output.startswith("# Written by `llorchd install-service`")
    assert "[Service]" in output and "WantedBy=default.target" in output
    assert not (tmp_path / "units").exists()


def test_a_user_install_writes_the_unit_and_seeds_what_it_starts_with(tmp_path: Path) -> None:
    units, config = tmp_path / "units", tmp_path / "config"
    code, output = install("--user", "--unit-dir", str(units), "--config-dir", str(config))
    assert code == 0, output
    unit = (units / UNIT_NAME).read_text()
    assert f"--config {config}/llorch.yaml" in unit and f"ReadWritePaths={config}/manifests" in unit
    assert sorted(p.name for p in (config / "manifests").iterdir()) == [
        "model-demo.yaml",
        "policy-default.yaml",
        "pool-demo-embed.yaml",
        "pool-demo.yaml",
    ]
    assert "systemctl --user daemon-reload && systemctl --user enable --now llorchd" in output
    assert "loginctl enable-linger" in output

    # Run again after the user changed things: the unit is rewritten, their files are not.
    (config / "llorch.yaml").write_text("bind: 127.0.0.1:9000\n")
    (config / "manifests" / "pool-demo.yaml").unlink()
    code, output = install("--user", "--unit-dir", str(units), "--config-dir", str(config))
    assert code == 0, output
    assert (config / "llorch.yaml").read_text() == "bind: 127.0.0.1:9000\n"
    assert not (config / "manifests" / "pool-demo.yaml").exists()
    assert f"kept  {config / 'llorch.yaml'}" in output


def test_a_system_unit_runs_as_the_named_account() -> None:
    me = getpass.getuser()
    code, output = install("--dry-run", "--run-as", me)
    assert code == 0, output
    assert f"User={me}\n" in output and "WantedBy=multi-user.target" in output


def test_an_unknown_account_is_refused() -> None:
    code, output = install("--dry-run", "--run-as", "no-such-user-llorch")
    assert code == 1 and "no user 'no-such-user-llorch'" in output


def test_root_only_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("LOGNAME", "root")  # getpass.getuser reads it first
    code, output = install("--dry-run")
    assert code == 1 and "--run-as USER" in output
    monkeypatch.setenv("SUDO_USER", "root")
    assert install("--dry-run", "--run-as", "root")[0] == 0
