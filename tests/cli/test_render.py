"""llorchctl's rendering: pure functions from the API's JSON shapes to what the terminal shows."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from llorch.cli import render

NOW = 1_700_000_000.0

POOL: dict[str, Any] = {
    "apiVersion": "llorch.dev/v1",
    "kind": "Pool",
    "metadata": {"name": "demo", "labels": {"tier": "demo", "team": "home"}, "annotations": {}},
    "spec": {
        "model": "tiny-llama",
        "engine": "llamacpp",
        "replicas": 2,
        "slots": 4,
        "context": 1024,
        "gpus": {"count": 0, "devices": [], "split": "free-vram"},
        "engineArgs": ["--flash-attn", "--mlock"],
        "startupTimeoutSeconds": 60.0,
        "costPer1kTokens": 0.0,
    },
    "source": {"file": "pool-demo.yaml", "line": 3},
    "status": {
        "observedGeneration": 2,
        "replicas": 2,
        "readyReplicas": 1,
        "slotsTotal": 4,
        "slotsBusy": 1,
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": "ReplicasNotReady",
                "message": "1 of 2 replicas ready",
                "lastTransitionTime": NOW - 90,
            },
            {
                "type": "Progressing",
                "status": "False",
                "reason": "Stable",
                "message": "",
                "lastTransitionTime": NOW - 600,
            },
            {
                "type": "Degraded",
                "status": "True",
                "reason": "CrashLoopBackOff",
                "message": "demo-1 exited 3 times in a row: exit code 1",
                "lastTransitionTime": NOW - 30,
            },
        ],
        "replicaStatuses": [
            {
                "id": "demo-0",
                "index": 0,
                "phase": "Ready",
                "pid": 4242,
                "port": 41001,
                "url": "http://127.0.0.1:41001",
                "restarts": 0,
                "lastExit": None,
                "lastError": None,
                "logTail": ["main: server is listening on http://127.0.0.1:41001"],
                "startedAt": NOW - 3 * 3600,
                "readyAt": NOW - 3 * 3600 + 4,
                "logPath": "/var/lib/llorch/logs/demo-0.log",
                "slotsBusy": 1,
                "slots": 4,
            },
            {
                "id": "demo-1",
                "index": 1,
                "phase": "BackOff",
                "pid": None,
                "port": 41002,
                "url": "http://127.0.0.1:41002",
                "restarts": 3,
                "lastExit": 1,
                "lastError": "exited with code 1\nbefore becoming ready",
                "logTail": [
                    "llama_model_load: error loading model",
                    "main: exiting due to model loading error",
                ],
                "startedAt": NOW - 20,
                "readyAt": None,
                "logPath": "/var/lib/llorch/logs/demo-1.log",
                "slotsBusy": 0,
                "slots": 4,
            },
        ],
    },
    "errors": [],
    "events": [
        {
            "type": "Normal",
            "reason": "Started",
            "message": "started replica demo-0 on port 41001",
            "count": 1,
            "firstTimestamp": NOW - 3 * 3600,
            "lastTimestamp": NOW - 3 * 3600,
        },
        {
            "type": "Warning",
            "reason": "BackOff",
            "message": "restarting failed replica demo-1",
            "count": 5,
            "firstTimestamp": NOW - 150,
            "lastTimestamp": NOW - 10,
        },
    ],
}

MODEL: dict[str, Any] = {
    "apiVersion": "llorch.dev/v1",
    "kind": "Model",
    "metadata": {"name": "tiny-llama", "labels": {"tier": "demo"}, "annotations": {}},
    "spec": {"source": {"builtin": "tiny-llama"}, "format": "gguf", "lifecycle": "Active"},
    "source": {"file": "model-demo.yaml", "line": 4},
    "status": {
        "observedGeneration": 1,
        "lifecycle": "Active",
        "trust": "unsigned",
        "trustWarning": "no signature configured",
        "resolvedPath": "/home/me/.cache/llorch/models/tiny-llama.gguf",
        "sizeBytes": 18_035_000,
        "digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "digestVerified": True,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Resolved",
                "message": "weights at /home/me/.cache/llorch/models/tiny-llama.gguf",
                "lastTransitionTime": NOW - 7200,
            }
        ],
    },
    "errors": [],
}

POLICY: dict[str, Any] = {
    "apiVersion": "llorch.dev/v1",
    "kind": "Policy",
    "metadata": {"name": "default", "labels": {}, "annotations": {}},
    "spec": {
        "selector": {"matchLabels": {}},
        "admission": {"queueCapacity": 64, "overflow": "reject", "priorities": ["interactive", "batch"]},
        "budgets": {"tokens": 100000},
        "sessions": {"ttlSeconds": 600.0, "maxTurns": 8},
        "determinism": {"default": "best_effort"},
        "httpTools": {"allow": [], "redact": []},
    },
    "source": {"file": "policy-default.yaml", "line": 2},
    "status": {},
    "errors": [],
}

HEALTH: dict[str, Any] = {
    "pool": "demo",
    "live": True,
    "ready": True,
    "draining": False,
    "last_error": "demo-1: exited with code 1",
    "metrics": {"slots_busy": 1, "slots_total": 4, "queue_depth": 0},
    "replicas": [
        {
            "id": "demo-0",
            "phase": "Ready",
            "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 3090"}],
            "port": 41001,
            "pid": 4242,
            "uptime_s": 7260.5,
            "restarts": 0,
            "last_error": None,
            "slots_busy": 1,
            "slots_total": 4,
        },
        {
            "id": "demo-1",
            "phase": "BackOff",
            "gpus": [],
            "port": 41002,
            "pid": None,
            "uptime_s": None,
            "restarts": 3,
            "last_error": "exited with code 1",
            "slots_busy": 0,
            "slots_total": 0,
        },
    ],
}

CAPABILITIES: dict[str, Any] = {
    "api_version": "v1",
    "pools": [
        {
            "pool": "demo",
            "engine": "llamacpp",
            "engine_version": "b4521",
            "model": "tiny-llama",
            "ctx_max": 1024,
            "max_tokens_out": 1024,
            "slots_per_replica": 4,
            "slots_total": 8,
            "replicas_ready": 1,
            "supported_workloads": ["completion"],
            "features": {
                "streaming": True,
                "completion": True,
                "chat": False,
                "seed": True,
                "determinism": "best_effort",
            },
            "rate_limits": {"queue_capacity": 64, "overflow": "reject"},
            "budgets": {"tokens": None, "wall_time_seconds": None, "cost": None},
        },
        {
            "pool": "chat",
            "engine": "llamacpp",
            "engine_version": None,
            "model": "qwen-7b",
            "ctx_max": 8192,
            "max_tokens_out": 2048,
            "slots_per_replica": 1,
            "slots_total": 1,
            "replicas_ready": 0,
            "supported_workloads": ["completion"],
            "features": {
                "streaming": True,
                "completion": True,
                "chat": True,
                "seed": True,
                "determinism": "strict",
            },
            "rate_limits": {"queue_capacity": 8, "overflow": "drop-lru"},
            "budgets": {"tokens": 100000, "wall_time_seconds": None, "cost": None},
        },
    ],
}

REPLICASETS: dict[str, Any] = {
    "replicasets": [
        {
            "id": "demo",
            "engine": "llamacpp",
            "engine_version": "b4521",
            "load": 0.25,
            "slots_total": 4,
            "slots_free": 3,
            "replicas": [
                {"id": "demo-0", "state": "Ready", "gpus": [0, 1], "busy": 1, "slots": 4},
                {"id": "demo-1", "state": "BackOff", "gpus": [], "busy": 0, "slots": 0},
            ],
            "slo": {},
        },
        {
            "id": "chat",
            "engine": "llamacpp",
            "engine_version": None,
            "load": 0,
            "slots_total": 0,
            "slots_free": 0,
            "replicas": [],
            "slo": {},
        },
    ]
}

BROKEN = {
    "file": "pool-demo.yaml",
    "line": 12,
    "field": "spec.replicas",
    "message": "Input should be greater than or equal to 0",
    "key": "Pool/demo",
}


def pool(**status: Any) -> dict[str, Any]:
    obj = copy.deepcopy(POOL)
    obj["status"].update(status)
    return obj


def columns(table: str) -> list[list[str]]:
    """Cells of each line, split where kubectl's 3-space padding separates columns."""
    return [[cell.strip() for cell in line.split("   ") if cell.strip()] for line in table.splitlines()]


