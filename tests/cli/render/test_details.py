"""`describe` text: every section of a pool, a model and a policy."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

from llorch.cli.render import details
from tests.cli.samples import (
    BROKEN,
    FUTURE_POOL,
    MODEL,
    NOW,
    OLDER_POOL,
    POLICY,
    POOL,
    _line_starting,
    columns,
    iso,
    pool,
)


def test_describe_pool_has_every_section() -> None:
    broken = {**POOL, "errors": [BROKEN]}
    text = details.describe("Pool", broken, now=NOW)
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
    lines = details.describe("Pool", bare, now=NOW).splitlines()
    assert "Conditions:  <none>" in lines
    assert "Replicas:  <none>" in lines
    assert "Events:  <none>" in lines
    assert not any(line.startswith("Manifest Errors") for line in lines)


def test_describe_pool_gpus() -> None:
    gpus = {"count": 2, "vramMiB": 20000, "devices": [0, 1], "split": "even", "layers": 40}
    assert (
        details.gpus_text(gpus)
        == "2 per replica, 20000 MiB VRAM, pinned to 0,1, split even, 40 layers offloaded"
    )


def test_describe_pool_runtime_status() -> None:
    obj = pool(
        vramEstimate="~5.1 GiB per replica (weights 4.4 GiB, KV 0.6 GiB)",
        draining=True,
        drainDeadline=iso(NOW + 45),
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
    lines = details.describe("Pool", obj, now=NOW).splitlines()
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
    lines = details.describe(
        "Pool", pool(draining=False, rollout=None, vramEstimate=None), now=NOW
    ).splitlines()
    assert not any(line.lstrip().startswith(("VRAM", "Draining", "Rollout")) for line in lines)
    assert not any(" pending: " in line for line in lines)


def test_drain_deadline_text() -> None:
    assert details.drain_text(NOW + 90, NOW) == "yes (deadline in 1m)"
    assert details.drain_text(NOW - 3, NOW) == "yes (deadline passed 3s ago)"
    assert details.drain_text(iso(NOW + 90), NOW) == "yes (deadline in 1m)"
    assert details.drain_text(datetime.fromtimestamp(NOW - 3, UTC), NOW) == "yes (deadline passed 3s ago)"
    assert details.drain_text(None, NOW) == "yes"


def test_describe_pool_of_an_older_llorchd_with_epoch_times() -> None:
    older = {**OLDER_POOL, "errors": [BROKEN]}
    older["status"] = {**OLDER_POOL["status"], "draining": True, "drainDeadline": NOW + 45}
    current = {**POOL, "errors": [BROKEN]}
    current["status"] = {**POOL["status"], "draining": True, "drainDeadline": iso(NOW + 45)}
    assert details.describe("Pool", older, now=NOW) == details.describe("Pool", current, now=NOW)
    lines = details.describe("Pool", older, now=NOW).splitlines()
    assert "  Draining:             yes (deadline in 45s)" in lines
    assert columns(_line_starting(lines, "  Warning"))[0][2] == "10s (x5 over 2m)"


def test_describe_pool_of_a_newer_llorchd_shows_what_validates() -> None:
    lines = details.describe("Pool", FUTURE_POOL, now=NOW).splitlines()
    assert "  Ready:                1/2" in lines
    assert "  Slots:                3 free of 4" in lines
    assert "  Observed Generation:  3" in lines
    assert not any(line.lstrip().startswith(("Draining", "Rollout")) for line in lines)
    assert "Conditions:  <none>" in lines
    assert "Replicas:  <none>" in lines
    # The event of a type this llorchctl does not know is left out, the one it knows is shown.
    assert columns(_line_starting(lines, "  Normal"))[0] == [
        "Normal",
        "Started",
        "1m",
        "started replica future-0 on port 41003",
    ]
    assert not any("Overheated" in line for line in lines)


def test_describe_pool_whose_status_is_not_an_object() -> None:
    lines = details.describe("Pool", {**POOL, "status": "pending", "events": "none"}, now=NOW).splitlines()
    assert "  Ready:                0/2" in lines
    assert "  Observed Generation:  <none>" in lines
    assert "Conditions:  <none>" in lines
    assert "Events:  <none>" in lines


def test_describe_model() -> None:
    lines = details.describe("Model", MODEL, now=NOW).splitlines()
    assert "  Source:     builtin:tiny-llama" in lines
    assert "  Size:                 17.2MiB" in lines
    assert f"  Digest:               {MODEL['status']['digest']} (verified)" in lines
    assert "  Trust:                unsigned (no signature configured)" in lines
    assert columns(_line_starting(lines, "  Ready"))[0][-1] == "2h"


def test_describe_model_of_an_older_or_newer_llorchd() -> None:
    older = copy.deepcopy(MODEL)
    older["status"]["conditions"][0]["lastTransitionTime"] = NOW - 7200
    assert details.describe("Model", older, now=NOW) == details.describe("Model", MODEL, now=NOW)
    newer = copy.deepcopy(MODEL)
    newer["status"].update(sizeBytes="17 MiB", trust=["signed", "sbom"])
    lines = details.describe("Model", newer, now=NOW).splitlines()
    assert "  Size:                 <none>" in lines
    assert "  Trust:                <none> (no signature configured)" in lines
    assert f"  Digest:               {MODEL['status']['digest']} (verified)" in lines
    assert columns(_line_starting(lines, "  Ready"))[0][-1] == "2h"


def test_describe_policy() -> None:
    lines = details.describe("Policy", POLICY, now=NOW).splitlines()
    assert "  Selector:           <all>" in lines
    assert "  Priorities:         interactive,batch" in lines
    assert "  Budgets:            tokens=100000" in lines
    assert "  Session TTL:        10m" in lines
    assert "Status:  <none>" in lines
    assert "  HTTP Tools Allow:   <none>" in lines


def test_describe_policy_shows_its_http_tool_rules() -> None:
    rules = {
        "allow": [
            {"name": "github", "host": "api.github.com", "methods": ["GET"], "schemes": ["https"]},
            {"host": "127.0.0.1", "ports": [8080]},
        ],
        "deny": [{"host": "*.corp"}],
        "redact": ["sk-[a-z]+"],
    }
    policy = {**POLICY, "spec": {**POLICY["spec"], "httpTools": rules}}
    lines = details.describe("Policy", policy, now=NOW).splitlines()
    assert "  HTTP Tools Allow:   github: GET api.github.com https; 127.0.0.1 :8080" in lines
    assert "  HTTP Tools Deny:    *.corp" in lines
    assert "  HTTP Tools Redact:  sk-[a-z]+" in lines
