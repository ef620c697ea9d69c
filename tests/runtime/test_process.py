from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import psutil

from llorch.runtime.process import WorkerProcess, adopt, command_hash, spawn, stop_orphan, tail

PY = sys.executable


def test_worker_runs_in_its_own_process_group_and_logs(tmp_path: Path) -> None:
    worker = spawn(
        [PY, "-c", "print('hello from worker', flush=True); import time; time.sleep(30)"],
        env={},
        log_path=tmp_path / "w.log",
    )
    try:
        assert os.getpgid(worker.pid) == worker.pid != os.getpgid(0)
        deadline = time.monotonic() + 10
        while "hello from worker" not in "\n".join(tail(worker.log_path)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "hello from worker" in tail(worker.log_path)[-1]
    finally:
        worker.stop(grace=5)
    assert not worker.alive and worker.exit_reason() == "killed by SIGTERM"


def test_stop_kills_a_worker_that_ignores_sigterm(tmp_path: Path) -> None:
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)"
    )
    worker = spawn([PY, "-c", script], env={}, log_path=tmp_path / "w.log")
    deadline = time.monotonic() + 10
    while "ready" not in tail(worker.log_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop(grace=0.5)
    assert worker.exit_reason() == "killed by SIGKILL"


def test_exit_callback_reports_crashes(tmp_path: Path) -> None:
    seen = threading.Event()
    codes: list[int | None] = []

    def on_exit(exited: WorkerProcess) -> None:
        # The callback's own argument: the process may exit before spawn() has returned.
        codes.append(exited.exit_code)
        seen.set()

    worker = spawn([PY, "-c", "raise SystemExit(3)"], env={}, log_path=tmp_path / "w.log", on_exit=on_exit)
    assert seen.wait(10)
    assert codes == [3] and worker.exit_reason() == "exited with code 3"


def test_children_of_the_worker_stop_with_it(tmp_path: Path) -> None:
    script = (
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)"
    )
    worker = spawn([PY, "-c", script], env={}, log_path=tmp_path / "w.log")
    deadline = time.monotonic() + 10
    while not psutil.Process(worker.pid).children() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = psutil.Process(worker.pid).children()[0]
    worker.stop(grace=5)
    child.wait(5)
    assert not child.is_running()


def test_stop_orphan_checks_the_create_time(tmp_path: Path) -> None:
    worker = spawn([PY, "-c", "import time; time.sleep(60)"], env={}, log_path=tmp_path / "w.log")
    try:
        assert not stop_orphan(worker.pid, worker.create_time - 100, grace=1)
        assert worker.alive
        assert stop_orphan(worker.pid, worker.create_time, grace=5)
        assert worker.exited.wait(5)
    finally:
        worker.stop(grace=1)


def test_command_hash_depends_on_argv_and_env() -> None:
    assert command_hash(["a", "b"], {}) == command_hash(["a", "b"], {})
    assert command_hash(["a", "b"], {}) != command_hash(["a b"], {})
    assert command_hash(["a"], {"X": "1"}) != command_hash(["a"], {"X": "2"})


def test_adopt_takes_over_a_running_worker_and_notices_its_exit(tmp_path: Path) -> None:
    original = spawn([PY, "-c", "import time; time.sleep(60)"], env={}, log_path=tmp_path / "w.log")
    seen = threading.Event()
    adopted = adopt(
        pid=original.pid,
        create_time=original.create_time,
        argv=original.argv,
        log_path=original.log_path,
        started_at=original.started_at,
        on_exit=lambda _: seen.set(),
    )
    assert adopted is not None and adopted.adopted and adopted.alive
    assert (
        adopt(
            pid=original.pid,
            create_time=original.create_time + 50,
            argv=[],
            log_path=tmp_path / "x",
            started_at=0.0,
        )
        is None
    )
    adopted.stop(grace=5)
    assert seen.wait(10) and not adopted.alive
    assert "status unknown" in adopted.exit_reason()
