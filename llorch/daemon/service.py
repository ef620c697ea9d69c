"""`llorchd install-service`: write the systemd unit (llorch.daemon.unit) and, where missing, the
settings and demo manifests it starts with; then say the commands that enable it."""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import sys
from pathlib import Path

import click

from llorch.daemon.config import user_config_dir
from llorch.daemon.seed import MANIFESTS, report, seed
from llorch.daemon.unit import CONFIG_DIR, UNIT_NAME, UnitSpec, render

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
SYSTEM_CONFIG_DIR = Path("/etc/llorch")


def user_unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def this_llorchd() -> Path:
    """The llorchd of this installation: beside the Python running it (a venv's or pipx's bin)."""
    beside = Path(sys.executable).parent / "llorchd"
    if beside.is_file():
        return beside
    found = shutil.which("llorchd")
    if found is None:
        raise click.ClickException("cannot find the llorchd executable of this installation")
    return Path(found).resolve()


def _run_as(given: str | None) -> str:
    """Who a system unit runs llorchd as: named, else whoever ran sudo, else the caller, never root
    unless named (an engine has no reason to run with root's rights)."""
    name = given or os.environ.get("SUDO_USER") or getpass.getuser()
    try:
        pwd.getpwnam(name)
    except KeyError:
        raise click.ClickException(f"no user {name!r} on this machine (--run-as)") from None
    if name == "root" and given is None:
        raise click.ClickException("say which user llorchd runs as (--run-as USER); it needs no root rights")
    return name


@click.command("install-service")
@click.option("--user", "user_mode", is_flag=True, help="A user unit (systemctl --user), no root needed.")
@click.option("--dry-run", is_flag=True, help="Print the unit to stdout and write nothing.")
@click.option("--run-as", help="System units: the account llorchd runs as.  [default: $SUDO_USER or you]")
@click.option(
    "--unit-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Where the unit goes.  [default: {SYSTEM_UNIT_DIR}, or ~/.config/systemd/user with --user]",
)
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Settings and manifests.  [default: {SYSTEM_CONFIG_DIR}, or ~/.config/llorch with --user]",
)
def install_service(
    user_mode: bool, dry_run: bool, run_as: str | None, unit_dir: Path | None, config_dir: Path | None
) -> None:
    """Install llorchd as a systemd service: hardened, logging to the journal, restarted on
    failure; `systemctl reload` re-reads llorch.yaml and an upgrade keeps replicas serving."""
    account = None if user_mode else _run_as(run_as)
    folder = config_dir.resolve() if config_dir else (user_config_dir() if user_mode else SYSTEM_CONFIG_DIR)
    modprobe = shutil.which("nvidia-modprobe")
    spec = UnitSpec(
        llorchd=this_llorchd(),
        user=user_mode,
        run_as=account,
        # systemd's own name for the default folder, so the unit reads as what it means.
        config_dir=CONFIG_DIR if config_dir is None else str(folder),
        nvidia_modprobe=Path(modprobe) if modprobe else None,
    )
    text = render(spec)
    if dry_run:
        click.echo(text, nl=False)
        return
    target = (unit_dir or (user_unit_dir() if user_mode else SYSTEM_UNIT_DIR)) / UNIT_NAME
    try:
        seeded = seed(folder)
        if account is not None and os.geteuid() == 0:
            # llorchd (not root) writes manifests on `llorchctl apply`.
            user = pwd.getpwnam(account)
            os.chown(folder / MANIFESTS, user.pw_uid, user.pw_gid)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except PermissionError as exc:
        raise click.ClickException(f"{exc}: run it with sudo, or install a user unit with --user") from exc
    report(seeded)
    click.echo(f"wrote {target}")
    systemctl = "systemctl --user" if user_mode else "sudo systemctl"
    click.echo(f"Next: {systemctl} daemon-reload && {systemctl} enable --now llorchd")
    if user_mode:
        click.echo(f"To start it at boot, before you log in: sudo loginctl enable-linger {getpass.getuser()}")
    click.echo("Logs: journalctl " + ("--user " if user_mode else "") + "-u llorchd -f")
