"""`llorchctl audit`: who did what, and which policy decisions went which way (admin scope)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from llorch.cli.ctl.common import Settings, parse_duration
from llorch.cli.render import values
from llorch.cli.render.audit import audit_table


def since_time(text: str, now: float) -> str:
    """`1h`, `90m`, `2d` ago, or an RFC 3339 time as it is; the RFC 3339 time llorchd takes."""
    days = text.strip().removesuffix("d")
    if days != text.strip() and days.isdigit():
        return _rfc3339(now - int(days) * 86_400)
    try:
        return _rfc3339(now - parse_duration(text) / 1000)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is neither a duration (1h, 30m, 2d) nor an RFC 3339 time"
        ) from exc
    if moment.tzinfo is None:
        raise click.BadParameter(f"{text!r} needs a time zone (Z or +hh:mm)")
    return _rfc3339(moment.timestamp())


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@click.command()
@click.option("--since", help="Entries from this long ago (1h, 30m, 2d) or this RFC 3339 time on.")
@click.option("--decision", type=click.Choice(["allow", "deny"]), help="Only this decision.")
@click.option("--actor", help="Only this identity (token:<name>, token:<hash prefix>, oidc:<sub>).")
@click.option(
    "--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="At most this many."
)
@click.option("-o", "--output", type=click.Choice(["wide", "json", "yaml"]), help="Output format.")
@click.pass_obj
def audit(
    settings: Settings,
    since: str | None,
    decision: str | None,
    actor: str | None,
    limit: int,
    output: str | None,
) -> None:
    """Show the audit trail, newest first: policy decisions (tool calls, admission, budgets,
    refused credentials) and control actions (apply, delete, drain, resume, reload, ...)."""
    now = time.time()
    with settings.client() as client:
        answer = client.audit(
            since=since_time(since, now) if since else None, decision=decision, actor=actor, limit=limit
        )
    items = [item for item in answer.get("items") or [] if isinstance(item, dict)]
    if output in ("json", "yaml"):
        click.echo(values.to_json(answer) if output == "json" else values.to_yaml(answer))
    elif not items:
        click.echo("No audit entries found.", err=True)
    else:
        click.echo(audit_table(items, wide=output == "wide", now=now))


COMMANDS = (audit,)
