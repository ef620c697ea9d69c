"""`llorchctl token create`: a new API key, shown once, and the line that makes llorchd accept it.

Made here, never sent anywhere: llorchd only ever learns the key's sha256, from its config file.
"""

from __future__ import annotations

import hashlib
import secrets

import click

from llorch.resources.config import SCOPES, ApiKey

KEY_PREFIX = "llorch_"
# 32 random bytes: as strong as the sha256 that stands for the key.
_KEY_BYTES = 32


def _scopes(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    scopes = [s.strip() for s in value.split(",") if s.strip()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise click.BadParameter(f"scopes are a comma-separated list of {', '.join(SCOPES)}", ctx, param)
    return [s for s in SCOPES if s in scopes]


@click.group()
def token() -> None:
    """API keys for llorchd."""


@token.command("create")
@click.option("--name", required=True, help="Shows as token:<name> in logs and the audit trail.")
@click.option(
    "--scopes",
    required=True,
    callback=_scopes,
    help="Comma-separated: read (every GET), submit (tasks, sessions, OpenAI/Anthropic, artifacts, "
    "tools), admin (everything).",
)
def token_create(name: str, scopes: list[str]) -> None:
    """Print a new key once, and the line to add under auth.keys in llorch.yaml."""
    key = KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)
    digest = hashlib.sha256(key.encode()).hexdigest()
    try:
        ApiKey.model_validate({"name": name, "sha256": digest, "scopes": scopes})
    except ValueError as exc:
        raise click.BadParameter(str(exc).splitlines()[-1].strip(), param_hint="--name") from exc
    click.echo(f"key: {key}")
    click.echo("It is shown only now; llorchd keeps only its sha256. Add under auth.keys in llorch.yaml:")
    click.echo(f"  - {{name: {name}, sha256: {digest}, scopes: [{', '.join(scopes)}]}}")


COMMANDS = (token,)
