"""`drain`, `resume`, `reload` and `health` of pools."""

from __future__ import annotations

import json

import pytest
import yaml

from llorch.cli.ctl import pools as pools_module
from tests.cli.ctl.fake_llorchd import FakeLlorchd, clean, ctl
from tests.cli.samples import HEALTH


def test_drain_both_spellings_default_deadline(fake_llorchd: FakeLlorchd) -> None:
    for args in (["pool/demo"], ["pool", "demo"], ["po/demo"]):
        result = ctl(fake_llorchd, "drain", *args)
        assert (result.exit_code, result.stdout, result.stderr) == (
            0,
            "pool/demo draining (deadline 60s)\n",
            "",
        )
        sent = fake_llorchd.last("POST", "/v1/pools/demo/drain")
        assert json.loads(sent.body) == {"deadline_ms": 60_000}
        assert sent.headers["content-type"] == "application/json"
    assert [r.path for r in fake_llorchd.requests] == ["/v1/pools/demo/drain"] * 3  # no --wait: no polling


@pytest.mark.parametrize(
    ("deadline", "millis", "shown"),
    [
        ("90s", 90_000, "90s"),
        ("2m", 120_000, "120s"),
        ("500ms", 500, "0.5s"),
        ("45", 45_000, "45s"),
        ("1.5", 1_500, "1.5s"),
        ("1h", 3_600_000, "3600s"),
    ],
)
def test_drain_deadline_spellings(fake_llorchd: FakeLlorchd, deadline: str, millis: int, shown: str) -> None:
    result = ctl(fake_llorchd, "drain", "pool/demo", "--deadline", deadline)
    assert (result.exit_code, result.stdout) == (0, f"pool/demo draining (deadline {shown})\n")
    assert json.loads(fake_llorchd.last("POST").body) == {"deadline_ms": millis}


@pytest.mark.parametrize("deadline", ["soon", "-5s", "5 min", "1d", ""])
def test_drain_bad_deadline_is_a_usage_error(fake_llorchd: FakeLlorchd, deadline: str) -> None:
    result = ctl(fake_llorchd, "drain", "pool/demo", "--deadline", deadline)
    assert result.exit_code == 2
    assert "Invalid value for '--deadline'" in result.stderr
    assert fake_llorchd.requests == []


def test_drain_wait_polls_health_until_no_replica_runs(
    fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pools_module, "DRAIN_POLL_SECONDS", 0.01)
    replica = HEALTH["replicas"][0]
    fake_llorchd.health["demo"] = [
        {**HEALTH, "draining": True, "replicas": [{**replica, "phase": "Terminating"}]},
        {**HEALTH, "draining": True, "replicas": [{**replica, "phase": "Terminating"}, {"id": "demo-1"}]},
        {**HEALTH, "draining": True, "replicas": [{**replica, "phase": "Stopped"}]},
        {**HEALTH, "draining": True, "replicas": []},
    ]
    result = ctl(fake_llorchd, "drain", "pool/demo", "--wait", "--deadline", "2m")
    assert result.exit_code == 0, result.output
    assert result.stdout == "pool/demo draining (deadline 120s)\npool/demo drained\n"
    assert [(r.method, r.path) for r in fake_llorchd.requests] == [
        ("POST", "/v1/pools/demo/drain"),
        ("GET", "/v1/pools/demo/health"),
        ("GET", "/v1/pools/demo/health"),
        ("GET", "/v1/pools/demo/health"),  # every replica Stopped: done, the empty list is not needed
    ]


def test_drain_wait_on_an_empty_pool_returns_at_once(
    fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pools_module, "DRAIN_POLL_SECONDS", 30.0)  # a sleep would time the test out
    fake_llorchd.health["demo"] = [{**HEALTH, "replicas": []}]
    result = ctl(fake_llorchd, "drain", "pool/demo", "--wait")
    assert result.stdout.splitlines() == ["pool/demo draining (deadline 60s)", "pool/demo drained"]


def test_drain_missing_pool(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "drain", "pool/nope", "--wait")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "error: no Pool/nope (NOT_FOUND)\n"
    assert [r.path for r in fake_llorchd.requests] == ["/v1/pools/nope/drain"]
    clean(result)


@pytest.mark.parametrize("verb", ["drain", "resume", "reload", "health"])
def test_pool_verbs_need_a_pool(fake_llorchd: FakeLlorchd, verb: str) -> None:
    nameless = ctl(fake_llorchd, verb, "pool")
    assert nameless.exit_code == 2
    assert f"llorchctl {verb} pool/demo" in nameless.stderr
    other = ctl(fake_llorchd, verb, "model/tiny-llama")
    assert (other.exit_code, other.stderr) == (1, f"error: {verb} works on pools, not models\n")
    unknown = ctl(fake_llorchd, verb, "node/gpu-box")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("error: unknown resource type 'node'")
    assert fake_llorchd.requests == []
    clean(other)


def test_resume(fake_llorchd: FakeLlorchd) -> None:
    for args in (["pool/demo"], ["pool", "demo"]):
        result = ctl(fake_llorchd, "resume", *args)
        assert (result.exit_code, result.stdout) == (0, "pool/demo resumed\n")
        assert fake_llorchd.last("POST").path == "/v1/pools/demo/resume"
    missing = ctl(fake_llorchd, "resume", "pool/nope")
    assert (missing.exit_code, missing.stderr) == (1, "error: no Pool/nope (NOT_FOUND)\n")


def test_reload(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "reload", "pool/demo")
    assert (result.exit_code, result.stdout) == (0, "pool/demo reload started (rolling restart)\n")
    sent = fake_llorchd.last("POST")
    assert sent.path == "/v1/pools/demo/reload"
    assert json.loads(sent.body) == {}
    several = ctl(fake_llorchd, "reload", "pool", "demo", "chat")
    assert several.stdout.splitlines() == [
        "pool/demo reload started (rolling restart)",
        "pool/chat reload started (rolling restart)",
    ]


def test_health(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "health", "pool/demo")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Pool: demo  live: yes  ready: yes  draining: no  slots: 1/4 busy  queue: 0"
    assert lines[1] == "Last error: demo-1: exited with code 1"
    assert lines[2].split() == [
        "ID",
        "PHASE",
        "GPUS",
        "PORT",
        "PID",
        "UPTIME",
        "RESTARTS",
        "SLOTS",
        "LAST-ERROR",
    ]
    assert lines[3].split() == [
        "demo-0",
        "Ready",
        "0:RTX",
        "3090",
        "41001",
        "4242",
        "2h",
        "0",
        "1/4",
        "<none>",
    ]
    assert fake_llorchd.last("GET").path == "/v1/pools/demo/health"
    assert ctl(fake_llorchd, "health", "pool", "demo").stdout == result.stdout


def test_health_raw(fake_llorchd: FakeLlorchd) -> None:
    assert json.loads(ctl(fake_llorchd, "health", "pool/demo", "-o", "json").stdout) == HEALTH
    assert yaml.safe_load(ctl(fake_llorchd, "health", "pool/demo", "-o", "yaml").stdout) == HEALTH
    both = json.loads(ctl(fake_llorchd, "health", "pool", "demo", "chat", "-o", "json").stdout)
    assert [answer["pool"] for answer in both] == ["demo", "chat"]
    assert ctl(fake_llorchd, "health", "pool/demo", "-o", "wide").exit_code == 2


def test_health_missing_pool(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "health", "pool/nope")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "error: no Pool/nope (NOT_FOUND)\n")
    clean(result)
