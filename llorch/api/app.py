"""The Falcon application: middleware, error mapping and every route, in one place."""

from __future__ import annotations

from typing import Any

import falcon
from prometheus_client import CollectorRegistry

from llorch.api import (
    artifacts,
    audit,
    cache,
    capabilities,
    catalog,
    gpus,
    jsonbody,
    logs,
    objects,
    pool_actions,
    pool_purge,
    queue,
    relay,
    sessions,
    tools,
    ui,
)
from llorch.api.context import AppContext
from llorch.api.diagnostics import DiagnosticsResource
from llorch.api.health import HealthzResource
from llorch.api.http_metrics import HttpMetrics
from llorch.api.manifests import ManifestsResource
from llorch.api.metrics import MetricsResource
from llorch.api.middleware import Auth, BodyLimit, CorrelationId
from llorch.api.tasks import TaskCancelResource, TaskEventsResource, TaskResource, TasksResource
from llorch.api.tracing import TraceContext
from llorch.api.version import VersionResource
from llorch.resources import ServerConfig


def body_limit(config: ServerConfig) -> BodyLimit:
    """The body limits per path: the app enforces them, and so does llorchd's HTTP server
    before it reads a body (llorch.daemon.http)."""
    return BodyLimit(
        config.server.max_body_bytes,
        {"/v1/artifacts": (artifacts.body_limit(config), "artifacts.maxBytes")},
    )


def create_app(
    ctx: AppContext, metrics: CollectorRegistry | None = None
) -> falcon.App[falcon.Request, falcon.Response]:
    """`metrics`: the daemon's Prometheus registry, served at GET /metrics (no route without one)."""
    middleware: list[Any] = [CorrelationId(), body_limit(ctx.config), Auth(ctx.keys, ctx.oidc, ctx.audit)]
    # First, so that they see every request, refused ones included.
    middleware[:0] = [TraceContext(), *([HttpMetrics(metrics)] if metrics is not None else [])]
    app = falcon.App(middleware=middleware)
    json_handler = jsonbody.handler(ctx.config.server.max_json_depth)
    app.req_options.media_handlers.update({falcon.MEDIA_JSON: json_handler})
    # Falcon picks the most specific handler; registering for both keeps its own HTTPError
    # handler from answering in a different shape.
    app.add_error_handler(Exception, relay.handle_relay_exception)
    app.add_error_handler(falcon.HTTPError, relay.handle_relay_exception)
    app.add_route("/healthz", HealthzResource(ctx))
    app.add_route("/version", VersionResource())
    app.add_route("/v1/diagnostics", DiagnosticsResource(ctx))
    if metrics is not None:
        app.add_route("/metrics", MetricsResource(metrics))
    app.add_route("/v1/manifests", ManifestsResource(ctx))
    objects.routes(ctx, app)
    catalog.routes(ctx, app)
    pool_actions.routes(ctx, app)
    pool_purge.routes(ctx, app)
    cache.routes(ctx, app)
    capabilities.routes(ctx, app)
    relay.routes(ctx, app)
    sessions.routes(ctx, app)
    artifacts.routes(ctx, app)
    tools.routes(ctx, app)
    audit.routes(ctx, app)
    logs.routes(ctx, app)
    queue.routes(ctx, app)
    gpus.routes(ctx, app)
    ui.routes(app)
    app.add_route("/v1/tasks", TasksResource(ctx))
    app.add_route("/v1/tasks/{task_id}", TaskResource(ctx))
    events = TaskEventsResource(ctx)
    app.add_route("/v1/tasks/{task_id}/events", events)
    app.add_route("/v1/tasks/{task_id}/stream", events)
    app.add_route("/v1/tasks/{task_id}/cancel", TaskCancelResource(ctx))
    return app
