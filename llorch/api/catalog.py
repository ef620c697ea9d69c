"""/v1/catalog/models: the Model objects, created, deleted, verified and retired over HTTP.

Desired state stays in the user's files: a created Model is a manifest written into the watched
folder exactly as `apply` writes one, and a state change edits the `lifecycle` of the Model's own
document in place (store/yaml_edit.py), touching nothing else in the file. What is not desired
state (a verify request, how long a retirement lets running tasks finish) lives in sqlite.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Annotated, Any

import falcon
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llorch.api.context import AppContext
from llorch.api.objects import ObjectListResource, ObjectResource, object_view
from llorch.api.pool_actions import DEFAULT_DRAIN_DEADLINE_MS, read_body
from llorch.api.tasks import read_json
from llorch.resources import API_VERSION, Lifecycle, Model, ModelSource, Pool
from llorch.resources.meta import DnsLabel
from llorch.resources.model import Digest, TrustPolicy
from llorch.store.yaml_edit import set_scalar

TAGS_ANNOTATION = "llorch.dev/tags"
"""Where a catalog entry's tags are kept in its Model (comma-separated)."""

Tag = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*$")]


def _one_source_schema(schema: dict[str, Any]) -> None:
    """`_one_source` in JSON Schema, so that the document calls valid only what the server takes."""
    schema["oneOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}}
        for name in ("source_url", "source")
    ]


