"""`apply` and `diff`: manifests checked locally, then sent file by file."""

from __future__ import annotations

from pathlib import Path

from tests.cli.ctl.fake_llorchd import DIFF, FakeLlorchd, clean, ctl

POOL_YAML = """\
# the demo pool
apiVersion: llorch.dev/v1
kind: Pool
metadata:
  name: demo
spec:
  model: tiny-llama
  replicas: 1
  slots: 4
"""


MODEL_YAML = """\
apiVersion: llorch.dev/v1
kind: Model
metadata:
  name: tiny-llama
spec:
  source:
    builtin: tiny-llama
"""


def test_apply_sends_the_files_exact_text(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    path = tmp_path / "pool-demo.yaml"
    path.write_text(POOL_YAML)
    fake_llorchd.actions["Pool/demo"] = "configured"
    result = ctl(fake_llorchd, "apply", "-f", str(path))
    assert (result.exit_code, result.stdout) == (0, "pool/demo configured\n")
    sent = fake_llorchd.last("POST", "/v1/manifests")
    assert sent.headers["content-type"] == "application/yaml"
    assert sent.body == POOL_YAML.encode()
    assert sent.query == {"dryRun": "false", "source": "pool-demo.yaml"}


def test_apply_dry_run(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "all.yaml").write_text(POOL_YAML + "---\n" + MODEL_YAML)
    fake_llorchd.actions["Model/tiny-llama"] = "unchanged"
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path / "all.yaml"), "--dry-run")
    assert result.stdout == "pool/demo created (dry run)\nmodel/tiny-llama unchanged (dry run)\n"
    assert fake_llorchd.last("POST").query["dryRun"] == "true"


def test_apply_folder_sorted_and_recursive(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "b-pool.yml").write_text(POOL_YAML)
    (tmp_path / "a-model.yaml").write_text(MODEL_YAML)
    (tmp_path / "notes.txt").write_text("not a manifest")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text(POOL_YAML.replace("name: demo", "name: nested"))
    assert (
        ctl(fake_llorchd, "apply", "-f", str(tmp_path)).stdout
        == "model/tiny-llama created\npool/demo created\n"
    )
    sources = [r.query["source"] for r in fake_llorchd.requests]
    assert sources == ["a-model.yaml", "b-pool.yml"]
    fake_llorchd.requests.clear()
    ctl(fake_llorchd, "apply", "-R", "-f", str(tmp_path))
    assert [r.query["source"] for r in fake_llorchd.requests] == ["a-model.yaml", "b-pool.yml", "sub/c.yaml"]


def test_apply_stdin(fake_llorchd: FakeLlorchd) -> None:
    result = ctl(fake_llorchd, "apply", "-f", "-", stdin=MODEL_YAML)
    assert result.stdout == "model/tiny-llama created\n"
    assert fake_llorchd.last("POST").query["source"] == "<stdin>"
    assert fake_llorchd.last("POST").body == MODEL_YAML.encode()


def test_apply_local_errors_send_nothing(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(MODEL_YAML)
    (tmp_path / "pool.yaml").write_text(
        POOL_YAML.replace("replicas: 1", "replicas: -1").replace("slots: 4", "slotz: 4")
    )
    (tmp_path / "syntax.yaml").write_text("kind: Pool\nmetadata: [unclosed\n")
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: invalid manifests, nothing was sent:",
        "  pool.yaml:8: spec.replicas: Input should be greater than or equal to 0",
        "  pool.yaml:9: spec.slotz: Extra inputs are not permitted",
        "  syntax.yaml:3: expected ',' or ']', but got '<stream end>'",
    ]
    assert fake_llorchd.requests == []
    clean(result)


def test_apply_missing_field_and_unknown_kind(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POOL_YAML.replace("  model: tiny-llama\n", ""))
    (tmp_path / "b.yaml").write_text(MODEL_YAML.replace("kind: Model", "kind: Pod"))
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path))
    lines = result.stderr.splitlines()
    assert lines[1] == "  a.yaml:6: spec.model: Field required"
    assert lines[2].startswith("  b.yaml:1: unknown kind 'Pod'")


def test_apply_server_rejection_names_the_file(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(POOL_YAML.replace("name: demo", "name: rejected"))
    (tmp_path / "b.yaml").write_text(MODEL_YAML)
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: a.yaml: manifest is invalid (INVALID_PARAMS)",
        "  a.yaml:6: spec.model: no Model named nope",
    ]
    assert result.stdout == "model/tiny-llama created\n"  # the other file still applied


def test_apply_missing_path(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "does not exist" in result.stderr


def test_apply_no_objects(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    result = ctl(fake_llorchd, "apply", "-f", str(tmp_path))
    assert (result.exit_code, result.stderr) == (1, "error: no objects passed to apply\n")


def test_diff_exit_codes(fake_llorchd: FakeLlorchd, tmp_path: Path) -> None:
    path = tmp_path / "pool-demo.yaml"
    path.write_text(POOL_YAML)
    fake_llorchd.actions["Pool/demo"] = "unchanged"
    same = ctl(fake_llorchd, "diff", "-f", str(path))
    assert (same.exit_code, same.stdout) == (0, "")
    assert fake_llorchd.last("POST").query["dryRun"] == "true"
    fake_llorchd.actions["Pool/demo"] = "configured"
    changed = ctl(fake_llorchd, "diff", "-f", str(path))
    assert (changed.exit_code, changed.stdout) == (1, DIFF)
    path.write_text(POOL_YAML.replace("name: demo", "name: rejected"))
    broken = ctl(fake_llorchd, "diff", "-f", str(path))
    assert broken.exit_code == 2
    assert broken.stderr.startswith(
        "error: manifest is invalid (INVALID_PARAMS)\n  pool-demo.yaml:6: spec.model"
    )
