"""`cache ls` and `cache prune`: the downloaded weights llorchd keeps, and freeing the disk."""

from __future__ import annotations

import time

import click

from llorch.cli.ctl.common import Settings
from llorch.cli.render import cache as render
from llorch.cli.render import values


@click.group()
def cache() -> None:
    """The weights llorchd downloaded: size, last use, which Models use them."""


@cache.command("ls")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), help="The raw answer.")
@click.pass_obj
def cache_ls(settings: Settings, output: str | None) -> None:
    """Every cache entry, least recently used first (the order `prune` removes in)."""
    with settings.client() as client:
        answer = client.cache()
    if output in ("yaml", "json"):
        click.echo(values.to_yaml(answer) if output == "yaml" else values.to_json(answer))
    else:
        click.echo(render.cache_table(answer, now=time.time()))


@cache.command("prune")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.pass_obj
def cache_prune(settings: Settings, dry_run: bool) -> None:
    """Remove every entry no Model references, and those of Models Retired for longer than
    cache.retiredGraceSeconds. Nothing an Active Model references is ever removed."""
    with settings.client() as client:
        answer = client.prune_cache(dry_run=dry_run)
    click.echo(render.pruned(answer))


COMMANDS = (cache,)