# -- small values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "0s"),
        (0, "0s"),
        (45, "45s"),
        (59.9, "59s"),
        (60, "1m"),
        (3 * 60 + 59, "3m"),
        (2 * 3600 + 59 * 60, "2h"),
        (5 * 86400 + 3600, "5d"),
        (400 * 86400, "1y"),
    ],
)
def test_human_duration_is_kubectls_short_form(seconds: float, expected: str) -> None:
    assert render.human_duration(seconds) == expected


def test_age_accepts_unix_seconds_and_iso_text() -> None:
    assert render.age(NOW - 125, NOW) == "2m"
    assert render.age("2023-11-14T22:13:20+00:00", NOW) == "0s"
    assert render.age(None, NOW) == "<unknown>"
    assert render.age("yesterday", NOW) == "<unknown>"


@pytest.mark.parametrize(
    ("size", "expected"),
    [(512, "512B"), (2048, "2.0KiB"), (18_035_000, "17.2MiB"), (4_368_439_584, "4.1GiB"), (None, "<none>")],
)
def test_human_size(size: int | None, expected: str) -> None:
    assert render.human_size(size) == expected


def test_located_leaves_out_what_is_unknown() -> None:
    assert render.located("a.yaml", 3, "spec.slots", "too big") == "a.yaml:3: spec.slots: too big"
    assert render.located("a.yaml", None, None, "not YAML") == "a.yaml: not YAML"


