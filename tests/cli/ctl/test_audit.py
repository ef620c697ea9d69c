"""`llorchctl audit` against the real API app on a loopback socket, with an admin key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from llorch.cli.ctl import main
from llorch.cli.ctl.audit import since_time
from tests.api.test_app import POOL, Api, serve

ADMIN = "admin-token-for-audit"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from serve(tmp_path, tokens=(ADMIN,))


def ctl(api: Api, *args: str, token: str = ADMIN) -> Result:
    return CliRunner().invoke(main, ["-s", api.url, "--token", token, *args])


def test_audit_shows_who_did_what_newest_first(api: Api) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/yaml"}
    api.http.post(api.url + "/v1/manifests", content=POOL, headers=headers)
    api.http.post(api.url + "/v1/pools/demo/drain", json={}, headers={"Authorization": f"Bearer {ADMIN}"})
    api.http.get(api.url + "/v1/pools", headers={"Authorization": "Bearer wrong-one"})
    listed = ctl(api, "audit")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["AGE", "ACTOR", "ACTION", "TARGET", "DECISION", "REASON"]
    assert "auth.token" in lines[1] and "deny" in lines[1]
    assert "pool.drain" in lines[2] and "Pool/demo" in lines[2] and "allow" in lines[2]
    denied = ctl(api, "audit", "--decision", "deny", "-o", "json")
    items = json.loads(denied.stdout)["items"]
    assert [item["action"] for item in items] == ["auth.token"]
    wide = ctl(api, "audit", "--since", "1h", "-o", "wide")
    assert "CORRELATION ID" in wide.stdout.splitlines()[0]
    assert ctl(api, "audit", "--since", "2099-01-01T00:00:00Z").stderr.strip() == "No audit entries found."
    assert "wrong-one" not in listed.stdout + wide.stdout


def test_since_takes_a_duration_or_a_time() -> None:
    now = time.mktime((2026, 1, 2, 0, 0, 0, 0, 0, 0)) - time.timezone
    assert since_time("1h", now) == "2026-01-01T23:00:00Z"
    assert since_time("2d", now) == "2025-12-31T00:00:00Z"
    assert since_time("2026-01-01T10:00:00+01:00", now) == "2026-01-01T09:00:00Z"
    with pytest.raises(click.BadParameter):
        since_time("yesterday", now)
