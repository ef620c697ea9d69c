"""`drain`, `resume`, `reload` and `health`: what a person does to a running pool, and how it is."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import click

from llorch.cli.client import Client
from llorch.cli.ctl import names as completing
from llorch.cli.ctl.common import Settings, duration_option, fail, resolve
from llorch.cli.render import runtime, values

DRAIN_POLL_SECONDS = 0.5
"""How often `drain --wait` asks for the pool's health."""


def pool_names(verb: str, resource: str, names: Sequence[str]) -> list[str]:
    """`pool/demo` or `pool demo` (several names allowed) → the pool names."""
    kind, wanted = resolve(resource, names)
    if kind != "Pool":
        fail(f"{verb} works on pools, not {kind.lower()}s")
    if not wanted:
        raise click.UsageError(f"name the pool(s), e.g. `llorchctl {verb} pool/demo`")
    return wanted


def _each(client: Client, pools: Sequence[str], act: Callable[[str], object], done: str) -> None:
    """Ask llorchd to act on each pool in turn, saying `pool/NAME <done>` after each."""
    for pool in pools:
        act(pool)
        click.echo(f"pool/{pool} {done}")


def _drained(health: dict[str, Any]) -> bool:
    replicas = [r for r in health.get("replicas") or [] if isinstance(r, dict)]
    return all(r.get("phase") in (None, "Stopped") for r in replicas)


@click.command()
@click.argument("resource", shell_complete=completing.resource)
@click.argument("names", nargs=-1, shell_complete=completing.names_after_resource)
@click.option(
    "--deadline",
    default="60s",
    callback=duration_option,
    metavar="DURATION",
    show_default=True,
    help="How long running tasks may finish before their replicas are stopped (90s, 2m, 500ms).",
)
@click.option("--wait", is_flag=True, help="Return once every replica has stopped.")
@click.pass_obj
def drain(settings: Settings, resource: str, names: tuple[str, ...], deadline: int, wait: bool) -> None:
    """Stop a pool taking work and stop its replicas: `drain pool/demo`.

    Queued tasks are refused, running ones get until the deadline. `resume` undoes it.
    """
    pools = pool_names("drain", resource, names)
    with settings.client() as client:
        done = f"draining (deadline {values.millis_text(deadline)})"
        _each(client, pools, lambda pool: client.drain(pool, deadline_ms=deadline), done)
        if wait:
            for pool in pools:
                while not _drained(client.health(pool)):
                    time.sleep(DRAIN_POLL_SECONDS)
                click.echo(f"pool/{pool} drained")


@click.command()
@click.argument("resource", shell_complete=completing.resource)
@click.argument("names", nargs=-1, shell_complete=completing.names_after_resource)
@click.pass_obj
def resume(settings: Settings, resource: str, names: tuple[str, ...]) -> None:
    """Lift a drain: the pool takes work again and its replicas start."""
    pools = pool_names("resume", resource, names)
    with settings.client() as client:
        _each(client, pools, client.resume, "resumed")


@click.command()
@click.argument("resource", shell_complete=completing.resource)
@click.argument("names", nargs=-1, shell_complete=completing.names_after_resource)
@click.pass_obj
def reload(settings: Settings, resource: str, names: tuple[str, ...]) -> None:
    """Restart a pool's replicas one at a time, each serving until its successor is ready.

    As `kubectl rollout restart`. To change the model, edit spec.model in the manifest instead.
    """
    pools = pool_names("reload", resource, names)
    with settings.client() as client:
        _each(client, pools, client.reload, "reload started (rolling restart)")


@click.command()
@click.argument("resource", shell_complete=completing.resource)
@click.argument("names", nargs=-1, shell_complete=completing.names_after_resource)
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), help="The raw answer.")
@click.pass_obj
def health(settings: Settings, resource: str, names: tuple[str, ...], output: str | None) -> None:
    """A pool's liveness, readiness, load and replicas, as its health endpoint reports them."""
    pools = pool_names("health", resource, names)
    with settings.client() as client:
        answers = [client.health(pool) for pool in pools]
    if output in ("yaml", "json"):
        whole: Any = answers[0] if len(answers) == 1 else answers
        click.echo(values.to_yaml(whole) if output == "yaml" else values.to_json(whole))
    else:
        click.echo("\n\n".join(runtime.health(answer) for answer in answers))


COMMANDS = (drain, resume, reload, health)
