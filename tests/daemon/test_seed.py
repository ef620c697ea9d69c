"""`llorchd init`: the packaged starter files, written only where nothing is."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from llorch.daemon.main import main
from llorch.daemon.seed import defaults, seed
from llorch.resources import ServerConfig
from llorch.store.manifests import ManifestStore

REPO = Path(__file__).resolve().parents[2]


def test_the_packaged_manifests_are_the_checkouts_own() -> None:
    """One copy: the package's defaults/manifests is the checkout's manifests/ folder (a link in
    the source tree, real files in a wheel), so the demo `./dev up` serves is the one pipx gets."""
    packaged = {e.name: e.read_text() for e in (defaults() / "manifests").iterdir()}
    assert packaged == {p.name: p.read_text() for p in (REPO / "manifests").glob("*.yaml")}


def test_the_starter_settings_validate() -> None:
    config = ServerConfig.model_validate(yaml.safe_load((defaults() / "llorch.yaml").read_text()))
    assert config.bind == "127.0.0.1:8080" and config.manifests_dir == "manifests"


def test_init_writes_a_folder_llorchd_can_serve(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", "--dir", str(tmp_path / "llorch")])
    assert result.exit_code == 0, result.output
    assert f"llorchd --config {tmp_path / 'llorch' / 'llorch.yaml'}" in result.output
    store = ManifestStore(tmp_path / "llorch" / "manifests")
    store.load()
    assert store.errors() == [] and sorted(store.keys()) == [
        "Model/tiny-llama",
        "Policy/default",
        "Pool/demo",
        "Pool/demo-embed",
    ]


def test_seed_keeps_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "llorch.yaml").write_text("bind: 127.0.0.1:1\n")
    assert [s.written for s in seed(tmp_path)] == [False, False]
    assert list((tmp_path / "manifests").iterdir()) == [], "no demo files added to a folder of one's own"
    assert (tmp_path / "llorch.yaml").read_text() == "bind: 127.0.0.1:1\n"
