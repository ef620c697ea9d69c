"""Small values: ages, sizes, cells, places, GPU lists, whole objects as yaml/json."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import yaml

from llorch.cli.render import values
from llorch.resources.status import ModelStatus, PoolStatus
from tests.cli.samples import FUTURE_POOL, MODEL, NOW, OLDER_POOL, POOL, iso


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
    assert values.human_duration(seconds) == expected


def test_age_accepts_unix_seconds_and_iso_text() -> None:
    assert values.age(NOW - 125, NOW) == "2m"
    assert values.age("2023-11-14T22:13:20+00:00", NOW) == "0s"
    assert values.age(None, NOW) == "<unknown>"
    assert values.age("yesterday", NOW) == "<unknown>"


@pytest.fixture
def local_zone_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_zone_not_utc")
def test_age_of_rfc3339_text_and_datetimes() -> None:
    assert iso(NOW - 125) == "2023-11-14T22:11:15Z"
    assert values.age("2023-11-14T22:11:15Z", NOW) == "2m"
    assert values.age(datetime.fromtimestamp(NOW - 2 * 3600, UTC), NOW) == "2h"
    # No zone is UTC, as on the wire, not the local zone.
    assert values.age("2023-11-14T17:13:20", NOW) == "5h"
    assert values.age(datetime(2023, 11, 14, 17, 13, 20), NOW) == "5h"


def test_pool_status_is_typed_and_the_same_from_an_older_llorchd() -> None:
    status = values.pool_status(POOL)
    assert isinstance(status, PoolStatus)
    assert status.ready_replicas == 1 and status.slots_busy == 1
    assert [r.revision for r in status.replica_statuses] == ["7c1e9a20", "7c1e9a20"]
    assert values.pool_status(OLDER_POOL) == status
    assert isinstance(values.model_status(MODEL), ModelStatus)
    assert [e.count for e in values.events_of(POOL)] == [1, 5]
    assert values.events_of(OLDER_POOL) == values.events_of(POOL)


def test_a_status_that_does_not_validate_keeps_the_fields_that_do() -> None:
    status = values.pool_status(FUTURE_POOL)
    assert (status.observed_generation, status.ready_replicas, status.slots_total) == (3, 1, 4)
    assert status.draining is False and status.rollout is None
    assert status.conditions == [] and status.replica_statuses == []
    assert values.was_sent(status, "replicas") and not values.was_sent(status, "draining")
    assert [e.reason for e in values.events_of(FUTURE_POOL)] == ["Started"]


@pytest.mark.parametrize("moment", [1e20, float("inf"), float("nan"), 10**400, "soon", True])
def test_a_time_that_cannot_be_read_reads_as_not_sent(moment: object) -> None:
    status = values.pool_status({"status": {"draining": True, "drainDeadline": moment, "readyReplicas": 1}})
    assert (status.draining, status.drain_deadline, status.ready_replicas) == (True, None, 1)


@pytest.mark.parametrize("status", [None, "pending", [1, 2], 3, {}])
def test_a_status_that_is_not_an_object_reads_as_empty(status: object) -> None:
    assert values.pool_status({"status": status}) == PoolStatus()
    assert values.model_status({"status": status}) == ModelStatus()
    assert values.pool_status({}) == PoolStatus()
    assert values.events_of({"events": status}) == []


def test_conditions_of_leaves_out_what_does_not_validate() -> None:
    conditions = values.conditions_of(
        [
            {"type": "Bound", "status": "True", "reason": "Selected", "lastTransitionTime": iso(NOW)},
            {"type": "Bound", "status": "Partly"},
            "Ready",
        ]
    )
    assert [(c.type, c.status) for c in conditions] == [("Bound", "True")]


@pytest.mark.parametrize(
    ("size", "expected"),
    [(512, "512B"), (2048, "2.0KiB"), (18_035_000, "17.2MiB"), (4_368_439_584, "4.1GiB"), (None, "<none>")],
)
def test_human_size(size: int | None, expected: str) -> None:
    assert values.human_size(size) == expected


def test_located_leaves_out_what_is_unknown() -> None:
    assert values.located("a.yaml", 3, "spec.slots", "too big") == "a.yaml:3: spec.slots: too big"
    assert values.located("a.yaml", None, None, "not YAML") == "a.yaml: not YAML"


def test_yaml_and_json_are_the_whole_object() -> None:
    assert yaml.safe_load(values.to_yaml(POOL)) == POOL
    assert json.loads(values.to_json(POOL)) == POOL
    assert values.to_yaml(MODEL).index("apiVersion") == 0  # kubectl's field order, not sorted


def test_gpu_list() -> None:
    gpus = [{"index": 0, "name": "NVIDIA H100 80GB HBM3"}, {"index": 1, "name": "AMD Radeon RX 7900 XTX"}]
    assert values.gpu_list(gpus) == "0:H100 80GB HBM3,1:AMD Radeon RX 7900 XTX"
    assert values.gpu_list([{"index": 2}]) == "2"
    assert values.gpu_list([0, 1]) == "0,1"
    assert values.gpu_list([]) == values.gpu_list(None) == "cpu"
    typed = values.pool_status(
        {
            "status": {
                "replicaStatuses": [
                    {
                        "id": "a-0",
                        "index": 0,
                        "revision": "r",
                        "phase": "Ready",
                        "gpus": [{"index": 1, "uuid": "GPU-b", "name": "NVIDIA GeForce RTX 3060"}],
                    }
                ]
            }
        }
    )
    assert values.gpu_list(typed.replica_statuses[0].gpus) == "1:RTX 3060"


@pytest.mark.parametrize(("millis", "expected"), [(60_000, "60s"), (500, "0.5s"), (120_000, "120s")])
def test_millis_text(millis: int, expected: str) -> None:
    assert values.millis_text(millis) == expected
