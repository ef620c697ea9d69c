"""`chat`: an interactive session with a pool, as `ollama run` is with a model.

One llorch session holds the conversation's turns and budgets (its Policy's TTL, maxTurns and
budgets); each turn is a task whose prompt is the conversation so far, so the engine's prompt
cache reuses what it already read. llorch applies no chat template to a native task: the text
goes to the engine as typed and answered. Ctrl-C during a reply cancels that task on the server
and keeps the session; Ctrl-C twice at the prompt, `/bye` or Ctrl-D leave. With stdin not a
terminal, what it holds is one turn.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field
from typing import Any

import click

from llorch.cli.client import ApiError, Client
from llorch.cli.ctl import names
from llorch.cli.ctl.common import Settings, api_error_text, detail_lines, fail, frame_error, report
from llorch.cli.ctl.run import TaskFailed, cancel, stream_reply, submit
from llorch.cli.render import values

PROMPT = ">>> "
LEAVE = "/bye"


@dataclass
class Conversation:
    pool: str
    session_id: str
    options: dict[str, Any]
    said: list[str] = field(default_factory=list)
    """What was typed and answered, turn after turn: the next turn's prompt begins with it."""

    def body(self, text: str) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "session_id": self.session_id,
            "prompt": "".join(self.said) + text + "\n",
            **self.options,
        }


def session_line(session: dict[str, Any]) -> str:
    """`turn 2/8, 870 tokens left, expires in 9m`: what the session has left after a turn."""
    parts = [f"turn {session.get('turns', '?')}/{session.get('max_turns', '?')}"]
    tokens = session.get("tokens_budget_remaining")
    if isinstance(tokens, int):
        parts.append(f"{tokens} tokens left")
    wall = session.get("time_budget_remaining_ms")
    if isinstance(wall, int | float):
        parts.append(f"{wall / 1000:.0f}s of wall time left")
    cost = session.get("cost_budget_remaining")
    if isinstance(cost, int | float):
        parts.append(f"{cost:g} cost left")
    ttl = session.get("ttl_ms_remaining")
    if isinstance(ttl, int):
        parts.append(f"expires in {values.human_duration(ttl / 1000)}")
    return ", ".join(parts)


def turn(client: Client, conversation: Conversation, text: str) -> bool:
    """One turn: the reply streamed to stdout. False when it did not complete (refused, failed,
    or canceled with Ctrl-C); the conversation then stays as it was before the turn."""
    task_id: str | None = None
    try:
        task_id, path = submit(client, conversation.body(text))
        reply = stream_reply(client.events(path))
    except ApiError as exc:
        report(api_error_text(exc), detail_lines(exc))
        return False
    except TaskFailed as failed:
        message, details = frame_error(failed.data)
        report(message, details, newline=failed.wrote)
        return False
    except KeyboardInterrupt:
        if task_id is not None:
            cancel(client, task_id)
            click.echo(f"\n^C canceled task {task_id}; the session goes on", err=True)
        return False
    click.echo()
    conversation.said.append(f"{text}\n{reply.text}\n")
    return True


def _read(interrupted: bool) -> tuple[str | None, bool]:
    """The next line typed, or None to leave; and whether this read ended in Ctrl-C."""
    try:
        return input(PROMPT), False
    except EOFError:
        click.echo()
        return None, False
    except KeyboardInterrupt:
        click.echo()
        if interrupted:
            return None, True
        click.echo(f"(Ctrl-C again, {LEAVE} or Ctrl-D to leave)", err=True)
        return "", True


def _converse(client: Client, conversation: Conversation) -> None:
    # Line editing and history for input(), where the platform has readline.
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401
    interrupted = False
    while True:
        line, interrupted = _read(interrupted)
        if line is None or line.strip() == LEAVE:
            return
        if not line.strip():
            continue
        if turn(client, conversation, line):
            click.echo(session_line(client.session(conversation.session_id)), err=True)


@click.command()
@click.argument("pool", shell_complete=names.kind_names("Pool"))
@click.option("--max-tokens", type=click.IntRange(min=1), default=256, show_default=True, help="Per reply.")
@click.option("--seed", type=click.IntRange(min=0))
@click.option("--temperature", type=click.FloatRange(min=0))
@click.option(
    "--session",
    "session_id",
    help="Go on with this session's turns and budgets (a new one when absent or expired).",
)
@click.pass_obj
def chat(
    settings: Settings,
    pool: str,
    max_tokens: int,
    seed: int | None,
    temperature: float | None,
    session_id: str | None,
) -> None:
    """Chat with POOL: type, read the reply as it streams, type again; `/bye` leaves.

    The session's turns and budgets left show after each reply. Ctrl-C stops a reply (the task
    is canceled on the server) and keeps the session. Piped stdin is one turn.
    """
    options: dict[str, Any] = {"max_tokens": max_tokens}
    options |= {k: v for k, v in {"seed": seed, "temperature": temperature}.items() if v is not None}
    with settings.client() as client:
        session = client.open_session(pool, session_id)
        conversation = Conversation(pool, str(session["session_id"]), options)
        if not sys.stdin.isatty():
            text = sys.stdin.read().strip()
            if not text:
                fail("nothing to say: stdin was empty")
            if not turn(client, conversation, text):
                raise click.exceptions.Exit(1)
            click.echo(session_line(client.session(conversation.session_id)), err=True)
            return
        click.echo(
            f"session {conversation.session_id} on pool {pool}: {session_line(session)}. "
            f"{LEAVE} or Ctrl-D leaves, Ctrl-C stops a reply.",
            err=True,
        )
        _converse(client, conversation)


COMMANDS = (chat,)
