"""A small synchronous client for the llorchd HTTP API, as llorchctl uses it.

Every failure leaves here as one of two exceptions, so the command layer has a single place that
turns them into `error: ...` lines: `ApiError` when llorchd answered with its error envelope (or
anything else non-2xx), `Unreachable` when no answer came at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

from llorch.resources import api_path

DEFAULT_URL = "http://127.0.0.1:8080"

# The daemon sends a heartbeat comment every 15 s while a task waits, so a stream that stays silent
# this long means llorchd is stuck; a plain --timeout may be shorter than a long queue wait.
STREAM_SILENCE_SECONDS = 60.0


@dataclass(frozen=True)
class Detail:
    """One located problem of an INVALID_PARAMS answer (a manifest error, usually)."""

    file: str | None
    line: int | None
    field: str | None
    message: str


@dataclass(eq=False)
class ApiError(Exception):
    status: int
    code: str
    message: str
    details: list[Detail] = field(default_factory=list)
    retry_after_s: float | None = None
    correlation_id: str | None = None
    policy_label: str | None = None
    """The Policy and its rules behind a refusal (`Policy/default: sessions.maxTurns`)."""

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class Unreachable(Exception):
    """No HTTP answer: refused, timed out, or the connection broke."""


@dataclass(frozen=True)
class Frame:
    event: str
    data: dict[str, Any]
    id: str | None = None


@dataclass(frozen=True)
class LogStream:
    """A replica's log as llorchd sends it: which replica it chose, of which, and the bytes."""

    replica: str
    replicas: list[str]
    chunks: Iterator[bytes]


# A dropped watch is opened again after this long, doubling up to the cap, as client-go backs off.
RESUME_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0)


def normalize_url(server: str) -> str:
    # `-s localhost:8080` is what people type; httpx would reject it for lacking a scheme.
    server = server.strip().rstrip("/")
    return server if "://" in server else f"http://{server}"


