"""The web UI at /ui/: static files shipped in the package (llorch/api/webui), no build step and
nothing loaded from anywhere else. The files themselves need no token: they hold no data. Every
answer they show comes from the API, called by the page with the token the person enters.

A Content-Security-Policy limits the page to this server's own scripts, styles and API, so that
text from the API (a prompt, an event message, an artifact) can never run as code."""

from __future__ import annotations

import re
from importlib import resources

import falcon

PREFIX = "/ui"
# The page loads its modules and styles from here, talks only to this server, and no other
# site may frame it.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    # An upgraded llorchd ships new files: the browser asks again rather than mixing versions.
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_UNDER_PREFIX = re.compile(rf"{PREFIX}(?:/|$)")


def is_ui_path(path: str) -> bool:
    return _UNDER_PREFIX.match(path) is not None


def _packaged() -> dict[str, tuple[bytes, str]]:
    """Every file of the UI by name, read once: a handful of small files, and a name a request
    makes up never reaches the file system."""
    folder = resources.files("llorch.api") / "webui"
    return {
        item.name: (item.read_bytes(), MEDIA_TYPES[suffix])
        for item in folder.iterdir()
        if item.is_file() and (suffix := "." + item.name.rpartition(".")[2]) in MEDIA_TYPES
    }


class UiFiles:
    """A sink for everything under /ui: `/ui` redirects to `/ui/`, which is index.html."""

    def __init__(self) -> None:
        self._files = _packaged()

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: str) -> None:
        if req.method not in ("GET", "HEAD"):
            raise falcon.HTTPMethodNotAllowed(["GET", "HEAD"])
        if req.path == PREFIX:
            resp.status = falcon.HTTP_308
            resp.location = f"{PREFIX}/"
            return
        name = req.path[len(PREFIX) + 1 :] or "index.html"
        found = self._files.get(name)
        if found is None:
            raise falcon.HTTPNotFound(description=f"the web UI has no file {name!r}")
        resp.data, resp.content_type = found
        resp.set_headers(HEADERS)


def routes(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_sink(UiFiles(), prefix=_UNDER_PREFIX)
