"""`apply` and `diff`: manifests read and checked here, then sent to llorchd file by file."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import click
import yaml
from pydantic import ValidationError

from llorch.cli.client import ApiError
from llorch.cli.ctl.common import ERROR_EXIT, Settings, api_error_text, detail_lines, fail, report
from llorch.cli.render import values
from llorch.resources import KindError, parse_object
from llorch.resources.locate import locate

_MANIFEST_SUFFIXES = (".yaml", ".yml")


# -- reading manifests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    source: str
    """The name llorchd reports errors against: the file's name, or its path under a -f folder."""
    text: str
    documents: int


def _manifest_paths(arg: str, recursive: bool) -> Iterator[tuple[str, Path]]:
    path = Path(arg)
    if not path.exists():
        fail(f'the path "{arg}" does not exist')
    if not path.is_dir():
        yield path.name, path
        return
    found = path.rglob("*") if recursive else path.iterdir()
    for file in sorted(f for f in found if f.is_file() and f.suffix in _MANIFEST_SUFFIXES):
        yield file.relative_to(path).as_posix(), file


def read_manifests(args: Sequence[str], recursive: bool) -> list[Manifest]:
    """Every -f input, checked locally so a typo is reported before anything is sent."""
    manifests: list[Manifest] = []
    problems: list[str] = []
    for arg in args:
        if arg == "-":
            inputs = [("<stdin>", sys.stdin.read())]
        else:
            inputs = [(source, _read(path)) for source, path in _manifest_paths(arg, recursive)]
        for source, text in inputs:
            documents, found = check_manifest(source, text)
            manifests.append(Manifest(source, text, documents))
            problems += found
    if problems:
        fail("invalid manifests, nothing was sent:", problems)
    manifests = [m for m in manifests if m.documents]
    if not manifests:
        fail("no objects passed to apply")
    return manifests


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {path}: {exc}")


def check_manifest(source: str, text: str) -> tuple[int, list[str]]:
    """How many documents the text holds, and `file:line: field: message` for each problem in them.

    A fast local check only: llorchd validates again, authoritatively.
    """
    try:
        docs = list(yaml.safe_load_all(text))
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return 1, [values.located(source, line, None, getattr(exc, "problem", None) or exc)]
    problems: list[str] = []
    present = [(doc, node) for doc, node in zip(docs, nodes, strict=True) if doc is not None]
    for doc, node in present:
        try:
            parse_object(doc)
        except KindError as exc:
            problems.append(values.located(source, node.start_mark.line + 1, None, exc))
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                at = locate(node, error)
                problems.append(values.located(source, at.line, at.field, error["msg"]))
    return len(present), problems


_FILES = click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    help="Manifest file, folder of *.yaml/*.yml, or - for stdin; repeatable.",
)
_RECURSIVE = click.option("-R", "--recursive", is_flag=True, help="Descend into folders given with -f.")


# -- apply, diff ------------------------------------------------------------------------------------


@click.command()
@_FILES
@_RECURSIVE
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.pass_obj
def apply(settings: Settings, files: tuple[str, ...], recursive: bool, dry_run: bool) -> None:
    """Create or update objects from manifests.

    llorchd writes them into its manifests folder, next to the files you edit by hand.
    """
    manifests = read_manifests(files, recursive)
    suffix = " (dry run)" if dry_run else ""
    failed = False
    with settings.client() as client:
        for manifest in manifests:
            try:
                results = client.apply(manifest.text, source=manifest.source, dry_run=dry_run)
            except ApiError as exc:
                # Each file is applied on its own, as kubectl does: one bad file does not stop the rest.
                failed = True
                report(f"{manifest.source}: {api_error_text(exc)}", detail_lines(exc))
                continue
            for result in results:
                click.echo(f"{values.key_name(str(result.get('key')))} {result.get('action')}{suffix}")
    if failed:
        raise click.exceptions.Exit(1)


@click.command()
@_FILES
@_RECURSIVE
@click.pass_context
def diff(ctx: click.Context, files: tuple[str, ...], recursive: bool) -> None:
    """Show what apply would change, as unified diffs.

    Exit 0: no differences, 1: differences, 2: error (as kubectl diff).
    """
    ctx.meta[ERROR_EXIT] = 2
    settings: Settings = ctx.obj
    changed = False
    with settings.client() as client:
        for manifest in read_manifests(files, recursive):
            for result in client.apply(manifest.text, source=manifest.source, dry_run=True):
                text = str(result.get("diff") or "")
                if text:
                    changed = True
                    click.echo(text, nl=not text.endswith("\n"))
    if changed:
        raise click.exceptions.Exit(1)


COMMANDS = (apply, diff)
