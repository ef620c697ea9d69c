"""`top`: pools and replicas, what they reserve, how busy they are, when they scale down."""

from __future__ import annotations

import json

from llorch.cli.render import runtime
from tests.cli.ctl.fake_llorchd import FakeLlorchd, ctl
from tests.cli.samples import REPLICASETS, SCALING_DOWN

HEADERS = ["NAME", "STATE", "MODEL", "READY", "MEMORY", "SLOTS", "QUEUE", "TOKENS/S", "IDLE", "SCALE-DOWN"]


def test_top_shows_each_pool_and_its_replicas(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "top")
    assert result.exit_code == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == HEADERS
    demo = [
        "demo",
        "CrashLoopBackOff",
        "tiny-llama",
        "1/2",
        "14.0GiB",
        "1/4",
        "3",
        "812.3",
        "<none>",
        "<none>",
    ]
    assert rows[1] == demo
    assert rows[2] == ["demo-0", "Ready", "0,1", "14.0GiB", "1/4", "812.3", "<none>"]
    assert rows[3][:3] == ["demo-1", "BackOff", "cpu"]
    assert rows[4] == ["chat", "Idle", "llama-8b", "0/0", "<none>", "0/0", "0", "0", "<none>", "<none>"]
    assert [r.path for r in fake_llorchd.requests] == ["/v1/replicasets"]


def test_an_idle_replica_shows_how_long_and_when_its_pool_scales_down() -> None:
    rows = [line.split() for line in runtime.top([SCALING_DOWN]).splitlines()]
    assert rows[1] == ["code", "Ready", "coder", "1/1", "70.0MiB", "0/2", "0", "0", "1m", "in", "8m"]
    assert rows[2] == ["code-0", "Ready", "cpu", "70.0MiB", "0/2", "0", "1m"]


def test_top_of_one_pool_and_as_json(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "top", "demo")
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["NAME", "demo", "demo-0", "demo-1"]
    raw = ctl(fake_llorchd, "top", "chat", "-o", "json")
    assert json.loads(raw.stdout) == {"replicasets": [REPLICASETS["replicasets"][1]]}
