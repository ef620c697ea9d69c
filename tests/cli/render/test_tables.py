"""The `get` tables of pools, models and policies, and the manifest warning under them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llorch.cli.render import tables, values
from tests.cli.samples import (
    BROKEN,
    FUTURE_POOL,
    MODEL,
    NOW,
    OLDER_POOL,
    POLICY,
    POOL,
    columns,
    condition,
    iso,
    pool,
)


def status_column(obj: dict[str, Any]) -> str:
    return columns(tables.object_table("Pool", [obj], now=NOW))[1][5]


def test_pool_table_columns_and_alignment() -> None:
    healthy = pool(conditions=[condition("Ready", "True", "ReplicasReady", at=NOW - 50)])
    healthy["metadata"]["name"] = "chat-large"
    lines = tables.object_table("Pool", [POOL, healthy], now=NOW).splitlines()
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
    rows = columns(tables.object_table("Pool", [POOL], wide=True, now=NOW))
    assert rows[0][-3:] == ["PORTS", "RESTARTS", "MESSAGE"]
    assert rows[1][-3:] == ["41001,41002", "3", "demo-1 exited 3 times in a row: exit code 1"]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({**pool(blockedBy="ModelNotReady"), "errors": [BROKEN]}, "ManifestError"),
        (pool(blockedBy="ModelNotReady"), "ModelNotReady"),
        (pool(), "CrashLoopBackOff"),
        (pool(conditions=[condition("Degraded", "True", "")]), "Degraded"),
        (
            pool(
                conditions=[condition("Ready", "True", "ReplicasReady"), condition("Degraded", "False", "")]
            ),
            "Ready",
        ),
        (pool(conditions=[condition("Ready", "False", "ReplicasNotReady")]), "Progressing"),
        ({**POOL, "status": {}}, "Progressing"),
    ],
)
def test_pool_status_precedence(obj: dict[str, Any], expected: str) -> None:
    assert status_column(obj) == expected


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (pool(draining=True), "Draining"),  # over the Degraded reason (CrashLoopBackOff)
        (pool(draining=True, readyReplicas=0, replicaStatuses=[]), "Drained"),
        (pool(draining=True, blockedBy="ModelNotReady"), "Draining"),
        ({**pool(draining=True), "errors": [BROKEN]}, "ManifestError"),
        (pool(draining=False), "CrashLoopBackOff"),
        (pool(conditions=[condition("Degraded", "True", "RolloutFailed")]), "RolloutFailed"),
    ],
)
def test_pool_status_draining(obj: dict[str, Any], expected: str) -> None:
    assert status_column(obj) == expected


def test_pool_table_shows_drained() -> None:
    drained = pool(draining=True, drainDeadline=iso(NOW - 5), readyReplicas=0, replicaStatuses=[])
    assert columns(tables.object_table("Pool", [drained], now=NOW))[1][5] == "Drained"


def test_pool_never_reconciled_shows_zeros_and_unknown_age() -> None:
    fresh = {**POOL, "status": {}}
    rows = columns(tables.object_table("Pool", [fresh], wide=True, now=NOW))
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


@pytest.mark.parametrize("status", ["pending", ["Ready"], None, 3])
def test_pool_status_that_is_not_an_object_reads_as_never_reconciled(status: Any) -> None:
    fresh = columns(tables.object_table("Pool", [{**POOL, "status": {}}], wide=True, now=NOW))
    assert columns(tables.object_table("Pool", [{**POOL, "status": status}], wide=True, now=NOW)) == fresh


def test_pool_age_is_the_oldest_moment_known() -> None:
    assert tables.pool_age(values.pool_status(POOL), NOW) == "3h"
    assert tables.pool_age(values.pool_status(pool(replicaStatuses=[])), NOW) == "10m"


def test_pool_table_of_an_older_llorchd_with_epoch_times() -> None:
    for wide in (False, True):
        older = tables.object_table("Pool", [OLDER_POOL], wide=wide, now=NOW)
        assert older == tables.object_table("Pool", [POOL], wide=wide, now=NOW)
    assert columns(older)[1][6] == "3h"


def test_pool_table_of_a_newer_llorchd_shows_what_validates() -> None:
    rows = columns(tables.object_table("Pool", [FUTURE_POOL], wide=True, now=NOW))
    # Ready and slot counts validate; the unknown condition status and replica phase do not, so
    # the pool is Progressing with no known age, ports or message, and not Draining.
    assert rows[1] == [
        "future",
        "tiny-llama",
        "llamacpp",
        "1/2",
        "3/4",
        "Progressing",
        "<unknown>",
        "<none>",
        "0",
    ]


def test_model_table_of_an_older_or_newer_llorchd() -> None:
    older = copy.deepcopy(MODEL)
    older["status"]["conditions"][0]["lastTransitionTime"] = NOW - 7200
    assert tables.object_table("Model", [older], now=NOW) == tables.object_table("Model", [MODEL], now=NOW)
    newer = copy.deepcopy(MODEL)
    newer["status"].update(sizeBytes="17 MiB", digestVerified="maybe", provenance={"slsa": 3})
    newer["status"]["conditions"][0]["status"] = "Partly"
    assert columns(tables.object_table("Model", [newer], now=NOW))[1] == [
        "tiny-llama",
        "builtin:tiny-llama",
        "gguf",
        "Active",
        "Unknown",
        "<none>",
        "sha256:9f86d081",
        "unsigned",
    ]


def test_models_table() -> None:
    local = copy.deepcopy(MODEL)
    local["metadata"]["name"] = "qwen-7b"
    local["spec"] = {"source": {"path": "~/models/qwen.gguf"}, "format": "gguf", "lifecycle": "Retired"}
    local["status"] = {"lifecycle": "Retired", "digest": "sha256:" + "ab" * 32, "digestVerified": False}
    assert columns(tables.object_table("Model", [MODEL, local], now=NOW)) == [
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
    assert columns(tables.object_table("Policy", [POLICY, scoped], now=NOW)) == [
        ["NAME", "SELECTOR", "QUEUE", "SESSIONS"],
        ["default", "<all>", "64/reject", "10m/8"],
        ["gpu-big", "gpu=3090,tier=big", "8/drop-lru", "1m/2"],
    ]


def test_manifest_warning() -> None:
    yaml_error = {"file": "model-x.yaml", "line": None, "field": None, "message": "not YAML", "key": None}
    assert tables.manifest_warning([BROKEN, yaml_error]) == [
        "warning: manifest errors (last good versions keep running):",
        "  pool-demo.yaml:12: spec.replicas: Input should be greater than or equal to 0",
        "  model-x.yaml: not YAML",
    ]
    assert tables.manifest_warning([]) == []
