"""The wheel stands alone: built from a clean copy of the tree, installed in a fresh venv outside
the checkout, its llorchd serves the demo pool from packaged files and its llorchctl talks to it.

On the way it is an upgrade: the checkout's llorchd starts the demo replica, leaves on SIGQUIT
(status 75, what the systemd unit restarts on), and the wheel's llorchd adopts the replica.
The cached llama-server is shared through LLORCH_CACHE, so nothing is rebuilt.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from llorch.daemon.wiring import DETACHED_EXIT_STATUS
from llorch.resources.version import package_version
from tests.e2e.conftest import BIN, free_port, wait_for

REPO = Path(__file__).resolve().parents[1]


def run(*command: str | Path, env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def clean_copy(into: Path) -> Path:
    """What a fresh clone holds: the files git tracks or would (links kept as links), no build/."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, dest = REPO / name, into / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet in the index
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            dest.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, dest)
    return into


@pytest.fixture
def daemons() -> Iterator[list[subprocess.Popen[bytes]]]:
    """llorchd processes this test starts, stopped (with their replicas) whatever happens."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)


@pytest.mark.slow
@pytest.mark.engine
@pytest.mark.timeout(900)
def test_the_wheel_serves_the_demo_pool_with_no_checkout(
    tmp_path: Path, llama_server_bin: Path, demo_model: Path, daemons: list[subprocess.Popen[bytes]]
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    cache = llama_server_bin.parents[3]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLORCH_", "PYTHON", "VIRTUAL_ENV"))}
    env |= {"LLORCH_CACHE": str(cache), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}

    # pip builds in an isolated environment with the setuptools pyproject.toml asks for.
    dist = tmp_path / "dist"
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        dist,
        clean_copy(tmp_path / "src"),
        env=env,
        cwd=outside,
    )
    (wheel,) = dist.glob("llorch-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, env=env, cwd=outside)
    run(venv / "bin" / "pip", "install", "-q", wheel, env=env, cwd=outside, timeout=600)
    imported = run(
        venv / "bin" / "python", "-c", "import llorch; print(llorch.__file__)", env=env, cwd=outside
    )
    assert Path(imported.strip()).is_relative_to(venv), "llorch comes from the wheel, not the checkout"
    assert run(venv / "bin" / "llorchd", "--version", env=env, cwd=outside) == (
        f"llorchd {package_version()} (API llorch.dev/v1)\n"
    )

    # The packaged starter settings and demo manifests.
    run(venv / "bin" / "llorchd", "init", env=env, cwd=outside)
    config = tmp_path / "xdg" / "llorch" / "llorch.yaml"
    assert sorted(p.name for p in config.with_name("manifests").iterdir()) == [
        "model-demo.yaml",
        "policy-default.yaml",
        "pool-demo-embed.yaml",
        "pool-demo.yaml",
    ]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = ["--config", str(config), "--bind", f"127.0.0.1:{port}", "--state", str(tmp_path / "state")]

    def start(llorchd: Path, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(llorchd), *serve], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=outside
            )
        daemons.append(proc)
        return proc

    def demo_replica() -> dict[str, object] | None:
        try:
            pool = httpx.get(f"{url}/v1/pools/demo", timeout=5).json()
        except httpx.HTTPError:
            return None
        ready = [r for r in pool.get("status", {}).get("replicaStatuses", []) if r.get("phase") == "Ready"]
        return ready[0] if ready else None

    old = start(BIN / "llorchd", tmp_path / "checkout.log")
    first = wait_for("the checkout's llorchd to start the demo replica", demo_replica, timeout=120)
    old.send_signal(signal.SIGQUIT)
    assert old.wait(60) == DETACHED_EXIT_STATUS
    assert psutil.pid_exists(int(str(first["pid"]))), "SIGQUIT left the replica serving"

    new = start(venv / "bin" / "llorchd", tmp_path / "wheel.log")
    adopted = wait_for("the wheel's llorchd to adopt it", demo_replica, timeout=120)
    assert (adopted["pid"], adopted["adopted"]) == (first["pid"], True)

    # The web UI comes from the wheel's package data, not from the checkout.
    page = httpx.get(f"{url}/ui/", timeout=5)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
    for name in ("app.js", "style.css"):
        assert (
            httpx.get(f"{url}/ui/{name}", timeout=5).content
            == (REPO / "llorch/api/webui" / name).read_bytes()
        )

    ctl = [str(venv / "bin" / "llorchctl"), "--server", url]
    pools = run(*ctl, "get", "pools", env=env, cwd=outside)
    assert pools.splitlines()[1].split()[:4] == ["demo", "tiny-llama", "llamacpp", "1/1"]
    reply = subprocess.run(
        [*ctl, "run", "demo", "Hello", "--max-tokens", "8"],
        capture_output=True,
        text=True,
        env=env,
        cwd=outside,
    )
    assert reply.returncode == 0 and "--- 8 tokens" in reply.stderr + reply.stdout, reply.stderr
    versions = run(*ctl, "version", env=env, cwd=outside).splitlines()
    assert versions[1].startswith(f"Server Version: {package_version()} (API llorch.dev/v1")
    run(*ctl, "doctor", env=env, cwd=outside)

    unit = run(venv / "bin" / "llorchd", "install-service", "--user", "--dry-run", env=env, cwd=outside)
    assert f"ExecStart={venv / 'bin' / 'llorchd'} --config %E/llorch/llorch.yaml" in unit
    if shutil.which("systemd-analyze"):
        (tmp_path / "llorchd.service").write_text(unit)
        (tmp_path / "runtime").mkdir(mode=0o700)
        checked = {**env, "XDG_RUNTIME_DIR": str(tmp_path / "runtime")}
        run("systemd-analyze", "--user", "verify", tmp_path / "llorchd.service", env=checked, cwd=outside)

    new.send_signal(signal.SIGTERM)
    assert new.wait(60) == 0
    assert not psutil.pid_exists(int(str(first["pid"]))), "SIGTERM stops the replicas too"
