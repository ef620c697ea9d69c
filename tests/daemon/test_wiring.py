from __future__ import annotations

from pathlib import Path

import pytest

from llorch.daemon.config import ConfigError, check_bind, is_loopback, load_config, split_bind
from llorch.daemon.wiring import Daemon
from llorch.resources import ServerConfig
from llorch.resources.errors import ErrorCode


def test_refuses_a_public_bind_without_a_token(tmp_path: Path) -> None:
    config = ServerConfig.model_validate({"bind": "0.0.0.0:8080", "stateDir": str(tmp_path / "s")})
    with pytest.raises(ConfigError, match="without a token") as refused:
        Daemon(config, base_dir=tmp_path)
    assert refused.value.code is ErrorCode.NON_LOOPBACK_WITHOUT_TOKEN


def test_loopback_and_bind_parsing() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert split_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert split_bind("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ConfigError):
        split_bind("8080")


def test_config_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "llorch.yaml"
    path.write_text("reconcile:\n  resyncSeconds: -1\n")
    with pytest.raises(ConfigError, match=r"llorch\.yaml.*resyncSeconds"):
        load_config(path)
    path.write_text("bind: [\n")
    with pytest.raises(ConfigError, match=r"llorch\.yaml"):
        load_config(path)
    assert load_config(None) == ServerConfig()


def test_a_key_or_an_oidc_provider_counts_as_a_credential(tmp_path: Path) -> None:
    digest = "0" * 64
    for auth in (
        {"keys": [{"name": "ops", "sha256": digest, "scopes": ["admin"]}]},
        {"oidc": {"issuer": "https://id.test", "audience": "llorch", "jwksFile": str(tmp_path / "j.json")}},
    ):
        config = ServerConfig.model_validate({"bind": "0.0.0.0:8080", "auth": auth})
        check_bind(config, "0.0.0.0", ())
    with pytest.raises(ConfigError):
        check_bind(ServerConfig.model_validate({"bind": "0.0.0.0:8080"}), "0.0.0.0", ())
