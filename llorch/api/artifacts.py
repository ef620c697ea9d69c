"""/v1/artifacts: text that coding agents keep (plans, summaries, diffs, traces) and refer to by id."""

from __future__ import annotations

from typing import Annotated, Any

import falcon
from pydantic import BaseModel, ConfigDict, Field

from llorch.api.context import AppContext
from llorch.api.errors import RequestError
from llorch.api.pool_actions import read_body
from llorch.api.tasks import read_json
from llorch.resources import ARTIFACT_KINDS, ArtifactKind, ServerConfig, textdiff
from llorch.resources.errors import ErrorCode
from llorch.store.artifacts import DEFAULT_LIST_LIMIT, is_artifact_id

MAX_LIST_LIMIT = 1000

# JSON writes a content byte as at most 6 characters (`\u0001`), and the rest of the body gets
# what any request gets.
_JSON_ESCAPE_FACTOR = 6


def body_limit(config: ServerConfig) -> int:
    """The largest POST /v1/artifacts body that can carry content of `artifacts.maxBytes`."""
    return _JSON_ESCAPE_FACTOR * config.artifacts.max_bytes + config.server.max_body_bytes


Tag = Annotated[str, Field(min_length=1, max_length=128)]


class ArtifactRequest(BaseModel):
    """The body of POST /v1/artifacts; names follow the wire contract (snake_case)."""

    model_config = ConfigDict(extra="forbid")

    kind: ArtifactKind
    content: str
    tags: list[Tag] = Field(default_factory=list)
    parent: str | None = Field(
        default=None,
        description="The id of a stored artifact this one derives from (any other value is refused).",
        json_schema_extra={"pattern": "^[0-9a-f]{64}$"},
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class ArtifactsResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = ArtifactRequest.model_validate(read_json(req))
        record, created = self._ctx.artifacts.put(
            body.kind, body.content, tags=body.tags, parent=body.parent, metadata=body.metadata
        )
        self._ctx.audit.record(
            "artifact.put", f"Artifact/{record.id}", reason="created" if created else "known"
        )
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.location = f"/v1/artifacts/{record.id}"
        resp.media = record.to_wire()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        kind = req.get_param("kind")
        if kind is not None and kind not in ARTIFACT_KINDS:
            raise RequestError(
                ErrorCode.INVALID_PARAMS, f"kind {kind!r} is not one of {', '.join(ARTIFACT_KINDS)}"
            )
        limit = req.get_param_as_int(
            "limit", min_value=1, max_value=MAX_LIST_LIMIT, default=DEFAULT_LIST_LIMIT
        )
        records = self._ctx.artifacts.find(kind=kind, tag=req.get_param("tag"), limit=limit)
        resp.media = {"items": [record.to_wire() for record in records]}


def _not_an_id(value: str, param: str = "artifact_id") -> RequestError:
    return RequestError(
        ErrorCode.INVALID_PARAMS,
        f"{value!r} is not an artifact id (64 lowercase hex characters, the sha256 of the content)",
        param=param,
    )


def _checked(value: str, param: str = "artifact_id") -> str:
    """`value`, once it is an artifact id. Checked before the store is asked: an id is never a
    path of any other shape."""
    if not is_artifact_id(value):
        raise _not_an_id(value, param)
    return value


class ArtifactResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, artifact_id: str) -> None:
        record, content = self._ctx.artifacts.read(_checked(artifact_id))
        resp.media = record.to_wire() | {"content": content}


class ArtifactLineageResource:
    """What an artifact derives from and what derives from it, for walking a plan's revisions."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, artifact_id: str) -> None:
        ancestors, children = self._ctx.artifacts.lineage(_checked(artifact_id))
        resp.media = {
            "id": artifact_id,
            "ancestors": [record.to_wire() for record in ancestors],
            "children": [record.to_wire() for record in children],
        }


class ArtifactDiffResource:
    """The unified diff from `?base=` (by default the artifact's parent) to the artifact, as
    `llorchctl artifact diff BASE ID` prints it."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, artifact_id: str) -> None:
        new, new_text = self._ctx.artifacts.read(_checked(artifact_id))
        base_id = req.get_param("base") or new.parent
        if base_id is None:
            raise RequestError(
                ErrorCode.INVALID_PARAMS,
                f"artifact {artifact_id} has no parent; name what to compare it with in ?base=",
                param="base",
            )
        old, old_text = self._ctx.artifacts.read(_checked(base_id, "base"))
        text = textdiff.unified(
            old_text,
            new_text,
            from_label=f"a/{old.id[:12]} ({old.kind})",
            to_label=f"b/{new.id[:12]} ({new.kind})",
        )
        resp.media = {"base": old.id, "id": new.id, "same": not text, "diff": text}


def not_an_artifact(req: falcon.Request, resp: falcon.Response, **_: str) -> None:
    """Whatever falls under /v1/artifacts/ without being one id segment (`../`, `a/b`): refused
    like any id that is not one, rather than left to the router's 404."""
    raise _not_an_id(req.path.removeprefix("/v1/artifacts/"))


class GcRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = Field(default=False, description="Say what would go; remove nothing.")


class ArtifactRetentionResource:
    """Apply `artifacts.retention` now (llorchd also applies it periodically)."""

    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = GcRequest.model_validate(read_body(req))
        removed = self._ctx.artifacts.collect(dry_run=body.dry_run)
        resp.media = {
            "dry_run": body.dry_run,
            "removed": [record.to_wire() for record in removed],
            "freed_bytes": sum(record.size_bytes for record in removed),
        }


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/artifacts", ArtifactsResource(ctx))
    app.add_route("/v1/artifacts/{artifact_id}", ArtifactResource(ctx))
    app.add_route("/v1/artifacts/{artifact_id}/lineage", ArtifactLineageResource(ctx))
    app.add_route("/v1/artifacts/{artifact_id}/diff", ArtifactDiffResource(ctx))
    app.add_sink(not_an_artifact, prefix="/v1/artifacts/")
    app.add_route("/v1/retention/artifacts", ArtifactRetentionResource(ctx))
