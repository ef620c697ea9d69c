"""An OIDC provider's published signing keys (a JWKS document), from a file or a URL, cached.

A token naming a key id not in the cache makes the source look again (the provider rotated its
keys), but at most once per `REFETCH_SECONDS`, so tokens with made-up key ids cannot make
llorchd hammer the provider.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from llorch.resources.errors import ErrorCode
from llorch.runtime.errors import RuntimeFailure

REFETCH_SECONDS = 60.0
# Keys are looked up again this often even when every token's key id is known.
MAX_AGE_SECONDS = 3600.0
_FETCH_TIMEOUT = 5.0
_MAX_BYTES = 1_048_576


class KeySetUnavailable(RuntimeFailure):
    """The JWKS could not be read: tokens cannot be verified now."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.BAD_TOKEN, message, retriable=True)


class KeySetSource:
    """`location` is a file path, or an http(s) URL (validated by the config)."""

    def __init__(self, location: str, transport: httpx.BaseTransport | None = None) -> None:
        self._location = location
        self._transport = transport
        self._lock = threading.Lock()
        self._keys: dict[str, Any] | None = None
        self._fetched_at = float("-inf")

    def keys(self, *, stale: bool = False) -> dict[str, Any]:
        """The JWKS document; `stale` says a key id was missing from the last one."""
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if self._keys is None and age < REFETCH_SECONDS:
                # It failed a moment ago: every token would wait on another failing fetch.
                raise KeySetUnavailable(f"the JWKS was unavailable {age:.0f} s ago; not asking again yet")
            if self._keys is None or age > MAX_AGE_SECONDS or (stale and age > REFETCH_SECONDS):
                self._fetched_at = time.monotonic()
                self._keys = self._read()
            return self._keys

    def _read(self) -> dict[str, Any]:
        if "://" not in self._location:
            try:
                text = Path(self._location).expanduser().read_text()
            except OSError as exc:
                raise KeySetUnavailable(f"cannot read the JWKS file: {exc.strerror or exc}") from exc
        else:
            try:
                with httpx.Client(transport=self._transport, trust_env=False, timeout=_FETCH_TIMEOUT) as http:
                    response = http.get(self._location)
                    response.raise_for_status()
                    text = response.text[:_MAX_BYTES]
            except httpx.HTTPError as exc:
                raise KeySetUnavailable(f"cannot fetch the JWKS: {exc or type(exc).__name__}") from exc
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise KeySetUnavailable(f"the JWKS is not JSON: {exc}") from exc
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise KeySetUnavailable("the JWKS has no keys list")
        return document
