"""Model weights on disk: resolve a Model's source to a file, download URLs, hash files."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

import httpx

from llorch.resources import Builtin, ModelSource
from llorch.resources.errors import ErrorCode
from llorch.runtime.demo_model import ensure_demo_model
from llorch.runtime.errors import RuntimeFailure


class WeightsError(RuntimeFailure):
    """A Model's weights cannot be had; `reason` is the condition reason status shows (NotFound,
    DownloadFailed, ...). Retriable: a file may appear, a server may come back."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(
            ErrorCode.NOT_FOUND if reason == "NotFound" else ErrorCode.INTERNAL, message, retriable=True
        )
        self.reason = reason


def resolve(source: ModelSource, *, base_dir: Path, cache: Path) -> Path:
    """The local file behind `source`, fetching or generating it into the cache when needed."""
    if source.builtin is not None:
        if source.builtin is Builtin.TINY_LLAMA:
            return ensure_demo_model(cache)
        raise WeightsError("UnknownBuiltin", f"no builtin model {source.builtin!r}")
    if source.url is not None:
        return download(source.url, cache / "models" / "by-url")
    assert source.path is not None
    path = Path(os.path.expandvars(os.path.expanduser(source.path)))
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise WeightsError("NotFound", f"weights file {path} does not exist")
    return path


def download(url: str, folder: Path) -> Path:
    """Fetch `url` once into `folder`; a partial download never takes the final name."""
    name = url.rstrip("/").rsplit("/", 1)[-1] or "weights"
    target = folder / hashlib.sha256(url.encode()).hexdigest()[:16] / name
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".download-")
    try:
        with (
            os.fdopen(handle, "wb") as out,
            httpx.stream("GET", url, follow_redirects=True, timeout=30.0) as resp,
        ):
            if resp.status_code != 200:
                raise WeightsError("DownloadFailed", f"GET {url} answered {resp.status_code}")
            for chunk in resp.iter_bytes(1 << 20):
                out.write(chunk)
        os.replace(partial, target)
    except httpx.HTTPError as exc:
        raise WeightsError("DownloadFailed", f"GET {url} failed: {exc}") from exc
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


class DigestCache:
    """sha256 of files, remembered by (path, size, mtime) so a resync does not rehash gigabytes."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, int, int], str] = {}
        self._lock = threading.Lock()

    def digest(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 22):
                sha.update(chunk)
        value = f"sha256:{sha.hexdigest()}"
        with self._lock:
            self._known[key] = value
        return value
