"""`events`: what happened to pools, models and policies, as `kubectl get events` lists it."""

from __future__ import annotations

import time

import click

from llorch.cli.ctl import names
from llorch.cli.ctl.common import Settings, resolve
from llorch.cli.ctl.watching import resuming
from llorch.cli.render import activity, values


def _objects(wanted: tuple[str, ...]) -> list[str]:
    """`--for pool/demo` → `Pool/demo`, as the API names objects."""
    keys = []
    for resource in wanted:
        kind, found = resolve(resource, ())
        if not found:
            raise click.BadParameter(f"{resource!r} names no object; e.g. pool/demo", param_hint="--for")
        keys.append(f"{kind}/{found[0]}")
    return keys


@click.command()
@click.option("-w", "--watch", is_flag=True, help="After the list, print each event as it happens.")
@click.option(
    "--for",
    "for_",
    multiple=True,
    metavar="KIND/NAME",
    shell_complete=names.resource,
    help="Only the events of this object (repeatable), e.g. --for pool/demo.",
)
@click.option(
    "--limit", type=click.IntRange(min=1, max=1000), help="At most this many, newest (default 100)."
)
@click.option(
    "-o", "--output", type=click.Choice(["json", "yaml"]), help="The raw answer (one per event with -w)."
)
@click.pass_obj
def events(
    settings: Settings, watch: bool, for_: tuple[str, ...], limit: int | None, output: str | None
) -> None:
    """List events, oldest first: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE.

    A repeated event shows once with its count. -w then prints each new or repeated event.
    """
    objects = _objects(for_)
    with settings.client() as client:
        listing = client.all_events(objects=objects, limit=limit)
        items = [i for i in listing.get("items") or [] if isinstance(i, dict)]
        if output is not None and not watch:
            click.echo(values.to_yaml(listing) if output == "yaml" else values.to_json(listing))
            return
        if output is not None:
            for item in items:
                click.echo(values.to_json(item) if output == "json" else "---\n" + values.to_yaml(item))
        elif items:
            click.echo(activity.events_table(activity.events_of(items), time.time()))
        elif watch:
            click.echo(values.table(activity.EVENT_HEADERS, [])[0])
        else:
            click.echo("No events found.", err=True)
        if not watch:
            return
        version = (listing.get("metadata") or {}).get("resourceVersion")
        params = {"object": objects} if objects else {}
        for frame in client.watch("/v1/events", params, since=version, on_resume=resuming):
            if frame.event != "event":
                continue
            if output is not None:
                data = frame.data
                click.echo(values.to_json(data) if output == "json" else "---\n" + values.to_yaml(data))
                continue
            for event in activity.events_of([frame.data]):
                click.echo(values.follow_row(activity.EVENT_HEADERS, activity.event_row(event, time.time())))


COMMANDS = (events,)
