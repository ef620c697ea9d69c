"""`GET /v1/models`: the names an OpenAI client may put in `model`, and how a name finds its pool.

`model` names a pool, or a Model that exactly one pool serves (a Model behind several pools is
ambiguous: name the pool). `created` is when the object's manifest file last changed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import falcon

from llorch.api.context import AppContext
from llorch.api.openai_errors import OpenAIRequestError, respond_openai
from llorch.dataplane.routing import Want
from llorch.resources import Pool
from llorch.resources.errors import ErrorCode

OWNED_BY = "llorch"


def pools(ctx: AppContext) -> list[Pool]:
    return [e.obj for e in ctx.store.entries("Pool") if isinstance(e.obj, Pool)]


def _served_models(listed: list[Pool]) -> dict[str, str]:
    """Model name → its pool, for the Models exactly one pool serves and no pool is named after."""
    names = {p.metadata.name for p in listed}
    counts = Counter(p.spec.model for p in listed)
    return {
        p.spec.model: p.metadata.name
        for p in listed
        if counts[p.spec.model] == 1 and p.spec.model not in names
    }


def _created(ctx: AppContext, key: str) -> int:
    entry = ctx.store.get(key)
    if entry is None:
        return 0
    try:
        return int((ctx.store.folder / entry.file).stat().st_mtime)
    except OSError:
        return 0


def _model_object(ctx: AppContext, name: str, key: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _created(ctx, key), "owned_by": OWNED_BY}


def model_objects(ctx: AppContext) -> list[dict[str, Any]]:
    listed = pools(ctx)
    objects = [_model_object(ctx, p.metadata.name, f"Pool/{p.metadata.name}") for p in listed]
    for model, pool in sorted(_served_models(listed).items()):
        key = f"Model/{model}" if ctx.store.get(f"Model/{model}") else f"Pool/{pool}"
        objects.append(_model_object(ctx, model, key))
    return objects


def model_not_found(model: str) -> OpenAIRequestError:
    return OpenAIRequestError(
        ErrorCode.NOT_FOUND,
        f"The model {model!r} does not exist: name a pool, or a Model exactly one pool serves",
        openai_code="model_not_found",
        param="model",
    )


def resolve_pool(ctx: AppContext, model: str) -> Pool:
    """`model` as a pool name first, then as the Model of exactly one pool."""
    if ctx.store.get(f"Pool/{model}") is not None:
        return ctx.tasks.resolve_pool(Want(pool=model))
    serving = sorted(p.metadata.name for p in pools(ctx) if p.spec.model == model)
    if len(serving) > 1:
        raise OpenAIRequestError(
            ErrorCode.INVALID_PARAMS,
            f"model {model!r} is served by several pools ({', '.join(serving)}): name one of them",
            openai_code="model_ambiguous",
            param="model",
        )
    if not serving:
        raise model_not_found(model)
    return ctx.tasks.resolve_pool(Want(model_ref=model))


class ModelsResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"object": "list", "data": model_objects(self._ctx)}


class ModelResource:
    def __init__(self, ctx: AppContext) -> None:
        self._ctx = ctx

    def on_get(self, req: falcon.Request, resp: falcon.Response, model: str) -> None:
        found = next((m for m in model_objects(self._ctx) if m["id"] == model), None)
        if found is None:
            respond_openai(resp, model_not_found(model))
            return
        resp.media = found
