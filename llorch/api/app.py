"""The Falcon application: middleware, error mapping and every route, in one place."""

from __future__ import annotations

from typing import Any

import falcon
from prometheus_client import CollectorRegistry

from llorch.api import (
    artifacts,
    cache,
    capabilities,
    catalog,
    objects,
    openai_compat,
    pool_actions,
    pool_purge,
    sessions,
)
from llorch.api.context import AppContext
from llorch.api.errors import handle_exception
from llorch.api.health import HealthzResource
from llorch.api.manifests import ManifestsResource
from llorch.api.metrics import MetricsResource
from llorch.api.middleware import BearerAuth, BodyLimit, CorrelationId
from llorch.api.tasks import TaskCancelResource, TaskEventsResource, TaskResource, TasksResource


def create_app(
    ctx: AppContext, metrics: CollectorRegistry | None = None
) -> falcon.App[falcon.Request, falcon.Response]:
    """`metrics`: the daemon's Prometheus registry, served at GET /metrics (no route without one)."""
    middleware: list[Any] = [
        CorrelationId(),
        BodyLimit(
            ctx.config.server.max_body_bytes,
            {"/v1/artifacts": (artifacts.body_limit(ctx.config), "artifacts.maxBytes")},
        ),
        BearerAuth(ctx.tokens),
    ]
    app = falcon.App(middleware=middleware)
    # Falcon picks the most specific handler; registering for both keeps its own HTTPError
    # handler from answering in a different shape.
    app.add_error_handler(Exception, handle_exception)
    app.add_error_handler(falcon.HTTPError, handle_exception)
    app.add_route("/healthz", HealthzResource(ctx))
    if metrics is not None:
        app.add_route("/metrics", MetricsResource(metrics))
    app.add_route("/v1/manifests", ManifestsResource(ctx))
    objects.routes(ctx, app)
    catalog.routes(ctx, app)
    pool_actions.routes(ctx, app)
    pool_purge.routes(ctx, app)
    cache.routes(ctx, app)
    capabilities.routes(ctx, app)
    openai_compat.routes(ctx, app)
    sessions.routes(ctx, app)
    artifacts.routes(ctx, app)
    app.add_route("/v1/tasks", TasksResource(ctx))
    app.add_route("/v1/tasks/{task_id}", TaskResource(ctx))
    events = TaskEventsResource(ctx)
    app.add_route("/v1/tasks/{task_id}/events", events)
    app.add_route("/v1/tasks/{task_id}/stream", events)
    app.add_route("/v1/tasks/{task_id}/cancel", TaskCancelResource(ctx))
    return app
