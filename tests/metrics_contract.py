"""contracts/metrics.yaml against a scrape of GET /metrics, both ways: what the file lists is
exposed, what is exposed is listed, and types, help, units, labels and label values agree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
CONTRACT = REPO / "contracts" / "metrics.yaml"
OPENAPI = REPO / "contracts" / "openapi.yaml"
BASE_UNITS = ("seconds", "bytes", "ratio")
# Names prometheus_client's process, platform and GC collectors give their families.
STANDARD_PREFIXES = ("process_", "python_")
# Labels a histogram's samples add to the family's own.
HISTOGRAM_LABELS = {"le"}


@dataclass(frozen=True)
class Exposed:
    name: str  # as its samples are named: counters with _total
    type: str
    help: str
    samples: list[tuple[str, dict[str, str]]]


def contract() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CONTRACT.read_text())
    return loaded


def parse(text: str) -> dict[str, Exposed]:
    """Families of an exposition text, named as a query names them (a counter with _total)."""
    found: dict[str, Exposed] = {}
    for family in text_string_to_metric_families(text):
        name = family.name + ("_total" if family.type == "counter" else "")
        samples = [(s.name, dict(s.labels)) for s in family.samples]
        found[name] = Exposed(name, family.type, family.documentation, samples)
    return found


def route_templates() -> set[str]:
    """The paths of contracts/openapi.yaml, parameters as `{}` (names may differ from Falcon's)."""
    paths = yaml.safe_load(OPENAPI.read_text())["paths"]
    return {_template(path) for path in paths}


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def problems(text: str) -> list[str]:
    """Every way the scrape `text` and contracts/metrics.yaml disagree; empty when they agree."""
    spec = contract()
    shared: dict[str, dict[str, Any]] = spec["labels"]
    listed = {family["name"]: family for family in spec["families"]}
    exposed = parse(text)
    found = [f"exposed but not in {CONTRACT.name}: {name}" for name in sorted(set(exposed) - set(listed))]
    found += [f"in {CONTRACT.name} but not exposed: {name}" for name in sorted(set(listed) - set(exposed))]
    routes = route_templates()
    for name in sorted(set(exposed) & set(listed)):
        family, seen = listed[name], exposed[name]
        found += _naming(family)
        if family["type"] != seen.type:
            found.append(f"{name}: type {seen.type}, {CONTRACT.name} says {family['type']}")
        if family["help"] != seen.help:
            found.append(f"{name}: help {seen.help!r}, {CONTRACT.name} says {family['help']!r}")
        labels: dict[str, Any] = family["labels"]
        for sample, values in seen.samples:
            keys = set(values) - (HISTOGRAM_LABELS if seen.type == "histogram" else set())
            if keys != set(labels):
                found.append(f"{sample}: labels {sorted(keys)}, {CONTRACT.name} says {sorted(labels)}")
                continue
            for label in sorted(keys):
                rule = labels[label] if labels[label] is not None else shared.get(label)
                if rule is None:
                    found.append(f"{name}: label {label} has no spec in {CONTRACT.name}")
                elif not _allowed(rule, values[label]):
                    found.append(f"{sample}{{{label}={values[label]!r}}}: not allowed by {rule}")
                elif label == "route" and _template(values[label]) not in routes | {"unmatched"}:
                    found.append(f"{sample}: route {values[label]!r} is no path of {OPENAPI.name}")
    return found


def _allowed(rule: dict[str, Any], value: str) -> bool:
    if "values" in rule:
        return value in [str(v) for v in rule["values"]]
    return re.fullmatch(rule["pattern"], value) is not None


def _naming(family: dict[str, Any]) -> list[str]:
    """Prometheus' naming rules: a namespace, base units in the name, _total on counters only."""
    name, kind, unit = family["name"], family["type"], family["unit"]
    found = []
    if not name.startswith("llorch_") and not name.startswith(STANDARD_PREFIXES):
        found.append(f"{name}: not under the llorch_ namespace")
    if (kind == "counter") != name.endswith("_total"):
        found.append(f"{name}: a {kind} {'without' if kind == 'counter' else 'with'} _total")
    base = name.removesuffix("_total")
    if unit in BASE_UNITS and not base.endswith(f"_{unit}"):
        found.append(f"{name}: unit {unit} but the name does not end in _{unit}")
    if unit == "none" and base.endswith(tuple(f"_{u}" for u in BASE_UNITS)):
        found.append(f"{name}: named for a unit but {CONTRACT.name} gives it none")
    if re.search(r"_(ms|milliseconds|kb|mb|mib|gib|percent)(_|$)", name):
        found.append(f"{name}: not in a base unit")
    return found
