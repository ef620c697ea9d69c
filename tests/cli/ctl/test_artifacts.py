"""`llorchctl artifact put|show` and `get artifacts` against the real API app on a loopback socket."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from llorch.cli.ctl import main
from tests.api.test_app import Api, serve

PLAN = "1. read\r\n2. write ✓"


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.delenv("LLORCH_URL", raising=False)
    monkeypatch.delenv("LLORCH_TOKEN", raising=False)
    yield from serve(tmp_path)


def ctl(api: Api, *args: str, stdin: str | bytes | None = None) -> Result:
    return CliRunner().invoke(main, ["-s", api.url, *args], input=stdin)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def put(api: Api, content: str, *args: str) -> str:
    """The id `artifact put` printed for `content` sent on stdin."""
    artifact_id, status = ok(ctl(api, "artifact", "put", *args, stdin=content.encode())).split()
    assert status in ("created", "unchanged")
    return artifact_id


def test_put_prints_the_id_and_whether_it_was_new(api: Api, tmp_path: Path) -> None:
    plan = tmp_path / "plan.md"
    plan.write_bytes(PLAN.encode())
    digest = hashlib.sha256(PLAN.encode()).hexdigest()
    assert ok(ctl(api, "artifact", "put", str(plan), "--kind", "plan")) == f"{digest} created\n"
    again = ctl(api, "artifact", "put", "-", "--kind", "plan", "--tag", "more", stdin=PLAN.encode())
    assert ok(again) == f"{digest} unchanged\n"


def test_show_writes_the_content_byte_for_byte(api: Api) -> None:
    artifact_id = put(api, PLAN, "--kind", "trace")
    shown = ctl(api, "artifact", "show", artifact_id)
    assert shown.exit_code == 0
    assert shown.stdout_bytes == PLAN.encode(), "no newline added, line endings kept"


def test_tags_parent_and_metadata_reach_the_artifact(api: Api) -> None:
    parent = put(api, "the plan", "--kind", "plan")
    child = put(
        api, "+ a line", "--kind", "diff", "--tag", "run-1", "--tag", "big", "--parent", parent,
        "--meta", "agent=coder", "--meta", "note=a=b",
    )  # fmt: skip
    answer = json.loads(ok(ctl(api, "get", f"artifact/{child}", "-o", "json")))
    (item,) = answer["items"]
    assert (item["kind"], item["tags"], item["parent"]) == ("diff", ["run-1", "big"], parent)
    assert item["metadata"] == {"agent": "coder", "note": "a=b"}
    assert item["content"] == "+ a line"


def test_get_artifacts_table_filters_and_names(api: Api) -> None:
    plan = put(api, "p", "--kind", "plan", "--tag", "run-1")
    diff = put(api, "d" * 2048, "--kind", "diff", "--tag", "run-1", "--tag", "big")
    lines = ok(ctl(api, "get", "artifacts")).splitlines()
    assert lines[0].split() == ["ID", "KIND", "SIZE", "TAGS", "AGE"]
    assert lines[1].split() == [diff[:12], "diff", "2.0KiB", "run-1,big", "0s"], "newest first"
    assert lines[2].split() == [plan[:12], "plan", "1B", "run-1", "0s"]
    assert ok(ctl(api, "get", "art", "--kind", "plan", "-o", "name")) == f"artifact/{plan}\n"
    assert ok(ctl(api, "get", "artifacts", "--tag", "big", "-o", "name")) == f"artifact/{diff}\n"
    assert ok(ctl(api, "get", "artifacts", "--limit", "1", "-o", "name")) == f"artifact/{diff}\n"
    wide = ok(ctl(api, "get", "artifacts", "-o", "wide")).splitlines()
    assert wide[0].split() == ["ID", "KIND", "SIZE", "TAGS", "AGE", "PARENT", "METADATA"]
    assert wide[1].split()[0] == diff, "wide shows whole ids, which `artifact show` takes"
    listing = json.loads(ok(ctl(api, "get", "artifacts", "-o", "json")))
    assert [item["id"] for item in listing["items"]] == [diff, plan]


def test_nothing_stored_yet(api: Api) -> None:
    result = ctl(api, "get", "artifacts")
    assert result.exit_code == 0 and result.stdout == ""
    assert "No resources found." in result.stderr


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("artifact", "show", "0" * 64), 1, "(NOT_FOUND)"),
        (("get", "artifact/abc"), 1, "(INVALID_PARAMS)"),
        (("artifact", "put", "--kind", "diff", "--parent", "f" * 64), 1, "(INVALID_PARAMS)"),
        (("artifact", "put", "--kind", "essay"), 2, "Invalid value for '--kind'"),
        (("artifact", "put", "--kind", "plan", "--meta", "novalue"), 2, "'novalue' is not KEY=VALUE"),
        (("artifact", "put"), 2, "Missing option '--kind'"),
        (("get", "pools", "--kind", "plan"), 2, "filter artifacts only"),
    ],
)
def test_mistakes_are_one_error_line(api: Api, args: tuple[str, ...], exit_code: int, message: str) -> None:
    result = ctl(api, *args, stdin=b"text")
    assert result.exit_code == exit_code
    assert message in result.stderr and "Traceback" not in result.output


def test_a_file_that_is_not_utf8_is_refused_before_sending(api: Api, tmp_path: Path) -> None:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00")
    result = ctl(api, "artifact", "put", str(binary), "--kind", "other")
    assert result.exit_code == 1 and "is not UTF-8 text" in result.stderr
    assert ok(ctl(api, "get", "artifacts", "-o", "name")) == ""


def test_diff_prints_a_unified_diff_and_exits_1_when_they_differ(api: Api) -> None:
    first = put(api, "one\ntwo\n", "--kind", "plan")
    second = put(api, "one\nthree\n", "--kind", "plan")
    differ = ctl(api, "artifact", "diff", first, second)
    assert differ.exit_code == 1, differ.output
    assert f"--- a/{first[:12]} (plan)" in differ.stdout and "-two\n+three\n" in differ.stdout
    same = ctl(api, "artifact", "diff", first, first)
    assert same.exit_code == 0 and same.stdout == ""
    bad = ctl(api, "artifact", "diff", first, "../etc")
    assert bad.exit_code == 2 and "not an artifact id" in bad.stderr


def test_gc_applies_retention_and_a_dry_run_keeps_everything(api: Api) -> None:
    # The test server has no retention limits: nothing is ever removed.
    put(api, "kept", "--kind", "plan")
    assert ok(ctl(api, "artifact", "gc", "--dry-run")).splitlines()[-1] == "would remove 0 artifact(s), 0B"
    assert ok(ctl(api, "artifact", "gc")).splitlines()[-1] == "removed 0 artifact(s), 0B"
