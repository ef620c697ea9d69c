"""Pools and tasks at run time: health, the capabilities and replica-set tables, a run's summary."""

from __future__ import annotations

from llorch.cli.render import runtime
from tests.cli.samples import CAPABILITIES, CAPABILITIES_COLUMNS, HEALTH, REPLICASETS, columns


def test_health() -> None:
    lines = runtime.health(HEALTH).splitlines()
    assert lines[0] == "Pool: demo  live: yes  ready: yes  draining: no  slots: 1/4 busy  queue: 0"
    assert lines[1] == "Last error: demo-1: exited with code 1"
    assert columns("\n".join(lines[2:])) == [
        ["ID", "PHASE", "GPUS", "PORT", "PID", "UPTIME", "RESTARTS", "SLOTS", "LAST-ERROR"],
        ["demo-0", "Ready", "0:RTX 3090", "41001", "4242", "2h", "0", "1/4", "<none>"],
        ["demo-1", "BackOff", "cpu", "41002", "<none>", "<none>", "3", "0/0", "exited with code 1"],
    ]


def test_health_of_a_drained_pool() -> None:
    drained = {
        "pool": "demo",
        "live": False,
        "ready": False,
        "draining": True,
        "last_error": None,
        "metrics": {"slots_busy": 0, "slots_total": 0, "queue_depth": 0},
        "replicas": [],
    }
    assert runtime.health(drained).splitlines() == [
        "Pool: demo  live: no  ready: no  draining: yes  slots: 0/0 busy  queue: 0",
        "Replicas:  <none>",
    ]
    assert runtime.health({}).splitlines()[0].startswith("Pool: <none>  live: no")


def test_capabilities_table() -> None:
    assert columns(runtime.capabilities_table(CAPABILITIES["pools"])) == CAPABILITIES_COLUMNS
    assert runtime.true_features({"chat": False}) == runtime.true_features(None) == "<none>"


def test_replicasets_table() -> None:
    sets = REPLICASETS["replicasets"]
    assert columns(runtime.replicasets_table(sets)) == [
        ["NAME", "ENGINE", "VERSION", "REPLICAS", "SLOTS", "LOAD"],
        ["demo", "llamacpp", "b4521", "2", "3/4", "25%"],
        ["chat", "llamacpp", "<none>", "0", "0/0", "0%"],
    ]


def test_replicasets_wide_has_a_row_per_replica() -> None:
    lines = runtime.replicasets_table(REPLICASETS["replicasets"], wide=True).splitlines()
    assert columns("\n".join(lines)) == [
        ["NAME", "ENGINE", "VERSION", "REPLICAS", "SLOTS", "LOAD", "STATE", "GPUS"],
        ["demo", "llamacpp", "b4521", "2", "3/4", "25%"],
        ["demo-0", "3/4", "25%", "Ready", "0,1"],
        ["demo-1", "0/0", "<none>", "BackOff", "cpu"],
        ["chat", "llamacpp", "<none>", "0", "0/0", "0%"],
    ]
    assert lines[2].startswith("  demo-0 ")
    # The replica's cells sit under their own headers.
    for header, cell in (("SLOTS", "3/4"), ("STATE", "Ready"), ("GPUS", "0,1")):
        assert lines[2].index(cell) == lines[0].index(header)


def test_run_summary() -> None:
    end = {"tokens_out": 64, "tokens_in": 9, "ttft_ms": 12.4, "decode_ms": 75, "finish_reason": "length"}
    assert (
        runtime.run_summary(end, "demo-0")
        == "--- 64 tokens, TTFT 12 ms, 853.3 tokens/s (decode 75 ms), finish: length, replica demo-0"
    )


def test_run_summary_without_decode_time() -> None:
    end = {"tokens_out": 1, "decode_ms": 0, "finish_reason": "stop"}
    assert runtime.run_summary(end, None) == "--- 1 token, decode 0 ms, finish: stop"
