"""`llorchd`: the daemon's command line. With no command it serves; the wiring lives in
llorch.daemon.wiring, the other commands in their own modules."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import click

from llorch.daemon import logs
from llorch.daemon.config import ConfigError, load_config
from llorch.daemon.options import cache_option, config_option
from llorch.daemon.provisioning import provision
from llorch.daemon.seed import init
from llorch.daemon.service import install_service
from llorch.daemon.wiring import DETACHED_EXIT_STATUS, Daemon, Shutdown, install_signal_handlers
from llorch.resources import ServerConfig
from llorch.resources.meta import API_VERSION
from llorch.resources.version import package_version
from llorch.runtime import tracing
from llorch.runtime.errors import ProvisionError

DEFAULT_CONFIG = Path("llorch.yaml")
# A token's path crosses threads (engine reader, dispatcher, the client's waitress thread); with
# CPython's default 5 ms switch interval each handoff may wait that long for the GIL behind a busy
# thread, which is most of what llorch adds to a first token (measured in bench/streaming.py).
SWITCH_INTERVAL_S = 0.0005
_FOLDER = click.Path(file_okay=False, path_type=Path)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    package_version(), "--version", prog_name="llorchd", message=f"%(prog)s %(version)s (API {API_VERSION})"
)
@click.option("--bind", help="HOST:PORT to serve on.  [default: 127.0.0.1:8080]")
@click.option(
    "--manifests",
    type=_FOLDER,
    help="Folder of manifests to watch.  [default: ./manifests]",
)
@click.option(
    "--state",
    type=_FOLDER,
    help="sqlite state and replica logs.  [default: $XDG_STATE_HOME/llorch]",
)
@config_option
@cache_option
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option("--log-format", default="json", show_default=True, type=click.Choice(["json", "text"]))
@click.pass_context
def main(
    ctx: click.Context,
    bind: str | None,
    manifests: Path | None,
    state: Path | None,
    config_path: Path | None,
    cache: Path | None,
    log_level: str,
    log_format: str,
) -> None:
    """Watch a folder of Model, Pool and Policy manifests and make the machine match them.

    With no command, serve. SIGHUP re-reads the settings file; SIGTERM stops llorchd and every
    replica; SIGQUIT stops llorchd alone (exit status 75) for the next one to adopt the replicas.
    """
    if ctx.invoked_subcommand is not None:
        return
    logs.setup(log_level, json_lines=log_format == "json")
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        exporters = tracing.configure()
    except ValueError as exc:
        click.echo(f"llorchd: {exc}", err=True)
        sys.exit(2)
    if exporters is not None:
        logging.getLogger("llorch.daemon").info(
            "OpenTelemetry traces go to %s (OTEL_TRACES_EXPORTER)", exporters
        )
    if config_path is None and DEFAULT_CONFIG.is_file():
        config_path = DEFAULT_CONFIG
    try:
        config = load_config(config_path)
        overrides = {
            "bind": bind,
            "manifests_dir": str(manifests) if manifests else None,
            "state_dir": str(state) if state else None,
            "cache_dir": str(cache) if cache else None,
        }
        given = {k: v for k, v in overrides.items() if v is not None}
        config = config.model_copy(update=given)
        base_dir = config_path.parent.resolve() if config_path and not manifests else Path.cwd()
        reread = _rereader(config_path, given) if config_path else None
        daemon = Daemon(config, base_dir=base_dir, reread=reread)
        install_signal_handlers(daemon.ask_reload)
        daemon.start()
    except (ConfigError, ProvisionError, OSError) as exc:
        click.echo(f"llorchd: {exc}", err=True)
        sys.exit(2)
    except Shutdown:
        daemon.stop()
        return
    if daemon.serve():
        sys.exit(DETACHED_EXIT_STATUS)


def _rereader(path: Path, given: dict[str, str]) -> Callable[[], ServerConfig]:
    def reread() -> ServerConfig:
        # What the command line set still wins over the file, as it did at start.
        return load_config(path).model_copy(update=given)

    return reread


main.add_command(init)
main.add_command(provision)
main.add_command(install_service)

if __name__ == "__main__":
    main()
