"""`llorchctl doctor`: what breaks first, and what to do about each thing that does."""

from __future__ import annotations

from dataclasses import asdict

import click

from llorch.cli.ctl.common import Settings
from llorch.cli.doctor import checkup
from llorch.cli.render import values

_SHOWN = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


@click.command()
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), help="The checks as data.")
@click.pass_obj
def doctor(settings: Settings, output: str | None) -> None:
    """Check the server, versions, clocks, the token and its scopes, then the server's GPU driver,
    engine binaries and free disk. Exit status 1 when a check fails."""
    with settings.client() as client:
        checks = checkup(client)
    if output is not None:
        whole = {"checks": [asdict(c) for c in checks]}
        click.echo(values.to_yaml(whole) if output == "yaml" else values.to_json(whole))
    else:
        width = max(len(c.name) for c in checks)
        for check in checks:
            click.echo(f"{_SHOWN[check.status]:<5} {check.name:<{width}}  {check.detail}")
            if check.fix and check.status != "ok":
                click.echo(f"{'':<5} {'':<{width}}  fix: {check.fix}")
    if any(c.status == "fail" for c in checks):
        raise click.exceptions.Exit(1)


COMMANDS = (doctor,)
