"""Worker processes: spawn in their own process group, capture output, stop gracefully."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import psutil

from llorch.runtime import logfile
from llorch.runtime.errors import ProcessError

log = logging.getLogger("llorch.runtime")


def command_hash(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """Identifies what a worker runs, so a restarted daemon can tell its own workers apart."""
    digest = hashlib.sha256("\0".join(argv).encode())
    for key in sorted(env):
        digest.update(f"\0{key}={env[key]}".encode())
    return digest.hexdigest()[:16]


class Worker(Protocol):
    """What supervision needs of an engine process (a spawned one, an adopted one, a test double)."""

    pid: int
    log_path: Path
    started_at: float
    create_time: float
    adopted: bool
    stopping: bool

    @property
    def alive(self) -> bool: ...

    def exit_reason(self) -> str: ...

    def stop(self, grace: float) -> None: ...


ExitCallback = Callable[["Worker"], None]


class Processes(Protocol):
    """How controllers start, adopt and stop engine processes; injected, so a controller can be
    driven in tests with no process at all."""

    def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, on_exit: ExitCallback
    ) -> Worker: ...

    def adopt(
        self, *, pid: int, create_time: float, log_path: Path, started_at: float, on_exit: ExitCallback
    ) -> Worker | None: ...

    def stop_orphan(self, pid: int, create_time: float, grace: float) -> bool: ...


@dataclass
class WorkerProcess:
    """One engine process, spawned by this daemon or adopted from an earlier one."""

    pid: int
    argv: list[str]
    log_path: Path
    started_at: float
    create_time: float
    adopted: bool = False
    exited: threading.Event = field(default_factory=threading.Event)
    stopping: bool = False
    exit_code: int | None = None

    @property
    def alive(self) -> bool:
        return not self.exited.is_set()

    def exit_reason(self) -> str:
        if self.alive:
            return "running"
        code = self.exit_code
        if code is None:
            # Only a parent learns a child's exit status; an adopted worker's went to init.
            return "exited (status unknown: adopted from an earlier llorchd)"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exited with code {code}"

    def stop(self, grace: float) -> None:
        """SIGTERM the whole group, SIGKILL it after `grace` seconds; returns once it is gone."""
        self.stopping = True
        if not self.alive:
            return
        self._signal_group(signal.SIGTERM)
        if not self.exited.wait(grace):
            log.warning("worker pid %d ignored SIGTERM for %.1fs; killing", self.pid, grace)
            self._signal_group(signal.SIGKILL)
            self.exited.wait(5.0)

    def _signal_group(self, sig: signal.Signals) -> None:
        # The group may already be gone between the check and the kill; that is the goal anyway.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    on_exit: Callable[[WorkerProcess], None] | None = None,
) -> WorkerProcess:
    """Start `argv` in a new session (its own process group) with output appended to `log_path`.

    `on_exit` runs on a watcher thread when the process ends, so a crash is noticed at once
    instead of at the next probe.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        log_file.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log_file.flush()
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, **env},
                start_new_session=True,
            )
        except OSError as exc:
            raise ProcessError(f"cannot start {argv[0]}: {exc}") from exc
    try:
        create_time = psutil.Process(popen.pid).create_time()
    except psutil.Error:
        create_time = time.time()
    worker = WorkerProcess(
        pid=popen.pid, argv=list(argv), log_path=log_path, started_at=time.time(), create_time=create_time
    )
    _watch(worker, popen.wait, on_exit)
    return worker


def adopt(
    *,
    pid: int,
    create_time: float,
    argv: Sequence[str],
    log_path: Path,
    started_at: float,
    on_exit: Callable[[WorkerProcess], None] | None = None,
) -> WorkerProcess | None:
    """Take over a worker an earlier llorchd spawned, if that very process still runs.

    The create time guards against a recycled pid. Its output keeps going to the log file it
    inherited. None when the process is gone or is not the one recorded.
    """
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 1.0 or proc.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    worker = WorkerProcess(
        pid=pid,
        argv=list(argv),
        log_path=log_path,
        started_at=started_at,
        create_time=create_time,
        adopted=True,
    )
    _watch(worker, lambda: _wait_foreign(proc), on_exit)
    return worker


def _wait_foreign(proc: psutil.Process) -> None:
    # psutil polls for processes that are not our children; it cannot return their status.
    with contextlib.suppress(psutil.Error):
        proc.wait()


def _watch(
    worker: WorkerProcess, wait: Callable[[], int | None], on_exit: Callable[[WorkerProcess], None] | None
) -> None:
    def run() -> None:
        worker.exit_code = wait()
        worker.exited.set()
        if on_exit is not None:
            try:
                on_exit(worker)
            except Exception:
                log.exception("exit callback for pid %d failed", worker.pid)

    threading.Thread(target=run, name=f"watch-{worker.pid}", daemon=True).start()


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last lines of a worker's log, for status and `describe`."""
    return logfile.last_lines(path, lines)


def stop_orphan(pid: int, create_time: float, grace: float) -> bool:
    """Stop a worker an earlier daemon spawned, if that very process still runs.

    The create time guards against a recycled pid: a stranger's process is never signalled.
    Returns whether something was stopped.
    """
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - create_time) > 1.0:
            return False
        os.killpg(pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except psutil.TimeoutExpired:
            os.killpg(pid, signal.SIGKILL)
            proc.wait(5.0)
    except (psutil.Error, ProcessLookupError, PermissionError):
        return False
    return True


class LocalProcesses:
    """Real processes on this machine: `spawn`, `adopt` and `stop_orphan` above."""

    def spawn(
        self, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path, on_exit: ExitCallback
    ) -> Worker:
        return spawn(argv, env=env, log_path=log_path, on_exit=on_exit)

    def adopt(
        self, *, pid: int, create_time: float, log_path: Path, started_at: float, on_exit: ExitCallback
    ) -> Worker | None:
        return adopt(
            pid=pid,
            create_time=create_time,
            argv=[],
            log_path=log_path,
            started_at=started_at,
            on_exit=on_exit,
        )

    def stop_orphan(self, pid: int, create_time: float, grace: float) -> bool:
        return stop_orphan(pid, create_time, grace)
