"""`llorchctl version`: this client's version and the server's, as `kubectl version` shows them."""

from __future__ import annotations

import click

from llorch.cli.ctl.common import Settings, fail
from llorch.cli.render import values
from llorch.resources.version import VersionInfo, this_version


@click.command()
@click.option("--client", "client_only", is_flag=True, help="Only this llorchctl's version; ask no server.")
@click.option("-o", "--output", type=click.Choice(["json", "yaml"]), help="Both versions as data.")
@click.pass_obj
def version(settings: Settings, client_only: bool, output: str | None) -> None:
    """Client and server versions and the API version they speak."""
    mine = this_version()
    server = None
    if not client_only:
        with settings.client() as client:
            server = VersionInfo.model_validate(client.version()[0])
    if output is not None:
        whole = {"client": mine.model_dump(), **({"server": server.model_dump()} if server else {})}
        click.echo(values.to_yaml(whole) if output == "yaml" else values.to_json(whole))
    else:
        click.echo(f"Client Version: {mine.version} (API {mine.api_version})")
        if server is not None:
            click.echo(f"Server Version: {server.version} (API {server.api_version}, {server.platform})")
    if server is not None and server.api_version != mine.api_version:
        fail(f"the server speaks {server.api_version}, this client {mine.api_version}: upgrade the older one")


COMMANDS = (version,)
