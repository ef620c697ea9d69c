"""Streaming benchmark: llorch against the same `llama-server` run directly.

Both sides run the cached `llama-server` with the tiny demo model, the same slots and context:

* native: the direct `llama-server` streamed through its `/completion` endpoint, against `llorchd`
  (one Pool of one replica) through `POST /v1/tasks` and the task's SSE stream;
* chat: OpenAI's streaming `POST /v1/chat/completions` (with `stream_options.include_usage`),
  sent to the direct `llama-server` and to llorchd, which relays it to its replica.

For each concurrency level, N threads (each with its own httpx.Client) run `--requests` sequential
completions; the two sides are measured one after the other, never at the same time. The table
shows medians and p99s, a llorch/direct ratio row, and the whole result goes to
`bench/results/streaming-<UTC timestamp>.json` (llorchd's log lands next to it).

    .venv/bin/python bench/streaming.py [--quick] [--levels 1,8,32] [--requests 4] [--max-tokens 64]
                                        [--paths chat,native]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import psutil
from httpx_sse import EventSource

from llorch.runtime.demo_model import ensure_demo_model
from llorch.runtime.engines.llamacpp import cpu_thread_args
from llorch.runtime.provision import ensure_llama_server, llama_server_version

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LLORCHD = ROOT / ".venv" / "bin" / "llorchd"

PROMPT = "Once upon a time, in a small village by the sea, there lived an old fisherman who"
SEED = 1234
TEMPERATURE = 0.8
POOL = "bench"
STARTUP_TIMEOUT_S = 180.0
REQUEST_TIMEOUT = httpx.Timeout(30.0, read=300.0)
# Warm-up completions per side and path before anything is recorded: on the 2-core test machine
# llorchd's first few requests after its replica turned ready answered 35-50 ms later than the
# ones after them (7-15 ms), which a level of 4 requests would otherwise measure.
WARMUP_REQUESTS = 8
STOP_GRACE_S = 30.0  # llorchd stops its replicas within its own grace period; this is the outer bound


@dataclass
class Sample:
    """One completion as a client saw it."""

    side: str
    stream: int
    seq: int
    ok: bool
    ttft_ms: float | None = None
    tokens: int = 0
    total_s: float = 0.0
    admission_ms: float | None = None
    reported_tokens: int | None = None  # what the server said at the end (tokens_predicted / tokens_out)
    finish_reason: str | None = None
    queue_position: int | None = None
    stream_open_ms: float | None = None  # llorch: when the SSE response headers arrived, from the POST's send
    started_ms: float | None = None  # llorch: when the `started` frame arrived
    server: dict[str, Any] = field(default_factory=dict)  # the server's own timings, as it reported them
    error: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Summary:
    side: str
    level: int
    requests: int
    errors: int
    ttft_p50_ms: float | None
    ttft_p99_ms: float | None
    tok_s_stream: float | None
    tok_s_total: float | None
    admission_p50_ms: float | None
    admission_p99_ms: float | None
    tokens: int
    wall_s: float
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds each process spent on the level


# --- small helpers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(what: str, check: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode}; log tail:\n{tail(log)}")
        if check():
            return
        time.sleep(0.25)
    raise RuntimeError(f"{what}: not ready after {STARTUP_TIMEOUT_S:.0f} s; log tail:\n{tail(log)}")


def stop(proc: subprocess.Popen[bytes] | None, sig: signal.Signals, name: str) -> int | None:
    """Signal, wait, kill after the grace period; the exit status (negative: killed by that signal)."""
    if proc is None:
        return None
    if proc.poll() is not None:
        return proc.returncode
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        print(f"bench: {name} did not stop within {STOP_GRACE_S:.0f} s; killing it", file=sys.stderr)
        proc.kill()
        proc.wait(timeout=10)
    return proc.returncode


# --- the two servers ---------------------------------------------------------------------------


@dataclass
class Servers:
    direct_url: str
    llorch_url: str
    llorchd_log: Path
    direct_log: Path
    direct_pid: int
    llorchd_pid: int

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) so far: direct llama-server, llorchd, its replica(s), this bench."""
        out = {"direct": _cpu(self.direct_pid), "llorchd": _cpu(self.llorchd_pid), "replica": 0.0}
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.llorchd_pid).children(recursive=True):
                out["replica"] += _cpu(child.pid)
        out["bench"] = _cpu(os.getpid())
        return out


