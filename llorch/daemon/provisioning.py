"""`llorchd provision`: build llama-server and generate the demo model into the cache ahead of the
first start, from the installed package (the llama.cpp source comes from the llama-cpp-python sdist)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from llorch.daemon.config import ConfigError, cache_dir, load_config
from llorch.daemon.options import cache_option, config_option
from llorch.runtime.demo_model import ensure_demo_model
from llorch.runtime.errors import ProvisionError
from llorch.runtime.provision import Build, ensure_llama_server, llama_server_version


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.command("provision")
@config_option
@cache_option
@click.option(
    "--cuda/--cpu",
    default=None,
    help="Build with GGML_CUDA for NVIDIA GPUs (needs nvcc), or for the CPU.  "
    "[default: the config's engines.llamacpp.backend]",
)
@click.option(
    "--native",
    is_flag=True,
    default=None,
    help="Tune the build to this machine (-march=native; for CUDA, the GPUs present). Faster here, "
    "but it may not run on another machine.  [default: the config's engines.llamacpp.native]",
)
def provision(config_path: Path | None, cache: Path | None, cuda: bool | None, native: bool | None) -> None:
    """Build (or find, in the cache) llama-server and the demo model. Each build choice has its own
    cache folder, so switching between them never rebuilds what is there."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        click.echo(f"llorchd: {exc}", err=True)
        sys.exit(2)
    llamacpp = config.engines.llamacpp
    build = Build(
        "cuda" if cuda else "cpu" if cuda is False else llamacpp.backend,
        llamacpp.native if native is None else native,
    )
    root = cache.resolve() if cache else cache_dir(config)
    configured = Path(llamacpp.binary).expanduser() if llamacpp.binary else None
    try:
        # A llama-server on PATH is no answer here: it may lack the backend asked for.
        binary = ensure_llama_server(configured, build, root, log=_say, use_path=False)
        model = ensure_demo_model(root, log=_say)
        version = llama_server_version(binary)
    except ProvisionError as exc:
        click.echo(f"llorchd: {exc}", err=True)
        sys.exit(1)
    click.echo(f"llama-server: {binary} ({version})")
    click.echo(f"demo model: {model}")
    if (build.backend, build.native) != (llamacpp.backend, llamacpp.native):
        click.echo(
            f"llorchd runs this build once llorch.yaml says engines.llamacpp: "
            f"{{backend: {build.backend}, native: {str(build.native).lower()}}}",
            err=True,
        )
