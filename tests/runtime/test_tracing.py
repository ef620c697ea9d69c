"""llorch.runtime.tracing: configured by OTEL_* only, and with the `otel` extra absent nothing
fails and nothing is traced. Each case runs in a fresh interpreter, since a tracer provider can
be set once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.e2e.conftest import REPO

# Makes `import opentelemetry...` fail as it does where the extra is not installed.
WITHOUT_OTEL = """
import sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"No module named {name!r} (hidden by the test)")
        return None
sys.meta_path.insert(0, _Absent())
"""

USE_IT = """
import httpx
from llorch.runtime import tracing
from llorch.daemon.wiring import Daemon
print("available", tracing.AVAILABLE)
print("configured", tracing.configure())
headers = httpx.Headers()
with tracing.span("llorch.test", {tracing.POOL: "demo"}, kind="server") as span:
    span.set({tracing.TASK_ID: "t-1"})
    span.event("something", {"n": 1})
    tracing.inject(headers)
    sent = {"TraceParent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    print("parent", tracing.extract(sent) is not None)
print("injected", headers.get("traceparent"))
"""


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**clean, **env},
    )


def test_without_the_extra_everything_imports_and_runs_untraced() -> None:
    done = run(WITHOUT_OTEL + USE_IT, OTEL_TRACES_EXPORTER="console")
    assert done.returncode == 0, done.stderr
    assert "available False" in done.stdout and "configured None" in done.stdout
    assert "injected None" in done.stdout and "parent False" in done.stdout


def test_without_an_exporter_named_nothing_is_exported() -> None:
    done = run(USE_IT)
    assert done.returncode == 0, done.stderr
    assert "available True" in done.stdout and "configured None" in done.stdout
    assert "{" not in done.stdout, "no span was printed"


def test_otel_traces_exporter_console_prints_each_span_with_the_service_name() -> None:
    done = run(USE_IT, OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="llorchd-test")
    assert done.returncode == 0, done.stderr
    assert "configured console" in done.stdout
    span = json.loads(done.stdout[done.stdout.index("{") : done.stdout.rindex("}") + 1])
    assert span["name"] == "llorch.test" and span["kind"] == "SpanKind.SERVER"
    assert span["attributes"] == {"llorch.pool": "demo", "llorch.task_id": "t-1"}
    assert span["resource"]["attributes"]["service.name"] == "llorchd-test"
    injected = done.stdout.split("injected ")[1].split()[0]
    assert injected.split("-")[1] == span["context"]["trace_id"].removeprefix("0x")


def test_an_unknown_exporter_is_refused_with_the_ones_installed() -> None:
    done = run(USE_IT, OTEL_TRACES_EXPORTER="zipkin-nope")
    assert done.returncode != 0
    assert "zipkin-nope" in done.stderr and "console" in done.stderr and "otlp" in done.stderr
