"""Find or build the upstream `llama-server` binary, and fetch the llama.cpp source it is built from.

The source comes from the llama-cpp-python sdist on PyPI: it vendors llama.cpp's full tree at a
known commit, and pip can fetch it through whatever index the machine is configured for.
"""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from llorch.runtime.cache import cache_root
from llorch.runtime.errors import ProvisionError

LLAMA_CPP_PYTHON_VERSION = "0.3.36"

Log = Callable[[str], None]

_VENDOR_DIR = "vendor/llama.cpp"
BACKENDS = ("cpu", "cuda")
# What a cpu build of llama-server costs, measured; turned into wall minutes for the progress line.
_BUILD_CPU_MINUTES = 12
# Where the CUDA toolkit's installer puts nvcc when it is not on PATH.
TOOLKIT_NVCC = Path("/usr/local/cuda/bin/nvcc")
_LOG_TAIL_LINES = 20
# Build failures whose CMake message says little to someone who does not know llama.cpp's build.
BUILD_HINTS = (
    (
        "CUDA::cublas",
        "the CUDA toolkit found has nvcc but no cuBLAS (cublas_v2.h): install the whole toolkit "
        "(Debian: nvidia-cuda-toolkit; NVIDIA's packages: cuda-toolkit), not only the compiler",
    ),
)
_BUILD_COMMIT = f"llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION}"


@dataclass(frozen=True)
class Build:
    """What one llama-server build is made for. Each has its own cache folder (`key`), so a CUDA
    and a CPU build, or a native and a portable one, never stand in for each other."""

    backend: str = "cpu"
    native: bool = False
    """Tuned to this machine: `-march=native` on the CPU, and for CUDA only the GPUs present. The
    default is portable: ggml's AVX2/FMA/F16C baseline on x86-64 (Intel since 2013, AMD since
    2015), and CUDA code for the GPU generations llama.cpp lists, so the binary runs elsewhere too."""

    @property
    def key(self) -> str:
        return f"llama-server-{LLAMA_CPP_PYTHON_VERSION}-{self.backend}{'-native' if self.native else ''}"


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
    configured: Path | None = None,
    build: Build = Build(),
    cache: Path | None = None,
    *,
    use_path: bool = True,
) -> Path | None:
    """The binary to use: the configured one, else our cached build, else one on PATH (unless
    `use_path` is off), else None."""
    if configured is not None:
        if not _is_executable(configured):
            raise ProvisionError(f"configured llama-server {configured} does not exist or is not executable")
        return configured
    # Our own build beats PATH: a llama-server found on PATH is of unknown version and build flags,
    # while the cached one is exactly the source the engine adapter was written against.
    cached = cached_binary(cache or cache_root(), build)
    if _is_executable(cached):
        return cached
    on_path = shutil.which("llama-server") if use_path else None
    return Path(on_path) if on_path else None


def ensure_llama_server(
    configured: Path | None = None,
    build: Build = Build(),
    cache: Path | None = None,
    log: Log | None = None,
    *,
    use_path: bool = True,
) -> Path:
    """Like `find_llama_server`, but build the pinned source into the cache when nothing is found.

    `use_path=False` builds into the cache even when a llama-server is on PATH: what
    `llorchd provision` asks for, since one on PATH may lack the backend asked for."""
    _check_backend(build.backend)
    found = find_llama_server(configured, build, cache, use_path=use_path)
    if found is not None:
        return found
    root = cache or cache_root()
    waiting = f"another process is building llama-server; waiting for it (log: {_build_log(root, build)})"
    with _exclusive(root / "engines" / ".lock", on_wait=lambda: _say(log, waiting)):
        cached = cached_binary(root, build)
        if _is_executable(cached):  # a process holding the lock before us built it
            return cached
        _build(root, build, log)
    return cached


def cached_binary(cache: Path, build: Build) -> Path:
    """Where `build` lives in the cache (present or not)."""
    return cache / "engines" / build.key / "bin" / "llama-server"


