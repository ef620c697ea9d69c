"""What every llorchctl command shares: its settings, the `error:` lines, and reading its arguments."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from llorch.cli import contexts
from llorch.cli.client import DEFAULT_URL, ApiError, Client
from llorch.cli.render import refusals, values
from llorch.resources import kind_for

ERROR_EXIT = "llorchctl.error_exit"
"""The context meta key of the exit code `fail` uses: 1 unless a command says otherwise (diff: 2)."""


@dataclass(frozen=True)
class Settings:
    """The global options, handed to every command as its click context object."""

    server: str | None
    """--server or $LLORCH_URL; None when neither was given."""
    token: str | None
    timeout: float
    context: str | None = None
    """--context or $LLORCH_CONTEXT."""

    def target(self) -> tuple[str, str | None]:
        """The server and token to use. A context (the named one, else the current one unless a
        server was given) gives both; what was given on the command line wins. A server given
        without --context gets no token from a context: it would be sent to the wrong host."""
        context = None
        if self.context is not None:
            context = contexts.load().get(self.context)
        elif self.server is None:
            context = contexts.load().current()
        if context is None:
            return self.server or DEFAULT_URL, self.token
        return self.server or context.server, self.token or context.token()

    def client(self) -> Client:
        server, token = self.target()
        return Client(server, token=token, timeout=self.timeout)


# -- errors -----------------------------------------------------------------------------------------


def report(message: str, details: Iterable[str] = (), *, newline: bool = False) -> None:
    """`error: ...` and indented detail lines on stderr; `newline` ends a line of streamed tokens first."""
    click.echo(("\n" if newline else "") + f"error: {message}", err=True)
    for line in details:
        click.echo(f"  {line}", err=True)


def fail(message: str, details: Iterable[str] = (), *, newline: bool = False) -> NoReturn:
    report(message, details, newline=newline)
    raise click.exceptions.Exit(click.get_current_context().meta.get(ERROR_EXIT, 1))


def api_error_text(exc: ApiError) -> str:
    text = str(exc)
    if exc.retry_after_s is not None:
        text += f"; retry after {exc.retry_after_s:g}s"
    return text


def detail_lines(exc: ApiError) -> list[str]:
    """Located problems (a manifest's), and for a refusal the Policy, rule and what to change."""
    located = [values.located(d.file, d.line, d.field, d.message) for d in exc.details]
    return located + refusals.advice(exc.code, exc.policy_label)


def frame_error(data: dict[str, Any]) -> tuple[str, list[str]]:
    """A task's `error` frame as an `error:` line and its detail lines, as an answer's would be."""
    code = str(data.get("code", "ERROR"))
    label = data.get("policy_label")
    text = f"{data.get('message', 'task failed')} ({code})"
    return text, refusals.advice(code, label if isinstance(label, str) else None)


# -- arguments --------------------------------------------------------------------------------------


def resolve(resource: str, names: Sequence[str]) -> tuple[str, list[str]]:
    """`pools`, `pool demo`, `po/demo` → ("Pool", [names])."""
    kind_text, slash, name = resource.partition("/")
    kind = kind_for(kind_text)
    if slash and not name:
        fail(f"no name after {kind_text}/")
    return kind, ([name] if name else []) + list(names)


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_duration(text: str) -> int:
    """`90s`, `2m`, `500ms`, `1h` or plain seconds, as whole milliseconds; ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 2m, 500ms, or seconds)")
    return round(float(match[1]) * _UNIT_MS[match[2] or "s"])


def duration_option(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """A click callback: the option's duration in milliseconds, or a usage error that says why not."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
