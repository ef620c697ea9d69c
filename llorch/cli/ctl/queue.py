"""`queue`: the tasks waiting for a slot, in the order they will start."""

from __future__ import annotations

import click

from llorch.cli.ctl import names
from llorch.cli.ctl.common import Settings
from llorch.cli.render import activity, values


@click.command()
@click.argument("pool", required=False, shell_complete=names.kind_names("Pool"))
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), help="The raw answer.")
@click.pass_obj
def queue(settings: Settings, pool: str | None, output: str | None) -> None:
    """Queued tasks (of POOL, else of every pool): position, predicted start, priority, age, session.

    The predicted start is computed now from what runs and what waits ahead; running tasks are
    not listed (`llorchctl top` shows the slots they hold).
    """
    with settings.client() as client:
        answer = client.queue(pool)
    items = [i for i in answer.get("items") or [] if isinstance(i, dict)]
    if output is not None:
        click.echo(values.to_yaml(answer) if output == "yaml" else values.to_json(answer))
    elif items:
        click.echo(activity.queue_table(items))
    else:
        click.echo("No tasks queued.", err=True)


COMMANDS = (queue,)