def _cpu(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


@contextlib.contextmanager
def servers(
    binary: Path,
    model: Path,
    slots: int,
    ctx: int,
    engine_args: list[str],
    workdir: Path,
    exits: dict[str, int | None],
) -> Iterator[Servers]:
    """Start the direct llama-server and llorchd (one pool, one replica); always stop both.

    Their exit statuses land in `exits`.
    """
    direct: subprocess.Popen[bytes] | None = None
    llorchd: subprocess.Popen[bytes] | None = None
    direct_log = workdir / "llama-server-direct.log"
    llorchd_log = workdir / "llorchd.log"
    try:
        port = free_port()
        argv = [
            str(binary),
            "--model", str(model),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--ctx-size", str(slots * ctx),
            "--parallel", str(slots),
            "--n-gpu-layers", "0",
            # What llorch starts a completion pool's replicas with (the model's own chat template).
            "--jinja",
            # The threads llorch gives a CPU replica (unless --engine-args sets them), so both
            # sides decode alike and the ratios measure llorch alone.
            *cpu_thread_args(engine_args),
            "--no-webui",
            *engine_args,
        ]  # fmt: skip
        with direct_log.open("wb") as out:
            # A session of its own: a Ctrl-C reaches only us, and we stop the children in order.
            direct = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        direct_url = f"http://127.0.0.1:{port}"
        wait_until("direct llama-server", lambda: _status(f"{direct_url}/health") == 200, direct, direct_log)

        manifests = workdir / "manifests"
        manifests.mkdir()
        (manifests / "model.yaml").write_text(
            "apiVersion: llorch.dev/v1\nkind: Model\nmetadata:\n  name: tiny-llama\n"
            "spec:\n  source:\n    builtin: tiny-llama\n"
        )
        (manifests / "pool.yaml").write_text(
            f"apiVersion: llorch.dev/v1\nkind: Pool\nmetadata:\n  name: {POOL}\n"
            f"spec:\n  model: tiny-llama\n  engine: llamacpp\n  replicas: 1\n"
            f"  slots: {slots}\n  context: {ctx}\n  engineArgs: {json.dumps(engine_args)}\n"
        )
        lport = free_port()
        cmd = [
            str(LLORCHD),
            "--state", str(workdir / "state"),
            "--bind", f"127.0.0.1:{lport}",
            "--manifests", str(manifests),
            "--log-format", "text",
        ]  # fmt: skip
        with llorchd_log.open("wb") as out:
            # cwd = workdir: no llorch.yaml from wherever the bench was started gets picked up.
            llorchd = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True
            )
        llorch_url = f"http://127.0.0.1:{lport}"
        wait_until("llorchd pool bench", lambda: _ready_replicas(llorch_url) == 1, llorchd, llorchd_log)
        yield Servers(direct_url, llorch_url, llorchd_log, direct_log, direct.pid, llorchd.pid)
    finally:
        exits["llorchd"] = stop(llorchd, signal.SIGTERM, "llorchd")
        exits["llama-server"] = stop(direct, signal.SIGTERM, "llama-server")


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2.0, trust_env=False).status_code
    except httpx.HTTPError:
        return None


def _ready_replicas(base: str) -> int | None:
    try:
        resp = httpx.get(f"{base}/v1/pools/{POOL}", timeout=2.0, trust_env=False)
        if resp.status_code != 200:
            return None
        return int((resp.json().get("status") or {}).get("readyReplicas") or 0)
    except (httpx.HTTPError, ValueError):
        return None


# --- one completion per side -------------------------------------------------------------------


