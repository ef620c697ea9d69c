"""`llorchctl config` and `--context`: which server and token a command uses."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from llorch.cli.ctl import main
from tests.cli.ctl.fake_llorchd import FakeLlorchd, clean


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def token_file(tmp_path: Path, token: str) -> str:
    path = tmp_path / f"{token}.token"
    path.write_text(token + "\n")
    return str(path)


def box_needing_a_token(fake: FakeLlorchd, tmp_path: Path) -> Result:
    """The context "box": the fake, which wants the token its token file holds."""
    fake.token = "s3cret"
    args = ["set-context", "box", "--server", fake.url, "--token-file", token_file(tmp_path, "s3cret")]
    return run("config", *args)


def test_the_first_context_is_current_and_commands_use_it(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    made = box_needing_a_token(fake_llorchd, tmp_path)
    assert made.exit_code == 0, made.output
    assert 'Context "box" written to' in made.output
    listed = run("config", "get-contexts")
    assert listed.stdout.splitlines()[1].split()[:3] == ["*", "box", fake_llorchd.url]
    result = run("get", "models")
    assert result.exit_code == 0, result.output
    assert fake_llorchd.last("GET").headers["authorization"] == "Bearer s3cret"


def test_context_names_another_and_use_context_switches(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    run("config", "set-context", "nowhere", "--server", "http://127.0.0.1:9")
    run("config", "set-context", "fake", "--server", fake_llorchd.url)
    assert run("--context", "fake", "get", "models").exit_code == 0
    assert run("get", "models").exit_code == 1, "the current context is still the first one"
    assert run("config", "use-context", "fake").stdout == 'Switched to context "fake".\n'
    assert run("get", "models").exit_code == 0


def test_a_server_given_gets_no_token_from_the_current_context(
    fake_llorchd: FakeLlorchd, tmp_path: Path
) -> None:
    box_needing_a_token(fake_llorchd, tmp_path)
    result = run("--server", fake_llorchd.url, "get", "models")
    assert result.exit_code == 1 and "MISSING_TOKEN" in result.stderr
    assert run("--server", fake_llorchd.url, "--context", "box", "get", "models").exit_code == 0


def test_an_unknown_context_is_one_error_line() -> None:
    result = run("--context", "ghost", "get", "pools")
    assert result.exit_code == 1
    assert result.stderr == "error: no context 'ghost'; known: none yet (llorchctl config set-context)\n"
    clean(result)
    assert run("config", "use-context", "ghost").exit_code == 1
