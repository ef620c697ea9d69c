"""A method a route does not serve: 405 in the envelope, with the `Allow` RFC 9110 requires."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon
import falcon.testing
import pytest
from prometheus_client import CollectorRegistry

from llorch.api.app import create_app
from llorch.api.relay.shapes import Dialect, dialect_of
from tests.api.appctx import app_context

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[falcon.App[falcon.Request, falcon.Response]]:
    ctx = app_context(tmp_path)
    yield create_app(ctx, metrics=CollectorRegistry())
    ctx.tasks.stop()
    ctx.db.close()


def served(app: falcon.App[falcon.Request, falcon.Response]) -> dict[str, set[str]]:
    """URI template → the methods its resource itself defines (not Falcon's default responders)."""
    routes: dict[str, set[str]] = {}

    def walk(nodes: list[Any]) -> None:
        for node in nodes:
            if node.resource is not None:
                routes[node.uri_template] = {
                    method
                    for method, responder in node.method_map.items()
                    if getattr(responder, "__self__", None) is node.resource
                }
            walk(node.children)

    walk(app._router._roots)
    return routes


def concrete(template: str) -> str:
    return "/".join("x" if part.startswith("{") else part for part in template.split("/"))


def test_every_405_names_the_methods_the_route_serves(
    app: falcon.App[falcon.Request, falcon.Response],
) -> None:
    client = falcon.testing.TestClient(app)
    routes = served(app)
    assert "/v1/tasks" in routes and "/openai/v1/chat/completions" in routes, "walked nothing useful"
    checked = 0
    for template, methods in sorted(routes.items()):
        expected = sorted(methods | {"OPTIONS"})
        for method in METHODS:
            if method in methods:
                continue
            resp = client.simulate_request(method, concrete(template), headers={"X-Correlation-Id": "c-9"})
            where = f"{method} {template}"
            assert resp.status_code == 405, where
            assert resp.headers["X-Correlation-Id"] == "c-9", where
            dialect = dialect_of(concrete(template))
            if dialect is Dialect.OPENAI:
                assert resp.json["error"]["code"] == "method_not_allowed", where
            elif dialect is Dialect.ANTHROPIC:
                assert resp.json["error"]["type"] == "invalid_request_error", where
            else:
                assert resp.json["code"] == "METHOD_NOT_ALLOWED" and resp.json["correlation_id"] == "c-9", (
                    where
                )
            allow = sorted(m.strip() for m in resp.headers.get("Allow", "").split(","))
            assert allow == expected, where
            checked += 1
    assert checked > 60


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/openai/v1/completions", "/v1/models"])
def test_openai_routes_carry_allow_too(app: falcon.App[falcon.Request, falcon.Response], path: str) -> None:
    resp = falcon.testing.TestClient(app).simulate_put(path)
    assert resp.status_code == 405 and resp.headers["Allow"]


def test_options_lists_the_same_methods(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    resp = falcon.testing.TestClient(app).simulate_options("/v1/pools/demo")
    assert resp.status_code == 200
    assert sorted(m.strip() for m in resp.headers["Allow"].split(",")) == ["DELETE", "GET"]


def test_other_errors_gain_no_allow(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    resp = falcon.testing.TestClient(app).simulate_get("/v1/nothing-here")
    assert resp.status_code == 404 and "Allow" not in resp.headers
