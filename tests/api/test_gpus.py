"""GET /v1/gpus over a simulated inventory (the NVML test double: there is no GPU here): each GPU's
VRAM as the inventory reads it now, and what each replica reserved on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import referencing

from llorch.api.app import create_app
from llorch.api.context import AppContext
from llorch.resources.status import GpuRef, PoolStatus, ReplicaStatus
from llorch.runtime.gpus import GIB, SimulatedInventory, simulated_home_box
from tests.api.appctx import app_context, close
from tests.api.test_openapi_contract import check, doc, registry

__all__ = ["doc", "registry"]  # the contract test's fixtures, used here

POOL = "apiVersion: llorch.dev/v1\nkind: Pool\nmetadata: {name: chat}\nspec: {model: m}\n"


@pytest.fixture
def box() -> SimulatedInventory:
    return simulated_home_box()


@pytest.fixture
def ctx(tmp_path: Path, box: SimulatedInventory) -> Iterator[AppContext]:
    ctx = app_context(tmp_path, tokens=("secret",), inventory=box)
    yield ctx
    close(ctx)


def get(ctx: AppContext, token: str | None = "secret") -> falcon.testing.Result:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return falcon.testing.TestClient(create_app(ctx)).simulate_get("/v1/gpus", headers=headers)


def test_each_gpu_with_its_vram_now_and_the_replicas_on_it(
    ctx: AppContext, box: SimulatedInventory, doc: dict[str, Any], registry: referencing.Registry[Any]
) -> None:
    (ctx.store.folder / "chat.yaml").write_text(POOL)
    ctx.store.load()
    split = ReplicaStatus(
        id="chat-0",
        index=0,
        revision="r1",
        phase="Ready",
        gpus=[GpuRef(index=0, uuid="u0", name="3090"), GpuRef(index=1, uuid="u1", name="3060")],
        vram_bytes=[6 * GIB, 3 * GIB],
    )
    ctx.db.put_status("Pool/chat", PoolStatus(replica_statuses=[split]))
    box.set_used(0, 7 * GIB)
    result = get(ctx)
    check(doc, registry, result, "/v1/gpus", "get")
    first, second = result.json["gpus"]
    assert (first["name"], first["total_bytes"], first["used_bytes"], first["free_bytes"]) == (
        "NVIDIA GeForce RTX 3090",
        24 * GIB,
        7 * GIB,
        17 * GIB,
    )
    assert first["reservations"] == [
        {"pool": "chat", "replica": "chat-0", "phase": "Ready", "reserved_bytes": 6 * GIB}
    ]
    assert second["used_bytes"] == 0 and second["reservations"][0]["reserved_bytes"] == 3 * GIB


def test_no_driver_is_an_empty_list(tmp_path: Path) -> None:
    ctx = app_context(tmp_path, tokens=("secret",), inventory=SimulatedInventory([]))
    try:
        assert get(ctx).json == {"gpus": []}
    finally:
        close(ctx)


def test_it_needs_a_token(ctx: AppContext) -> None:
    assert get(ctx, token=None).status_code == 401
    assert get(ctx, token="wrong").json["code"] == "BAD_TOKEN"
