"""The contexts file: where it is, what it holds, and that it never holds a token."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from llorch.cli import contexts
from llorch.cli.contexts import ContextError, Contexts, make_context


@pytest.fixture(autouse=True)
def _own_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LLORCH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_the_file_is_in_the_config_folder_unless_llorch_config_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert contexts.config_path() == tmp_path / "xdg" / "llorch" / "config"
    monkeypatch.setenv("LLORCH_CONFIG", str(tmp_path / "elsewhere.yaml"))
    assert contexts.config_path() == tmp_path / "elsewhere.yaml"


def test_an_absent_file_is_empty_and_a_saved_one_reads_back(tmp_path: Path) -> None:
    assert contexts.load() == Contexts()
    token = tmp_path / "box.token"
    token.write_text("s3cret\n")
    saved = Contexts(current_context="box", contexts=[make_context("box", "box:8080", str(token))])
    path = contexts.save(saved)
    assert contexts.load() == saved
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "s3cret" not in text and "token-file:" in text and "current-context: box" in text
    assert contexts.load().get("box").server == "http://box:8080"
    assert contexts.load().get("box").token() == "s3cret"


def test_replacing_a_context_keeps_its_place() -> None:
    two = (
        Contexts()
        .with_context(make_context("a", "http://a", None))
        .with_context(make_context("b", "http://b", None))
    )
    again = two.with_context(make_context("a", "http://a2", None))
    assert [(c.name, c.server) for c in again.contexts] == [("a", "http://a2"), ("b", "http://b")]


def test_errors_name_the_file_or_the_known_contexts(tmp_path: Path) -> None:
    contexts.config_path().parent.mkdir(parents=True)
    contexts.config_path().write_text("contexts: [{name: x}]\n")
    with pytest.raises(ContextError, match=r"config: contexts\.0\.server: Field required"):
        contexts.load()
    with pytest.raises(ContextError, match="no context 'y'; known: a"):
        Contexts(contexts=[make_context("a", "http://a", None)]).get("y")
    missing = make_context("m", "http://m", str(tmp_path / "gone.token"))
    with pytest.raises(ContextError, match="cannot read its token file"):
        missing.token()
