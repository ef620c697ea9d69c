"""Tests for llorch.runtime.provision: where llama-server is found, how it is built, and that it runs."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llorch.runtime import provision
from llorch.runtime.demo_model import ensure_demo_model
from llorch.runtime.errors import ProvisionError
from llorch.runtime.provision import (
    LLAMA_CPP_PYTHON_VERSION,
    Build,
    configure_command,
    ensure_llama_server,
    find_llama_server,
    find_nvcc,
    llama_cpp_source,
    llama_server_version,
)

ENGINE_DIR = f"llama-server-{LLAMA_CPP_PYTHON_VERSION}-cpu"

# Stands in for cmake: logs its arguments, and on `--build <dir>` takes a moment and leaves a
# llama-server script in <dir>/bin, which is all that ensure_llama_server needs from a build.
FAKE_CMAKE = """#!/bin/sh
echo "$@" >> "$FAKE_CMAKE_CALLS"
if [ -n "$FAKE_CMAKE_FAIL" ]; then echo "boom: $FAKE_CMAKE_FAIL"; exit 2; fi
if [ "$1" = "--build" ]; then
  sleep 0.5
  mkdir -p "$2/bin"
  printf '#!/bin/sh\\necho "version: 42 (fake)" >&2\\n' > "$2/bin/llama-server"
  chmod +x "$2/bin/llama-server"
fi
"""


def _script(path: Path, body: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    path.chmod(0o755)
    return path


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def path_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder that is the whole PATH (plus the system's, for sh and friends) during the test."""
    bin_dir = tmp_path / "path-bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    if shutil.which("llama-server"):  # bin_dir is still empty, so this one is the system's
        pytest.skip("a llama-server in /usr/bin or /bin would shadow the test's PATH")
    return bin_dir


def _cached(cache: Path, key: str = "cpu") -> Path:
    return cache / "engines" / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}-{key}" / "bin" / "llama-server"


def test_configured_beats_cache_and_path(tmp_path: Path, cache: Path, path_dir: Path) -> None:
    configured = _script(tmp_path / "mine" / "llama-server")
    _script(_cached(cache))
    _script(path_dir / "llama-server")
    assert find_llama_server(configured, cache=cache) == configured


def test_cache_beats_path(cache: Path, path_dir: Path) -> None:
    cached = _script(_cached(cache))
    _script(path_dir / "llama-server")
    assert find_llama_server(cache=cache) == cached


def test_path_is_the_last_resort(cache: Path, path_dir: Path) -> None:
    on_path = _script(path_dir / "llama-server")
    assert find_llama_server(cache=cache) == on_path


def test_nothing_found_gives_none(cache: Path, path_dir: Path) -> None:
    assert find_llama_server(cache=cache) is None


def test_cache_is_per_backend_and_per_native(cache: Path, path_dir: Path) -> None:
    _script(_cached(cache, "cpu"))
    assert find_llama_server(build=Build("cuda"), cache=cache) is None
    assert find_llama_server(build=Build("cpu", native=True), cache=cache) is None
    assert [Build("cuda").key, Build("cuda", native=True).key] == [
        f"llama-server-{LLAMA_CPP_PYTHON_VERSION}-cuda",
        f"llama-server-{LLAMA_CPP_PYTHON_VERSION}-cuda-native",
    ]


def test_configured_but_missing_raises_naming_it(tmp_path: Path, cache: Path, path_dir: Path) -> None:
    missing = tmp_path / "nowhere" / "llama-server"
    _script(_cached(cache))
    with pytest.raises(ProvisionError, match=re.escape(str(missing))):
        find_llama_server(missing, cache=cache)


def test_configured_but_not_executable_raises(tmp_path: Path, cache: Path) -> None:
    plain = tmp_path / "llama-server"
    plain.write_text("not a program")
    with pytest.raises(ProvisionError, match=re.escape(str(plain))):
        find_llama_server(plain, cache=cache)


def test_ensure_returns_a_found_binary_without_building(cache: Path, path_dir: Path) -> None:
    cached = _script(_cached(cache))
    assert ensure_llama_server(cache=cache) == cached
    assert not (cache / "engines" / f"{ENGINE_DIR}.build.log").exists()


