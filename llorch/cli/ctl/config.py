"""`llorchctl config`: the contexts (llorch.cli.contexts), as `kubectl config` keeps them."""

from __future__ import annotations

import click

from llorch.cli import contexts
from llorch.cli.render.values import table


@click.group()
def config() -> None:
    """Contexts: named llorchd servers with their token files (~/.config/llorch/config, or $LLORCH_CONFIG)."""


@config.command("set-context")
@click.argument("name")
@click.option("--server", required=True, help="llorchd's address, e.g. http://box:8080.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, exists=True),
    help="A file holding the token (the token itself is never written to the contexts file).",
)
def set_context(name: str, server: str, token_file: str | None) -> None:
    """Add or replace the context NAME (the first one made becomes current)."""
    found = contexts.load()
    updated = found.with_context(contexts.make_context(name, server, token_file))
    if updated.current_context is None:
        updated = updated.model_copy(update={"current_context": name})
    path = contexts.save(updated)
    click.echo(f'Context "{name}" written to {path}.')


@config.command("use-context")
@click.argument("name")
def use_context(name: str) -> None:
    """Make NAME the context llorchctl uses when no --server or --context is given."""
    found = contexts.load()
    found.get(name)
    contexts.save(found.model_copy(update={"current_context": name}))
    click.echo(f'Switched to context "{name}".')


@config.command("get-contexts")
def get_contexts() -> None:
    """List the contexts; `*` marks the current one."""
    found = contexts.load()
    if not found.contexts:
        click.echo(
            f"No contexts in {contexts.config_path()}: llorchctl config set-context NAME --server URL",
            err=True,
        )
        return
    rows = [
        ["*" if c.name == found.current_context else "", c.name, c.server, c.token_file or ""]
        for c in found.contexts
    ]
    click.echo("\n".join(table(["CURRENT", "NAME", "SERVER", "TOKEN-FILE"], rows)))


COMMANDS = (config,)
