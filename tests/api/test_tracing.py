"""A task's trace, from the client's W3C traceparent through the native API, admission, queue
wait and dispatch to the engine request, whose HTTP call carries the trace on (the engine is
the vLLM wire fixture on loopback: no vLLM runs here). Spans land in the SDK's in-memory
exporter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llorch.runtime.engines.base import Upstream
from llorch.runtime.engines.vllm import VLlm
from llorch.runtime.registry import Replica
from tests.api.test_app import POOL, Api, serve
from tests.api.test_metrics_endpoint import MODEL
from tests.e2e.conftest import read_sse, wait_for
from tests.otel import named, spans
from tests.runtime.engines.replay import ReplayServer, stream_reply

__all__ = ["spans"]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def engine() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        replay.route("POST", "/v1/completions", stream_reply("vllm", "stream_ok.sse"))
        yield replay


@pytest.fixture
def api(tmp_path: Path, engine: ReplayServer) -> Iterator[Api]:
    for served in serve(tmp_path):
        headers = {"Content-Type": "application/yaml"}
        served.http.post(served.url + "/v1/manifests", content=POOL + "---\n" + MODEL, headers=headers)
        served.ctx.registry.add(
            Replica(
                id="demo-0-abc",
                pool="demo",
                engine="vllm",
                upstream=Upstream(base_url=engine.base_url, model="tiny"),
                slots=2,
                adapter=VLlm(),
            )
        )
        served.ctx.tasks.start()
        yield served


def test_the_clients_trace_runs_through_admission_queue_dispatch_and_on_to_the_engine(
    api: Api, engine: ReplayServer, spans: InMemorySpanExporter
) -> None:
    resp = api.http.post(
        api.url + "/v1/tasks",
        json={"pool": "demo", "prompt": "Hi", "max_tokens": 16},
        headers={"traceparent": f"00-{TRACE_ID}-{CLIENT_SPAN}-01", "X-Correlation-Id": "corr-trace-1"},
    )
    assert resp.status_code == 202, resp.text
    task_id = resp.json()["task_id"]
    frames = read_sse(api.http, api.url + resp.json()["streams"]["sse"])
    assert frames[-1][0] == "end", frames[-1]
    wait_for("the dispatch span to end", lambda: named(spans, "llorch.dispatch"), timeout=10)

    (server,) = named(spans, "POST /v1/tasks")
    (admission,) = named(spans, "llorch.admission")
    (queued,) = named(spans, "llorch.queue_wait")
    (dispatch,) = named(spans, "llorch.dispatch")
    (request,) = named(spans, "llorch.engine_request")
    trace_id = int(TRACE_ID, 16)
    for span in (server, admission, queued, dispatch, request):
        assert span.context is not None and span.context.trace_id == trace_id, span.name
    assert server.parent is not None and server.parent.span_id == int(CLIENT_SPAN, 16)
    assert server.attributes is not None and server.attributes["http.route"] == "/v1/tasks"
    assert server.attributes["http.response.status_code"] == 202
    assert admission.parent is not None and admission.parent.span_id == server.context.span_id
    for child in (queued, dispatch):
        assert child.parent is not None and child.parent.span_id == admission.context.span_id
    assert request.parent is not None and request.parent.span_id == dispatch.context.span_id
    expected = {
        "llorch.correlation_id": "corr-trace-1",
        "llorch.task_id": task_id,
        "llorch.pool": "demo",
        "llorch.replica": "demo-0-abc",
        "llorch.engine": "vllm",
    }
    for span in (queued, dispatch, request):
        assert span.attributes is not None
        assert {key: span.attributes.get(key) for key in expected} == expected, span.name
    assert admission.attributes is not None and admission.attributes["llorch.task_id"] == task_id
    assert [event.name for event in request.events] == ["stream.end"]

    (sent,) = [r for r in engine.requests if r.path == "/v1/completions"]
    version, sent_trace, parent, _flags = sent.headers["traceparent"].split("-")
    assert (version, sent_trace) == ("00", TRACE_ID), "the engine gets the client's trace"
    assert int(parent, 16) == request.context.span_id, "as a child of the engine request span"


def test_a_refused_admission_is_a_failed_span_with_its_code(api: Api, spans: InMemorySpanExporter) -> None:
    resp = api.http.post(api.url + "/v1/tasks", json={"pool": "demo", "prompt": "Hi", "max_tokens": 10**6})
    assert resp.status_code == 400
    (admission,) = named(spans, "llorch.admission")
    assert admission.attributes is not None and admission.attributes["llorch.error_code"] == "INVALID_PARAMS"
    assert not admission.status.is_ok
