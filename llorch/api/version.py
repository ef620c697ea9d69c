"""GET /version: which llorch answers, open like /healthz so a client can compare versions
(and say what is wrong) before it has the right token."""

from __future__ import annotations

import falcon

from llorch.resources.version import this_version


class VersionResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = this_version().model_dump(mode="json")
