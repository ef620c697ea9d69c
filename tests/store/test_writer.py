"""The text mechanics: line splitting that agrees with PyYAML, span edits, diffs, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from llorch.store import writer


@pytest.mark.parametrize(
    "text",
    ["", "a", "a\n", "a\nb", "a\r\nb\r\n", "a\rb\n", "a\x85b\u2028c\u2029", "\n\n", "x\r\n\r\n"],
)
def test_split_lines_keeps_every_character(text: str) -> None:
    assert "".join(writer.split_lines(text)) == text


@given(st.text(alphabet="ab: \n\r\x85\u2028\u2029#-", max_size=40))
def test_split_lines_round_trips_and_counts_lines_as_pyyaml_does(text: str) -> None:
    lines = writer.split_lines(text)
    assert "".join(lines) == text
    assert all(line for line in lines)
    reader = yaml.reader.Reader(text)
    reader.forward(len(text))
    # PyYAML's line of the end of the text: the last line's index, or one past it after a final break.
    expected = len(lines) if text and text[-1] in "\r\n\x85\u2028\u2029" else max(len(lines) - 1, 0)
    assert reader.line == expected


def test_replace_and_remove_lines() -> None:
    text = "a\r\nb\nc\n"
    assert writer.replace_lines(text, 1, 2, "B\nB2\n") == "a\r\nB\nB2\nc\n"
    assert writer.replace_lines(text, 3, 3, "d\n") == text + "d\n"
    assert writer.remove_lines(text, 0, 2) == "c\n"


def test_with_final_break() -> None:
    assert writer.with_final_break("a") == "a\n"
    assert writer.with_final_break("a\r\n") == "a\r\n"
    assert writer.with_final_break("") == ""


def test_unified_diff() -> None:
    assert writer.unified_diff("a\n", "a\n", "x.yaml") == ""
    diff = writer.unified_diff("a\nb\n", "a\nc", "x.yaml")
    assert diff == "--- a/x.yaml\n+++ b/x.yaml\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"


def test_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    writer.atomic_write(path, "one\r\n")
    assert path.read_bytes() == b"one\r\n"
    path.chmod(0o600)
    writer.atomic_write(path, "two ✓\n")
    assert path.read_bytes() == "two ✓\n".encode()
    assert path.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["a.yaml"]


def test_atomic_write_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "a.yaml"
    target.write_text("old\n")
    link = tmp_path / "a.yaml"
    link.symlink_to(target)
    writer.atomic_write(link, "new\n")
    assert link.is_symlink()
    assert target.read_text() == "new\n"
