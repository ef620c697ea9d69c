"""Downloads over real loopback sockets: a URL resumed with Range after the connection breaks, a
wrong digest refused (and the file removed), and one file of a Hugging Face repo through
huggingface_hub pointed by HF_ENDPOINT at HubDouble."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from llorch.resources.model import HuggingFaceSource
from llorch.runtime.downloads import (
    Done,
    Downloads,
    HuggingFaceDownload,
    Progress,
    UrlDownload,
    huggingface_target,
    url_target,
)
from llorch.runtime.errors import WeightsError
from tests.runtime.hub_double import Revision, commit_of, hub_double
from tests.runtime.range_server import range_server


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def gguf(demo_model: Path) -> bytes:
    """The demo model's bytes (17 MB): a real GGUF file."""
    return demo_model.read_bytes()


def run(download: UrlDownload | HuggingFaceDownload) -> tuple[str, list[tuple[int, int | None]]]:
    reports: list[tuple[int, int | None]] = []
    digest = download.run(lambda done, total: reports.append((done, total)), threading.Event())
    return digest, reports


def test_an_interrupted_download_resumes_from_where_it_stopped(tmp_path: Path, gguf: bytes) -> None:
    with range_server({"m.gguf": gguf}) as server:
        url = f"{server.url}/m.gguf"
        server.cut_after = 5_000_000
        target = url_target(url, tmp_path)
        digest, reports = run(UrlDownload(url, target, expected=digest_of(gguf)))
    assert target.read_bytes() == gguf and digest == digest_of(gguf)
    assert server.ranges[0] is None
    assert server.ranges[1] == "bytes=5000000-", "the second GET asks only for what is missing"
    assert len(server.ranges) == 2
    assert reports[-1] == (len(gguf), len(gguf))
    assert [done for done, _ in reports] == sorted(done for done, _ in reports), "progress never goes back"
    assert not list(target.parent.glob(".*")), "no partial file or validator is left"


def test_a_partial_file_left_by_an_earlier_run_is_resumed(tmp_path: Path, gguf: bytes) -> None:
    with range_server({"m.gguf": gguf}) as server:
        url = f"{server.url}/m.gguf"
        target = url_target(url, tmp_path)
        first = UrlDownload(url, target, expected=None)
        server.cut_after = 3_000_000
        # Every retry of this run is cut too: it gives up and leaves its partial file.
        canceled = threading.Event()

        def cut_again(done: int, total: int | None) -> None:
            if done >= 3_000_000:
                canceled.set()

        with pytest.raises(Exception, match=r"m\.gguf"):
            first.run(cut_again, canceled)
        assert first.partial.stat().st_size == 3_000_000 and not target.exists()
        _, reports = run(UrlDownload(url, target, expected=digest_of(gguf)))
    assert server.ranges[-1] == "bytes=3000000-"
    assert reports[0] == (3_000_000, len(gguf)), "progress starts where the partial file ends"
    assert target.read_bytes() == gguf


def test_a_file_changed_on_the_server_starts_over(tmp_path: Path, gguf: bytes) -> None:
    with range_server({"m.gguf": gguf}) as server:
        url = f"{server.url}/m.gguf"
        target = url_target(url, tmp_path)
        download = UrlDownload(url, target, expected=None)
        download.partial.parent.mkdir(parents=True)
        download.partial.write_bytes(b"stale" * 1000)
        download.partial.with_name(download.partial.name + ".validator").write_text('"an-old-etag"')
        run(download)
    assert server.ranges == ["bytes=5000-"], "If-Range with the old ETag gets the whole file back"
    assert target.read_bytes() == gguf


def test_a_wrong_digest_is_refused_and_the_file_removed(tmp_path: Path, gguf: bytes) -> None:
    with range_server({"m.gguf": gguf}) as server:
        url = f"{server.url}/m.gguf"
        target = url_target(url, tmp_path)
        with pytest.raises(WeightsError) as caught:
            run(UrlDownload(url, target, expected="sha256:" + "0" * 64))
    assert caught.value.reason == "DigestMismatch"
    assert digest_of(gguf) in caught.value.message
    assert not target.exists() and not list(target.parent.iterdir()), "nothing of it is kept"


