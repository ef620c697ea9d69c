"""`completion`: the shell script that completes llorchctl's commands, options and names."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
PROG = "llorchctl"
# click's own scheme: the script calls the program back with this variable set.
COMPLETE_VAR = "_LLORCHCTL_COMPLETE"


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL.

    Pool and model names complete from llorchd (the current context's server and token, or
    --server/--context typed before the command); nothing completes when it cannot be reached.

    \b
    bash:  eval "$(llorchctl completion bash)"   (in ~/.bashrc)
    zsh:   eval "$(llorchctl completion zsh)"    (in ~/.zshrc)
    fish:  llorchctl completion fish > ~/.config/fish/completions/llorchctl.fish
    """
    shell_class = get_completion_class(shell)
    assert shell_class is not None, "click ships bash, zsh and fish"
    # The script completes the installed program, however this one was started (`python -m`).
    click.echo(shell_class(ctx.find_root().command, {}, PROG, COMPLETE_VAR).source())


COMMANDS = (completion,)
