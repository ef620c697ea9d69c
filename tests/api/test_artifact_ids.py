"""The artifact id attack list over a real loopback socket (raw request lines, nothing normalized
by a client): every one is 400 before the store is touched, and nothing is written anywhere."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_app import Api, serve

HEX = "0123456789abcdef" * 4

ATTACKS = [
    "../",
    "..%2f..%2fstate.sqlite",
    "%2e%2e%2f",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    HEX.upper(),
    HEX[:63],
    HEX + "0",
    HEX[:63] + "%00",
    HEX + "%00",
    HEX + "%0a",
    HEX[:32] + "/" + HEX[32:],
    "%20" + HEX,
]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from serve(tmp_path)


def tree(root: Path) -> dict[str, float]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            if not name.startswith("state.sqlite"):
                path = Path(dirpath) / name
                found[str(path.relative_to(root))] = path.stat().st_mtime
    return found


def raw_get(url: str, target: str) -> tuple[int, dict[str, object]]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_id_that_is_not_64_lowercase_hex_is_400_and_touches_nothing(
    api: Api, tmp_path: Path, attack: str
) -> None:
    before = tree(tmp_path)
    for method_path in (f"/v1/artifacts/{attack}",):
        status, body = raw_get(api.url, method_path)
        assert status == 400, (attack, body)
        assert body["code"] == "INVALID_PARAMS" and "not an artifact id" in str(body["message"])
    assert tree(tmp_path) == before, "nothing written, inside the state folder or out of it"


def test_a_parent_that_is_no_id_is_400_too(api: Api) -> None:
    for parent in ("../x", HEX.upper(), HEX + "\n"):
        answer = api.http.post(
            f"{api.url}/v1/artifacts", json={"kind": "diff", "content": "+x", "parent": parent}
        )
        assert answer.status_code == 400
