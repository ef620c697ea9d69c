"""Fetching weights into the cache: a URL resumed with Range after an interruption, or one file of a
Hugging Face repo through huggingface_hub; either checked against the Model's sha256 digest.

Each download runs on its own thread (`Downloads`): a reconcile only asks how far it got, so a
controller worker is never held for the minutes a large file takes, and status can show progress.
A file takes its final name only once it is whole and its digest matches, so a file at the final
name is always complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from llorch.resources import ModelSource
from llorch.resources.model import HuggingFaceSource
from llorch.runtime.errors import WeightsError

log = logging.getLogger("llorch.runtime")

# A connection that breaks is resumed at once; this many breaks in a row with no byte gained in
# between end the attempt (the partial file stays for the next one).
MAX_STALLED_ATTEMPTS = 5
RATE_WINDOW_SECONDS = 5.0
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")

Report = Callable[[int, int | None], None]
"""(bytes so far, total bytes when known)"""


class Canceled(Exception):
    """The download was called off (its Model was deleted, retired or changed)."""


def url_target(url: str, cache: Path) -> Path:
    """Where a URL's file lands: one folder per URL, the file keeps the URL's last segment."""
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "weights"
    return cache / "models" / "by-url" / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def huggingface_target(source: HuggingFaceSource, cache: Path) -> Path:
    """One folder per repo and revision (the revision as asked: `main` stays what it was when fetched)."""
    folder = f"{source.repo.replace('/', '--')}--{hashlib.sha256(source.revision.encode()).hexdigest()[:12]}"
    return cache / "models" / "huggingface" / folder / source.file


def sha256_file(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            sha.update(chunk)
    return f"sha256:{sha.hexdigest()}"


class Download(Protocol):
    target: Path

    def run(self, report: Report, canceled: threading.Event) -> str:
        """Fetch into `target`; returns its sha256 digest. Raises WeightsError or Canceled."""
        ...


def download_for(source: ModelSource, cache: Path, expected: str | None) -> Download | None:
    """The download behind `source`, None for weights that are not fetched (a path, a builtin)."""
    if source.url is not None:
        return UrlDownload(source.url, url_target(source.url, cache), expected=expected)
    if source.huggingface is not None:
        return HuggingFaceDownload(
            source.huggingface, huggingface_target(source.huggingface, cache), expected=expected
        )
    return None


def _check_digest(path: Path, expected: str | None, what: str) -> str:
    digest = sha256_file(path)
    if expected is not None and digest != expected:
        path.unlink(missing_ok=True)
        raise WeightsError(
            "DigestMismatch",
            f"{what} hashes to {digest}, the manifest expects {expected}; the file was removed",
        )
    return digest


class UrlDownload:
    """GET with `Range: bytes=N-` from where the partial file ends, `If-Range` with the validator the
    first answer gave (so a file changed on the server starts over instead of being spliced)."""

    def __init__(self, url: str, target: Path, *, expected: str | None, timeout: float = 30.0) -> None:
        self.url = url
        self.target = target
        self._expected = expected
        self._timeout = timeout
        self.partial = target.with_name(f".{target.name}.partial")
        self._validator = target.with_name(f".{target.name}.partial.validator")

    def run(self, report: Report, canceled: threading.Event) -> str:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        stalled = 0
        while True:
            before = self._size()
            try:
                total = self._attempt(report, canceled)
            except (httpx.TransportError, _Short) as exc:
                stalled = 0 if self._size() > before else stalled + 1
                if stalled >= MAX_STALLED_ATTEMPTS:
                    raise WeightsError("DownloadFailed", f"GET {self.url} failed: {exc}") from exc
                log.warning("download of %s broke at %d bytes (%s); resuming", self.url, self._size(), exc)
                time.sleep(min(2.0, 0.2 * stalled))
                continue
            if total is None or self._size() == total:
                break
        try:
            digest = _check_digest(self.partial, self._expected, self.url)
        finally:
            self._validator.unlink(missing_ok=True)
        os.replace(self.partial, self.target)
        return digest

    def _size(self) -> int:
        try:
            return self.partial.stat().st_size
        except FileNotFoundError:
            return 0

    def _attempt(self, report: Report, canceled: threading.Event) -> int | None:
        """One GET from where the partial file ends; the total size when the server said it."""
        offset = self._size()
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if self._validator.is_file():
                headers["If-Range"] = self._validator.read_text()
        with httpx.stream(
            "GET", self.url, headers=headers, follow_redirects=True, timeout=self._timeout
        ) as resp:
            if resp.status_code == 416 and offset:
                # Nothing past what we have: the partial file is the whole file.
                return offset
            if resp.status_code == 206:
                start, total = _content_range(resp.headers.get("Content-Range", ""))
                if start != offset:
                    raise WeightsError(
                        "DownloadFailed", f"GET {self.url} resumed at byte {start}, not {offset}"
                    )
                mode = "ab"
            elif resp.status_code == 200:
                # A server without Range support, or a file changed since (If-Range): from the start.
                offset, mode = 0, "wb"
                length = resp.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
                if validator:
                    self._validator.write_text(validator)
                else:
                    self._validator.unlink(missing_ok=True)
            else:
                raise WeightsError("DownloadFailed", f"GET {self.url} answered {resp.status_code}")
            report(offset, total)
            with open(self.partial, mode) as out:
                done = offset
                # As the bytes arrive, not in fixed chunks: a chunk still being filled when the
                # connection breaks would be lost, and the resume would start before it.
                for chunk in resp.iter_bytes():
                    if canceled.is_set():
                        raise Canceled(self.url)
                    out.write(chunk)
                    done += len(chunk)
                    report(done, total)
        if total is not None and self._size() < total:
            raise _Short(f"the connection closed at byte {self._size()} of {total}")
        return total


class _Short(Exception):
    """The answer ended before the size it announced."""


def _content_range(value: str) -> tuple[int, int | None]:
    match = _CONTENT_RANGE.fullmatch(value.strip())
    if match is None:
        raise WeightsError("DownloadFailed", f"a 206 answer with an unreadable Content-Range {value!r}")
    return int(match[1]), None if match[3] == "*" else int(match[3])


class HuggingFaceDownload:
    """huggingface_hub's `hf_hub_download` into the cache folder: its own resume after a broken
    connection, revision pinning, and the hub that `HF_ENDPOINT` names (read at each download, so
    a test or a mirror can point it elsewhere)."""

    def __init__(self, source: HuggingFaceSource, target: Path, *, expected: str | None) -> None:
        self.source = source
        self.target = target
        self._expected = expected

    def run(self, report: Report, canceled: threading.Event) -> str:
        from huggingface_hub import hf_hub_download

        folder = self._folder()
        folder.mkdir(parents=True, exist_ok=True)
        where = f"{self.source.repo}/{self.source.file}@{self.source.revision}"
        try:
            path = hf_hub_download(
                self.source.repo,
                self.source.file,
                revision=self.source.revision,
                local_dir=folder,
                cache_dir=folder / ".cache" / "hub",
                endpoint=os.environ.get("HF_ENDPOINT") or None,
                tqdm_class=_reporting_tqdm(report, canceled),
            )
        except Canceled:
            raise
        except Exception as exc:  # huggingface_hub raises its own, httpx2's and OSError; all mean "failed"
            raise WeightsError("DownloadFailed", f"Hugging Face {where}: {exc}") from exc
        assert isinstance(path, str)
        return _check_digest(Path(path), self._expected, where)

    def _folder(self) -> Path:
        depth = len(Path(self.source.file).parts)
        folder = self.target
        for _ in range(depth):
            folder = folder.parent
        return folder


def _reporting_tqdm(report: Report, canceled: threading.Event) -> type[Any]:
    """A tqdm class whose bars report bytes to `report` (and stop the download when canceled):
    huggingface_hub's hook for watching a download, whether or not its bars are shown."""
    from tqdm.auto import tqdm

    class Reporting(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            self._llorch_total = kwargs.get("total")
            self._llorch_done = int(kwargs.get("initial") or 0)
            super().__init__(*args, **kwargs)
            report(self._llorch_done, self._llorch_total)

        def update(self, n: float | None = 1) -> bool | None:
            if canceled.is_set():
                raise Canceled("huggingface download")
            self._llorch_done += int(n or 0)
            report(self._llorch_done, self._llorch_total)
            return super().update(n)  # type: ignore[no-any-return]

    return Reporting


@dataclass(frozen=True)
class Progress:
    downloaded_bytes: int
    total_bytes: int | None
    bytes_per_second: float | None


@dataclass(frozen=True)
class Done:
    path: Path
    digest: str | None
    """Computed while downloading; None for a file that was already there."""


@dataclass
class _Job:
    download: Download
    canceled: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int | None = None
    samples: deque[tuple[float, int]] = field(default_factory=deque)
    result: Done | WeightsError | None = None


class Downloads:
    """One thread per download, by target file; a reconcile polls with `poll`."""

    def __init__(
        self, *, on_progress: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """`on_progress(key)`: a download for `key` ended (its Model should be reconciled now)."""
        self._on_end = on_progress or (lambda key: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: dict[Path, _Job] = {}
        self._keys: dict[str, Path] = {}

    def poll(self, key: str, download: Download) -> Progress | Done | WeightsError:
        """How `key`'s download stands; starts it when nothing is running. A finished one is
        answered once (Done, or the error) and forgotten, so the next poll tries again."""
        with self._lock:
            previous = self._keys.get(key)
            if previous is not None and previous != download.target:
                self._cancel_locked(key)
            self._keys[key] = download.target
            job = self._jobs.get(download.target)
            if job is None:
                if download.target.is_file():
                    del self._keys[key]
                    return Done(download.target, None)
                job = _Job(download)
                self._jobs[download.target] = job
                threading.Thread(
                    target=self._run, args=(key, job), name=f"download {key}", daemon=True
                ).start()
            if job.result is not None:
                del self._jobs[download.target]
                del self._keys[key]
                return job.result
            return Progress(job.done, job.total, self._rate(job))

    def cancel(self, key: str) -> None:
        """Stop `key`'s download; the partial file stays, to be resumed."""
        with self._lock:
            self._cancel_locked(key)

    def _cancel_locked(self, key: str) -> None:
        target = self._keys.pop(key, None)
        job = self._jobs.pop(target, None) if target is not None else None
        if job is not None:
            job.canceled.set()

    def _rate(self, job: _Job) -> float | None:
        if len(job.samples) < 2:
            return None
        (t0, b0), (t1, b1) = job.samples[0], job.samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else None

    def _run(self, key: str, job: _Job) -> None:
        def report(done: int, total: int | None) -> None:
            now = self._clock()
            with self._lock:
                job.done, job.total = done, total
                job.samples.append((now, done))
                while job.samples and now - job.samples[0][0] > RATE_WINDOW_SECONDS:
                    job.samples.popleft()

        started = self._clock()
        try:
            digest = job.download.run(report, job.canceled)
            result: Done | WeightsError = Done(job.download.target, digest)
            log.info(
                "%s: downloaded %s (%d bytes in %.1fs)",
                key,
                job.download.target,
                job.done,
                self._clock() - started,
            )
        except Canceled:
            log.info("%s: download of %s canceled at %d bytes", key, job.download.target, job.done)
            return
        except WeightsError as exc:
            result = exc
        except OSError as exc:
            result = WeightsError("DownloadFailed", f"writing {job.download.target}: {exc}")
        with self._lock:
            job.result = result
        self._on_end(key)
