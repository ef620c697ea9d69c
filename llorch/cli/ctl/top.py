"""`top`: what runs where right now, as `ollama ps` and `kubectl top` show it."""

from __future__ import annotations

import time

import click

from llorch.cli.ctl import names
from llorch.cli.ctl.common import Settings
from llorch.cli.render import runtime, values


@click.command()
@click.argument("pools", nargs=-1, shell_complete=names.kind_names("Pool"))
@click.option(
    "-w", "--watch", "every", type=click.FloatRange(min=0.5), help="Refresh every this many seconds."
)
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), help="The raw answer.")
@click.pass_obj
def top(settings: Settings, pools: tuple[str, ...], every: float | None, output: str | None) -> None:
    """Per pool and replica: state, model, memory reserved (GPU or host), slots busy/total, queue,
    tokens/s, idle for, and when an autoscaled pool scales down. POOLS limits it to those."""
    with settings.client() as client:
        while True:
            sets = [s for s in client.replicasets().get("replicasets") or [] if isinstance(s, dict)]
            if pools:
                sets = [s for s in sets if s.get("id") in pools]
            if output is not None:
                whole = {"replicasets": sets}
                click.echo(values.to_yaml(whole) if output == "yaml" else values.to_json(whole))
            elif sets:
                click.echo(runtime.top(sets))
            else:
                click.echo("No pools found.", err=True)
            if every is None:
                return
            time.sleep(every)
            click.echo()


COMMANDS = (top,)