def test_ensure_rejects_unknown_backend(cache: Path) -> None:
    with pytest.raises(ProvisionError, match="rocm"):
        ensure_llama_server(build=Build("rocm"), cache=cache)


@pytest.fixture
def fake_cmake(cache: Path, path_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cmake on PATH that builds instantly, and a source folder so nothing is downloaded."""
    (cache / "src" / f"llama.cpp-{LLAMA_CPP_PYTHON_VERSION}").mkdir(parents=True)
    _script(path_dir / "cmake", FAKE_CMAKE)
    calls = cache.parent / "cmake-calls.txt"
    monkeypatch.setenv("FAKE_CMAKE_CALLS", str(calls))
    return calls


def test_concurrent_ensures_build_once(cache: Path, fake_cmake: Path) -> None:
    results: list[Path] = []

    def ensure() -> None:
        results.append(ensure_llama_server(cache=cache))

    threads = [threading.Thread(target=ensure) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert results == [_cached(cache), _cached(cache)]
    calls = fake_cmake.read_text().splitlines()
    assert len(calls) == 2, calls  # one configure, one build
    assert "-DBUILD_SHARED_LIBS=OFF" in calls[0].split()
    build_dir = cache / "engines" / f"{ENGINE_DIR}.build"
    assert calls[1].split()[:4] == ["--build", str(build_dir), "--target", "llama-server"]
    assert llama_server_version(_cached(cache)) == "42 (fake)"
    assert not build_dir.exists()  # the build tree is dropped once installed


def test_the_default_build_is_portable_and_native_is_asked_for(cache: Path, fake_cmake: Path) -> None:
    assert ensure_llama_server(cache=cache) == _cached(cache, "cpu")
    assert ensure_llama_server(build=Build(native=True), cache=cache) == _cached(cache, "cpu-native")
    portable, native = (line.split() for line in fake_cmake.read_text().splitlines()[::2])
    assert "-DGGML_NATIVE=OFF" in portable and "-DGGML_NATIVE=ON" not in portable
    assert "-DGGML_NATIVE=ON" in native
    assert not any("CUDA" in flag for flag in portable + native)


def test_cuda_backend_configures_cuda_with_the_nvcc_found(
    cache: Path, fake_cmake: Path, path_dir: Path
) -> None:
    # A stand-in nvcc: the build is fake_cmake's, so only the path handed to CMake matters.
    nvcc = _script(path_dir / "nvcc")
    assert find_nvcc() == nvcc
    binary = ensure_llama_server(build=Build("cuda"), cache=cache)
    assert binary == _cached(cache, "cuda")
    configure = fake_cmake.read_text().splitlines()[0].split()
    assert {"-DGGML_CUDA=ON", f"-DCMAKE_CUDA_COMPILER={nvcc}", "-DGGML_NATIVE=OFF"} <= set(configure)


def test_cudacxx_names_the_compiler(tmp_path: Path, path_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _script(path_dir / "nvcc")
    chosen = _script(tmp_path / "cuda-12.4" / "bin" / "nvcc")
    monkeypatch.setenv("CUDACXX", str(chosen))
    assert find_nvcc() == chosen
    monkeypatch.setenv("CUDACXX", str(tmp_path / "absent"))
    assert find_nvcc() is None


def test_cuda_without_nvcc_says_what_to_install_before_any_download(
    cache: Path, path_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUDACXX", raising=False)
    monkeypatch.setattr(provision, "TOOLKIT_NVCC", cache / "no-toolkit" / "nvcc")
    with pytest.raises(ProvisionError, match=r"needs nvcc.*CUDA toolkit"):
        ensure_llama_server(build=Build("cuda"), cache=cache)
    assert not (cache / "src").exists(), "nothing is downloaded for a build that cannot start"


def test_provision_builds_into_the_cache_over_one_on_path(
    cache: Path, fake_cmake: Path, path_dir: Path
) -> None:
    on_path = _script(path_dir / "llama-server")
    assert ensure_llama_server(cache=cache) == on_path
    assert ensure_llama_server(cache=cache, use_path=False) == _cached(cache)


def test_failed_build_raises_with_log_path_and_tail(
    cache: Path, fake_cmake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CMAKE_FAIL", "no compiler")
    with pytest.raises(ProvisionError) as raised:
        ensure_llama_server(cache=cache)
    log_path = cache / "engines" / f"{ENGINE_DIR}.build.log"
    assert str(log_path) in str(raised.value)
    assert "boom: no compiler" in str(raised.value)
    assert "boom: no compiler" in log_path.read_text()
    assert find_llama_server(cache=cache) is None


@pytest.mark.slow
def test_real_cmake_takes_the_cuda_configure_line(tmp_path: Path) -> None:
    """The CUDA line against the real CMake, nvcc and llama.cpp source, configured but never
    compiled: CMake either accepts it (GGML_CUDA on, portable GPU targets including the 3090 and
    3060's 86) or fails in a way the build's hints name."""
    nvcc = find_nvcc()
    if nvcc is None or shutil.which("cmake") is None:
        pytest.skip("no nvcc or no cmake on this machine: the CUDA configure cannot run")
    build_dir = tmp_path / "cuda.build"
    done = subprocess.run(
        configure_command(llama_cpp_source(), build_dir, Build("cuda"), nvcc),
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = done.stdout + done.stderr
    if done.returncode != 0:
        assert any(needle in log for needle, _ in provision.BUILD_HINTS), log[-3000:]
        return
    cached = (build_dir / "CMakeCache.txt").read_text()
    assert "GGML_CUDA:BOOL=ON" in cached and "GGML_NATIVE:BOOL=OFF" in cached
    assert re.search(r"CMAKE_CUDA_ARCHITECTURES=\S*86-real", log), log


@pytest.mark.parametrize("stream", [">&2", ""])
def test_version_is_read_from_either_stream(tmp_path: Path, stream: str) -> None:
    binary = _script(tmp_path / "llama-server", f'#!/bin/sh\necho "version: 7 (abc1234)" {stream}\n')
    assert llama_server_version(binary) == "7 (abc1234)"


def test_version_missing_raises(tmp_path: Path) -> None:
    binary = _script(tmp_path / "llama-server", "#!/bin/sh\necho hello\n")
    with pytest.raises(ProvisionError, match="no version line"):
        llama_server_version(binary)


# --- the real binary, built into the real cache on first use (minutes) ---


@pytest.fixture(scope="module")
def real_binary() -> Path:
    return ensure_llama_server(log=print)


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_real_binary_reports_a_version(real_binary: Path) -> None:
    version = llama_server_version(real_binary)
    assert version.endswith(f"(build 0, commit llama-cpp-python-{LLAMA_CPP_PYTHON_VERSION})"), version


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_real_binary_needs_no_libraries_from_the_build_tree(real_binary: Path) -> None:
    libs = subprocess.run(["ldd", str(real_binary)], capture_output=True, text=True, check=True).stdout
    assert "not found" not in libs
    assert "libllama" not in libs
    assert "libggml" not in libs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served_demo_model(real_binary: Path, tmp_path: Path) -> Iterator[str]:
    """llama-server running the demo model on a free loopback port; yields its base URL."""
    port = _free_port()
    cmd = [str(real_binary), "-m", str(ensure_demo_model()), "-c", "512"]
    cmd += ["--port", str(port), "--host", "127.0.0.1"]
    log_path = tmp_path / "llama-server.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, log_path)
        yield url
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"llama-server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"llama-server not healthy after 60s:\n{log_path.read_text()[-3000:]}")


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_real_binary_generates_with_the_demo_model(served_demo_model: str) -> None:
    body = {"prompt": "Hello", "n_predict": 8, "seed": 1, "temperature": 0}
    reply = httpx.post(f"{served_demo_model}/completion", json=body, timeout=60)
    assert reply.status_code == 200, reply.text
    assert reply.json()["tokens_predicted"] == 8
