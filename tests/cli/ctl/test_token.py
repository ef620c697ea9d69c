"""`llorchctl token create`: a key shown once, and a config line llorchd accepts for it."""

from __future__ import annotations

import hashlib
import re

import yaml
from click.testing import CliRunner

from llorch.cli.ctl import main
from llorch.resources import ServerConfig


def test_create_prints_the_key_once_and_the_line_that_accepts_it() -> None:
    result = CliRunner().invoke(main, ["token", "create", "--name", "ci", "--scopes", "submit,read"])
    assert result.exit_code == 0, result.output
    key = re.search(r"^key: (\S+)$", result.stdout, re.MULTILINE)
    assert key is not None and key[1].startswith("llorch_") and len(key[1]) > 40
    line = result.stdout.strip().splitlines()[-1]
    config = ServerConfig.model_validate({"auth": {"keys": yaml.safe_load(line)}})
    (entry,) = config.auth.keys
    assert (entry.name, entry.scopes) == ("ci", ["read", "submit"])
    assert entry.sha256 == hashlib.sha256(key[1].encode()).hexdigest()
    assert result.stdout.count(key[1]) == 1, "shown once"
    again = CliRunner().invoke(main, ["token", "create", "--name", "ci", "--scopes", "read"])
    assert key[1] not in again.stdout, "every key is new"


def test_bad_names_and_scopes_are_usage_errors() -> None:
    for args in (["--name", "ci", "--scopes", "root"], ["--name", "has space", "--scopes", "read"]):
        result = CliRunner().invoke(main, ["token", "create", *args])
        assert result.exit_code == 2, result.output
