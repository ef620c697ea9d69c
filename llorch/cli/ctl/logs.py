"""`logs`: a replica's engine output, as `kubectl logs` shows a container's."""

from __future__ import annotations

import sys

import click

from llorch.cli.ctl import names
from llorch.cli.ctl.common import Settings, fail, resolve
from llorch.cli.render import activity


def _pool(resource: str) -> str:
    """`pool/demo`, `po/demo`, or plain `demo` (logs belong to pools only)."""
    if "/" not in resource:
        return resource
    kind, wanted = resolve(resource, ())
    if kind != "Pool":
        fail(f"logs come from pools, not {kind.lower()}s")
    return wanted[0]


@click.command()
@click.argument("resource", shell_complete=names.kind_names("Pool", prefixed=True))
@click.option("--replica", "-r", help="Which replica's log (the pool's first when there are several).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing what the engine writes next.")
@click.option(
    "--tail",
    type=click.IntRange(min=-1),
    default=-1,
    show_default=True,
    help="Lines of the past to show; -1 shows the whole log.",
)
@click.pass_obj
def logs(settings: Settings, resource: str, replica: str | None, follow: bool, tail: int) -> None:
    """Print a pool's engine output (stdout and stderr): `logs pool/demo`.

    A replica's log outlives its restarts: each start adds a `--- ... starting:` line. With several
    replicas and no --replica the first is shown, as kubectl defaults to a pod's first container.
    """
    pool = _pool(resource)
    out = sys.stdout.buffer
    since = None if tail < 0 else tail
    with settings.client() as client, client.logs(pool, replica=replica, tail=since, follow=follow) as log:
        if replica is None and len(log.replicas) > 1:
            click.echo(activity.defaulted_replica(log.replica, log.replicas), err=True)
        for chunk in log.chunks:
            out.write(chunk)
            out.flush()


COMMANDS = (logs,)
