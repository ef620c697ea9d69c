"""`llorchd` itself: its version, and the commands it lists."""

from __future__ import annotations

from click.testing import CliRunner

from llorch.daemon.main import main
from llorch.resources.version import package_version


def test_version_names_the_package_and_the_api() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"llorchd {package_version()} (API llorch.dev/v1)\n"


def test_commands() -> None:
    assert set(main.commands) == {"init", "provision", "install-service"}