def run_direct(client: httpx.Client, base: str, max_tokens: int, stream: int, seq: int) -> Sample:
    sample = Sample("direct", stream, seq, ok=False)
    body = {
        "prompt": PROMPT,
        "n_predict": max_tokens,
        "stream": True,
        "seed": SEED,
        "temperature": TEMPERATURE,
    }
    t0 = time.perf_counter()
    try:
        with client.stream("POST", f"{base}/completion", json=body) as resp:
            if resp.status_code != 200:
                resp.read()
                sample.error = f"HTTP {resp.status_code}: {resp.text[:300]}"
                return sample
            for sse in EventSource(resp).iter_sse():
                if not sse.data:
                    continue
                chunk = json.loads(sse.data)
                if "error" in chunk:
                    sample.error = f"error chunk: {json.dumps(chunk)[:300]}"
                    return sample
                tokens = chunk.get("tokens") or []
                if tokens:
                    if sample.ttft_ms is None:
                        sample.ttft_ms = (time.perf_counter() - t0) * 1000
                    sample.tokens += len(tokens)
                if chunk.get("stop"):
                    sample.server = dict(chunk.get("timings") or {})
                    sample.reported_tokens = chunk.get("tokens_predicted")
                    sample.finish_reason = chunk.get("stop_type")
                    sample.ok = True
                    break
            else:
                sample.error = "stream ended without a stop chunk"
    except (httpx.HTTPError, ValueError) as exc:
        sample.error = f"{type(exc).__name__}: {exc}"
    finally:
        sample.total_s = time.perf_counter() - t0
    if sample.reported_tokens is not None and sample.reported_tokens != sample.tokens:
        sample.notes.append(
            f"chunks carried {sample.tokens} token(s), tokens_predicted={sample.reported_tokens}"
        )
    return sample


def run_llorch(client: httpx.Client, base: str, max_tokens: int, stream: int, seq: int) -> Sample:
    sample = Sample("llorch", stream, seq, ok=False)
    body = {
        "pool": POOL,
        "prompt": PROMPT,
        "max_tokens": max_tokens,
        "seed": SEED,
        "temperature": TEMPERATURE,
    }
    t0 = time.perf_counter()
    try:
        resp = client.post(f"{base}/v1/tasks", json=body)
        sample.admission_ms = (time.perf_counter() - t0) * 1000
        if resp.status_code != 202:
            sample.error = f"POST /v1/tasks HTTP {resp.status_code}: {resp.text[:300]}"
            return sample
        admitted = resp.json()
        sample.queue_position = admitted.get("queue_position")
        url = admitted["streams"]["sse"]
        next_index = 0
        with client.stream("GET", f"{base}{url}") as events:
            sample.stream_open_ms = (time.perf_counter() - t0) * 1000
            if events.status_code != 200:
                events.read()
                sample.error = f"GET {url} HTTP {events.status_code}: {events.text[:300]}"
                return sample
            for sse in EventSource(events).iter_sse():
                if sse.event == "token":
                    if sample.ttft_ms is None:
                        sample.ttft_ms = (time.perf_counter() - t0) * 1000
                    index = json.loads(sse.data).get("i")
                    if index != next_index and len(sample.notes) < 5:
                        sample.notes.append(f"token frame i={index}, expected {next_index}")
                    next_index = (index if isinstance(index, int) else next_index) + 1
                    sample.tokens += 1
                elif sse.event == "started":
                    sample.started_ms = (time.perf_counter() - t0) * 1000
                elif sse.event == "end":
                    end = json.loads(sse.data)
                    sample.server = {k: v for k, v in end.items() if k != "tokens_out"}
                    sample.reported_tokens = end.get("tokens_out")
                    sample.finish_reason = end.get("finish_reason")
                    sample.ok = True
                    break
                elif sse.event == "error":
                    sample.error = f"error frame: {sse.data[:300]}"
                    return sample
            else:
                sample.error = "stream ended without an end frame"
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        sample.error = f"{type(exc).__name__}: {exc}"
    finally:
        sample.total_s = time.perf_counter() - t0
    if sample.reported_tokens is not None and sample.reported_tokens != sample.tokens:
        sample.notes.append(
            f"received {sample.tokens} token frame(s), end says tokens_out={sample.reported_tokens}"
        )
    return sample


def run_chat(side: str, model: str | None) -> Callable[[httpx.Client, str, int, int, int], Sample]:
    """OpenAI's streaming chat on `side`; `model` names llorch's pool (the direct server needs none)."""

    def run(client: httpx.Client, base: str, max_tokens: int, stream: int, seq: int) -> Sample:
        sample = Sample(side, stream, seq, ok=False)
        body: dict[str, Any] = {
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            "seed": SEED,
            "temperature": TEMPERATURE,
        }
        if model is not None:
            body["model"] = model
        t0 = time.perf_counter()
        try:
            with client.stream("POST", f"{base}/v1/chat/completions", json=body) as resp:
                sample.stream_open_ms = (time.perf_counter() - t0) * 1000
                if resp.status_code != 200:
                    resp.read()
                    sample.error = f"HTTP {resp.status_code}: {resp.text[:300]}"
                    return sample
                for sse in EventSource(resp).iter_sse():
                    if sse.data == "[DONE]":
                        sample.ok = sample.finish_reason is not None
                        break
                    chunk = json.loads(sse.data)
                    if "error" in chunk:
                        sample.error = f"error chunk: {json.dumps(chunk)[:300]}"
                        return sample
                    if isinstance(chunk.get("usage"), dict):
                        sample.reported_tokens = chunk["usage"].get("completion_tokens")
                    for choice in chunk.get("choices") or ():
                        if (choice.get("delta") or {}).get("content"):
                            if sample.ttft_ms is None:
                                sample.ttft_ms = (time.perf_counter() - t0) * 1000
                            sample.tokens += 1
                        if choice.get("finish_reason"):
                            sample.finish_reason = choice["finish_reason"]
                if not sample.ok and sample.error is None:
                    sample.error = "stream ended without a finish and [DONE]"
        except (httpx.HTTPError, ValueError) as exc:
            sample.error = f"{type(exc).__name__}: {exc}"
        finally:
            sample.total_s = time.perf_counter() - t0
        return sample

    return run


Runner = Callable[[httpx.Client, str, int, int, int], Sample]
# Each compared path: its direct runner and its llorch runner.
PATHS: dict[str, tuple[Runner, Runner]] = {
    "chat": (run_chat("direct", None), run_chat("llorch", POOL)),
    "native": (run_direct, run_llorch),
}


def run_level(
    runner: Runner, base: str, level: int, requests: int, max_tokens: int
) -> tuple[list[Sample], float]:
    """`level` threads, each with its own client, `requests` sequential completions each."""
    results: list[list[Sample]] = [[] for _ in range(level)]
    clients = [httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False) for _ in range(level)]
    barrier = threading.Barrier(level + 1)
    stopping = threading.Event()

    def worker(n: int) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait()
        for seq in range(requests):
            if stopping.is_set():
                return
            try:
                results[n].append(runner(clients[n], base, max_tokens, n, seq))
            except Exception as exc:  # a bench bug must not hang the level
                results[n].append(Sample("?", n, seq, ok=False, error=f"bench: {exc!r}"))

    threads = [
        threading.Thread(target=worker, args=(n,), daemon=True, name=f"stream-{n}") for n in range(level)
    ]
    try:
        for thread in threads:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        for thread in threads:
            while thread.is_alive():  # join in slices so Ctrl-C reaches the main thread
                thread.join(0.5)
    except BaseException:
        # Interrupted: no new requests, drop the open streams and connections, so that the
        # servers see their clients go away and can stop promptly.
        stopping.set()
        barrier.abort()
        for client in clients:
            client.close()
        for thread in threads:
            thread.join(5.0)
        raise
    finally:
        for client in clients:
            client.close()
    wall = time.perf_counter() - start
    return [s for per_stream in results for s in per_stream], wall


def summarize(side: str, level: int, samples: list[Sample], wall: float) -> Summary:
    ok = [s for s in samples if s.ok]
    ttfts = [s.ttft_ms for s in ok if s.ttft_ms is not None]
    rates = [
        s.tokens / (s.total_s - s.ttft_ms / 1000)
        for s in ok
        if s.ttft_ms is not None and s.tokens > 0 and s.total_s > s.ttft_ms / 1000
    ]
    admissions = [s.admission_ms for s in samples if s.admission_ms is not None]
    tokens = sum(s.tokens for s in samples)
    return Summary(
        side=side,
        level=level,
        requests=len(samples),
        errors=len(samples) - len(ok),
        ttft_p50_ms=percentile(ttfts, 50),
        ttft_p99_ms=percentile(ttfts, 99),
        tok_s_stream=statistics.median(rates) if rates else None,
        tok_s_total=tokens / wall if wall > 0 else None,
        admission_p50_ms=percentile(admissions, 50),
        admission_p99_ms=percentile(admissions, 99),
        tokens=tokens,
        wall_s=wall,
    )


# --- report ------------------------------------------------------------------------------------

COLUMNS = (
    "ttft_p50_ms",
    "ttft_p99_ms",
    "tok_s_stream",
    "tok_s_total",
    "admission_p50_ms",
    "admission_p99_ms",
)
HEADER = (
    "level",
    "side",
    "TTFT p50 ms",
    "TTFT p99 ms",
    "tok/s/stream",
    "tok/s total",
    "adm p50 ms",
    "adm p99 ms",
    "err",
)


def _fmt(value: float | int | None, ratio: bool = False) -> str:
    if value is None:
        return "-"
    if ratio:
        return f"{value:.2f}x"
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def table(summaries: list[tuple[Summary, Summary]]) -> str:
    rows: list[tuple[str, ...]] = [HEADER]
    for direct, llorch in summaries:
        for s in (direct, llorch):
            rows.append((str(s.level), s.side, *(_fmt(getattr(s, c)) for c in COLUMNS), str(s.errors)))
        ratios: list[str] = []
        for c in COLUMNS:
            a, b = getattr(llorch, c), getattr(direct, c)
            ratios.append(_fmt(a / b, ratio=True) if a is not None and b else "-")
        rows.append((str(direct.level), "llorch/direct", *ratios, ""))
        deltas: list[str] = []
        for c in COLUMNS:
            a, b = getattr(llorch, c), getattr(direct, c)
            deltas.append(f"{a - b:+.1f}" if c.endswith("_ms") and a is not None and b is not None else "")
        rows.append((str(direct.level), "llorch-direct ms", *deltas, ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.rjust(w) if i > 1 else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def problems(samples: list[Sample]) -> list[str]:
    found = []
    for s in samples:
        if s.error:
            found.append(f"{s.side} stream {s.stream} request {s.seq}: {s.error}")
        for note in s.notes:
            found.append(f"{s.side} stream {s.stream} request {s.seq}: {note}")
    return found


def log_findings(log: Path, limit: int = 40) -> list[str]:
    """Warning, error and traceback lines from llorchd's log: evidence for the report."""
    hits = []
    with contextlib.suppress(OSError):
        for line in log.read_text(errors="replace").splitlines():
            if any(word in line for word in ("ERROR", "WARNING", "Traceback", "CRITICAL", "Exception")):
                hits.append(line[:400])
    return hits[:limit]


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", default="1,8,32", help="concurrent streams per level (default 1,8,32)")
    parser.add_argument(
        "--requests", type=int, default=4, help="sequential completions per stream (default 4)"
    )
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per completion (default 64)")
    parser.add_argument("--slots", type=int, default=4, help="parallel slots on both sides (default 4)")
    parser.add_argument("--ctx", type=int, default=1024, help="context tokens per slot (default 1024)")
    parser.add_argument("--quick", action="store_true", help="levels 1,8 and 2 requests each: a sanity check")
    parser.add_argument(
        "--paths",
        default="chat,native",
        help="what to compare: chat (OpenAI streaming chat, relayed) and/or native (/completion vs "
        "/v1/tasks); default both",
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help=f"where the JSON and logs go (default {RESULTS})"
    )
    parser.add_argument(
        "--engine-args",
        default="",
        help="extra llama-server arguments for both sides, e.g. '--threads 1' (default none)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.levels, args.requests = "1,8", 2
    try:
        args.level_list = [int(x) for x in str(args.levels).split(",") if x.strip()]
    except ValueError:
        parser.error(f"--levels must be comma-separated integers, got {args.levels!r}")
    if not args.level_list or min(args.level_list) < 1 or args.requests < 1 or args.max_tokens < 1:
        parser.error("levels, --requests and --max-tokens must be positive")
    args.path_list = [p.strip() for p in str(args.paths).split(",") if p.strip()]
    if not args.path_list or not set(args.path_list) <= set(PATHS):
        parser.error(f"--paths takes {', '.join(PATHS)}, got {args.paths!r}")
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Also when started in the background (where SIGINT arrives ignored): every stop cleans up.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    binary = ensure_llama_server(log=lambda m: print(f"provision: {m}", file=sys.stderr))
    model = ensure_demo_model()
    version = llama_server_version(binary)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results.mkdir(parents=True, exist_ok=True)
    out_path = args.results / f"streaming-{stamp}.json"
    print(
        f"llama-server {version}; model {model.name}; slots {args.slots} x ctx {args.ctx}; "
        f"engine args {args.engine_args or 'none'}; "
        f"levels {args.level_list}, {args.requests} request(s)/stream, {args.max_tokens} tokens",
        flush=True,
    )

    workdir = Path(tempfile.mkdtemp(prefix="llorch-bench-"))
    summaries: list[tuple[str, Summary, Summary]] = []
    raw: list[dict[str, Any]] = []
    all_samples: list[Sample] = []
    status = "ok"
    log_lines: list[str] = []
    exits: dict[str, int | None] = {}
    try:
        with servers(
            binary, model, args.slots, args.ctx, shlex.split(args.engine_args), workdir, exits
        ) as srv:
            # Unrecorded completions per side and path: model pages, prompt cache and connections
            # warm, and llorchd past the work it does right after its replica became ready.
            with httpx.Client(timeout=REQUEST_TIMEOUT, trust_env=False) as client:
                for path in args.path_list:
                    direct_runner, llorch_runner = PATHS[path]
                    for name, runner, base in (
                        ("direct", direct_runner, srv.direct_url),
                        ("llorch", llorch_runner, srv.llorch_url),
                    ):
                        for _ in range(WARMUP_REQUESTS):
                            warm = runner(client, base, args.max_tokens, -1, 0)
                            if not warm.ok:
                                raise RuntimeError(f"warm-up of {path} against {name} failed: {warm.error}")
            for path, level in ((p, n) for p in args.path_list for n in args.level_list):
                pair: list[Summary] = []
                direct_runner, llorch_runner = PATHS[path]
                for side, runner, base in (
                    ("direct", direct_runner, srv.direct_url),
                    ("llorch", llorch_runner, srv.llorch_url),
                ):
                    print(f"{path} level {level}: {side} ...", end=" ", flush=True)
                    before = srv.cpu()
                    samples, wall = run_level(runner, base, level, args.requests, args.max_tokens)
                    after = srv.cpu()
                    summary = summarize(side, level, samples, wall)
                    summary.cpu_s = {k: round(after[k] - before[k], 3) for k in after}
                    cpu = ", ".join(f"{k} {v:.2f}" for k, v in summary.cpu_s.items())
                    print(
                        f"{wall:.1f} s, {summary.tokens} tokens, {summary.errors} error(s); cpu s: {cpu}",
                        flush=True,
                    )
                    pair.append(summary)
                    all_samples.extend(samples)
                    raw.append(
                        {
                            "path": path,
                            "level": level,
                            "side": side,
                            "wall_s": wall,
                            "samples": [asdict(s) for s in samples],
                        }
                    )
                summaries.append((path, pair[0], pair[1]))
            log_lines = log_findings(srv.llorchd_log)
    except KeyboardInterrupt:
        status = "interrupted"
        print("\nbench: interrupted; stopping servers", file=sys.stderr)
    except Exception as exc:
        status = f"failed: {exc}"
        traceback.print_exc()
    finally:
        for name in ("llorchd.log", "llama-server-direct.log"):
            with contextlib.suppress(OSError):
                shutil.copyfile(workdir / name, args.results / f"streaming-{stamp}.{name}")
        if not log_lines:
            log_lines = log_findings(workdir / "llorchd.log")
        shutil.rmtree(workdir, ignore_errors=True)

    found = problems(all_samples)
    if exits.get("llorchd") not in (None, 0):
        found.append(f"llorchd exited with status {exits['llorchd']} after SIGTERM")
    for path in args.path_list:
        pairs = [(d, llorch) for p, d, llorch in summaries if p == path]
        if pairs:
            print(f"\n{path}:")
            print(table(pairs))
    if found:
        print(f"\n{len(found)} problem(s):")
        for line in found[:30]:
            print(f"  {line}")
    if log_lines:
        print(f"\nllorchd log warnings/errors ({len(log_lines)} shown):")
        for line in log_lines[:20]:
            print(f"  {line}")
    result = {
        "status": status,
        "timestamp": stamp,
        "config": {
            "paths": args.path_list,
            "levels": args.level_list,
            "requests": args.requests,
            "max_tokens": args.max_tokens,
            "slots": args.slots,
            "ctx": args.ctx,
            "engine_args": shlex.split(args.engine_args),
            "prompt": PROMPT,
            "seed": SEED,
            "temperature": TEMPERATURE,
        },
        "environment": {
            "llama_server": str(binary),
            "llama_server_version": version,
            "model": str(model),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "summary": [{"path": p, **asdict(s)} for p, *pair in summaries for s in pair],
        "exit_status": exits,
        "problems": found,
        "llorchd_log_findings": log_lines,
        "runs": raw,
    }
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nresults: {out_path}")
    return 0 if status == "ok" and not found else 1


if __name__ == "__main__":
    sys.exit(main())