class CatalogModelRequest(BaseModel):
    """The body of POST /v1/catalog/models; names follow the wire contract (snake_case)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_one_source_schema)

    id: DnsLabel = Field(description="The Model's metadata.name.")
    source_url: str | None = Field(
        default=None, pattern=r"^https?://", description="http(s) URL of the weights (spec.source.url)."
    )
    source: ModelSource | None = Field(
        default=None, description="Any Model source (path, url, huggingface, builtin) instead of source_url."
    )
    digest: Digest | None = Field(default=None, description="sha256:<hex> the weights must hash to.")
    format: str = Field(default="gguf", pattern="^(gguf|safetensors)$")
    tags: list[Tag] = Field(default_factory=list, description=f"Kept in the {TAGS_ANNOTATION} annotation.")
    signatures: list[str] = Field(
        default_factory=list,
        max_length=1,
        description="The detached signature (path or URL) as spec.signature; a Model has at most one.",
    )
    sbom: str | None = Field(default=None, description="CycloneDX or SPDX JSON (path or URL).")
    trust_policy: TrustPolicy | None = Field(
        default=None, description="strict: this Model runs only when its signature verifies."
    )

    @model_validator(mode="after")
    def _one_source(self) -> CatalogModelRequest:
        if (self.source_url is None) == (self.source is None):
            raise ValueError("give exactly one of source_url and source")
        return self

    def manifest(self) -> dict[str, Any]:
        source = self.source.to_wire() if self.source is not None else {"url": self.source_url}
        spec: dict[str, Any] = {"source": source, "format": self.format}
        optional = {
            "digest": self.digest,
            "signature": self.signatures[0] if self.signatures else None,
            "sbom": self.sbom,
            "trustPolicy": self.trust_policy.value if self.trust_policy is not None else None,
        }
        spec.update({key: value for key, value in optional.items() if value is not None})
        metadata: dict[str, Any] = {"name": self.id}
        if self.tags:
            metadata["annotations"] = {TAGS_ANNOTATION: ",".join(dict.fromkeys(self.tags))}
        return {"apiVersion": API_VERSION, "kind": "Model", "metadata": metadata, "spec": spec}


class StateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Lifecycle
    deadline_ms: int = Field(
        default=DEFAULT_DRAIN_DEADLINE_MS,
        ge=0,
        le=86_400_000,
        description="Retired: how long running tasks of its pools may finish (then: POOL_DRAINED).",
    )


def _model(ctx: AppContext, name: str) -> Model:
    entry = ctx.store.get(f"Model/{name}")
    if entry is None or not isinstance(entry.obj, Model):
        raise falcon.HTTPNotFound(description=f"no Model/{name}")
    return entry.obj


class CatalogModelsResource(ObjectListResource):
    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx, "Model")

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """With `?dryRun=true` (as apply's), what would be written and nothing more: no file, and so
        no download."""
        body = CatalogModelRequest.model_validate(read_json(req))
        dry_run = req.get_param_as_bool("dryRun") or False
        manifest = body.manifest()
        text = yaml.safe_dump(manifest, sort_keys=False)
        (result,) = self._ctx.store.apply_text(text, source="POST /v1/catalog/models", dry_run=dry_run)
        resp.location = f"/v1/catalog/models/{body.id}"
        if dry_run:
            would_be = Model.model_validate(manifest).to_wire()
            view = {**would_be, "source": {"file": result.file, "line": 1}, "status": {}, "errors": []}
            resp.media = {**dataclasses.asdict(result), "model": view}
            return
        self._ctx.changed({result.key})
        self._ctx.audit.record("catalog.put", result.key, reason=f"{result.action} in {result.file}")
        entry = self._ctx.store.get(result.key)
        assert entry is not None, "apply_text has just written it"
        resp.status = falcon.HTTP_201 if result.action == "created" else falcon.HTTP_200
        resp.media = {**dataclasses.asdict(result), "model": object_view(self._ctx, entry)}


class CatalogModelResource(ObjectResource):
    """GET as any object; DELETE answers 204 as the contract has it (with dryRun, 200 and the diff)."""

    def __init__(self, ctx: AppContext) -> None:
        super().__init__(ctx, "Model")

    def on_delete(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        super().on_delete(req, resp, name)
        if not (req.get_param_as_bool("dryRun") or False):
            resp.status = falcon.HTTP_204
            resp.media = None


class VerifyResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        _model(self._ctx, name)
        token = uuid.uuid4().hex[:8]
        runtime = self._ctx.db.model_runtime(name)
        self._ctx.db.save_model_runtime(dataclasses.replace(runtime, verify_token=token))
        self._ctx.db.record_event(f"Model/{name}", "Normal", "Verify", f"verification requested ({token})")
        self._ctx.audit.record("model.verify", f"Model/{name}", reason=f"verification {token}")
        self._ctx.changed({f"Model/{name}"})
        resp.status = falcon.HTTP_202
        resp.media = {"model": name, "verify_token": token}


class StateResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        _model(self._ctx, name)
        body = StateRequest.model_validate(read_body(req))
        key = f"Model/{name}"
        entry = self._ctx.store.get(key)
        assert entry is not None
        runtime = self._ctx.db.model_runtime(name)
        deadline = time.time() + body.deadline_ms / 1000 if body.state is Lifecycle.RETIRED else None
        # The deadline goes in before the file changes, so no reconcile sees Retired without it.
        self._ctx.db.save_model_runtime(dataclasses.replace(runtime, retire_deadline=deadline))
        edited = set_scalar(entry.text, ("spec", "lifecycle"), body.state.value)
        (result,) = self._ctx.store.apply_text(edited, source=entry.file)
        pools = [
            e.obj.metadata.name
            for e in self._ctx.store.entries("Pool")
            if isinstance(e.obj, Pool) and e.obj.spec.model == name
        ]
        if body.state is Lifecycle.RETIRED:
            # Queued tasks would never get a slot of a replica that is stopping.
            for pool in pools:
                self._ctx.tasks.drain_queued(pool)
        if result.action != "unchanged":
            self._ctx.db.record_event(
                key, "Normal", body.state.value, f"lifecycle set to {body.state.value} in {result.file}"
            )
        before = entry.obj.spec.lifecycle.value if isinstance(entry.obj, Model) else "?"
        self._ctx.audit.record("model.lifecycle", key, reason=f"{before} -> {body.state.value}")
        self._ctx.changed({key, *(f"Pool/{pool}" for pool in pools)})
        resp.status = falcon.HTTP_202
        resp.media = {
            "model": name,
            "state": body.state.value,
            "deadline_ms": int(deadline * 1000) if deadline is not None else None,
            "pools": pools,
            **dataclasses.asdict(result),
        }


def routes(ctx: AppContext, app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_route("/v1/catalog/models", CatalogModelsResource(ctx))
    app.add_route("/v1/catalog/models/{name}", CatalogModelResource(ctx))
    app.add_route("/v1/catalog/models/{name}/verify", VerifyResource(ctx))
    app.add_route("/v1/catalog/models/{name}/state", StateResource(ctx))
