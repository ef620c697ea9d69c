"""Model weights on disk: the file behind a local source, and files' digests."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from llorch.resources import Builtin, ModelSource
from llorch.runtime.demo_model import ensure_demo_model
from llorch.runtime.errors import WeightsError


def resolve_local(source: ModelSource, *, base_dir: Path, cache: Path) -> Path:
    """The file behind a source that is not downloaded (a path, a builtin llorch generates)."""
    if source.builtin is not None:
        if source.builtin is Builtin.TINY_LLAMA:
            return ensure_demo_model(cache)
        raise WeightsError("UnknownBuiltin", f"no builtin model {source.builtin!r}")
    assert source.path is not None, "url and huggingface sources are downloads (runtime/downloads.py)"
    path = Path(os.path.expandvars(os.path.expanduser(source.path)))
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise WeightsError("NotFound", f"weights file {path} does not exist")
    return path


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
        self.remember(path, value)
        return value

    def remember(self, path: Path, digest: str) -> None:
        """A digest computed elsewhere (while downloading), so the file is not hashed twice."""
        stat = path.stat()
        with self._lock:
            self._known[(str(path), stat.st_size, stat.st_mtime_ns)] = digest

    def forget(self, path: Path) -> None:
        """Hash `path` afresh next time (a verification asked for)."""
        with self._lock:
            self._known = {key: value for key, value in self._known.items() if key[0] != str(path)}
