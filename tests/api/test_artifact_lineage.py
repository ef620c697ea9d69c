"""GET /v1/artifacts/{id}/lineage and /diff (what the web UI's artifact browser shows), through the
Falcon app with a real sqlite and artifact folder, each answer held to contracts/openapi.yaml."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import referencing

from llorch.api.app import create_app
from tests.api.appctx import app_context, close
from tests.api.test_openapi_contract import check, doc, registry

__all__ = ["doc", "registry"]  # the contract test's fixtures, used here

LINEAGE = "/v1/artifacts/{artifact_id}/lineage"
DIFF = "/v1/artifacts/{artifact_id}/diff"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[falcon.testing.TestClient]:
    ctx = app_context(tmp_path)
    yield falcon.testing.TestClient(create_app(ctx))
    close(ctx)


def put(client: falcon.testing.TestClient, content: str, parent: str | None = None) -> str:
    body: dict[str, Any] = {"kind": "plan", "content": content}
    if parent is not None:
        body["parent"] = parent
    result = client.simulate_post("/v1/artifacts", json=body)
    assert result.status_code == 201, result.text
    return str(result.json["id"])


def test_lineage_walks_up_to_the_root_and_lists_the_children(
    client: falcon.testing.TestClient, doc: dict[str, Any], registry: referencing.Registry[Any]
) -> None:
    root = put(client, "1. plan\n")
    middle = put(client, "1. plan\n2. more\n", parent=root)
    leaves = [put(client, f"1. plan\n2. more\n3. {n}\n", parent=middle) for n in ("a", "b")]
    result = client.simulate_get(f"/v1/artifacts/{middle}/lineage")
    check(doc, registry, result, LINEAGE, "get")
    assert result.json["id"] == middle
    assert [a["id"] for a in result.json["ancestors"]] == [root]
    assert [c["id"] for c in result.json["children"]] == leaves
    assert "content" not in result.json["children"][0]
    leaf = client.simulate_get(f"/v1/artifacts/{leaves[0]}/lineage").json
    assert [a["id"] for a in leaf["ancestors"]] == [middle, root] and leaf["children"] == []


def test_the_diff_is_against_the_parent_by_default(
    client: falcon.testing.TestClient, doc: dict[str, Any], registry: referencing.Registry[Any]
) -> None:
    old = put(client, "1. build\n2. test\n")
    new = put(client, "1. build\n2. test\n3. ship", parent=old)
    result = client.simulate_get(f"/v1/artifacts/{new}/diff")
    check(doc, registry, result, DIFF, "get")
    assert (result.json["base"], result.json["id"], result.json["same"]) == (old, new, False)
    assert result.json["diff"] == (
        f"--- a/{old[:12]} (plan)\n+++ b/{new[:12]} (plan)\n@@ -1,2 +1,3 @@\n"
        " 1. build\n 2. test\n+3. ship\n\\ No newline at end of file\n"
    )
    backwards = client.simulate_get(f"/v1/artifacts/{old}/diff", params={"base": new})
    assert backwards.json["diff"].splitlines()[-2] == "-3. ship"
    same = client.simulate_get(f"/v1/artifacts/{old}/diff", params={"base": old})
    assert (same.json["same"], same.json["diff"]) == (True, "")


@pytest.mark.parametrize(
    ("path", "params", "status", "says"),
    [
        ("{root}/diff", {}, 400, "has no parent; name what to compare it with in ?base="),
        ("{root}/diff", {"base": "not-an-id"}, 400, "'not-an-id' is not an artifact id"),
        ("{root}/diff", {"base": "0" * 64}, 404, "no artifact"),
        ("{zero}/diff", {}, 404, "no artifact"),
        ("{zero}/lineage", {}, 404, "no artifact"),
        ("NOPE/lineage", {}, 400, "'NOPE' is not an artifact id"),
    ],
)
def test_refusals_name_the_artifact(
    client: falcon.testing.TestClient,
    doc: dict[str, Any],
    registry: referencing.Registry[Any],
    path: str,
    params: dict[str, str],
    status: int,
    says: str,
) -> None:
    root = put(client, "alone\n")
    result = client.simulate_get(
        "/v1/artifacts/" + path.format(root=root, zero="0" * 64), params=params or None
    )
    assert result.status_code == status, result.text
    assert says in result.json["message"]
    check(doc, registry, result, DIFF if path.endswith("diff") else LINEAGE, "get")
