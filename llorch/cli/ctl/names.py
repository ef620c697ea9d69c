"""Shell completion of object names, asked of llorchd with the current context's server and token.

Completion runs before any command does (click parses resiliently, the group's callback never
runs), so the global options are read from the root context's parameters. Whatever goes wrong (no
server, a bad token, a broken contexts file) completes nothing rather than printing into the
user's command line.
"""

from __future__ import annotations

from collections.abc import Callable

import click
from click.shell_completion import CompletionItem

from llorch.cli.client import ApiError, Unreachable
from llorch.cli.contexts import ContextError
from llorch.cli.ctl.common import Settings
from llorch.resources import KindError, kind_for

# Completion runs while a person waits at the prompt: a server that is slow to answer completes nothing.
COMPLETION_TIMEOUT_SECONDS = 2.0

Completer = Callable[[click.Context, click.Parameter, str], list[CompletionItem]]


def _settings(ctx: click.Context) -> Settings:
    params = ctx.find_root().params
    return Settings(
        params.get("server"), params.get("token"), COMPLETION_TIMEOUT_SECONDS, params.get("context")
    )


def names_of(ctx: click.Context, kind: str) -> list[str]:
    """The names of `kind` llorchd knows; [] when it cannot be asked."""
    try:
        with _settings(ctx).client() as client:
            items = client.list_kind(kind).get("items") or []
    except (ApiError, Unreachable, ContextError, KindError, OSError):
        return []
    return [str(i["metadata"]["name"]) for i in items if isinstance(i, dict) and "metadata" in i]


def _items(names: list[str], incomplete: str, prefix: str = "") -> list[CompletionItem]:
    return [CompletionItem(prefix + n) for n in names if (prefix + n).startswith(incomplete)]


def kind_names(kind: str, *, prefixed: bool = False) -> Completer:
    """Complete the names of `kind`; `prefixed`: as `pool/NAME`."""

    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        prefix = f"{kind.lower()}/" if prefixed else ""
        return _items(names_of(ctx, kind), incomplete, prefix)

    return complete


def resource(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """A RESOURCE argument: a kind (`pools`), or `kind/NAME` once a slash is typed."""
    typed, slash, _ = incomplete.partition("/")
    if not slash:
        return [CompletionItem(p) for p in ("pools", "models", "policies") if p.startswith(incomplete)]
    try:
        kind = kind_for(typed)
    except KindError:
        return []
    return _items(names_of(ctx, kind), incomplete, f"{typed}/")


def names_after_resource(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """NAMES after a RESOURCE like `pools`: the names of that kind."""
    typed = str(ctx.params.get("resource") or "")
    if "/" in typed:
        return []
    try:
        kind = kind_for(typed)
    except KindError:
        return []
    return _items(names_of(ctx, kind), incomplete)


def pool_or_model(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """`run POOL`: a pool's name, or a model's with --model."""
    kind = "Model" if ctx.params.get("by_model") else "Pool"
    return _items(names_of(ctx, kind), incomplete)
