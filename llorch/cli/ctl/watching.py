"""What `get -w` and `events -w` share: saying on stderr that a watch dropped and resumes."""

from __future__ import annotations

import click


def resuming(version: str | None, why: str) -> None:
    since = f"resourceVersion {version}" if version else "the start"
    click.echo(f"watch: {why}; resuming from {since}", err=True)
