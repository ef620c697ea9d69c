"""Find or build the upstream `llama-server` binary, and fetch the llama.cpp source it is built from.

The source comes from the llama-cpp-python sdist on PyPI: it vendors llama.cpp's full tree at a
known commit, and pip can fetch it through whatever index the machine is configured for.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from llorch.runtime.cache import cache_root
from llorch.runtime.errors import ProvisionError

LLAMA_CPP_PYTHON_VERSION = "0.3.36"

Log = Callable[[str], None]

_VENDOR_DIR = "vendor/llama.cpp"
_BACKEND_FLAGS: dict[str, list[str]] = {"cpu": [], "cuda": ["-DGGML_CUDA=ON"]}
# What a cpu build of llama-server costs, measured; turned into wall minutes for the progress line.
_BUILD_CPU_MINUTES = 12
_LOG_TAIL_LINES = 20
_BUILD_COMMIT = f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}"


def llama_cpp_source(cache: Path | None = None, log: Log | None = None) -> Path:
    """The extracted `vendor/llama.cpp` tree of the pinned sdist, downloaded on first use."""
    src_root = (cache or cache_root()) / "src"
    dest = src_root / f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}"
    if dest.is_dir():
        return dest
    with _exclusive(src_root / ".lock"):
        if not dest.is_dir():  # another process may have fetched it while we waited
            _fetch_source(src_root, dest, log)
    return dest


def find_llama_server(
    configured: Path | None = None, backend: str = "cpu", cache: Path | None = None
) -> Path | None:
    """The binary to use: the configured one, else our cached build, else one on PATH, else None."""
    if configured is not None:
        if not _is_executable(configured):
            raise ProvisionError(f"configured llama-server {configured} does not exist or is not executable")
        return configured
    # Our own build beats PATH: a llama-server found on PATH is of unknown version and build flags,
    # while the cached one is exactly the source the engine adapter was written against.
    cached = _cached_binary(cache or cache_root(), backend)
    if _is_executable(cached):
        return cached
    on_path = shutil.which("llama-server")
    return Path(on_path) if on_path else None


def ensure_llama_server(
    configured: Path | None = None, backend: str = "cpu", cache: Path | None = None, log: Log | None = None
) -> Path:
    """Like `find_llama_server`, but build the pinned source into the cache when nothing is found."""
    _check_backend(backend)
    found = find_llama_server(configured, backend, cache)
    if found is not None:
        return found
    root = cache or cache_root()
    waiting = f"another process is building llama-server; waiting for it (log: {_build_log(root, backend)})"
    with _exclusive(root / "engines" / ".lock", on_wait=lambda: _say(log, waiting)):
        cached = _cached_binary(root, backend)
        if _is_executable(cached):  # a process holding the lock before us built it
            return cached
        _build(root, backend, log)
    return cached


def llama_server_version(binary: Path) -> str:
    """What `binary --version` reports, e.g. `0.5.0-dev (build 0, commit llama-cpp-python-0.3.36)`."""
    try:
        done = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ProvisionError(f"could not run {binary} --version: {exc}") from exc
    # llama-server prints its version on stderr; read both streams so a change upstream does not matter.
    output = done.stdout + "\n" + done.stderr
    match = re.search(r"^version:\s*(.+)$", output, re.MULTILINE)
    if match is None:
        raise ProvisionError(f"{binary} --version printed no version line: {output.strip()[:500]}")
    return match.group(1).strip()


def main(argv: list[str] | None = None) -> int:
    """`python -m llorch.runtime.provision`: make sure the engine binary and the demo model exist."""
    # demo_model imports this module for the tokenizer source, so it is imported here, not on top.
    from llorch.runtime.demo_model import ensure_demo_model

    parser = argparse.ArgumentParser(description="Build or find llama-server and the demo model.")
    parser.add_argument("--backend", choices=sorted(_BACKEND_FLAGS), default="cpu")
    args = parser.parse_args(argv)
    try:
        binary = ensure_llama_server(backend=args.backend, log=_to_stderr)
        model = ensure_demo_model(log=_to_stderr)
    except ProvisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"llama-server: {binary} ({llama_server_version(binary)})")
    print(f"demo-model: {model}")
    return 0


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _say(log: Log | None, message: str) -> None:
    if log is not None:
        log(message)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _check_backend(backend: str) -> None:
    if backend not in _BACKEND_FLAGS:
        raise ProvisionError(f"unknown llama-server backend {backend!r}; known: {', '.join(_BACKEND_FLAGS)}")


def _engine_name(backend: str) -> str:
    return f"llama-server-{LLAMA_CPP_PYTHON_VERSION}-{backend}"


def _cached_binary(cache: Path, backend: str) -> Path:
    return cache / "engines" / _engine_name(backend) / "bin" / "llama-server"


def _build_log(cache: Path, backend: str) -> Path:
    return cache / "engines" / f"{_engine_name(backend)}.build.log"


@contextmanager
def _exclusive(lock_path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold an exclusive flock on `lock_path`; others block until it is released (`on_wait` first)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield  # closing the handle releases the lock, also if the process dies


def _fetch_source(src_root: Path, dest: Path, log: Log | None) -> None:
    _say(log, f"downloading llama-cpp-python {LLAMA_CPP_PYTHON_VERSION} sdist for the llama.cpp source")
    with tempfile.TemporaryDirectory(prefix=".download-", dir=src_root) as download_dir:
        sdist = _download_sdist(Path(download_dir))
        _extract_vendor_tree(sdist, dest)


def _download_sdist(into: Path) -> Path:
    spec = f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
    # Only this package must come as an sdist: `:all:` would also force pip to build the
    # build backend (scikit-build-core, cmake, ninja) from source just to read metadata.
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", "llama-cpp-python"]
    cmd = [*pip, spec, "-d", str(into)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ProvisionError(f"pip download {spec} failed (exit {done.returncode}):\n{_tail(done.stderr)}")
    archives = sorted(into.glob("*.tar.gz"))
    if len(archives) != 1:
        raise ProvisionError(f"pip download {spec} left {len(archives)} archives in {into}, expected one")
    return archives[0]


def _extract_vendor_tree(sdist: Path, dest: Path) -> None:
    """Extract only `<top>/vendor/llama.cpp/**` and move it to `dest` in one rename."""
    # Staging next to `dest` keeps the rename on one filesystem, so it is atomic: a crash leaves
    # a stray staging folder, never a half-filled `dest` that later calls would trust.
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
    try:
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if _in_vendor_tree(m.name)]
            if not members:
                raise ProvisionError(f"{sdist.name} has no {_VENDOR_DIR} folder")
            tar.extractall(staging, members=members, filter="data")
        top = members[0].name.split("/", 1)[0]
        os.rename(staging / top / _VENDOR_DIR, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _in_vendor_tree(member_name: str) -> bool:
    parts = member_name.split("/", 1)
    return len(parts) == 2 and parts[1].startswith(_VENDOR_DIR + "/")


def _build(cache: Path, backend: str, log: Log | None) -> None:
    src = llama_cpp_source(cache, log)
    engines = cache / "engines"
    # Kept after a failure so that a retry compiles only what is left; dropped after success.
    build_dir = engines / f"{_engine_name(backend)}.build"
    log_path = _build_log(cache, backend)
    cores = os.cpu_count() or 1
    minutes = max(1, round(_BUILD_CPU_MINUTES / cores))
    _say(
        log,
        f"building llama-server {LLAMA_CPP_PYTHON_VERSION} ({backend}) once, "
        f"about {minutes} minutes on {cores} cores; log: {log_path}",
    )
    started = time.monotonic()
    with log_path.open("w") as log_file:
        _run_logged(_configure_command(src, build_dir, backend), log_file, log_path)
        build = ["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", str(cores)]
        _run_logged(build, log_file, log_path)
    _install(build_dir / "bin" / "llama-server", engines / _engine_name(backend))
    # The binary is linked statically against llama/ggml, so the build tree is no longer needed.
    shutil.rmtree(build_dir, ignore_errors=True)
    _say(log, f"built llama-server in {time.monotonic() - started:.0f}s")


def _configure_command(src: Path, build_dir: Path, backend: str) -> list[str]:
    return [
        "cmake",
        "-B",
        str(build_dir),
        "-S",
        str(src),
        "-DCMAKE_BUILD_TYPE=Release",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_OPENSSL=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        # Static llama/ggml: the cached binary must run after the build tree and its .so files are gone.
        "-DBUILD_SHARED_LIBS=OFF",
        # The sdist has no .git, so `--version` would say "commit unknown", or worse, name the commit
        # of whatever repository the cache happens to sit in; name the pinned source instead.
        f"-DLLAMA_BUILD_COMMIT={_BUILD_COMMIT}",
        *_BACKEND_FLAGS[backend],
    ]


def _run_logged(cmd: list[str], log_file: TextIO, log_path: Path) -> None:
    print(f"$ {' '.join(cmd)}", file=log_file, flush=True)
    try:
        done = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, check=False)
    except OSError as exc:
        raise ProvisionError(f"could not run {cmd[0]} (is it installed?): {exc}") from exc
    if done.returncode != 0:
        raise ProvisionError(
            f"{' '.join(cmd[:2])} failed (exit {done.returncode}); log: {log_path}\n"
            f"{_tail(log_path.read_text(errors='replace'))}"
        )


def _install(built: Path, engine_dir: Path) -> None:
    """Copy the built binary to `engine_dir/bin/` so that `engine_dir` appears complete or not at all."""
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=engine_dir.parent))
    try:
        (staging / "bin").mkdir()
        shutil.copy2(built, staging / "bin" / "llama-server")
        staging.chmod(0o755)  # mkdtemp makes it private; other users may run the engine too
        # We hold the lock and found no binary, so an existing folder is a broken leftover.
        shutil.rmtree(engine_dir, ignore_errors=True)
        os.rename(staging, engine_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])


if __name__ == "__main__":
    raise SystemExit(main())


# What each engine's launcher is called where its own packages install it.
LAUNCHERS = {"vllm": "vllm", "tgi": "text-generation-launcher", "triton": "tritonserver"}


def find_engine(engine: str, configured: Path | None = None) -> Path:
    """The launcher of an engine llorch does not build (vLLM, TGI, Triton): configured, else PATH."""
    if configured is not None:
        if not (configured.is_file() and os.access(configured, os.X_OK)):
            raise ProvisionError(f"{engine} launcher {configured} does not exist or is not executable")
        return configured
    name = LAUNCHERS[engine]
    found = shutil.which(name)
    if found is None:
        raise ProvisionError(
            f"{engine} is not installed here: put `{name}` on PATH or set engines.{engine}.binary "
            "(or run it yourself and give the pool an endpoint)"
        )
    return Path(found)
