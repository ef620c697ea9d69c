"""logs, events, queue, chat, completion and a watch's resume, as llorchctl renders them and reads its
arguments (against fake_llorchd; tests/e2e/test_ctl_everyday.py drives the real llorchd)."""

from __future__ import annotations

import json

import click
from click.shell_completion import CompletionItem

from llorch.cli.client import Client
from llorch.cli.ctl import main, names
from llorch.cli.ctl.chat import Conversation, session_line
from tests.cli.ctl.fake_llorchd import FakeLlorchd, clean, ctl


def test_logs_default_to_the_first_replica_and_say_so(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "logs", "pool/demo", "--tail", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout == "--- starting demo-0\nline 1\nline 2\n"
    assert result.stderr == 'Defaulted replica "demo-0" out of: demo-0, demo-1\n'
    assert fake_llorchd.last("GET").query == {"follow": "false", "tail": "2"}


def test_logs_of_a_named_replica_and_of_a_plain_name(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "logs", "demo", "--replica", "demo-1", "-f")
    assert (result.exit_code, result.stderr) == (0, "")
    assert fake_llorchd.last("GET").path == "/v1/pools/demo/logs"
    assert fake_llorchd.last("GET").query == {"follow": "true", "replica": "demo-1"}


def test_logs_of_an_unknown_replica_list_the_replicas(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "logs", "pool/demo", "--replica", "demo-9")
    assert result.exit_code == 1
    assert result.stderr == (
        "error: pool 'demo' has no replica 'demo-9'; its replicas: demo-0, demo-1 (NOT_FOUND)\n"
    )
    clean(result)


def test_logs_belong_to_pools(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "logs", "model/tiny-llama")
    assert (result.exit_code, result.stderr) == (1, "error: logs come from pools, not models\n")
    assert ctl(fake_llorchd, "logs", "pool/demo", "--tail", "-2").exit_code == 2
    assert fake_llorchd.requests == []


def test_events_table_and_filter(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "events", "--for", "po/demo", "--limit", "5")
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert row.split()[1:] == ["(x2)", "Normal", "Started", "Pool/demo", "replica", "demo-0", "started"]
    assert fake_llorchd.last("GET").query == {"object": "Pool/demo", "limit": "5"}


def test_events_for_needs_an_object(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "events", "--for", "pools")
    assert result.exit_code == 2 and "names no object; e.g. pool/demo" in result.stderr
    assert fake_llorchd.requests == []


def test_queue_table(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "queue", "demo")
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["POOL", "POS", "TASK", "PRIORITY", "STARTS", "IN", "AGE", "SESSION"],
        ["demo", "0", "t-1", "interactive", "~1m", "4s", "s-1"],
    ]
    assert fake_llorchd.last("GET").query == {"pool": "demo"}
    assert json.loads(ctl(fake_llorchd, "queue", "-o", "json").stdout)["items"][0]["task_id"] == "t-1"


def test_a_refusal_names_the_policy_the_rule_and_what_to_change(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "run", "demo", "over budget")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: session 's' cannot take another turn: it has had its 8 turns (BUDGET_EXCEEDED); "
        "retry after 60s",
        "  policy:  Policy/default",
        "  rule:    sessions.maxTurns",
        "  change:  raise spec.sessions.maxTurns, or start a new session (a new session_id)",
        "  where:   Policy/default's file in the manifests folder, or llorchctl apply -f a changed copy",
    ]
    clean(result)


