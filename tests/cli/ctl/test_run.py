"""`run`: a prompt submitted, its tokens streamed, the task canceled on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.cli.ctl.fake_llorchd import FakeLlorchd, clean, ctl

REPO = Path(__file__).resolve().parents[3]


def test_run_streams_tokens_and_summary(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(
        fake_llorchd, "run", "demo", "hi", "--seed", "1", "--max-tokens", "3", "--temperature", "0.5"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "Hello, world"
    assert result.stderr == (
        "\n--- 3 tokens, TTFT 12 ms, 40.0 tokens/s (decode 75 ms), finish: length, replica demo-0\n"
    )
    submitted = json.loads(fake_llorchd.last("POST", "/v1/tasks").body)
    assert submitted == {
        "pool": "demo",
        "prompt": "hi",
        "max_tokens": 3,
        "priority": "interactive",
        "seed": 1,
        "temperature": 0.5,
    }
    assert fake_llorchd.last("GET").headers["accept"] == "text/event-stream"


def test_run_by_model_quietly(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "run", "--model", "tiny-llama", "-", "--no-stream-summary", stdin="hi")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Hello, world", "")
    submitted = json.loads(fake_llorchd.last("POST", "/v1/tasks").body)
    assert (submitted["model_ref"], submitted["prompt"], "pool" in submitted) == ("tiny-llama", "hi", False)


def test_run_error_frame(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "run", "demo", "fail")
    assert result.exit_code == 1
    assert result.stdout == "Hello, world"
    assert result.stderr == "\nerror: engine died (WORKER_RESET)\n"
    clean(result)


def test_run_refused_says_when_to_retry(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "run", "busy", "hi")
    assert result.exit_code == 1
    assert result.stderr == "error: pool busy has no ready replica (POOL_UNREADY); retry after 2s\n"
    clean(result)


def test_ctrl_c_cancels_the_task(fake_llorchd: FakeLlorchd) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLORCH_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from llorch.cli.ctl import main; main()",
            "-s",
            fake_llorchd.url,
            "run",
            "demo",
            "hang",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.read(len("Hello, world")) == b"Hello, world"  # it is inside the stream now
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert fake_llorchd.canceled.is_set()
    assert fake_llorchd.last("POST", "/v1/tasks/t-hang/cancel")
    assert b"canceled task t-hang" in stderr
    assert b"Traceback" not in stderr


def test_run_sends_a_json_schema_or_grammar_from_a_file(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    (tmp_path / "city.json").write_text(json.dumps(schema))
    (tmp_path / "yesno.gbnf").write_text('root ::= "yes" | "no"\n')
    assert ctl(fake_llorchd, "run", "demo", "hi", "--json-schema", str(tmp_path / "city.json")).exit_code == 0
    assert json.loads(fake_llorchd.last("POST", "/v1/tasks").body)["json_schema"] == schema
    assert ctl(fake_llorchd, "run", "demo", "hi", "--grammar", str(tmp_path / "yesno.gbnf")).exit_code == 0
    sent = json.loads(fake_llorchd.last("POST", "/v1/tasks").body)
    assert sent["grammar"] == 'root ::= "yes" | "no"\n' and "json_schema" not in sent


def test_run_refuses_a_schema_file_that_is_not_json_or_both_constraints(
    fake_llorchd: FakeLlorchd, tmp_path: Path
) -> None:
    (tmp_path / "bad.json").write_text("{not json")
    result = ctl(fake_llorchd, "run", "demo", "hi", "--json-schema", str(tmp_path / "bad.json"))
    assert result.exit_code == 1 and f"--json-schema {tmp_path / 'bad.json'} is not JSON" in result.stderr
    clean(result)
    (tmp_path / "g.gbnf").write_text('root ::= "a"')
    both = ctl(
        fake_llorchd,
        "run",
        "demo",
        "hi",
        "--json-schema",
        str(tmp_path / "bad.json"),
        "--grammar",
        str(tmp_path / "g.gbnf"),
    )
    assert both.exit_code == 2 and "exclude each other" in both.stderr
    assert not [r for r in fake_llorchd.requests if r.method == "POST"], "nothing was submitted"
