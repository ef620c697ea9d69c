"""Small files a Model points at (a signature, an SBOM): a path next to the manifest, or a URL."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from llorch.resources.errors import ErrorCode
from llorch.runtime.errors import RuntimeFailure


class ReferenceError(RuntimeFailure):
    """The referenced file cannot be read; the message says what and why."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.NOT_FOUND, message, retriable=True)


def read_reference(ref: str, *, base_dir: Path, limit_bytes: int, timeout: float = 15.0) -> bytes:
    """The bytes of `ref`: an http(s) URL, or a path ('~' and $VARS expand; relative to `base_dir`).
    More than `limit_bytes` is refused: these files are small, and a wrong URL must not fill memory."""
    if ref.startswith(("http://", "https://")):
        try:
            with httpx.stream("GET", ref, follow_redirects=True, timeout=timeout) as resp:
                if resp.status_code != 200:
                    raise ReferenceError(f"GET {ref} answered {resp.status_code}")
                data = bytearray()
                for chunk in resp.iter_bytes():
                    data += chunk
                    if len(data) > limit_bytes:
                        raise ReferenceError(f"{ref} is larger than {limit_bytes} bytes")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise ReferenceError(f"GET {ref} failed: {exc}") from exc
    path = Path(os.path.expandvars(os.path.expanduser(ref)))
    if not path.is_absolute():
        path = base_dir / path
    try:
        with open(path, "rb") as handle:
            content = handle.read(limit_bytes + 1)
    except OSError as exc:
        raise ReferenceError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(content) > limit_bytes:
        raise ReferenceError(f"{path} is larger than {limit_bytes} bytes")
    return content
