"""OpenTelemetry traces, when the `otel` extra is installed (`pip install 'llorch[otel]'`).

Spans follow a task through llorch (admission, queue wait, dispatch, the engine request until
its stream ends) and each reconcile; W3C `traceparent` comes in from clients and goes on to the
engines. Everything is set by the standard `OTEL_*` variables: `OTEL_TRACES_EXPORTER`
(`console`, `otlp`, `otlp_proto_http`, `none`; several with commas), `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_*`, `OTEL_PROPAGATORS`,
`OTEL_SDK_DISABLED`.

Without the extra (no opentelemetry package) every function here does nothing, so llorch runs
and imports the same. With only opentelemetry-api installed, trace context still passes from
clients to engines; spans are recorded once the SDK is installed and an exporter is named.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any, Literal

import httpx

try:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace

    AVAILABLE = True
except ImportError:  # the otel extra is not installed: no tracing, nothing else changes
    AVAILABLE = False

log = logging.getLogger("llorch.runtime")

TRACER = "llorch"
Kind = Literal["internal", "server", "client"]
Attributes = Mapping[str, str | int | float | bool | None]

# Span attribute names, shared by every span that carries them.
CORRELATION_ID = "llorch.correlation_id"
TASK_ID = "llorch.task_id"
POOL = "llorch.pool"
REPLICA = "llorch.replica"
ENGINE = "llorch.engine"
CONTROLLER = "llorch.controller"
KEY = "llorch.key"


class SpanHandle:
    """One span, or nothing at all when tracing is off; safe to use either way."""

    def __init__(self, span: Any = None, parent: Any = None) -> None:
        self._span = span
        self._parent = parent

    @property
    def context(self) -> Any:
        """The trace context with this span current: the parent for spans started elsewhere."""
        if self._span is None:
            return self._parent
        return trace.set_span_in_context(self._span, self._parent)

    def set(self, attributes: Attributes) -> None:
        if self._span is not None:
            self._span.set_attributes({k: v for k, v in attributes.items() if v is not None})

    def event(self, name: str, attributes: Attributes | None = None) -> None:
        if self._span is not None:
            self._span.add_event(name, {k: v for k, v in (attributes or {}).items() if v is not None})

    def rename(self, name: str) -> None:
        if self._span is not None:
            self._span.update_name(name)

    def fail(self, description: str) -> None:
        if self._span is not None:
            self._span.set_status(trace.Status(trace.StatusCode.ERROR, description))

    def end(self) -> None:
        if self._span is not None:
            self._span.end()


NO_SPAN = SpanHandle()
# A parent that starts a trace of its own, whatever is current.
ROOT: Any = otel_context.Context() if AVAILABLE else None


def start_span(
    name: str,
    attributes: Attributes | None = None,
    *,
    parent: Any = None,
    kind: Kind = "internal",
    start_seconds: float | None = None,
) -> SpanHandle:
    """A span that is not made current; end it with `.end()`. `parent`: a `SpanHandle.context`
    or an `extract`ed context (None: the current one). `start_seconds`: a `time.time()` when the
    span began before now (a queue wait)."""
    if not AVAILABLE:
        return NO_SPAN
    span = trace.get_tracer(TRACER).start_span(
        name,
        context=parent,
        kind=_KINDS[kind],
        attributes={k: v for k, v in (attributes or {}).items() if v is not None},
        start_time=None if start_seconds is None else int(start_seconds * 1e9),
    )
    return SpanHandle(span, parent if parent is not None else otel_context.get_current())


@contextmanager
def span(
    name: str, attributes: Attributes | None = None, *, parent: Any = None, kind: Kind = "internal"
) -> Iterator[SpanHandle]:
    """A span current for the block (outbound calls made in it carry it); an exception escaping
    the block marks it failed."""
    handle = start_span(name, attributes, parent=parent, kind=kind)
    token = attach(handle.context)
    try:
        yield handle
    except BaseException as exc:
        handle.fail(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        detach(token)
        handle.end()


def current() -> Any:
    """The trace context current on this thread, to parent spans started on another."""
    return otel_context.get_current() if AVAILABLE else None


def attach(context: Any) -> Any:
    """Make `context` current on this thread; hand the token to `detach`."""
    if not AVAILABLE or context is None:
        return None
    return otel_context.attach(context)


def detach(token: Any) -> None:
    if token is not None:
        otel_context.detach(token)


def extract(headers: Mapping[str, str]) -> Any:
    """The trace context a client sent (`traceparent`, `tracestate`, baggage); header names in
    any case."""
    if not AVAILABLE:
        return None
    return propagate.extract({name.lower(): value for name, value in headers.items()})


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context to outbound request headers."""
    if AVAILABLE:
        propagate.inject(headers)


def configure() -> str | None:
    """Install the SDK's tracer provider with the exporters OTEL_TRACES_EXPORTER names, if the
    SDK is installed and one is named; what it configured, or None (tracing off)."""
    exporters = [
        name.strip()
        for name in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip() and name.strip() != "none"
    ]
    if not exporters or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_TRACES_EXPORTER=%s, but the OpenTelemetry SDK is not installed: "
            "`pip install 'llorch[otel]'` adds it; no traces are exported",
            ",".join(exporters),
        )
        return None
    # The SDK reads OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and OTEL_TRACES_SAMPLER itself;
    # the exporters their OTEL_EXPORTER_* settings, the batch processor OTEL_BSP_*.
    provider = TracerProvider()
    for name in exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    return ",".join(exporters)


def _exporter(name: str) -> Any:
    """The exporter registered under `name` in the `opentelemetry_traces_exporter` entry point
    group, the registry opentelemetry-instrument reads (`console` comes with the SDK, `otlp` and
    `otlp_proto_http` with opentelemetry-exporter-otlp)."""
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        known = sorted(e.name for e in entry_points(group="opentelemetry_traces_exporter"))
        raise ValueError(f"OTEL_TRACES_EXPORTER names {name!r}; installed exporters: {', '.join(known)}")
    return next(iter(found)).load()()


if AVAILABLE:
    _KINDS = {
        "internal": trace.SpanKind.INTERNAL,
        "server": trace.SpanKind.SERVER,
        "client": trace.SpanKind.CLIENT,
    }


def _inject_into(request: httpx.Request) -> None:
    inject(request.headers)


def httpx_hooks() -> dict[str, list[Callable[[httpx.Request], None]]]:
    """`event_hooks` for an httpx client whose requests carry the current trace context."""
    return {"request": [_inject_into]} if AVAILABLE else {}
