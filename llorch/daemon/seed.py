"""`llorchd init`: the starter settings and the demo manifests, copied out of the installed package
into a folder (the user's config folder unless told otherwise), so a llorchd installed with pip or
pipx runs the demo pool with no checkout around it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib.abc import Traversable
from importlib.resources import files
from pathlib import Path

import click

from llorch.daemon.config import user_config_dir

CONFIG_FILE = "llorch.yaml"
MANIFESTS = "manifests"


def defaults() -> Traversable:
    """The packaged starter files: `llorch.yaml` and `manifests/` (the checkout's own manifests)."""
    return files("llorch.daemon") / "defaults"


@dataclass(frozen=True)
class Seeded:
    path: Path
    written: bool
    """False: something was there already and is kept as it is."""


def seed(folder: Path) -> list[Seeded]:
    """Write what `folder` lacks. Nothing is ever overwritten, and a manifests folder that exists
    gets no demo files added: once written, the files are the user's."""
    folder.mkdir(parents=True, exist_ok=True)
    results = [_copy(defaults() / CONFIG_FILE, folder / CONFIG_FILE)]
    manifests = folder / MANIFESTS
    if manifests.exists():
        return [*results, Seeded(manifests, written=False)]
    manifests.mkdir()
    results += [_copy(source, manifests / source.name) for source in _demo_manifests()]
    return results


def _demo_manifests() -> Iterator[Traversable]:
    entries = (defaults() / MANIFESTS).iterdir()
    yield from sorted((e for e in entries if e.name.endswith(".yaml")), key=lambda e: e.name)


def _copy(source: Traversable, dest: Path) -> Seeded:
    if dest.exists():
        return Seeded(dest, written=False)
    dest.write_text(source.read_text())
    return Seeded(dest, written=True)


def report(seeded: list[Seeded]) -> None:
    for item in seeded:
        click.echo(f"{'wrote' if item.written else 'kept '} {item.path}")


@click.command("init")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write.  [default: $XDG_CONFIG_HOME/llorch, i.e. ~/.config/llorch]",
)
def init(folder: Path | None) -> None:
    """Write a starter llorch.yaml and the demo manifests (kept if already there)."""
    target = folder or user_config_dir()
    report(seed(target))
    click.echo(f"Start it with: llorchd --config {target / CONFIG_FILE}")
