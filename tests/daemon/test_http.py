"""llorchd's HTTP server holds its request limits while waitress reads: oversized headers, bodies
over the limit (refused before they are read), too-deep JSON, and a client that sends one byte a
second, whose connection is closed without holding a thread."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.test_app import Api, serve


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    # One thread: a request that held it while arriving would starve every other.
    yield from serve(tmp_path, config={"server": {"requestTimeoutSeconds": 1}}, threads=1)


def raw(api: Api, head: str, timeout: float = 5) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", api.port), timeout=timeout)
    sock.sendall(head.encode())
    return sock, _read_answer(sock)


def _read_answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def envelope(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_oversized_headers_are_431_in_the_envelope(api: Api) -> None:
    sock, answer = raw(api, "GET /v1/pools HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 70_000 + "\r\n\r\n")
    sock.close()
    status, headers, body = envelope(answer)
    assert status == 431 and body["code"] == "REQUEST_HEADERS_TOO_LARGE"
    assert "server.maxHeaderBytes" in str(body["message"])
    assert headers["x-correlation-id"] == body["correlation_id"]
    assert api.http.get(api.url + "/healthz").status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_sent(api: Api) -> None:
    started = time.monotonic()
    sock, answer = raw(
        api,
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\nX-Correlation-Id: big-1\r\nContent-Type: application/json\r\n"
        "Content-Length: 1048577\r\n\r\n",
    )
    status, _headers, body = envelope(answer)
    assert status == 413 and body["code"] == "PAYLOAD_TOO_LARGE" and body["correlation_id"] == "big-1"
    assert "server.maxBodyBytes" in str(body["message"])
    assert time.monotonic() - started < 2, "answered without waiting for the body"
    assert sock.recv(10) == b"", "and the connection is closed: the body is never read"
    sock.close()


def test_the_artifact_limit_is_per_path(api: Api) -> None:
    # Artifacts take bodies past server.maxBodyBytes; past their own limit they are refused too.
    too_big = 6 * 1_048_576 + 1_048_576 + 1
    sock, answer = raw(api, f"POST /v1/artifacts HTTP/1.1\r\nHost: x\r\nContent-Length: {too_big}\r\n\r\n")
    sock.close()
    status, _, body = envelope(answer)
    assert status == 413 and "artifacts.maxBytes" in str(body["message"])
    fits = api.http.post(api.url + "/v1/artifacts", json={"kind": "plan", "content": "x" * 1_100_000})
    assert fits.status_code == 413 and "artifact content is" in fits.json()["message"]


def test_a_chunked_body_past_the_largest_limit_is_cut_off(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(200):
            yield b"x" * 65536

    resp = api.http.post(
        api.url + "/v1/tasks", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 413 and resp.json()["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize("path", ["/v1/tasks", "/v1/artifacts", "/v1/tools/http"])
def test_too_deep_json_is_400(api: Api, path: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    resp = api.http.post(api.url + path, content=deep, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["code"] == "INVALID_PARAMS"
    assert "server.maxJsonDepth" in resp.json()["message"]
    nested = {"kind": "plan", "content": "x", "metadata": {}}
    node: dict[str, object] = nested["metadata"]  # type: ignore[assignment]
    for _ in range(70):
        node["a"] = {}
        node = node["a"]  # type: ignore[assignment]
    assert api.http.post(api.url + "/v1/artifacts", json=nested).status_code == 400
    braces = '{"kind": "plan", "content": "' + "[" * 500 + '"}'
    assert api.http.post(api.url + "/v1/artifacts", content=braces).status_code == 201, "brackets in strings"


def test_too_deep_json_on_the_openai_routes_answers_in_their_shape(api: Api) -> None:
    resp = api.http.post(
        api.url + "/v1/chat/completions", content="{" * 5000, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert (
        resp.json()["error"]["code"] == "invalid_params" and "maxJsonDepth" in resp.json()["error"]["message"]
    )


def test_a_client_sending_one_byte_a_second_is_closed_and_holds_no_thread(api: Api) -> None:
    slow = socket.create_connection(("127.0.0.1", api.port), timeout=10)
    slow.sendall(
        b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    started = time.monotonic()
    closed_after: float | None = None
    served_meanwhile = False
    while time.monotonic() - started < 8:
        try:
            slow.sendall(b" ")
            slow.settimeout(0.3)
            if slow.recv(1) == b"":
                closed_after = time.monotonic() - started
                break
        except TimeoutError:
            pass
        except OSError:
            closed_after = time.monotonic() - started
            break
        if not served_meanwhile:
            # The server's one thread is free while the slow request trickles in.
            served_meanwhile = httpx.get(api.url + "/healthz", timeout=2).status_code == 200
    slow.close()
    assert served_meanwhile
    assert closed_after is not None and 1 <= closed_after < 4, closed_after
