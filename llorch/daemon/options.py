"""The options llorchd's commands share, defined once so that `llorchd --config X` and
`llorchd provision --config X` mean the same thing."""

from __future__ import annotations

from pathlib import Path

import click

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Settings file.  [default: ./llorch.yaml if present]",
)
cache_option = click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Engine builds and generated models.  [default: $LLORCH_CACHE or ~/.cache/llorch]",
)