def test_chat_with_piped_stdin_is_one_turn_in_a_session(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "chat", "demo", "--max-tokens", "3", "--session", "mine", stdin="hi\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Hello, world\n"
    assert result.stderr == "turn 1/8, 900 tokens left, expires in 10m\n"
    opened = json.loads(fake_llorchd.last("POST", "/v1/sessions").body)
    assert opened == {"pool": "demo", "session_id": "mine"}
    submitted = json.loads(fake_llorchd.last("POST", "/v1/tasks").body)
    assert submitted == {"pool": "demo", "session_id": "mine", "prompt": "hi\n", "max_tokens": 3}


def test_chat_refused_turn_shows_the_policy_feedback(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "chat", "demo", stdin="over budget")
    assert result.exit_code == 1 and result.stdout == ""
    assert "  rule:    sessions.maxTurns\n" in result.stderr
    clean(result)


def test_chat_with_empty_stdin_is_an_error(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "chat", "demo", stdin="")
    assert (result.exit_code, result.stderr) == (1, "error: nothing to say: stdin was empty\n")


def test_a_conversation_sends_what_was_said_before() -> None:
    conversation = Conversation("demo", "s", {"max_tokens": 8}, said=["hi\nHello!\n"])
    assert conversation.body("how are you?")["prompt"] == "hi\nHello!\nhow are you?\n"
    line = session_line(
        {"turns": 2, "max_turns": 8, "time_budget_remaining_ms": 5000, "cost_budget_remaining": 0.5}
    )
    assert line == "turn 2/8, 5s of wall time left, 0.5 cost left"


def test_completion_scripts(fake_llorchd: FakeLlorchd) -> None:
    for shell in ("bash", "zsh", "fish"):
        result = ctl(fake_llorchd, "completion", shell)
        assert result.exit_code == 0 and "_LLORCHCTL_COMPLETE" in result.stdout, shell
    assert ctl(fake_llorchd, "completion", "tcsh").exit_code == 2


def _context(fake: FakeLlorchd, *args: str) -> click.Context:
    return main.make_context("llorchctl", ["-s", fake.url, *args], resilient_parsing=True)


def test_names_complete_from_the_server(fake_llorchd: FakeLlorchd) -> None:
    ctx = _context(fake_llorchd)
    param = click.Argument(["x"])
    values = lambda items: [i.value for i in items]  # noqa: E731
    assert values(names.kind_names("Pool", prefixed=True)(ctx, param, "pool/c")) == ["pool/chat"]
    assert values(names.resource(ctx, param, "po")) == ["pools", "policies"]
    assert values(names.resource(ctx, param, "mo/")) == ["mo/tiny-llama"]
    assert names.resource(ctx, param, "pods/") == []


def test_names_complete_nothing_when_the_server_is_gone() -> None:
    ctx = main.make_context("llorchctl", ["-s", "http://127.0.0.1:9"], resilient_parsing=True)
    items: list[CompletionItem] = names.kind_names("Pool")(ctx, click.Argument(["x"]), "")
    assert items == []


def test_a_dropped_watch_resumes_after_the_last_version_seen(fake_llorchd: FakeLlorchd) -> None:
    resumed: list[tuple[str | None, str]] = []
    with Client(fake_llorchd.url) as client:
        frames = client.watch("/v1/pools", {}, since="4", on_resume=lambda v, why: resumed.append((v, why)))
        first, second = next(frames), next(frames)
        frames.close()
    assert (first.id, second.id) == ("5", "6")
    assert second.data["object"]["status"]["readyReplicas"] == 2
    assert resumed == [("5", "llorchd ended the stream")]
    watches = [r.query for r in fake_llorchd.requests if r.query.get("watch")]
    assert [w.get("resourceVersion") for w in watches] == ["4", "5"]


def test_get_watch_prints_the_table_once_then_a_row_per_change(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "get", "pools", "demo", "-w")
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "MODEL", "ENGINE", "READY"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["demo", "tiny-llama", "llamacpp", "1/2"],
        ["demo", "tiny-llama", "llamacpp", "1/2"],
        ["demo", "tiny-llama", "llamacpp", "2/2"],
    ], "the listed pool (not chat: only demo was named), then each change"
    assert result.stderr.splitlines() == [
        "watch: llorchd ended the stream; resuming from resourceVersion 1",
        "watch: llorchd ended the stream; resuming from resourceVersion 2",
        "error: no more watching (NOT_FOUND)",
    ]
    assert result.exit_code == 1
    clean(result)