class Client:
    def __init__(
        self,
        server: str = DEFAULT_URL,
        *,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.server = normalize_url(server)
        self.timeout = timeout
        headers = {"Accept": "application/json", "User-Agent": "llorchctl"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- objects ------------------------------------------------------------------------------------

    def list_kind(self, kind: str) -> dict[str, Any]:
        return self._json("GET", api_path(kind))

    def get(self, kind: str, name: str) -> dict[str, Any]:
        return self._json("GET", f"{api_path(kind)}/{name}")

    def delete(self, kind: str, name: str, *, dry_run: bool) -> dict[str, Any]:
        return self._json("DELETE", f"{api_path(kind)}/{name}", params={"dryRun": _flag(dry_run)})

    def apply(self, text: str, *, source: str, dry_run: bool) -> list[dict[str, Any]]:
        answer = self._json(
            "POST",
            "/v1/manifests",
            params={"dryRun": _flag(dry_run), "source": source},
            content=text.encode("utf-8"),
            headers={"Content-Type": "application/yaml"},
        )
        results = answer.get("results", [])
        return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []

    # -- pools at run time ---------------------------------------------------------------------------

    def drain(self, pool: str, *, deadline_ms: int) -> dict[str, Any]:
        return self._json("POST", f"/v1/pools/{pool}/drain", json={"deadline_ms": deadline_ms})

    def resume(self, pool: str) -> dict[str, Any]:
        return self._json("POST", f"/v1/pools/{pool}/resume")

    def reload(self, pool: str) -> dict[str, Any]:
        # No new_model_ref: the same model again, i.e. a rolling restart.
        return self._json("POST", f"/v1/pools/{pool}/reload", json={})

    def health(self, pool: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/pools/{pool}/health")

    def capabilities(self) -> dict[str, Any]:
        return self._json("GET", "/v1/capabilities")

    def replicasets(self) -> dict[str, Any]:
        return self._json("GET", "/v1/replicasets")

    # -- the daemon itself --------------------------------------------------------------------------

    def healthz(self) -> dict[str, Any]:
        return self._json("GET", "/healthz")

    def version(self) -> tuple[dict[str, Any], str | None]:
        """The server's version, and the answer's `Date` header (the server's clock)."""
        response = self._send("GET", "/version")
        return _body(response), response.headers.get("Date")

    def diagnostics(self) -> dict[str, Any]:
        return self._json("GET", "/v1/diagnostics")

    # -- artifacts ----------------------------------------------------------------------------------

    def put_artifact(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The stored artifact, and whether it is new (201) rather than content already there (200)."""
        response = self._send("POST", "/v1/artifacts", json=body)
        return _body(response), response.status_code == 201

    def artifact(self, artifact_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/artifacts/{artifact_id}")

    def artifacts(self, *, kind: str | None, tag: str | None, limit: int | None) -> dict[str, Any]:
        params = {"kind": kind, "tag": tag, "limit": limit}
        return self._json("GET", "/v1/artifacts", params={k: v for k, v in params.items() if v is not None})

    def collect_artifacts(self, *, dry_run: bool) -> dict[str, Any]:
        return self._json("POST", "/v1/retention/artifacts", json={"dry_run": dry_run})

    # -- catalog and cache --------------------------------------------------------------------------

    def cache(self) -> dict[str, Any]:
        return self._json("GET", "/v1/cache")

    def prune_cache(self, *, dry_run: bool) -> dict[str, Any]:
        return self._json("POST", "/v1/cache/prune", json={"dry_run": dry_run})

    def purge(self, pool: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/v1/pools/{pool}/purge", json=body)

    # -- the audit trail ----------------------------------------------------------------------------

    def audit(
        self, *, since: str | None, decision: str | None, actor: str | None, limit: int | None
    ) -> dict[str, Any]:
        params = {"since": since, "decision": decision, "actor": actor, "limit": limit}
        return self._json("GET", "/v1/audit", params={k: v for k, v in params.items() if v is not None})

    # -- what happens: events, watches, logs, the queue --------------------------------------------

    def all_events(self, *, objects: list[str], limit: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {"object": objects} if objects else {}
        if limit is not None:
            params["limit"] = limit
        return self._json("GET", "/v1/events", params=params)

    def watch(
        self,
        path: str,
        params: dict[str, Any],
        *,
        since: str | None,
        on_resume: Callable[[str | None, str], None],
    ) -> Iterator[Frame]:
        """The watch of `path` (`?watch=true`) from resource version `since`, frame by frame, for as
        long as the caller iterates. A stream that breaks or ends is opened again from the last
        version seen (so nothing is missed or repeated); `on_resume(version, why)` hears of each."""
        version = since
        connected = False
        failures = 0
        read = max(self.timeout, STREAM_SILENCE_SECONDS)
        while True:
            query = {**params, "watch": "true"} | ({"resourceVersion": version} if version else {})
            try:
                with connect_sse(
                    self._http, "GET", path, params=query, timeout=httpx.Timeout(self.timeout, read=read)
                ) as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                        raise _api_error(source.response)
                    connected = True
                    failures = 0
                    for sse in source.iter_sse():
                        if sse.id:
                            version = sse.id
                        yield Frame(sse.event or "message", _frame_data(sse.data), sse.id or None)
                why = "llorchd ended the stream"
            except SSEError as exc:
                raise Unreachable(
                    f"llorchd at {self.server} did not answer with an event stream: {exc}"
                ) from exc
            except httpx.TimeoutException:
                if not connected:
                    raise Unreachable(
                        f"llorchd at {self.server} did not answer within {self.timeout:g}s"
                    ) from None
                why = f"llorchd sent nothing for {read:g}s"
            except httpx.TransportError as exc:
                if not connected:
                    raise Unreachable(_transport_message(self.server, exc)) from exc
                why = f"the connection broke: {exc or type(exc).__name__}"
            on_resume(version, why)
            time.sleep(RESUME_BACKOFF_SECONDS[min(failures, len(RESUME_BACKOFF_SECONDS) - 1)])
            failures += 1

    @contextmanager
    def logs(self, pool: str, *, replica: str | None, tail: int | None, follow: bool) -> Iterator[LogStream]:
        """The replica's log; with `follow`, an answer that stays open for what comes next."""
        params: dict[str, Any] = {"follow": _flag(follow)}
        if replica is not None:
            params["replica"] = replica
        if tail is not None:
            params["tail"] = tail
        # A follow waits for output as long as the user does.
        timeout = httpx.Timeout(self.timeout, read=None if follow else self.timeout)
        try:
            with self._http.stream(
                "GET", f"/v1/pools/{pool}/logs", params=params, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _api_error(response)
                replicas = [r for r in response.headers.get("X-Llorch-Replicas", "").split(",") if r]
                yield LogStream(
                    response.headers.get("X-Llorch-Replica", replica or ""), replicas, response.iter_bytes()
                )
        except httpx.TimeoutException as exc:
            raise Unreachable(f"llorchd at {self.server} did not answer within {self.timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise Unreachable(_transport_message(self.server, exc)) from exc

    def queue(self, pool: str | None) -> dict[str, Any]:
        return self._json("GET", "/v1/queue", params={"pool": pool} if pool else {})

    # -- sessions -----------------------------------------------------------------------------------

    def open_session(self, pool: str, session_id: str | None) -> dict[str, Any]:
        body = {"pool": pool} | ({"session_id": session_id} if session_id else {})
        return self._json("POST", "/v1/sessions", json=body)

    def session(self, session_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/sessions/{session_id}")

    # -- tasks --------------------------------------------------------------------------------------

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", "/v1/tasks", json=body)

    def cancel(self, task_id: str) -> None:
        self._json("POST", f"/v1/tasks/{task_id}/cancel")

    def events(self, path: str) -> Iterator[Frame]:
        """The task's SSE frames in order; leaving the iteration early closes the stream (and so
        cancels the task on the server)."""
        timeout = httpx.Timeout(self.timeout, read=max(self.timeout, STREAM_SILENCE_SECONDS))
        try:
            with connect_sse(self._http, "GET", path, timeout=timeout) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise _api_error(source.response)
                for sse in source.iter_sse():
                    yield Frame(sse.event or "message", _frame_data(sse.data), sse.id or None)
        except SSEError as exc:
            raise Unreachable(f"llorchd at {self.server} did not answer with an event stream: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise Unreachable(f"llorchd at {self.server} sent nothing for {timeout.read:g}s") from exc
        except httpx.TransportError as exc:
            raise Unreachable(_transport_message(self.server, exc)) from exc

    # -- plumbing -----------------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return _body(self._send(method, path, **kwargs))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A 2xx answer; anything else leaves as ApiError or Unreachable."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise Unreachable(f"llorchd at {self.server} did not answer within {self.timeout:g}s") from exc
        except httpx.TransportError as exc:
            raise Unreachable(_transport_message(self.server, exc)) from exc
        if response.status_code >= 400:
            raise _api_error(response)
        return response


def _body(response: httpx.Response) -> dict[str, Any]:
    if response.status_code == 204 or not response.content:
        return {}
    try:
        body = response.json()
    except ValueError as exc:
        raise ApiError(
            response.status_code, "BAD_RESPONSE", f"llorchd answered with non-JSON: {exc}"
        ) from exc
    return body if isinstance(body, dict) else {"value": body}


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _transport_message(server: str, exc: httpx.TransportError) -> str:
    return f"cannot reach llorchd at {server}: {exc or type(exc).__name__}"


def _frame_data(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text) if text else {}
    except ValueError:
        return {"text": text}
    return data if isinstance(data, dict) else {"value": data}


def _api_error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # Not llorchd's envelope: a proxy, or something else listening on the port.
        text = response.text.strip().splitlines()
        message = text[0][:200] if text else response.reason_phrase
        return ApiError(response.status_code, f"HTTP_{response.status_code}", message)
    return ApiError(
        status=response.status_code,
        code=str(body.get("code") or f"HTTP_{response.status_code}"),
        message=str(body.get("message") or response.reason_phrase),
        details=[_detail(d) for d in body.get("details") or [] if isinstance(d, dict)],
        retry_after_s=_retry_after(response, body),
        correlation_id=body.get("correlation_id") or response.headers.get("X-Correlation-Id"),
        policy_label=body.get("policy_label") if isinstance(body.get("policy_label"), str) else None,
    )


def _detail(raw: dict[str, Any]) -> Detail:
    line = raw.get("line")
    return Detail(
        file=raw.get("file"),
        line=line if isinstance(line, int) else None,
        field=raw.get("field"),
        message=str(raw.get("message", "")),
    )


def _retry_after(response: httpx.Response, body: dict[str, Any]) -> float | None:
    header = response.headers.get("Retry-After")
    if header is not None:
        try:
            return float(header)
        except ValueError:
            pass  # An HTTP date: rare enough to fall back to the envelope's milliseconds.
    millis = body.get("retry_after_ms")
    return millis / 1000 if isinstance(millis, int | float) else None
