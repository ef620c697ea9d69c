"""`artifact put`, `show`, `diff` and `gc`: text kept in llorchd by id (`get artifacts` lists them)."""

from __future__ import annotations

import re
from typing import IO, Any

import click

from llorch.cli.ctl.common import ERROR_EXIT, Settings, fail
from llorch.cli.render import artifacts as render
from llorch.resources import ARTIFACT_KINDS, textdiff

_ID = re.compile(r"[0-9a-f]{64}")


def _key_values(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not key or not equals:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", ctx, param)
        pairs[key] = text
    return pairs


@click.group()
def artifact() -> None:
    """Keep text in llorchd (plans, summaries, diffs, traces) and read it back by id.

    `get artifacts` lists them.
    """


@artifact.command("put")
@click.argument("file", type=click.File("rb"), default="-")
@click.option("--kind", required=True, type=click.Choice(ARTIFACT_KINDS), help="What the text is.")
@click.option("--tag", "tags", multiple=True, help="A tag to find it by; repeatable.")
@click.option("--parent", metavar="ID", help="The artifact this one derives from.")
@click.option(
    "--meta",
    "metadata",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_key_values,
    help="A metadata entry; repeatable.",
)
@click.pass_obj
def artifact_put(
    settings: Settings,
    file: IO[bytes],
    kind: str,
    tags: tuple[str, ...],
    parent: str | None,
    metadata: dict[str, str],
) -> None:
    """Store FILE (- or none: stdin) and print its id, then `created` or `unchanged`.

    The id is the sha256 of the text: the same text again gets the same id, and its tags are added.
    """
    try:
        content = file.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"{file.name} is not UTF-8 text: {exc}")
    body: dict[str, Any] = {"kind": kind, "content": content, "tags": list(tags), "metadata": metadata}
    if parent is not None:
        body["parent"] = parent
    with settings.client() as client:
        stored, created = client.put_artifact(body)
    click.echo(f"{stored.get('id')} {'created' if created else 'unchanged'}")


@artifact.command("show")
@click.argument("artifact_id", metavar="ID")
@click.pass_obj
def artifact_show(settings: Settings, artifact_id: str) -> None:
    """Write the artifact's text to stdout exactly as stored."""
    with settings.client() as client:
        content = str(client.artifact(artifact_id).get("content", ""))
    # Bytes go to stdout untouched: no newline added, no re-encoding by the terminal's locale.
    click.echo(content.encode("utf-8"), nl=False)


@artifact.command("diff")
@click.argument("first", metavar="A")
@click.argument("second", metavar="B")
@click.pass_context
def artifact_diff(ctx: click.Context, first: str, second: str) -> None:
    """A unified diff of two artifacts' text, A to B. Exit 0 when they are the same, 1 when they differ."""
    ctx.meta[ERROR_EXIT] = 2
    for artifact_id in (first, second):
        if not _ID.fullmatch(artifact_id):
            fail(f"{artifact_id!r} is not an artifact id (64 lowercase hex; see `get artifacts -o wide`)")
    settings: Settings = ctx.obj
    with settings.client() as client:
        old, new = client.artifact(first), client.artifact(second)
    text = textdiff.unified(
        str(old.get("content", "")),
        str(new.get("content", "")),
        from_label=f"a/{first[:12]} ({old.get('kind')})",
        to_label=f"b/{second[:12]} ({new.get('kind')})",
    )
    if text:
        click.echo(text, nl=False)
        raise click.exceptions.Exit(1)


@artifact.command("gc")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.pass_obj
def artifact_gc(settings: Settings, dry_run: bool) -> None:
    """Apply artifacts.retention now (llorchd does it periodically): remove old artifacts, keeping
    tagged ones (keepTagged) and every parent of one that is kept."""
    with settings.client() as client:
        answer = client.collect_artifacts(dry_run=dry_run)
    click.echo(render.collected(answer))


COMMANDS = (artifact,)
