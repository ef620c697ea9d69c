"""/v1/manifests: the server side of `llorchctl apply` and `diff` (it writes into the watched folder)."""

from __future__ import annotations

import dataclasses

import falcon

from llorch.api.context import AppContext
from llorch.api.errors import RequestError
from llorch.resources.errors import ErrorCode

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


class ManifestsResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        content_type = (req.content_type or "").split(";", 1)[0].strip().lower()
        if content_type not in YAML_TYPES:
            raise RequestError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                f"send YAML ({YAML_TYPES[0]}), not {content_type or 'nothing'}",
            )
        try:
            text = req.bounded_stream.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestError(ErrorCode.INVALID_PARAMS, f"manifest is not UTF-8: {exc}") from exc
        source = req.get_param("source") or "<request>"
        dry_run = req.get_param_as_bool("dryRun") or False
        results = self._ctx.store.apply_text(text, source=source, dry_run=dry_run)
        if not dry_run:
            self._ctx.changed({r.key for r in results if r.action != "unchanged"})
            self._ctx.audit.record_each(
                "manifest.apply", [(r.key, f"{r.action} in {r.file}") for r in results]
            )
        resp.media = {"results": [dataclasses.asdict(r) for r in results]}
