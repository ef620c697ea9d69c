"""The API's JSON shapes as llorchd answers them, shared by the rendering and the llorchctl tests.

Times are RFC 3339 text, as llorchd sends them; OLDER_POOL is POOL as an llorchd from before that
sent it (epoch seconds), and FUTURE_POOL a status this llorchctl cannot fully read (a newer one)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from llorch.resources.status import rfc3339, stamp

NOW = 1_700_000_000.0


def iso(epoch_seconds: float) -> str:
    """A moment as llorchd writes it on the wire: `2023-11-14T22:13:20Z`."""
    return rfc3339(stamp(epoch_seconds))


def condition(type_: str, status: str, reason: str, message: str = "", *, at: float = NOW) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": iso(at),
    }


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
                "lastTransitionTime": iso(NOW - 90),
            },
            {
                "type": "Progressing",
                "status": "False",
                "reason": "Stable",
                "message": "",
                "lastTransitionTime": iso(NOW - 600),
            },
            {
                "type": "Degraded",
                "status": "True",
                "reason": "CrashLoopBackOff",
                "message": "demo-1 exited 3 times in a row: exit code 1",
                "lastTransitionTime": iso(NOW - 30),
            },
        ],
        "replicaStatuses": [
            {
                "id": "demo-0",
                "index": 0,
                "revision": "7c1e9a20",
                "phase": "Ready",
                "pid": 4242,
                "port": 41001,
                "url": "http://127.0.0.1:41001",
                "restarts": 0,
                "lastExit": None,
                "lastError": None,
                "logTail": ["main: server is listening on http://127.0.0.1:41001"],
                "startedAt": iso(NOW - 3 * 3600),
                "readyAt": iso(NOW - 3 * 3600 + 4),
                "logPath": "/var/lib/llorch/logs/demo-0.log",
                "slotsBusy": 1,
                "slots": 4,
            },
            {
                "id": "demo-1",
                "index": 1,
                "revision": "7c1e9a20",
                "phase": "BackOff",
                "pid": None,
                "port": 41002,
                "url": "http://127.0.0.1:41002",
                "restarts": 3,
                "lastExit": "1",
                "lastError": "exited with code 1\nbefore becoming ready",
                "logTail": [
                    "llama_model_load: error loading model",
                    "main: exiting due to model loading error",
                ],
                "startedAt": iso(NOW - 20),
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
            "firstTimestamp": iso(NOW - 3 * 3600),
            "lastTimestamp": iso(NOW - 3 * 3600),
        },
        {
            "type": "Warning",
            "reason": "BackOff",
            "message": "restarting failed replica demo-1",
            "count": 5,
            "firstTimestamp": iso(NOW - 150),
            "lastTimestamp": iso(NOW - 10),
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
                "lastTransitionTime": iso(NOW - 7200),
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
        "httpTools": {"allow": [], "deny": [], "redact": []},
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


# The capabilities table of CAPABILITIES, cell by cell.
CAPABILITIES_COLUMNS = [
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

REPLICASETS: dict[str, Any] = {
    "replicasets": [
        {
            "id": "demo",
            "model": "tiny-llama",
            "state": "CrashLoopBackOff",
            "engine": "llamacpp",
            "engine_version": "b4521",
            "load": 0.25,
            "slots_total": 4,
            "slots_free": 3,
            "replicas": [
                {
                    "id": "demo-0",
                    "state": "Ready",
                    "gpus": [0, 1],
                    "busy": 1,
                    "slots": 4,
                    "memory_bytes": 14 * 1024**3,
                    "tokens_per_second": 812.34,
                    "idle_seconds": None,
                },
                {"id": "demo-1", "state": "BackOff", "gpus": [], "busy": 0, "slots": 0},
            ],
            "slo": {"queue_depth": 3},
            "replicas_desired": 2,
        },
        {
            "id": "chat",
            "model": "llama-8b",
            "state": "Idle",
            "engine": "llamacpp",
            "engine_version": None,
            "load": 0,
            "slots_total": 0,
            "slots_free": 0,
            "replicas": [],
            "slo": {"queue_depth": 0},
            "replicas_desired": 0,
            "cold_start_ms": 4200,
        },
    ]
}


# An autoscaled pool with an idle replica, on its way back to zero: what `top` shows of one.
SCALING_DOWN: dict[str, Any] = {
    "id": "code",
    "model": "coder",
    "state": "Ready",
    "engine": "llamacpp",
    "engine_version": None,
    "load": 0,
    "slots_total": 2,
    "slots_free": 2,
    "replicas": [
        {
            "id": "code-0",
            "state": "Ready",
            "gpus": [],
            "busy": 0,
            "slots": 2,
            "memory_bytes": 70 * 1024**2,
            "tokens_per_second": 0,
            "idle_seconds": 95.0,
        }
    ],
    "slo": {"queue_depth": 0},
    "replicas_desired": 1,
    "scale_down_in_seconds": 505.0,
}


BROKEN = {
    "file": "pool-demo.yaml",
    "line": 12,
    "field": "spec.replicas",
    "message": "Input should be greater than or equal to 0",
    "key": "Pool/demo",
}


_TIMES = ("lastTransitionTime", "startedAt", "readyAt", "drainDeadline", "firstTimestamp", "lastTimestamp")


def with_epoch_times(value: Any) -> Any:
    """`value` with every time as epoch seconds: what an llorchd from before RFC 3339 sent."""
    if isinstance(value, list):
        return [with_epoch_times(item) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key: datetime.fromisoformat(item).timestamp()
        if key in _TIMES and isinstance(item, str)
        else with_epoch_times(item)
        for key, item in value.items()
    }


OLDER_POOL: dict[str, Any] = with_epoch_times(POOL)


# A newer llorchd's answer: `draining` as an object, a condition status, a replica phase and a
# rollout this version does not know, a field it has never heard of, and an event type it cannot
# show. Each field that does not validate reads as not sent; the rest shows.
FUTURE_POOL: dict[str, Any] = {
    **copy.deepcopy(POOL),
    "metadata": {"name": "future", "labels": {}, "annotations": {}},
    "status": {
        "observedGeneration": 3,
        "replicas": 2,
        "readyReplicas": 1,
        "slotsTotal": 4,
        "slotsBusy": 1,
        "draining": {"requestedBy": "admin"},
        "placement": {"strategy": "spread"},
        "rollout": {"strategy": "canary", "step": 1},
        "conditions": [
            condition("Ready", "Partly", "ReplicasNotReady", "1 of 2 replicas ready", at=NOW - 90),
        ],
        "replicaStatuses": [
            {"id": "future-0", "index": 0, "revision": "9d0b", "phase": "Hibernating", "port": 41003},
        ],
    },
    "events": [
        {
            "type": "Critical",
            "reason": "Overheated",
            "message": "GPU0 at 95 C",
            "count": 1,
            "firstTimestamp": iso(NOW - 20),
            "lastTimestamp": iso(NOW - 20),
        },
        {
            "type": "Normal",
            "reason": "Started",
            "message": "started replica future-0 on port 41003",
            "count": 1,
            "firstTimestamp": iso(NOW - 60),
            "lastTimestamp": iso(NOW - 60),
        },
    ],
}


def pool(**status: Any) -> dict[str, Any]:
    obj = copy.deepcopy(POOL)
    obj["status"].update(status)
    return obj


def columns(table: str) -> list[list[str]]:
    """Cells of each line, split where kubectl's 3-space padding separates columns."""
    return [[cell.strip() for cell in line.split("   ") if cell.strip()] for line in table.splitlines()]


def _line_starting(lines: list[str], prefix: str) -> str:
    return next(line for line in lines if line.startswith(prefix))
