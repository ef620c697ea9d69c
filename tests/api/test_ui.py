"""The web UI's files as llorchd serves them: from the package, with their media types and a strict
Content-Security-Policy, to anyone (they hold no data), and nothing they load from elsewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import falcon.testing
import pytest

from llorch.api.app import create_app
from llorch.api.ui import CONTENT_SECURITY_POLICY
from tests.api.appctx import app_context, close

WEBUI = Path(__file__).resolve().parents[2] / "llorch" / "api" / "webui"
FILES = sorted(p.name for p in WEBUI.iterdir())


@pytest.fixture
def client(tmp_path: Path) -> Iterator[falcon.testing.TestClient]:
    ctx = app_context(tmp_path, tokens=("secret",))
    yield falcon.testing.TestClient(create_app(ctx))
    close(ctx)


@pytest.mark.parametrize("name", FILES)
def test_every_file_is_served_without_a_token_with_its_type_and_policy(
    client: falcon.testing.TestClient, name: str
) -> None:
    result = client.simulate_get(f"/ui/{name}")
    assert result.status_code == 200, result.text
    assert result.content == (WEBUI / name).read_bytes()
    expected = {
        "html": "text/html; charset=utf-8",
        "js": "text/javascript; charset=utf-8",
        "css": "text/css; charset=utf-8",
        "svg": "image/svg+xml",
    }[name.rpartition(".")[2]]
    assert result.headers["Content-Type"] == expected
    assert result.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert result.headers["X-Content-Type-Options"] == "nosniff"


def test_the_policy_allows_this_server_only() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "connect-src", "img-src"):
        assert directives[name] == "'self'", name
    assert directives["frame-ancestors"] == "'none'"


def test_the_root_is_the_index_and_ui_redirects_to_it(client: falcon.testing.TestClient) -> None:
    index = client.simulate_get("/ui/")
    assert index.status_code == 200 and index.content == (WEBUI / "index.html").read_bytes()
    moved = client.simulate_get("/ui")
    assert (moved.status_code, moved.headers["Location"]) == (308, "/ui/")
    assert client.simulate_head("/ui/app.js").status_code == 200


@pytest.mark.parametrize(
    "path", ["/ui/nope.js", "/ui/../v1/pools", "/ui/webui/app.js", "/ui/%2e%2e/llorch.yaml"]
)
def test_anything_else_under_ui_is_not_found(client: falcon.testing.TestClient, path: str) -> None:
    result = client.simulate_get(path)
    assert (result.status_code, result.json["code"]) == (404, "NOT_FOUND")


def test_only_reads_and_only_under_ui(client: falcon.testing.TestClient) -> None:
    posted = client.simulate_post("/ui/index.html")
    assert posted.status_code == 405 and posted.headers["Allow"] == "GET, HEAD"
    assert client.simulate_get("/uix").json["code"] == "MISSING_TOKEN"
    assert client.simulate_get("/v1/pools").json["code"] == "MISSING_TOKEN", "the API still needs the token"


def test_everything_the_page_loads_is_one_of_its_own_files() -> None:
    """No CDN, no other host: every src, href and module import names a packaged file, and no
    inline script or style exists for the policy to have to allow."""
    html = (WEBUI / "index.html").read_text()
    assert "<style" not in html and " style=" not in html
    assert re.findall(r"<script[^>]*>\s*[^<\s]", html) == [], "no inline script"
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    for source in (WEBUI / n for n in FILES if n.endswith(".js")):
        loaded += re.findall(r'from "([^"]+)"', source.read_text())
        assert "innerHTML" not in source.read_text(), f"{source.name}: text goes in as text"
    assert loaded and all(url.startswith("/ui/") and url[4:] in FILES for url in loaded), loaded