# -- tables -----------------------------------------------------------------------------------------


def test_pool_table_columns_and_alignment() -> None:
    healthy = pool(conditions=[{"type": "Ready", "status": "True", "lastTransitionTime": NOW - 50}])
    healthy["metadata"]["name"] = "chat-large"
    lines = render.object_table("Pool", [POOL, healthy], now=NOW).splitlines()
    assert columns("\n".join(lines)) == [
        ["NAME", "MODEL", "ENGINE", "READY", "SLOTS", "STATUS", "AGE"],
        ["demo", "tiny-llama", "llamacpp", "1/2", "3/4", "CrashLoopBackOff", "3h"],
        ["chat-large", "tiny-llama", "llamacpp", "1/2", "3/4", "Ready", "3h"],
    ]
    # Every column starts where its header does, in every row.
    for header in ("MODEL", "READY", "STATUS", "AGE"):
        start = lines[0].index(header)
        assert all(line[start - 1] == " " and line[start] != " " for line in lines[1:])
    assert all(line == line.rstrip() for line in lines)


def test_pool_table_wide_adds_ports_restarts_message() -> None:
    rows = columns(render.object_table("Pool", [POOL], wide=True, now=NOW))
    assert rows[0][-3:] == ["PORTS", "RESTARTS", "MESSAGE"]
    assert rows[1][-3:] == ["41001,41002", "3", "demo-1 exited 3 times in a row: exit code 1"]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({**pool(blockedBy="ModelNotReady"), "errors": [BROKEN]}, "ManifestError"),
        (pool(blockedBy="ModelNotReady"), "ModelNotReady"),
        (pool(), "CrashLoopBackOff"),
        (pool(conditions=[{"type": "Degraded", "status": "True"}]), "Degraded"),
        (
            pool(conditions=[{"type": "Ready", "status": "True"}, {"type": "Degraded", "status": "False"}]),
            "Ready",
        ),
        (pool(conditions=[{"type": "Ready", "status": "False"}]), "Progressing"),
        ({**POOL, "status": {}}, "Progressing"),
    ],
)
def test_pool_status_precedence(obj: dict[str, Any], expected: str) -> None:
    assert render.pool_status(obj) == expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pool(draining=True), "Draining"),  # over the Degraded reason (CrashLoopBackOff)
        (pool(draining=True, readyReplicas=0, replicaStatuses=[]), "Drained"),
        (pool(draining=True, blockedBy="ModelNotReady"), "Draining"),
        ({**pool(draining=True), "errors": [BROKEN]}, "ManifestError"),
        (pool(draining=False), "CrashLoopBackOff"),
        (
            pool(conditions=[{"type": "Degraded", "status": "True", "reason": "RolloutFailed"}]),
            "RolloutFailed",
        ),
    ],
)
def test_pool_status_draining(obj: dict[str, Any], expected: str) -> None:
    assert render.pool_status(obj) == expected


def test_pool_table_shows_drained() -> None:
    drained = pool(draining=True, drainDeadline=NOW - 5, readyReplicas=0, replicaStatuses=[])
    assert columns(render.object_table("Pool", [drained], now=NOW))[1][5] == "Drained"


def test_pool_never_reconciled_shows_zeros_and_unknown_age() -> None:
    fresh = {**POOL, "status": {}}
    rows = columns(render.object_table("Pool", [fresh], wide=True, now=NOW))
    assert rows[1] == [
        "demo",
        "tiny-llama",
        "llamacpp",
        "0/2",
        "0/0",
        "Progressing",
        "<unknown>",
        "<none>",
        "0",
    ]


def test_pool_age_is_the_oldest_moment_known() -> None:
    assert render.pool_age(POOL, NOW) == "3h"
    assert render.pool_age(pool(replicaStatuses=[]), NOW) == "10m"


def test_models_table() -> None:
    local = copy.deepcopy(MODEL)
    local["metadata"]["name"] = "qwen-7b"
    local["spec"] = {"source": {"path": "~/models/qwen.gguf"}, "format": "gguf", "lifecycle": "Retired"}
    local["status"] = {"lifecycle": "Retired", "digest": "sha256:" + "ab" * 32, "digestVerified": False}
    assert columns(render.object_table("Model", [MODEL, local], now=NOW)) == [
        ["NAME", "SOURCE", "FORMAT", "LIFECYCLE", "READY", "SIZE", "DIGEST", "TRUST"],
        [
            "tiny-llama",
            "builtin:tiny-llama",
            "gguf",
            "Active",
            "True",
            "17.2MiB",
            "sha256:9f86d081✓",
            "unsigned",
        ],
        [
            "qwen-7b",
            "~/models/qwen.gguf",
            "gguf",
            "Retired",
            "Unknown",
            "<none>",
            "sha256:abababab",
            "<none>",
        ],
    ]


def test_policies_table() -> None:
    scoped = copy.deepcopy(POLICY)
    scoped["metadata"]["name"] = "gpu-big"
    scoped["spec"]["selector"] = {"matchLabels": {"tier": "big", "gpu": "3090"}}
    scoped["spec"]["admission"] = {"queueCapacity": 8, "overflow": "drop-lru"}
    scoped["spec"]["sessions"] = {"ttlSeconds": 90, "maxTurns": 2}
    assert columns(render.object_table("Policy", [POLICY, scoped], now=NOW)) == [
        ["NAME", "SELECTOR", "QUEUE", "SESSIONS"],
        ["default", "<all>", "64/reject", "10m/8"],
        ["gpu-big", "gpu=3090,tier=big", "8/drop-lru", "1m/2"],
    ]


def test_manifest_warning() -> None:
    yaml_error = {"file": "model-x.yaml", "line": None, "field": None, "message": "not YAML", "key": None}
    assert render.manifest_warning([BROKEN, yaml_error]) == [
        "warning: manifest errors (last good versions keep running):",
        "  pool-demo.yaml:12: spec.replicas: Input should be greater than or equal to 0",
        "  model-x.yaml: not YAML",
    ]
    assert render.manifest_warning([]) == []


def test_yaml_and_json_are_the_whole_object() -> None:
    assert yaml.safe_load(render.to_yaml(POOL)) == POOL
    assert json.loads(render.to_json(POOL)) == POOL
    assert render.to_yaml(MODEL).index("apiVersion") == 0  # kubectl's field order, not sorted


# -- describe ---------------------------------------------------------------------------------------


def test_describe_pool_has_every_section() -> None:
    broken = {**POOL, "errors": [BROKEN]}
    text = render.describe("Pool", broken, now=NOW)
    lines = text.splitlines()
    assert lines[0].split() == ["Name:", "demo"]
    assert "Labels:       team=home,tier=demo" in lines
    assert "Source:       pool-demo.yaml:3" in lines
    for section in ("Spec:", "Status:", "Conditions:", "Replicas:", "Events:"):
        assert section in lines
    assert "  Engine Args:      --flash-attn --mlock" in lines
    assert "  GPUs:             none (CPU)" in lines
    assert "  Ready:                1/2" in lines
    assert "  Slots:                3 free of 4" in lines
    assert "  Observed Generation:  2" in lines
    assert columns(_line_starting(lines, "  Degraded"))[0][:3] == ["Degraded", "True", "CrashLoopBackOff"]
    assert columns(_line_starting(lines, "  demo-1"))[0] == [
        "demo-1",
        "BackOff",
        "cpu",
        "<none>",
        "41002",
        "3",
        "1",
        "exited with code 1 before becoming ready",
    ]
    # Only the crashing replica's log is shown.
    assert "Last log lines of demo-1 (/var/lib/llorch/logs/demo-1.log):" in lines
    assert "  llama_model_load: error loading model" in lines
    assert not any(line.startswith("Last log lines of demo-0") for line in lines)
    assert "  pool-demo.yaml:12: spec.replicas: Input should be greater than or equal to 0" in lines
    assert columns(_line_starting(lines, "  Warning"))[0] == [
        "Warning",
        "BackOff",
        "10s (x5 over 2m)",
        "restarting failed replica demo-1",
    ]
    assert columns(_line_starting(lines, "  Normal"))[0][2] == "3h"
    assert lines.index("Manifest Errors:  (the last good version keeps running)") < lines.index("Events:")


def test_describe_pool_without_status_or_events() -> None:
    bare = {k: v for k, v in POOL.items() if k not in ("status", "events")}
    lines = render.describe("Pool", bare, now=NOW).splitlines()
    assert "Conditions:  <none>" in lines
    assert "Replicas:  <none>" in lines
    assert "Events:  <none>" in lines
    assert not any(line.startswith("Manifest Errors") for line in lines)


def test_describe_pool_gpus() -> None:
    gpus = {"count": 2, "vramMiB": 20000, "devices": [0, 1], "split": "even", "layers": 40}
    assert (
        render.gpus_text(gpus)
        == "2 per replica, 20000 MiB VRAM, pinned to 0,1, split even, 40 layers offloaded"
    )


def test_describe_pool_runtime_status() -> None:
    obj = pool(
        vramEstimate="~5.1 GiB per replica (weights 4.4 GiB, KV 0.6 GiB)",
        draining=True,
        drainDeadline=NOW + 45,
        rollout={
            "failedRevision": "3f2a1",
            "message": "replica demo-1: exited with code 1 before it was ready",
        },
    )
    obj["status"]["replicaStatuses"][0]["gpus"] = [
        {"index": 0, "uuid": "GPU-1", "name": "NVIDIA GeForce RTX 3090"},
        {"index": 1, "uuid": "GPU-2", "name": "NVIDIA GeForce RTX 3090"},
    ]
    obj["status"]["replicaStatuses"][1].update(
        phase="Pending",
        reason="0/2 GPUs fit: GPU0 has 1.2 GiB free, GPU1 has 0.8 GiB free (needs 5.1 GiB)",
        lastError=None,
    )
    lines = render.describe("Pool", obj, now=NOW).splitlines()
    assert "  VRAM estimate:        ~5.1 GiB per replica (weights 4.4 GiB, KV 0.6 GiB)" in lines
    assert "  Draining:             yes (deadline in 45s)" in lines
    rollout = "failed revision 3f2a1: replica demo-1: exited with code 1 before it was ready"
    assert f"  Rollout:              {rollout}" in lines
    header = columns(_line_starting(lines, "  ID"))[0]
    assert header[:3] == ["ID", "PHASE", "GPUS"]
    assert columns(_line_starting(lines, "  demo-0"))[0][:3] == ["demo-0", "Ready", "0:RTX 3090,1:RTX 3090"]
    assert columns(_line_starting(lines, "  demo-1  "))[0][:3] == ["demo-1", "Pending", "cpu"]
    pending = "  demo-1 pending: 0/2 GPUs fit: GPU0 has 1.2 GiB free, GPU1 has 0.8 GiB free (needs 5.1 GiB)"
    assert lines.index(pending) > lines.index(_line_starting(lines, "  demo-1  "))
    assert lines.index(pending) < lines.index("Events:")


def test_describe_pool_leaves_out_what_is_not_there() -> None:
    lines = render.describe(
        "Pool", pool(draining=False, rollout=None, vramEstimate=None), now=NOW
    ).splitlines()
    assert not any(line.lstrip().startswith(("VRAM", "Draining", "Rollout")) for line in lines)
    assert not any(" pending: " in line for line in lines)


def test_drain_deadline_text() -> None:
    assert render.drain_text(NOW + 90, NOW) == "yes (deadline in 1m)"
    assert render.drain_text(NOW - 3, NOW) == "yes (deadline passed 3s ago)"
    assert render.drain_text(None, NOW) == "yes"


def test_gpu_list() -> None:
    gpus = [{"index": 0, "name": "NVIDIA H100 80GB HBM3"}, {"index": 1, "name": "AMD Radeon RX 7900 XTX"}]
    assert render.gpu_list(gpus) == "0:H100 80GB HBM3,1:AMD Radeon RX 7900 XTX"
    assert render.gpu_list([{"index": 2}]) == "2"
    assert render.gpu_list([0, 1]) == "0,1"
    assert render.gpu_list([]) == render.gpu_list(None) == "cpu"


def test_describe_model() -> None:
    lines = render.describe("Model", MODEL, now=NOW).splitlines()
    assert "  Source:     builtin:tiny-llama" in lines
    assert "  Size:                 17.2MiB" in lines
    assert f"  Digest:               {MODEL['status']['digest']} (verified)" in lines
    assert "  Trust:                unsigned (no signature configured)" in lines
    assert columns(_line_starting(lines, "  Ready"))[0][-1] == "2h"


def test_describe_policy() -> None:
    lines = render.describe("Policy", POLICY, now=NOW).splitlines()
    assert "  Selector:           <all>" in lines
    assert "  Priorities:         interactive,batch" in lines
    assert "  Budgets:            tokens=100000" in lines
    assert "  Session TTL:        10m" in lines
    assert "Status:  <none>" in lines


def _line_starting(lines: list[str], prefix: str) -> str:
    return next(line for line in lines if line.startswith(prefix))


# -- health, capabilities, replica sets -------------------------------------------------------------


def test_health() -> None:
    lines = render.health(HEALTH).splitlines()
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
    assert render.health(drained).splitlines() == [
        "Pool: demo  live: no  ready: no  draining: yes  slots: 0/0 busy  queue: 0",
        "Replicas:  <none>",
    ]
    assert render.health({}).splitlines()[0].startswith("Pool: <none>  live: no")


def test_capabilities_table() -> None:
    assert columns(render.capabilities_table(CAPABILITIES["pools"])) == [
        ["POOL", "ENGINE", "VERSION", "MODEL", "CTX", "MAX-OUT", "SLOTS", "READY", "QUEUE", "FEATURES"],
        [
            "demo",
            "llamacpp",
            "b4521",
            "tiny-llama",
            "1024",
            "1024",
            "8",
            "1",
            "64/reject",
            "streaming,completion,seed",
        ],
        [
            "chat",
            "llamacpp",
            "<none>",
            "qwen-7b",
            "8192",
            "2048",
            "1",
            "0",
            "8/drop-lru",
            "streaming,completion,chat,seed",
        ],
    ]
    assert render.true_features({"chat": False}) == render.true_features(None) == "<none>"


def test_replicasets_table() -> None:
    sets = REPLICASETS["replicasets"]
    assert columns(render.replicasets_table(sets)) == [
        ["NAME", "ENGINE", "VERSION", "REPLICAS", "SLOTS", "LOAD"],
        ["demo", "llamacpp", "b4521", "2", "3/4", "25%"],
        ["chat", "llamacpp", "<none>", "0", "0/0", "0%"],
    ]


def test_replicasets_wide_has_a_row_per_replica() -> None:
    lines = render.replicasets_table(REPLICASETS["replicasets"], wide=True).splitlines()
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


@pytest.mark.parametrize(("millis", "expected"), [(60_000, "60s"), (500, "0.5s"), (120_000, "120s")])
def test_millis_text(millis: int, expected: str) -> None:
    assert render.millis_text(millis) == expected


# -- run --------------------------------------------------------------------------------------------


def test_run_summary() -> None:
    end = {"tokens_out": 64, "tokens_in": 9, "ttft_ms": 12.4, "decode_ms": 75, "finish_reason": "length"}
    assert (
        render.run_summary(end, "demo-0")
        == "--- 64 tokens, TTFT 12 ms, 853.3 tokens/s (decode 75 ms), finish: length, replica demo-0"
    )


def test_run_summary_without_decode_time() -> None:
    end = {"tokens_out": 1, "decode_ms": 0, "finish_reason": "stop"}
    assert render.run_summary(end, None) == "--- 1 token, decode 0 ms, finish: stop"
