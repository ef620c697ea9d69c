"""The unified diff of two texts, one way for every side: `llorchctl artifact diff` prints it and
`GET /v1/artifacts/{id}/diff` answers it."""

from __future__ import annotations

import difflib


def unified(old: str, new: str, *, from_label: str, to_label: str) -> str:
    """`old` to `new` as a unified diff (empty when they are the same); a last line without a
    newline is marked as `diff -u` marks it."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=from_label, tofile=to_label
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )
