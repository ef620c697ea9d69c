"""kubectl's and Ollama's everyday commands, as the real `llorchctl` binary runs them against a real
llorchd and llama-server: logs, events, get -w, queue, completion, chat, and what a refusal says."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import subprocess
import threading
import time
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import (
    BIN,
    LONG_CONTEXT,
    LONG_CONTEXT_ARGS,
    REPO,
    Llorchd,
    free_port,
    wait_for,
    write_atomic,
)

pytestmark = [pytest.mark.engine, pytest.mark.slow]

LLORCHCTL = str(BIN / "llorchctl")


def apply_demo(llorchd: Llorchd, **spec: Any) -> None:
    llorchd.ctl("apply", "-f", str(REPO / "manifests" / "model-demo.yaml"))
    llorchd.write_pool(replicas=1, **spec)
    wait_for("the demo pool Ready", lambda: llorchd.ready_replicas() == 1, timeout=60)


def write_policy(llorchd: Llorchd, name: str, spec: dict[str, Any]) -> None:
    doc = {"apiVersion": "llorch.dev/v1", "kind": "Policy", "metadata": {"name": name}, "spec": spec}
    write_atomic(llorchd.manifests / f"policy-{name}.yaml", yaml.safe_dump(doc))
    wait_for(
        f"Policy/{name} loaded", lambda: llorchd.http.get(f"{llorchd.url}/v1/policies/{name}").is_success
    )


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("LLORCH_", "_LLORCHCTL"))}


class Follower:
    """A long-running llorchctl (`-f`, `-w`) whose output lines are collected as they come."""

    def __init__(self, llorchd: Llorchd, *args: str) -> None:
        self.proc = subprocess.Popen(
            [LLORCHCTL, "--server", llorchd.url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, what: str, match: str, timeout: float = 30) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if re.search(match, line)), None)

        return wait_for(what, found, timeout=timeout)

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a person stops `-f` or `-w`."""
        self.proc.send_signal(signal.SIGINT)
        _, stderr = self.proc.communicate(timeout=20)
        return self.proc.returncode, stderr


def test_logs_show_the_engine_output_and_follow_it(llorchd: Llorchd) -> None:
    apply_demo(llorchd)
    (replica,) = llorchd.pool()["status"]["replicaStatuses"]  # type: ignore[index]
    tail = llorchd.ctl("logs", "pool/demo", "--tail", "3").stdout
    named = llorchd.ctl("logs", "demo", "--replica", replica["id"], "--tail", "3").stdout
    whole = llorchd.ctl("logs", "pool/demo").stdout
    assert whole.startswith("--- ") and "llama-server" in whole.splitlines()[0], "the start line first"
    # The engine may write between the calls: each tail is 3 lines the whole log holds, in order.
    for last_three in (tail, named):
        assert len(last_three.splitlines()) == 3 and last_three in whole

    unknown = llorchctl_fails(llorchd, "logs", "pool/demo", "--replica", "demo-9")
    assert f"pool 'demo' has no replica 'demo-9'; its replicas: {replica['id']}" in unknown

    follower = Follower(llorchd, "logs", "pool/demo", "-f", "--tail", "1")
    try:
        wait_for("the follow's one line of the past", lambda: follower.lines)
        # llama-server logs each task it runs: one makes new lines appear in the follow.
        llorchd.stream({"pool": "demo", "prompt": "Hello", "max_tokens": 4})
        follower.wait_line("the task in the followed log", r"slot .*processing task")
    finally:
        code, stderr = follower.stop()
    assert code == 130 and "Traceback" not in stderr
    assert follower.lines[0] in llorchd.ctl("logs", "pool/demo").stdout
    assert not any(line.startswith("--- ") for line in follower.lines), "--tail 1: not the whole log"


def llorchctl_fails(llorchd: Llorchd, *args: str) -> str:
    result = llorchd.ctl(*args, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_events_and_get_watch_see_what_apply_changes(llorchd: Llorchd) -> None:
    apply_demo(llorchd)
    listed = llorchd.ctl("events", "--for", "pool/demo").stdout.splitlines()
    assert listed[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("Ready" in line and "Pool/demo" in line for line in listed[1:])

    pools = Follower(llorchd, "get", "pools", "-w")
    events = Follower(llorchd, "events", "-w", "--for", "pool/demo")
    try:
        pools.wait_line("the table", r"^demo\s+tiny-llama\s+llamacpp\s+1/1")
        events.wait_line("the events so far", r"Ready")
        seen = len(events.lines)
        pool = yaml.safe_load((llorchd.manifests / "pool-demo.yaml").read_text())
        pool["spec"]["replicas"] = 0
        changed = llorchd.manifests.parent / "scaled.yaml"
        changed.write_text(yaml.safe_dump(pool))
        assert "pool/demo configured" in llorchd.ctl("apply", "-f", str(changed)).stdout
        pools.wait_line("a row for the change", r"^demo\s+tiny-llama\s+llamacpp\s+\d/0")
        killing = events.wait_line("the scale-down's event", r"Killing\s+Pool/demo\s+stopping replica")
        assert events.lines.index(killing) >= seen
    finally:
        pools_code, pools_err = pools.stop()
        events_code, events_err = events.stop()
    assert pools.lines[0].split()[:4] == ["NAME", "MODEL", "ENGINE", "READY"]
    assert sum(1 for line in pools.lines if line.startswith("NAME")) == 1, "the header once"
    assert (pools_code, events_code) == (130, 130) and "Traceback" not in pools_err + events_err


def test_queue_lists_waiting_tasks_and_a_full_queue_says_which_rule(llorchd: Llorchd) -> None:
    write_policy(llorchd, "small-queue", {"admission": {"queueCapacity": 2}})
    apply_demo(llorchd, slots=1, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    # Greedy, the demo model never samples its end-of-text: the task holds the slot for minutes.
    hold = {"pool": "demo", "prompt": "Go on", "max_tokens": LONG_CONTEXT - 100, "temperature": 0}
    holder = llorchd.http.post(llorchd.url + "/v1/tasks", json=hold).json()["task_id"]
    submitted = [holder]
    try:
        wait_for("the slot taken", lambda: llorchd.get(f"/v1/tasks/{holder}")["state"] == "running")
        for extra in ({"priority": "batch"}, {"session_id": "q-session"}):
            answer = llorchd.http.post(llorchd.url + "/v1/tasks", json={**hold, **extra})
            assert answer.status_code == 202, answer.text
            submitted.append(answer.json()["task_id"])
        table = llorchd.ctl("queue", "demo").stdout.splitlines()
        assert table[0].split() == ["POOL", "POS", "TASK", "PRIORITY", "STARTS", "IN", "AGE", "SESSION"]
        rows = [line.split() for line in table[1:]]
        # The interactive task goes before the batch one that came first.
        assert [(r[1], r[2], r[3], r[-1]) for r in rows] == [
            ("0", submitted[2], "interactive", "q-session"),
            ("1", submitted[1], "batch", "<none>"),
        ]
        assert all(re.fullmatch(r"now|~\d+[smh]", r[4]) for r in rows), rows
        every_pool = [line.split()[2] for line in llorchd.ctl("queue").stdout.splitlines()[1:]]
        assert every_pool == [submitted[2], submitted[1]]

        refused = llorchd.ctl("run", "demo", "one too many", check=False)
        assert refused.returncode == 1
        assert "(ADMISSION_REJECT); retry after" in refused.stderr
        assert "  policy:  Policy/small-queue\n" in refused.stderr
        assert "  rule:    admission.queueCapacity\n" in refused.stderr
        assert "  change:  raise spec.admission.queueCapacity" in refused.stderr
    finally:
        for task_id in submitted:
            llorchd.http.post(f"{llorchd.url}/v1/tasks/{task_id}/cancel")
    assert "No tasks queued." in llorchd.ctl("queue", "demo").stderr


def complete(server: str, line: str) -> str:
    """What bash completion offers at the end of `line`, as click's bash script asks for it."""
    words = line.split(" ")
    env = {
        **clean_env(),
        "_LLORCHCTL_COMPLETE": "bash_complete",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(words) - 1),
    }
    result = subprocess.run(
        [LLORCHCTL], env={**env, "LLORCH_URL": server}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stdout


def test_completion_scripts_and_names_from_the_server(llorchd: Llorchd) -> None:
    llorchd.ctl("apply", "-f", str(REPO / "manifests" / "model-demo.yaml"))
    llorchd.write_pool(replicas=0)
    wait_for("Pool/demo listed", lambda: llorchd.pool() is not None)
    for shell, marker in (
        ("bash", "complete -o nosort -F"),
        ("zsh", "#compdef llorchctl"),
        ("fish", "complete"),
    ):
        script = llorchd.ctl("completion", shell).stdout
        assert "_LLORCHCTL_COMPLETE" in script and marker in script, shell

    assert complete(llorchd.url, "llorchctl logs pool/d") == "plain,pool/demo\n"
    assert complete(llorchd.url, "llorchctl chat ") == "plain,demo\n"
    assert complete(llorchd.url, "llorchctl get models ") == "plain,tiny-llama\n"
    assert complete(llorchd.url, "llorchctl run --model t") == "plain,tiny-llama\n"
    assert "plain,pools" in complete(llorchd.url, "llorchctl get po")
    # An llorchd that cannot be reached completes nothing, silently.
    assert complete(f"http://127.0.0.1:{free_port()}", "llorchctl logs pool/").strip() == ""


def test_chat_with_piped_stdin_is_one_turn_and_the_budget_refusal_says_what_to_change(
    llorchd: Llorchd,
) -> None:
    write_policy(llorchd, "one-turn", {"sessions": {"maxTurns": 1}, "budgets": {"tokens": 400}})
    apply_demo(llorchd)
    args = ("chat", "demo", "--max-tokens", "8", "--seed", "3", "--session", "piped-1")
    first = llorchd.ctl(*args, input_="Hello there")
    assert first.stdout.strip(), "the reply"
    assert "turn 1/1" in first.stderr and "tokens left" in first.stderr
    session = llorchd.get("/v1/sessions/piped-1")
    assert session["turns"] == 1 and session["tokens_budget_remaining"] < 400

    refused = llorchd.ctl(*args, input_="And again", check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "cannot take another turn: it has had its 1 turns (BUDGET_EXCEEDED)" in refused.stderr
    assert "  policy:  Policy/one-turn\n" in refused.stderr
    assert "  rule:    sessions.maxTurns\n" in refused.stderr
    assert "  change:  raise spec.sessions.maxTurns" in refused.stderr


class Terminal:
    """llorchctl on a pseudo-terminal, typed at as a person would."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(argv[0], argv, clean_env())
        self.seen = b""

    def _drain(self, timeout: float) -> bool:
        """Read what the terminal shows within `timeout`; False once the child closed it."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                self.seen += os.read(self.fd, 4096)
            except OSError:
                return False
        return True

    def read_until(self, pattern: bytes, timeout: float = 60) -> bytes:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.seen):
            left = deadline - time.monotonic()
            if left <= 0 or not self._drain(left):
                raise AssertionError(f"no {pattern!r} on the terminal; it shows:\n{self.seen.decode()}")
        return self.seen

    def type(self, text: bytes) -> None:
        os.write(self.fd, text)

    def interrupt_until(self, pattern: bytes, tries: int = 10) -> None:
        """Ctrl-C until `pattern` shows. CPython's readline takes a SIGINT only while it waits in
        select(): one that lands while it redraws the line is held until the next interrupts it,
        and both then count as one Ctrl-C. No person types fast enough to meet that; a test does."""
        for _ in range(tries):
            self.type(b"\x03")
            with contextlib.suppress(AssertionError):
                self.read_until(pattern, timeout=3)
                return
        raise AssertionError(
            f"no {pattern!r} after {tries} Ctrl-C; the terminal shows:\n{self.seen.decode()}"
        )

    def close(self) -> None:
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            if os.waitpid(self.pid, os.WNOHANG)[0] == 0:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
        os.close(self.fd)

    def exit_code(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                return os.waitstatus_to_exitcode(status)
            self._drain(0.2)
        raise AssertionError(f"llorchctl did not exit; the terminal shows:\n{self.seen.decode()}")


def test_chat_on_a_terminal_ctrl_c_cancels_the_reply_not_the_session(llorchd: Llorchd) -> None:
    apply_demo(llorchd, slots=1, context=LONG_CONTEXT, engineArgs=LONG_CONTEXT_ARGS)
    term = Terminal(
        # Greedy, the reply goes on until it is stopped (see the queue test).
        [
            LLORCHCTL,
            "--server",
            llorchd.url,
            "chat",
            "demo",
            "--temperature",
            "0",
            "--max-tokens",
            str(LONG_CONTEXT - 200),
        ]
    )
    try:
        banner = term.read_until(rb">>> ")
        session_id = re.search(rb"session (\S+) on pool demo", banner)
        assert session_id is not None, banner
        term.type(b"Tell me a long story\n")
        # Wait for the reply to be streaming: some of its text after the typed line.
        term.read_until(rb"Tell me a long story\r?\n.{40,}", timeout=60)
        term.type(b"\x03")
        shown = term.read_until(rb"canceled task (\S+); the session goes on")
        canceled = re.search(rb"canceled task (\S+);", shown)
        assert canceled is not None
        task = llorchd.get(f"/v1/tasks/{canceled[1].decode()}")
        assert task["state"] == "canceled"
        session = llorchd.get(f"/v1/sessions/{session_id[1].decode()}")
        assert session["session_id"] == session_id[1].decode(), "the session is still there"
        term.read_until(rb"goes on\r?\n(.|\r|\n)*>>> ")
        term.type(b"/bye\n")
        assert term.exit_code() == 0
    finally:
        term.close()

    again = Terminal([LLORCHCTL, "--server", llorchd.url, "chat", "demo"])
    try:
        again.read_until(rb">>> ")
        again.interrupt_until(rb"Ctrl-C again, /bye or Ctrl-D to leave\)\r?\n>>> ")
        again.interrupt_until(rb"leave\)\r?\n>>> \r?\n$")
        assert again.exit_code() == 0, "a second Ctrl-C at the prompt leaves"
    finally:
        again.close()
