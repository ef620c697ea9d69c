"""`run`: submit a prompt, stream its tokens to stdout, cancel the task on Ctrl-C."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import click

from llorch.cli.client import ApiError, Client, Frame, Unreachable
from llorch.cli.ctl import names
from llorch.cli.ctl.common import Settings, fail, frame_error
from llorch.cli.render import runtime


@click.command()
@click.argument("pool", shell_complete=names.pool_or_model)
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
        task_id, path = submit(client, body)
        try:
            reply = stream_reply(client.events(path))
        except TaskFailed as failed:
            fail(*frame_error(failed.data), newline=failed.wrote)
        except KeyboardInterrupt:
            cancel(client, task_id)
            click.echo(f"\ncanceled task {task_id}", err=True)
            raise click.exceptions.Exit(130) from None
    if not no_stream_summary:
        click.echo("\n" + runtime.run_summary(reply.end, reply.replica), err=True)


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


class TaskFailed(Exception):
    """The task's stream ended with an `error` frame (`data`), or ended early; `wrote`: tokens were
    written before it, so the error starts a line of its own."""

    def __init__(self, data: dict[str, Any], wrote: bool) -> None:
        super().__init__(str(data.get("message", "task failed")))
        self.data = data
        self.wrote = wrote


def submit(client: Client, body: dict[str, Any]) -> tuple[str, str]:
    """Admit the task: its id and its event stream's path."""
    task = client.submit(body)
    task_id = str(task.get("task_id"))
    streams = task.get("streams")
    path = streams.get("sse") if isinstance(streams, dict) else None
    return task_id, path or f"/v1/tasks/{task_id}/events"


@dataclass(frozen=True)
class Reply:
    text: str
    end: dict[str, Any]
    """The end frame's payload."""
    replica: str | None


def stream_reply(frames: Iterator[Frame]) -> Reply:
    """Write tokens to stdout as they come; the whole reply once the task ends. An `error` frame
    (or a stream cut short) raises TaskFailed."""
    replica: str | None = None
    tokens: list[str] = []
    for frame in frames:
        if frame.event == "started":
            replica = frame.data.get("replica")
        elif frame.event == "token":
            tokens.append(str(frame.data.get("t", "")))
            click.echo(tokens[-1], nl=False)
        elif frame.event == "end":
            return Reply("".join(tokens), frame.data, replica)
        elif frame.event == "error":
            raise TaskFailed(frame.data, bool(tokens))
    raise TaskFailed(
        {"code": "STREAM_ENDED", "message": "the stream ended before the task did"}, bool(tokens)
    )


def cancel(client: Client, task_id: str) -> None:
    try:
        client.cancel(task_id)
    except (ApiError, Unreachable) as exc:
        # Closing the stream already asked llorchd to cancel; this explicit request only makes it certain.
        click.echo(f"\nwarning: cancel of task {task_id} failed: {exc}", err=True)


COMMANDS = (run,)