def test_a_missing_url_fails_with_the_status(tmp_path: Path) -> None:
    with range_server({}) as server, pytest.raises(WeightsError) as caught:
        run(UrlDownload(f"{server.url}/absent.gguf", tmp_path / "w" / "absent.gguf", expected=None))
    assert caught.value.reason == "DownloadFailed" and "404" in caught.value.message


def test_downloads_run_on_their_own_thread_and_report_progress(tmp_path: Path, gguf: bytes) -> None:
    ended: list[str] = []
    downloads = Downloads(on_progress=ended.append)
    with range_server({"m.gguf": gguf}) as server:
        server.bytes_per_chunk = 256 * 1024
        url = f"{server.url}/m.gguf"
        download = UrlDownload(url, url_target(url, tmp_path), expected=digest_of(gguf))
        first = downloads.poll("Model/m", download)
        assert isinstance(first, Progress)
        deadline = time.monotonic() + 30
        outcome = first
        while isinstance(outcome, Progress) and time.monotonic() < deadline:
            time.sleep(0.05)
            outcome = downloads.poll("Model/m", download)
    assert isinstance(outcome, Done) and outcome.digest == digest_of(gguf)
    assert ended == ["Model/m"]
    again = downloads.poll("Model/m", download)
    assert isinstance(again, Done) and again.digest is None, "a file already there is not fetched again"


HUB_FILE = "gguf/tiny-q8.gguf"


def test_a_hugging_face_file_comes_through_huggingface_hub(
    tmp_path: Path, gguf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinned = commit_of("v1")
    repos = {
        "acme/tiny": {"main": Revision(pinned, {HUB_FILE: gguf}), pinned: Revision(pinned, {HUB_FILE: gguf})}
    }
    with hub_double(repos) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        source = HuggingFaceSource(repo="acme/tiny", file=HUB_FILE, revision=pinned)
        target = huggingface_target(source, tmp_path)
        # huggingface_hub writes in 10 MiB chunks and resumes after the last one it wrote.
        hub.cut_after = 12_000_000
        digest, reports = run(HuggingFaceDownload(source, target, expected=digest_of(gguf)))
    assert target.read_bytes() == gguf and digest == digest_of(gguf)
    # huggingface_hub may also ask the hub for /api/agent-harnesses (its user-agent detection).
    paths = {path for _, path, _ in hub.seen if "/resolve/" in path}
    assert paths == {f"/acme/tiny/resolve/{pinned}/{HUB_FILE}"}, "the pinned revision is what is asked for"
    resumed = [wanted for method, _, wanted in hub.seen if method == "GET" and wanted]
    assert len(resumed) == 1 and resumed[0].startswith("bytes=") and resumed[0] != "bytes=0-", (
        "huggingface_hub resumed the broken download with Range"
    )
    assert reports[-1][0] == len(gguf)


def test_an_unknown_hugging_face_revision_fails_clearly(
    tmp_path: Path, gguf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with hub_double({"acme/tiny": {"main": Revision(commit_of("v1"), {HUB_FILE: gguf})}}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        source = HuggingFaceSource(repo="acme/tiny", file=HUB_FILE, revision="v9")
        with pytest.raises(WeightsError) as caught:
            run(HuggingFaceDownload(source, huggingface_target(source, tmp_path), expected=None))
    assert (
        caught.value.reason == "DownloadFailed" and "acme/tiny/gguf/tiny-q8.gguf@v9" in caught.value.message
    )


def test_a_hugging_face_file_with_the_wrong_digest_is_removed(
    tmp_path: Path, gguf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with hub_double({"acme/tiny": {"main": Revision(commit_of("v1"), {HUB_FILE: gguf})}}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        source = HuggingFaceSource(repo="acme/tiny", file=HUB_FILE)
        target = huggingface_target(source, tmp_path)
        with pytest.raises(WeightsError) as caught:
            run(HuggingFaceDownload(source, target, expected="sha256:" + "1" * 64))
    assert caught.value.reason == "DigestMismatch" and not target.exists()
