"""`llorchctl tunnel user@box`: an ssh port forward to the box's llorchd, and a context for it, as
`kubectl port-forward` holds one open until Ctrl-C."""

from __future__ import annotations

from urllib.parse import urlsplit

import click

from llorch.cli import contexts
from llorch.cli.ctl.common import duration_option, fail
from llorch.cli.tunnel import (
    Forward,
    TunnelError,
    close,
    free_port,
    host_of,
    open_forward,
    port_is_free,
    wait_until_answering,
)


def _local_port(existing: contexts.Context | None) -> int:
    """The port this context's tunnel used before, so its server URL stays the same; else a free one."""
    if existing is not None:
        url = urlsplit(existing.server)
        if url.hostname == "127.0.0.1" and url.port is not None and port_is_free(url.port):
            return url.port
    return free_port()


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("destination")
@click.argument("ssh_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--context", "name", help="The context to write.  [default: the host's name]")
@click.option(
    "--remote-port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    help="llorchd's port on the box.",
)
@click.option(
    "--local-port",
    type=click.IntRange(1, 65535),
    help="[default: the context's earlier one, else a free one]",
)
@click.option(
    "--token-file", type=click.Path(dir_okay=False, exists=True), help="The context's token, in a file."
)
@click.option("--use", is_flag=True, help="Also make it the current context.")
@click.option(
    "--wait",
    "wait_ms",
    default="30s",
    show_default=True,
    callback=duration_option,
    help="How long llorchd may take to answer.",
)
def tunnel(
    destination: str,
    ssh_args: tuple[str, ...],
    name: str | None,
    remote_port: int,
    local_port: int | None,
    token_file: str | None,
    use: bool,
    wait_ms: int,
) -> None:
    """Forward a local port to llorchd on DESTINATION (user@box) over ssh and write a context for it;
    runs until Ctrl-C. Anything after `--` goes to ssh (`-- -p 2222 -i ~/.ssh/box`)."""
    name = name or host_of(destination)
    found = contexts.load()
    existing = next((c for c in found.contexts if c.name == name), None)
    try:
        forward = Forward(destination, local_port or _local_port(existing), remote_port, ssh_args=ssh_args)
        proc = open_forward(forward)
    except TunnelError as exc:
        fail(str(exc))
    try:
        try:
            wait_until_answering(proc, forward, wait_ms / 1000)
        except TunnelError as exc:
            fail(str(exc))
        token = token_file or (existing.token_file if existing else None)
        updated = found.with_context(contexts.make_context(name, forward.url, token))
        if use or updated.current_context is None:
            updated = updated.model_copy(update={"current_context": name})
        path = contexts.save(updated)
        click.echo(
            f"Forwarding {forward.url} -> {host_of(destination)}:{remote_port}; context {name!r} in {path}."
        )
        how = (
            "llorchctl get pools"
            if updated.current_context == name
            else f"llorchctl --context {name} get pools"
        )
        click.echo(f"Try: {how}. Ctrl-C closes the tunnel.")
        code = proc.wait()
        fail(f"ssh exited with status {code}: the tunnel to {destination} is closed")
    except KeyboardInterrupt:
        click.echo("Tunnel closed.", err=True)
    finally:
        close(proc)


COMMANDS = (tunnel,)
