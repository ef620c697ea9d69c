"""schemathesis against a real llorchd serving the demo pool: contracts/openapi.yaml describes what
the server does. No request makes a 5xx (`not_a_server_error`); every request the document calls
valid is accepted, or refused only for what the document cannot know, such as a pool or task id
nobody declared, which is 404 (`positive_data_acceptance`, with its documented default statuses);
every method a path does not serve answers 405 with `Allow` (`unsupported_method`).

One pytest item per operation. The run is bounded and repeatable: at most MAX_EXAMPLES fuzzed cases
per operation on top of the examples and coverage phases, derandomized, with a fixed seed, and no
example database. The module's fixture prints how many cases ran and how long they took (`-s`).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import psutil
import pytest
import schemathesis

from tests.e2e.conftest import REPO, Llorchd, start_llorchd, stop_llorchd, wait_for

pytestmark = [pytest.mark.engine, pytest.mark.slow]

DOC = REPO / "contracts" / "openapi.yaml"
SEED = 8
MAX_EXAMPLES = 50
RUN: dict[str, Any] = {"cases": 0, "parent": None, "folder": None}

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "request-timeout": 30,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "checks": {
            "enabled": False,
            "not_a_server_error": {"enabled": True},
            "positive_data_acceptance": {"enabled": True},
            "unsupported_method": {"enabled": True},
        },
        "operations": [
            # A generated manifest that validates would be written into the watched folder, and a
            # generated Pool or Policy would change what the rest of the run talks to (a Policy
            # selects every pool by default): the run applies manifests as dry runs only.
            {"include-name": "POST /v1/manifests", "parameters": {"dryRun": True}},
            # Likewise a catalog entry: written, its generated URL would be downloaded from
            # whatever host the fuzzer made up, and nothing but loopback may ever be reached.
            {"include-name": "POST /v1/catalog/models", "parameters": {"dryRun": True}},
            # A watch is a stream that lasts until its client leaves: the lists are read as lists.
            *(
                {"include-name": f"GET {path}", "parameters": {"watch": False}}
                for path in ("/v1/pools", "/v1/catalog/models", "/v1/policies", "/v1/events")
            ),
            # So is a log followed: it is read as the log so far.
            {"include-name": "GET /v1/pools/{name}/logs", "parameters": {"follow": False}},
        ],
    }
)
schema = schemathesis.openapi.from_path(DOC, config=CONFIG)


def _positive(case: schemathesis.Case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


@schema.hook("filter_case").apply_to(name="POST /v1/tasks")
def _no_values_compared(ctx: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    """The rules of a task body the document states in prose: two compare values, which JSON Schema
    cannot state (`max_tokens` within `ctx`, and in pin mode `pool` equal to
    `placement.pin_pool_id`), and `json_schema` must be a JSON Schema. Valid cases that break one
    are not generated."""
    body = case.body
    if not _positive(case) or not isinstance(body, dict):
        return True
    context = body.get("ctx")
    if context is not None and body.get("max_tokens", 128) > context:
        return False
    placement = body.get("placement") or {}
    pool, pinned = body.get("pool"), placement.get("pin_pool_id")
    if placement.get("mode") == "pin" and None not in (pool, pinned) and pool != pinned:
        return False
    return _is_a_json_schema(body.get("json_schema"))


def _is_a_json_schema(value: Any) -> bool:
    """`json_schema` must be a valid JSON Schema, which the document says in prose: its type is
    only "an object", since the meta-schema it would reference is not fetched offline."""
    if not isinstance(value, dict):
        return True
    try:
        jsonschema.validators.validator_for(value).check_schema(value)
    except jsonschema.SchemaError:
        return False
    return True


@schema.hook("map_case").apply_to(name="POST /v1/artifacts")
def _parent_is_stored(ctx: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """A parent must be an artifact already stored, which the document cannot know (as it cannot
    know which pools exist); unlike an unknown pool that is a 400, so valid cases name the artifact
    the fixture stored."""
    if _positive(case) and isinstance(case.body, dict) and case.body.get("parent") is not None:
        case.body["parent"] = RUN["parent"]
    return case


@pytest.fixture(scope="module")
def daemon(
    tmp_path_factory: pytest.TempPathFactory, llama_server_bin: Path, demo_model: Path
) -> Iterator[Llorchd]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    manifests = tmp / "manifests"
    manifests.mkdir()
    llorchd = start_llorchd(tmp, manifests, tmp / "state")
    pids: set[int] = set()
    try:
        llorchd.ctl("apply", "-f", str(REPO / "manifests" / "model-demo.yaml"))
        llorchd.write_pool(replicas=1)
        wait_for("the demo pool to be Ready", lambda: llorchd.ready_replicas() == 1, timeout=60)
        stored = llorchd.http.post(llorchd.url + "/v1/artifacts", json={"kind": "plan", "content": "1. run"})
        RUN["parent"] = stored.json()["id"]
        RUN["folder"] = folder(manifests)
        pids = llorchd.engine_pids()
        started = time.monotonic()
        yield llorchd
        print(f"\nschemathesis: {RUN['cases']} cases in {time.monotonic() - started:.1f} s")
    finally:
        pids |= llorchd.engine_pids()
        stop_llorchd(llorchd)
        for pid in pids:
            if psutil.pid_exists(pid):
                os.killpg(pid, signal.SIGKILL)
                raise AssertionError(f"llama-server pid {pid} outlived llorchd")


def folder(path: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(path.iterdir())}


@schema.parametrize()
def test_the_server_keeps_the_document(case: schemathesis.Case, daemon: Llorchd) -> None:
    RUN["cases"] += 1
    case.call_and_validate(base_url=daemon.url)


def test_the_run_left_the_demo_pool_alone(daemon: Llorchd) -> None:
    """After every operation above: nothing was written into the folder, the pool still serves."""
    assert RUN["cases"] > 0, "the operations above did not run first"
    assert folder(daemon.manifests) == RUN["folder"]
    assert daemon.ready_replicas() == 1
    resp = daemon.http.post(daemon.url + "/v1/tasks", json={"pool": "demo", "prompt": "hi", "max_tokens": 4})
    assert resp.status_code == 202, resp.text
