"""`pull model/NAME`: wait for a Model's weights, with a progress bar while they download."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from llorch.cli.ctl.common import Settings, fail, resolve
from llorch.cli.render.cache import progress_line
from llorch.cli.render.values import model_status
from llorch.resources.status import condition

POLL_SECONDS = 0.5
# Without a terminal, a line per this much progress instead of a bar redrawn in place.
LOG_STEP_PERCENT = 10


@click.command()
@click.argument("resource")
@click.argument("names", nargs=-1)
@click.option(
    "--timeout",
    "wait",
    type=click.FloatRange(min=1),
    default=3600,
    show_default=True,
    help="Seconds to wait.",
)
@click.pass_obj
def pull(settings: Settings, resource: str, names: tuple[str, ...], wait: float) -> None:
    """Wait until a Model's weights are fetched and checked: `pull model/NAME`.

    llorchd downloads a Model's weights as soon as it is applied; this shows the download and
    returns when the Model is Ready (exit 0), or says why not (exit 1).
    """
    kind, wanted = resolve(resource, names)
    if kind != "Model" or not wanted:
        raise click.UsageError("name the model(s), e.g. `llorchctl pull model/qwen`")
    with settings.client() as client:
        for name in wanted:
            _wait(name, functools.partial(client.get, "Model", name), time.monotonic() + wait)


def _wait(name: str, fetch: Callable[[], dict[str, Any]], deadline: float) -> None:
    tty = sys.stderr.isatty()
    logged = -LOG_STEP_PERCENT
    drawn = False
    while True:
        status = model_status(fetch())
        ready = condition(status.conditions, "Ready")
        done = status.downloaded_bytes
        if done is not None:
            total = status.total_bytes
            line = progress_line(name, done, total, status.bytes_per_second)
            percent = done * 100 // total if total else 0
            if tty:
                click.echo("\r" + line, nl=False, err=True)
                drawn = True
            elif percent >= logged + LOG_STEP_PERCENT:
                click.echo(line, err=True)
                logged = percent - percent % LOG_STEP_PERCENT
        elif ready is not None and ready.is_true:
            if drawn:
                click.echo("", err=True)
            click.echo(f"model/{name} ready: {status.resolved_path} ({status.digest})")
            return
        elif ready is not None and ready.reason != "Downloading":
            if drawn:
                click.echo("", err=True)
            fail(f"model/{name} is not ready: {ready.reason}: {ready.message}")
        if time.monotonic() > deadline:
            fail(f"model/{name} is still not ready; gave up waiting")
        time.sleep(POLL_SECONDS)


COMMANDS = (pull,)
