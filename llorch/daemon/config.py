"""llorchd's settings: the config file, where state lives, what it binds to and which tokens it takes."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from llorch.resources import ServerConfig
from llorch.resources.errors import ErrorCode, LlorchError
from llorch.runtime.cache import cache_root


class ConfigError(LlorchError):
    """llorchd cannot start with these settings; it says why and exits."""

    def __init__(self, message: str, code: ErrorCode = ErrorCode.INVALID_PARAMS) -> None:
        super().__init__(code, message, retriable=False)

    def __str__(self) -> str:
        return f"{self.message} ({self.code})" if self.code is not ErrorCode.INVALID_PARAMS else self.message


def load_config(path: Path | None) -> ServerConfig:
    """The settings file, or the defaults when there is none."""
    if path is None:
        return ServerConfig()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return ServerConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "llorch"


def state_dir(config: ServerConfig) -> Path:
    """Where this config keeps sqlite and replica logs, absolute."""
    return (Path(config.state_dir).expanduser() if config.state_dir else default_state_dir()).resolve()


def cache_dir(config: ServerConfig) -> Path:
    """Where this config keeps engine builds and weights, absolute."""
    return (Path(config.cache_dir).expanduser() if config.cache_dir else cache_root()).resolve()


def user_config_dir() -> Path:
    """`$XDG_CONFIG_HOME/llorch` (~/.config/llorch): what `llorchd init` writes and a user unit reads."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "llorch"


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"bind must be HOST:PORT, got {bind!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configured_tokens(config: ServerConfig) -> tuple[str, ...]:
    tokens = list(config.auth.tokens)
    if config.auth.token_env:
        tokens += [t.strip() for t in os.environ.get(config.auth.token_env, "").split(",") if t.strip()]
    return tuple(tokens)


def check_bind(config: ServerConfig, host: str, tokens: tuple[str, ...]) -> None:
    """Refuse to serve anything but loopback without a token, key or OIDC provider (CONTRACT.md, Auth)."""
    credentials = bool(tokens or config.auth.keys or config.auth.oidc)
    if not credentials and not (is_loopback(host) and config.auth.allow_unauthenticated_loopback):
        raise ConfigError(
            f"refusing to serve on {host} without a token: set auth.keys, auth.tokens or "
            f"${config.auth.token_env}",
            ErrorCode.NON_LOOPBACK_WITHOUT_TOKEN,
        )
