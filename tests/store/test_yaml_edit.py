"""One scalar edited in place: every other byte of the document stays as the user wrote it."""

from __future__ import annotations

import difflib

import pytest

from llorch.store.yaml_edit import EditError, set_scalar

DOC = """\
# The chat model: keep it small
apiVersion: llorch.dev/v1
kind: Model
metadata:
  name: tiny   # trailing comment, spaced
  labels: {tier: chat, size: "s"}
spec:
    source:
        url: "https://example.com/w.gguf"   # where
    # digest pinned
    digest: sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    lifecycle: Active  # flip me
"""


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.ndiff(before.splitlines(), after.splitlines())
        if line.startswith(("+ ", "- "))
    ]


def test_only_the_value_changes() -> None:
    edited = set_scalar(DOC, ("spec", "lifecycle"), "Retired")
    assert changed_lines(DOC, edited) == [
        "-     lifecycle: Active  # flip me",
        "+     lifecycle: Retired  # flip me",
    ]


def test_a_quoted_value_keeps_its_quotes() -> None:
    doc = DOC.replace("lifecycle: Active", "lifecycle: 'Active'")
    assert "lifecycle: 'Retired'  # flip me" in set_scalar(doc, ("spec", "lifecycle"), "Retired")


def test_a_missing_key_is_one_new_line_at_the_mappings_indentation() -> None:
    doc = DOC.replace("    lifecycle: Active  # flip me\n", "")
    edited = set_scalar(doc, ("spec", "lifecycle"), "Retired")
    assert changed_lines(doc, edited) == ["+     lifecycle: Retired"]
    assert edited.index("lifecycle: Retired") < edited.index("source:")


def test_a_flow_mapping_gets_the_key_inline() -> None:
    doc = "kind: Model\nspec: {source: {path: w.gguf}}  # inline\n"
    assert set_scalar(doc, ("spec", "lifecycle"), "Retired") == (
        "kind: Model\nspec: {lifecycle: Retired, source: {path: w.gguf}}  # inline\n"
    )


def test_crlf_line_breaks_are_kept() -> None:
    doc = DOC.replace("    lifecycle: Active  # flip me\n", "").replace("\n", "\r\n")
    edited = set_scalar(doc, ("spec", "lifecycle"), "Retired")
    assert "    lifecycle: Retired\r\n" in edited and "\n" not in edited.replace("\r\n", "")


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        ("spec: [1, 2]\n", "not a mapping"),
        ("spec: {}\n", "empty"),
        ("spec:\n  lifecycle: [Active]\n", "not a word"),
        ("spec: {a: [\n", "does not parse"),
    ],
)
def test_what_cannot_be_edited_in_place_is_refused(doc: str, why: str) -> None:
    with pytest.raises(EditError, match=why):
        set_scalar(doc, ("spec", "lifecycle"), "Retired")
