"""Small values: ages, sizes, cells, places, GPU lists, whole objects as yaml/json."""

from __future__ import annotations

import json

import pytest
import yaml

from llorch.cli.render import values
from tests.cli.samples import MODEL, NOW, POOL


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


@pytest.mark.parametrize(("millis", "expected"), [(60_000, "60s"), (500, "0.5s"), (120_000, "120s")])
def test_millis_text(millis: int, expected: str) -> None:
    assert values.millis_text(millis) == expected
