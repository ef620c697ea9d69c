"""`get`, `describe` and `delete` of objects and of llorchd's read-only views."""

from __future__ import annotations

import copy
import json
import time

import pytest
import yaml

from llorch.cli.render import values
from tests.cli.ctl.fake_llorchd import LISTS, FakeLlorchd, clean, ctl
from tests.cli.samples import (
    CAPABILITIES,
    CAPABILITIES_COLUMNS,
    FUTURE_POOL,
    MODEL,
    OLDER_POOL,
    POOL,
    REPLICASETS,
    iso,
)


def test_get_pools_table_and_manifest_warning(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "get", "pools")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "MODEL", "ENGINE", "READY", "SLOTS", "STATUS", "AGE"]
    assert lines[1].split()[:6] == ["demo", "tiny-llama", "llamacpp", "1/2", "3/4", "CrashLoopBackOff"]
    # The sample's condition is 330 s old when this module loads; the suite may run long after.
    since = LISTS["pools"]["items"][1]["status"]["conditions"][0]["lastTransitionTime"]
    expected_age = values.age(since, time.time())
    assert lines[2].split() == ["chat", "tiny-llama", "llamacpp", "1/2", "3/4", "ManifestError", expected_age]
    assert result.stderr.splitlines() == [
        "warning: manifest errors (last good versions keep running):",
        "  pool-demo.yaml:12: spec.replicas: Input should be greater than or equal to 0",
    ]


@pytest.mark.parametrize("alias", ["po", "pool", "Pool", "pools"])
def test_get_aliases(fake_llorchd: FakeLlorchd, alias: str) -> None:
    assert ctl(fake_llorchd, "get", alias, "-o", "name").stdout == "pool/demo\npool/chat\n"


def test_get_wide(fake_llorchd: FakeLlorchd) -> None:
    header = ctl(fake_llorchd, "get", "pools", "-o", "wide").stdout.splitlines()[0]
    assert header.split()[-3:] == ["PORTS", "RESTARTS", "MESSAGE"]


def test_get_one_as_yaml_is_the_object_without_events(fake_llorchd: FakeLlorchd) -> None:
    for args in (["pool", "demo"], ["po/demo"]):
        result = ctl(fake_llorchd, "get", *args, "-o", "yaml")
        assert result.exit_code == 0
        assert yaml.safe_load(result.stdout) == {k: v for k, v in POOL.items() if k != "events"}
        assert fake_llorchd.requests[-1].path == "/v1/pools/demo"


def test_get_list_as_json(fake_llorchd: FakeLlorchd) -> None:
    listing = json.loads(ctl(fake_llorchd, "get", "models", "-o", "json").stdout)
    assert listing == {"apiVersion": "llorch.dev/v1", "kind": "ModelList", "items": [MODEL]}


def test_get_models_and_policies(fake_llorchd: FakeLlorchd) -> None:
    models = ctl(fake_llorchd, "get", "mo").stdout.splitlines()
    assert models[1].split()[:5] == ["tiny-llama", "builtin:tiny-llama", "gguf", "Active", "True"]
    policies = ctl(fake_llorchd, "get", "pol").stdout.splitlines()
    assert policies[1].split() == ["default", "<all>", "64/reject", "10m/8"]


def test_get_missing_object(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "get", "pool", "nope")
    assert result.exit_code == 1
    assert result.stderr == "error: no Pool/nope (NOT_FOUND)\n"
    clean(result)


def test_get_capabilities_raw_and_named(fake_llorchd: FakeLlorchd) -> None:
    assert json.loads(ctl(fake_llorchd, "get", "caps", "-o", "json").stdout) == CAPABILITIES
    assert yaml.safe_load(ctl(fake_llorchd, "get", "caps", "-o", "yaml").stdout) == CAPABILITIES
    named = ctl(fake_llorchd, "get", "caps/chat").stdout.splitlines()
    assert [line.split()[0] for line in named] == ["POOL", "chat"]
    raw = json.loads(ctl(fake_llorchd, "get", "caps", "chat", "-o", "json").stdout)
    assert [p["pool"] for p in raw["pools"]] == ["chat"]
    assert raw["api_version"] == "v1"
    missing = ctl(fake_llorchd, "get", "caps", "nope")
    assert missing.exit_code == 1
    assert missing.stderr == "error: no pool named nope in llorchd's pools\n"
    clean(missing)


REPLICASETS_COLUMNS = [
    ["NAME", "ENGINE", "VERSION", "REPLICAS", "SLOTS", "LOAD"],
    ["demo", "llamacpp", "b4521", "2", "3/4", "25%"],
    ["chat", "llamacpp", "<none>", "0", "0/0", "0%"],
]


@pytest.mark.parametrize(
    ("alias", "path", "rows"),
    [
        *(
            (alias, "/v1/capabilities", CAPABILITIES_COLUMNS)
            for alias in ("capabilities", "caps", "capability")
        ),
        *((alias, "/v1/replicasets", REPLICASETS_COLUMNS) for alias in ("replicasets", "rs", "ReplicaSet")),
    ],
)
def test_get_view_tables(fake_llorchd: FakeLlorchd, alias: str, path: str, rows: list[list[str]]) -> None:
    result = ctl(fake_llorchd, "get", alias)
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.stdout.splitlines()] == rows
    assert fake_llorchd.last("GET").path == path


