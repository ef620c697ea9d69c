"""Native tasks with an output constraint, through a real llorchd to a real llama-server: a task's
`json_schema` gives text valid against it, and `llorchctl run --grammar` text the grammar derives.
The demo model's weights are random, so valid output is the engine's constraint at work."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.e2e.conftest import REPO, Llorchd, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.slow]

SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"enum": ["yes", "no"]},
        "n": {"type": "integer", "minimum": 0, "maximum": 9},
    },
    "required": ["answer", "n"],
    "additionalProperties": False,
}
GRAMMAR = 'root ::= ("yes" | "no") "." [0-9]'


def ready_demo(llorchd: Llorchd) -> None:
    llorchd.ctl("apply", "-f", str(REPO / "manifests" / "model-demo.yaml"))
    llorchd.write_pool(replicas=1)
    wait_for("a ready replica", lambda: llorchd.ready_replicas() == 1, timeout=60)


def text_of(frames: list[tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    assert [e for e, _ in frames if e == "error"] == [], frames
    end = next(d for e, d in frames if e == "end")
    return "".join(d["t"] for e, d in frames if e == "token"), end


def test_a_task_with_a_json_schema_gives_json_valid_against_it(llorchd: Llorchd) -> None:
    ready_demo(llorchd)
    body = {"pool": "demo", "prompt": "Answer in JSON:", "max_tokens": 200, "seed": 5, "temperature": 0}
    text, end = text_of(llorchd.stream({**body, "json_schema": SCHEMA}))
    jsonschema.validate(json.loads(text), SCHEMA)
    assert end["finish_reason"] == "stop", "the schema's grammar ended the output, not max_tokens"
    free, _ = text_of(llorchd.stream(body))
    with pytest.raises(ValueError):
        json.loads(free)  # the same task without the schema: the random model writes no JSON


def test_llorchctl_run_with_a_grammar_file_prints_what_the_grammar_derives(
    llorchd: Llorchd, tmp_path: Path
) -> None:
    ready_demo(llorchd)
    grammar = tmp_path / "answer.gbnf"
    grammar.write_text(GRAMMAR + "\n")
    run = llorchd.ctl(
        "run", "demo", "Yes or no?", "--grammar", str(grammar), "--seed", "5", "--temperature", "0",
        "--max-tokens", "32", "--no-stream-summary",
    )  # fmt: skip
    assert re.fullmatch(r"(yes|no)\.[0-9]", run.stdout), run.stdout
    schema = tmp_path / "answer.json"
    schema.write_text(json.dumps(SCHEMA))
    run = llorchd.ctl(
        "run", "demo", "JSON:", "--json-schema", str(schema), "--max-tokens", "200", "--no-stream-summary"
    )
    jsonschema.validate(json.loads(run.stdout), SCHEMA)