def find_nvcc() -> Path | None:
    """The CUDA compiler a CUDA build uses: `$CUDACXX` (as CMake reads it), else `nvcc` on PATH,
    else the toolkit's default place."""
    explicit = os.environ.get("CUDACXX")
    if explicit:
        return Path(explicit) if _is_executable(Path(explicit)) else None
    on_path = shutil.which("nvcc")
    if on_path:
        return Path(on_path)
    return TOOLKIT_NVCC if _is_executable(TOOLKIT_NVCC) else None


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


def _say(log: Log | None, message: str) -> None:
    if log is not None:
        log(message)


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ProvisionError(f"unknown llama-server backend {backend!r}; known: {', '.join(BACKENDS)}")


def _build_log(cache: Path, build: Build) -> Path:
    return cache / "engines" / f"{build.key}.build.log"


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


def _build(cache: Path, build: Build, log: Log | None) -> None:
    # Checked before the download: without nvcc the CUDA build cannot start, and saying so now
    # beats a CMake error minutes later.
    nvcc = find_nvcc() if build.backend == "cuda" else None
    if build.backend == "cuda" and nvcc is None:
        raise ProvisionError(
            "the CUDA build of llama-server needs nvcc, and none was found ($CUDACXX, PATH, "
            f"{TOOLKIT_NVCC}): install NVIDIA's CUDA toolkit (Debian: nvidia-cuda-toolkit), "
            "or build for the CPU (engines.llamacpp.backend: cpu)"
        )
    src = llama_cpp_source(cache, log)
    engines = cache / "engines"
    # Kept after a failure so that a retry compiles only what is left; dropped after success.
    build_dir = engines / f"{build.key}.build"
    log_path = _build_log(cache, build)
    cores = os.cpu_count() or 1
    minutes = max(1, round(_BUILD_CPU_MINUTES / cores))
    how_long = (
        f"about {minutes} minutes on {cores} cores"
        if build.backend == "cpu"
        else f"far longer than the CPU build's {minutes} minutes on {cores} cores (CUDA kernels)"
    )
    _say(log, f"building {build.key} once, {how_long}; log: {log_path}")
    started = time.monotonic()
    with log_path.open("w") as log_file:
        _run_logged(configure_command(src, build_dir, build, nvcc), log_file, log_path)
        compile_ = ["cmake", "--build", str(build_dir), "--target", "llama-server", "-j", str(cores)]
        _run_logged(compile_, log_file, log_path)
    _install(build_dir / "bin" / "llama-server", engines / build.key)
    # The binary is linked statically against llama/ggml, so the build tree is no longer needed.
    shutil.rmtree(build_dir, ignore_errors=True)
    _say(log, f"built llama-server in {time.monotonic() - started:.0f}s")


def configure_command(src: Path, build_dir: Path, build: Build, nvcc: Path | None = None) -> list[str]:
    """The `cmake` configure line of `build` (what the build log's first line shows)."""
    cuda = ["-DGGML_CUDA=ON", f"-DCMAKE_CUDA_COMPILER={nvcc}"] if build.backend == "cuda" else []
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
        # ggml defaults to -march=native: a binary that dies with SIGILL on an older CPU. Native
        # only when asked for; then CUDA code too is built for the GPUs present only.
        f"-DGGML_NATIVE={'ON' if build.native else 'OFF'}",
        *cuda,
    ]


def _run_logged(cmd: list[str], log_file: TextIO, log_path: Path) -> None:
    print(f"$ {' '.join(cmd)}", file=log_file, flush=True)
    try:
        done = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, check=False)
    except OSError as exc:
        raise ProvisionError(f"could not run {cmd[0]} (is it installed?): {exc}") from exc
    if done.returncode != 0:
        text = log_path.read_text(errors="replace")
        hints = "".join(f"\nhint: {hint}" for needle, hint in BUILD_HINTS if needle in text)
        raise ProvisionError(
            f"{' '.join(cmd[:2])} failed (exit {done.returncode}); log: {log_path}\n{_tail(text)}{hints}"
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
