"""The checked-in schema/ is what the models generate, and every shipped manifest validates against it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from llorch.resources.schema import SCHEMA_FILES, render

REPO = Path(__file__).resolve().parents[2]
# Settings files (`llorch.yaml`, `<name>.llorch.yaml`) and a compose file sit among the examples.
CONFIGS = sorted(REPO.glob("examples/**/*llorch.yaml"))
MANIFESTS = sorted(
    p
    for p in [*REPO.glob("manifests/*.yaml"), *REPO.glob("examples/**/*.yaml")]
    if p not in CONFIGS and p.name != "compose.yaml"
)


@pytest.mark.parametrize("filename", sorted(SCHEMA_FILES))
def test_checked_in_schema_matches_the_models(filename: str) -> None:
    checked_in = (REPO / "schema" / filename).read_text()
    assert checked_in == render(SCHEMA_FILES[filename]), f"schema/{filename} is stale: run `just schema`"


def test_there_are_manifests_to_check() -> None:
    assert any(p.parent.name == "manifests" for p in MANIFESTS)
    assert any("examples" in p.parts for p in MANIFESTS)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_manifests_validate_against_the_schema(path: Path) -> None:
    for doc in yaml.safe_load_all(path.read_text()):
        schema = json.loads((REPO / "schema" / f"{doc['kind'].lower()}.schema.json").read_text())
        jsonschema.validate(doc, schema)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_settings_validate_against_the_config_schema(path: Path) -> None:
    jsonschema.validate(
        yaml.safe_load(path.read_text()), json.loads((REPO / "schema" / "config.schema.json").read_text())
    )


def test_schema_rejects_unknown_fields() -> None:
    schema = json.loads((REPO / "schema" / "pool.schema.json").read_text())
    doc = {
        "apiVersion": "llorch.dev/v1",
        "kind": "Pool",
        "metadata": {"name": "x"},
        "spec": {"model": "m", "replica": 1},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)
