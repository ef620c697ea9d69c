"""The `llorchctl` click group: the global options, and one `error:` line for what every command can hit."""

from __future__ import annotations

from typing import Any

import click

from llorch.cli.client import DEFAULT_URL, ApiError, Unreachable
from llorch.cli.contexts import ContextError
from llorch.cli.ctl.common import Settings, api_error_text, detail_lines, fail
from llorch.resources import KindError


class _Llorchctl(click.Group):
    """Turns the failures every command shares into one `error:` line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            fail(api_error_text(exc), detail_lines(exc))
        except Unreachable as exc:
            fail(str(exc))
        except (KindError, ContextError) as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            raise click.exceptions.Exit(130) from None


@click.group(cls=_Llorchctl, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--server",
    "-s",
    envvar="LLORCH_URL",
    show_envvar=True,
    help=f"llorchd's address.  [default: the current context's, else {DEFAULT_URL}]",
)
@click.option("--token", envvar="LLORCH_TOKEN", show_envvar=True, help="Bearer token for the API.")
@click.option(
    "--context",
    envvar="LLORCH_CONTEXT",
    show_envvar=True,
    help="A context of ~/.config/llorch/config (llorchctl config get-contexts): its server and token.",
)
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds to wait."
)
@click.pass_context
def main(
    ctx: click.Context, server: str | None, token: str | None, context: str | None, timeout: float
) -> None:
    """Control llorchd: apply manifests, inspect pools, models and policies, run prompts."""
    ctx.obj = Settings(server, token, timeout, context)
