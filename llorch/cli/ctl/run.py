"""`run`: submit a prompt, stream its tokens to stdout, cancel the task on Ctrl-C."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

from llorch.cli.client import ApiError, Client, Frame, Unreachable
from llorch.cli.ctl.common import Settings, fail
from llorch.cli.render import runtime


@click.command()
@click.argument("pool")
@click.argument("prompt")
@click.option("--max-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), help="Same seed, same replica: same tokens.")
@click.option("--temperature", type=click.FloatRange(min=0))
@click.option("--top-p", type=click.FloatRange(min=0, max=1, min_open=True))
@click.option("--top-k", type=click.IntRange(min=0))
@click.option("--stop", multiple=True, help="Stop sequence; repeatable.")
@click.option(
    "--priority", type=click.Choice(["interactive", "batch"]), default="interactive", show_default=True
)
@click.option(
    "--model", "by_model", is_flag=True, help="POOL names a model; llorchd picks a pool serving it."
)
@click.option(
    "--json-schema",
    type=click.File("r"),
    help="FILE holds a JSON Schema: the output is JSON valid against it (the engine constrains decoding).",
)
@click.option(
    "--grammar",
    type=click.File("r"),
    help="FILE holds a GBNF grammar (llama.cpp's format) the output follows.",
)
@click.option("--no-stream-summary", is_flag=True, help="Print only the tokens.")
@click.pass_obj
def run(
    settings: Settings,
    pool: str,
    prompt: str,
    max_tokens: int,
    seed: int | None,
    temperature: float | None,
    top_p: float | None,
    top_k: int | None,
    stop: tuple[str, ...],
    priority: str,
    by_model: bool,
    json_schema: IO[str] | None,
    grammar: IO[str] | None,
    no_stream_summary: bool,
) -> None:
    """Stream a completion of PROMPT from POOL.

    Tokens go to stdout as they arrive, a summary to stderr. PROMPT - reads stdin. Ctrl-C cancels the task.
    """
    if prompt == "-":
        prompt = sys.stdin.read()
    body: dict[str, Any] = {
        "model_ref" if by_model else "pool": pool,
        "prompt": prompt,
        "max_tokens": max_tokens,
    }
    body["priority"] = priority
    optional = {"seed": seed, "temperature": temperature, "top_p": top_p, "top_k": top_k}
    body |= {key: value for key, value in optional.items() if value is not None}
    if stop:
        body["stop"] = list(stop)
    body |= _constraint(json_schema, grammar)
    with settings.client() as client:
        task = client.submit(body)
        task_id = str(task.get("task_id"))
        streams = task.get("streams")
        path = streams.get("sse") if isinstance(streams, dict) else None
        try:
            end, replica = _stream(client.events(path or f"/v1/tasks/{task_id}/events"))
        except KeyboardInterrupt:
            _cancel(client, task_id)
            click.echo(f"\ncanceled task {task_id}", err=True)
            raise click.exceptions.Exit(130) from None
    if not no_stream_summary:
        click.echo("\n" + runtime.run_summary(end, replica), err=True)


def _constraint(json_schema: IO[str] | None, grammar: IO[str] | None) -> dict[str, Any]:
    if json_schema is not None and grammar is not None:
        raise click.UsageError("--json-schema and --grammar exclude each other")
    if grammar is not None:
        return {"grammar": grammar.read()}
    if json_schema is None:
        return {}
    try:
        return {"json_schema": json.load(json_schema)}
    except json.JSONDecodeError as exc:
        fail(f"--json-schema {json_schema.name} is not JSON: {exc}")


def _stream(frames: Iterator[Frame]) -> tuple[dict[str, Any], str | None]:
    """Write tokens as they come; the end frame's payload and the replica that served the task."""
    replica: str | None = None
    wrote = False
    for frame in frames:
        if frame.event == "started":
            replica = frame.data.get("replica")
        elif frame.event == "token":
            click.echo(str(frame.data.get("t", "")), nl=False)
            wrote = True
        elif frame.event == "end":
            return frame.data, replica
        elif frame.event == "error":
            data = frame.data
            fail(f"{data.get('message', 'task failed')} ({data.get('code', 'ERROR')})", newline=wrote)
    fail("the stream ended before the task did", newline=wrote)


def _cancel(client: Client, task_id: str) -> None:
    try:
        client.cancel(task_id)
    except (ApiError, Unreachable) as exc:
        # Closing the stream already asked llorchd to cancel; this explicit request only makes it certain.
        click.echo(f"\nwarning: cancel of task {task_id} failed: {exc}", err=True)


COMMANDS = (run,)