def test_get_replicasets_wide_raw_and_names(fake_llorchd: FakeLlorchd) -> None:
    wide = ctl(fake_llorchd, "get", "rs", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "ENGINE", "VERSION", "REPLICAS", "SLOTS", "LOAD", "STATE", "GPUS"]
    assert wide[2].split() == ["demo-0", "3/4", "25%", "Ready", "0,1"]
    assert wide[2].startswith("  demo-0")
    assert wide[3].split() == ["demo-1", "0/0", "<none>", "BackOff", "cpu"]
    assert yaml.safe_load(ctl(fake_llorchd, "get", "rs", "-o", "yaml").stdout) == REPLICASETS
    assert json.loads(ctl(fake_llorchd, "get", "rs", "-o", "json").stdout) == REPLICASETS
    assert ctl(fake_llorchd, "get", "rs", "-o", "name").stdout == "replicaset/demo\nreplicaset/chat\n"
    one = ctl(fake_llorchd, "get", "rs/demo").stdout.splitlines()
    assert [line.split()[0] for line in one] == ["NAME", "demo"]


def test_describe_both_spellings(fake_llorchd: FakeLlorchd) -> None:
    slash = ctl(fake_llorchd, "describe", "pool/demo")
    spaced = ctl(fake_llorchd, "describe", "pool", "demo")
    assert slash.exit_code == spaced.exit_code == 0
    assert slash.stdout == spaced.stdout
    lines = slash.stdout.splitlines()
    assert lines[0].split() == ["Name:", "demo"]
    assert "Events:" in lines
    assert any("(x5 over" in line for line in lines)


def test_describe_every_object_of_a_kind(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "describe", "pools")
    assert [line for line in result.stdout.splitlines() if line.startswith("Name:")] == [
        "Name:         demo",
        "Name:         chat",
    ]


def test_delete(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "delete", "pool/demo")
    assert (result.exit_code, result.stdout) == (0, "pool/demo deleted\n")
    assert fake_llorchd.last("DELETE").query == {"dryRun": "false"}
    dry = ctl(fake_llorchd, "delete", "pool", "demo", "--dry-run")
    assert dry.stdout == "pool/demo deleted (dry run)\n"
    assert fake_llorchd.last("DELETE").query == {"dryRun": "true"}


def test_delete_needs_a_name(fake_llorchd: FakeLlorchd) -> None:
    assert ctl(fake_llorchd, "delete", "pool").exit_code == 2


def test_describe_pool_with_runtime_status(
    fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch
) -> None:
    drained = copy.deepcopy(POOL)
    drained["metadata"]["name"] = "drained"
    drained["status"].update(
        draining=True, drainDeadline=iso(time.time() + 3600 + 30), readyReplicas=0, vramEstimate="~5.1 GiB"
    )
    drained["status"]["replicaStatuses"][1]["phase"] = "Pending"
    drained["status"]["replicaStatuses"][1]["reason"] = "0/2 GPUs fit: GPU0 has 1.0 GiB free"
    items = [*LISTS["pools"]["items"], drained]
    monkeypatch.setitem(LISTS, "pools", {**LISTS["pools"], "items": items})
    lines = ctl(fake_llorchd, "describe", "pool/drained").stdout.splitlines()
    assert "  VRAM estimate:        ~5.1 GiB" in lines
    assert "  Draining:             yes (deadline in 1h)" in lines
    assert "  demo-1 pending: 0/2 GPUs fit: GPU0 has 1.0 GiB free" in lines
    listing = ctl(fake_llorchd, "get", "pools").stdout.splitlines()
    assert listing[3].split()[:6] == ["drained", "tiny-llama", "llamacpp", "0/2", "3/4", "Drained"]


def test_get_and_describe_pools_of_an_older_and_a_newer_llorchd(
    fake_llorchd: FakeLlorchd, monkeypatch: pytest.MonkeyPatch
) -> None:
    older, never = copy.deepcopy(OLDER_POOL), {**copy.deepcopy(POOL), "status": "not yet", "events": None}
    older["metadata"]["name"], never["metadata"]["name"] = "older", "never"
    items = [POOL, older, FUTURE_POOL, never]
    monkeypatch.setitem(LISTS, "pools", {**LISTS["pools"], "items": items})
    result = ctl(fake_llorchd, "get", "pools")
    clean(result)
    assert result.exit_code == 0
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert rows[1][1:] == rows[0][1:]  # epoch seconds read as the RFC 3339 text does
    assert rows[2] == ["future", "tiny-llama", "llamacpp", "1/2", "3/4", "Progressing", "<unknown>"]
    assert rows[3] == ["never", "tiny-llama", "llamacpp", "0/2", "0/0", "Progressing", "<unknown>"]
    described = ctl(fake_llorchd, "describe", "pools")
    clean(described)
    assert described.exit_code == 0
    demo, old, future, bare = described.stdout.split("\nName:")
    assert old.split("\n", 1)[1] == demo.split("\n", 1)[1]
    assert "Replicas:  <none>" in future.splitlines()
    assert "Events:  <none>" in bare.splitlines()
