"""ManifestStore on real files: loading, errors with file/line/field, last-good objects, apply, delete."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llorch.resources import Pool
from llorch.store.errors import ManifestInvalid, ObjectNotFound
from llorch.store.manifests import ManifestError, ManifestStore

REPO = Path(__file__).resolve().parents[2]


def pool(name: str = "demo", replicas: int = 1, model: str = "tiny-llama") -> str:
    return (
        "apiVersion: llorch.dev/v1\n"
        "kind: Pool\n"
        "metadata:\n"
        f"  name: {name}\n"
        "spec:\n"
        f"  model: {model}\n"
        f"  replicas: {replicas}\n"
    )


def model(name: str = "tiny-llama") -> str:
    return (
        "apiVersion: llorch.dev/v1\nkind: Model\nmetadata:\n"
        f"  name: {name}\nspec:\n  source:\n    builtin: tiny-llama\n"
    )


def replicas(store: ManifestStore, key: str = "Pool/demo") -> int:
    entry = store.get(key)
    assert entry is not None and isinstance(entry.obj, Pool)
    return entry.obj.spec.replicas


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def store(tmp_path: Path) -> ManifestStore:
    return ManifestStore(tmp_path)


# -- loading ------------------------------------------------------------------------------------------


def test_loads_the_repository_manifests() -> None:
    store = ManifestStore(REPO / "manifests")
    assert store.load() == {"Model/tiny-llama", "Pool/demo", "Pool/demo-embed", "Policy/default"}
    assert store.errors() == []


def test_loads_the_home_profile() -> None:
    store = ManifestStore(REPO / "examples" / "home-profile")
    keys = store.load()
    assert store.errors() == []
    assert {"Pool/coder", "Pool/chat", "Pool/eval", "Pool/vllm-container", "Policy/batch"} <= keys
    assert {"Pool/code-on-demand", "Pool/chat-on-demand"} <= keys, "two autoscaled pools sharing the 3090"
    assert [entry.obj.metadata.name for entry in store.entries("Model")] == [
        "llama-3-1-8b",
        "llama-3-3-70b",
        "qwen2-5-coder-14b",
    ]


def test_multi_document_file(tmp_path: Path, store: ManifestStore) -> None:
    text = (
        "# models and pools\n" + model() + "---\n# only a comment\n---\n\n# the pool\n" + pool() + "\n---\n"
    )
    (tmp_path / "all.yaml").write_text(text)
    assert store.load() == {"Model/tiny-llama", "Pool/demo"}
    assert store.errors() == []
    entry = store.get("Pool/demo")
    assert entry is not None
    assert (entry.file, entry.line) == ("all.yaml", 14)
    assert entry.text == "# the pool\n" + pool()
    model_entry = store.get("Model/tiny-llama")
    assert model_entry is not None
    assert (model_entry.line, model_entry.text) == (2, "# models and pools\n" + model())


def test_entries_are_sorted_by_kind_then_name(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "z.yaml").write_text(pool("b") + "---\n" + pool("a") + "---\n" + model("m"))
    store.load()
    assert [f"{e.obj.kind}/{e.obj.metadata.name}" for e in store.entries()] == ["Model/m", "Pool/a", "Pool/b"]
    assert store.keys() == {"Model/m", "Pool/a", "Pool/b"}


def test_reads_subfolders_and_skips_hidden_and_editor_files(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "a.yml").write_text(pool("a"))
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "b.yaml").write_text(pool("b"))
    (tmp_path / ".#c.yaml").write_text(pool("c"))
    (tmp_path / ".d.yaml.swp").write_text(pool("d"))
    (tmp_path / "e.yaml~").write_text(pool("e"))
    (tmp_path / "notes.txt").write_text(pool("f"))
    assert store.load() == {"Pool/a"}
    entry = store.get("Pool/a")
    assert entry is not None and entry.file == "sub/deeper/a.yml"


def test_a_missing_folder_is_empty(tmp_path: Path) -> None:
    store = ManifestStore(tmp_path / "nope")
    assert store.load() == set()
    assert store.errors() == []


def test_error_str() -> None:
    error = ManifestError(
        "pool-demo.yaml", 7, "spec.replicas", "Input should be greater than or equal to 0", None
    )
    assert str(error) == "pool-demo.yaml:7: spec.replicas: Input should be greater than or equal to 0"
    assert str(ManifestError("a.yaml", None, None, "gone", None)) == "a.yaml: gone"


# -- errors keep the last good version ---------------------------------------------------------------


def test_yaml_syntax_error_reports_the_line_and_keeps_every_object_of_the_file(
    tmp_path: Path, store: ManifestStore
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool() + "---\n" + pool("other"))
    store.load()
    path.write_text(pool(replicas=5) + "   slots: 2\n---\n" + pool("other", replicas=5))
    assert store.load() == set()
    assert replicas(store) == 1 and replicas(store, "Pool/other") == 1
    [error] = store.errors()
    assert (error.file, error.line, error.field, error.key) == ("p.yaml", 8, None, None)
    assert "mapping values are not allowed" in error.message
    assert store.errors_for("Pool/demo") == [error]
    assert store.errors_for("Pool/other") == [error]

    path.write_text(pool(replicas=5) + "---\n" + pool("other"))
    assert store.load() == {"Pool/demo"}
    assert replicas(store) == 5 and store.errors() == []


@pytest.mark.parametrize(
    ("tail", "line"),
    [
        ("  engineArgs: [a, b\n", 9),  # an unclosed flow sequence: the problem is found at the end
        ("\tslots: 2\n", 8),
        ('  engineArgs: ["a\n', 9),
    ],
)
def test_yaml_syntax_error_lines(tmp_path: Path, store: ManifestStore, tail: str, line: int) -> None:
    (tmp_path / "p.yaml").write_text(pool() + tail)
    store.load()
    assert [(error.file, error.line) for error in store.errors()] == [("p.yaml", line)]


@pytest.mark.parametrize(
    ("cut_after", "line"),
    [
        ("  model: tiny-llama\n  repl", 7),  # mid-key: a syntax error
        ("metadata:\n", 3),  # metadata: null and no name to tell which object this is
        ("spec:\n", 5),  # spec: null
        ("  name: ", 4),  # metadata.name: null
    ],
)
def test_half_written_file_keeps_the_last_good_object(
    tmp_path: Path, store: ManifestStore, cut_after: str, line: int
) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text(pool(replicas=3))
    store.load()
    full = pool(replicas=4)
    path.write_text(full[: full.index(cut_after) + len(cut_after)])
    assert store.load() == set()
    assert replicas(store) == 3
    errors = store.errors()
    assert errors and all(error.file == "pool.yaml" for error in errors)
    assert line in [error.line for error in errors]
    assert store.errors_for("Pool/demo") == errors


def test_every_truncation_keeps_the_object(tmp_path: Path, store: ManifestStore) -> None:
    # The name is quoted so that no truncation is a valid object under another name.
    text = pool(replicas=3).replace("name: demo", 'name: "demo"') + "  slots: 2\n  gpus:\n    count: 0\n"
    path = tmp_path / "pool.yaml"
    for cut in range(1, len(text)):  # 0 is the emptied file, tested on its own
        path.write_text(text)
        store.load()
        path.write_text(text[:cut])
        store.load()
        assert store.get("Pool/demo") is not None, repr(text[:cut])
        assert all(error.file == "pool.yaml" and error.line for error in store.errors()), repr(text[:cut])


def test_a_bad_field_reports_its_line_and_dotted_path(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "pool-demo.yaml"
    path.write_text(pool())
    store.load()
    path.write_text(pool(replicas=-1))
    assert store.load() == set()
    [error] = store.errors()
    assert str(error) == "pool-demo.yaml:7: spec.replicas: Input should be greater than or equal to 0"
    assert error.key == "Pool/demo"
    assert store.errors_for("Pool/demo") == [error]
    assert replicas(store) == 1


def test_an_unknown_field_points_at_the_unknown_key(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "p.yaml").write_text(pool() + "  gpus:\n    count: 1\n    colour: red\n")
    store.load()
    [error] = store.errors()
    assert (error.line, error.field, error.message) == (
        10,
        "spec.gpus.colour",
        "Extra inputs are not permitted",
    )


def test_a_bad_list_item_reports_its_index_once_per_pydantic_error(
    tmp_path: Path, store: ManifestStore
) -> None:
    gpus = "  gpus:\n    count: 1\n    devices:\n      - 0\n      - 1.5\n"
    (tmp_path / "p.yaml").write_text(pool() + gpus)
    store.load()
    errors = store.errors()
    # devices are str | int: pydantic reports one error per union member, both at the item itself.
    assert [(error.line, error.field) for error in errors] == [(12, "spec.gpus.devices.1")] * 2
    assert len({error.message for error in errors}) == 2


def test_a_missing_field_points_at_its_parent(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "p.yaml").write_text(pool().replace("  name: demo\n", "  labels: {}\n"))
    store.load()
    [error] = store.errors()
    assert (error.line, error.field, error.message, error.key) == (3, "metadata.name", "Field required", None)


def test_a_model_validator_error_points_at_its_object(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "p.yaml").write_text(pool() + "  gpus:\n    count: 2\n    devices: [0]\n")
    store.load()
    [error] = store.errors()
    assert (error.line, error.field) == (8, "spec.gpus")
    assert "count asks for 2" in error.message


def test_two_bad_fields_give_two_errors_and_other_documents_still_update(
    tmp_path: Path, store: ManifestStore
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool("a") + "---\n" + pool("b"))
    store.load()
    path.write_text(pool("a", replicas=2) + "---\n" + pool("b", replicas=-1) + "  slots: 0\n")
    assert store.load() == {"Pool/a"}
    assert replicas(store, "Pool/a") == 2 and replicas(store, "Pool/b") == 1
    assert [(error.line, error.field) for error in store.errors()] == [
        (15, "spec.replicas"),
        (16, "spec.slots"),
    ]
    assert store.errors_for("Pool/a") == []
    assert len(store.errors_for("Pool/b")) == 2


def test_a_document_that_is_not_a_mapping_or_of_an_unknown_kind(tmp_path: Path, store: ManifestStore) -> None:
    text = pool() + "---\n- just\n- a list\n---\n# a Pod\n" + pool("x").replace("kind: Pool", "kind: Pod")
    (tmp_path / "p.yaml").write_text(text)
    assert store.load() == {"Pool/demo"}
    first, second = store.errors()
    assert (first.file, first.line, first.key) == ("p.yaml", 9, None)
    assert "must be a mapping" in first.message
    assert (second.line, second.key) == (13, "Pod/x")
    assert "unknown kind 'Pod'" in second.message


def test_an_emptied_file_keeps_its_objects_until_it_is_deleted(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool())
    store.load()
    path.write_bytes(b"")
    assert store.load() == set()
    assert [(error.file, error.line) for error in store.errors_for("Pool/demo")] == [("p.yaml", None)]
    path.unlink()
    assert store.load() == {"Pool/demo"}
    path.write_bytes(b"")
    assert store.load() == set() and store.errors() == []


def test_a_file_that_is_not_utf8_is_an_error(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool())
    store.load()
    path.write_bytes(pool(replicas=2).encode() + b"  slots: \xff\n")
    assert store.load() == set()
    [error] = store.errors()
    assert (error.file, error.line) == ("p.yaml", 8)
    assert "UTF-8" in error.message
    assert replicas(store) == 1


# -- duplicates --------------------------------------------------------------------------------------


def test_a_duplicate_across_files_names_both(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "a.yaml").write_text(pool(replicas=1))
    (tmp_path / "b.yaml").write_text("# copy\n" + pool(replicas=2))
    assert store.load() == {"Pool/demo"}
    entry = store.get("Pool/demo")
    assert entry is not None and entry.file == "a.yaml"
    [error] = store.errors()
    assert error == ManifestError(
        "b.yaml", 2, None, "Pool/demo is also defined in a.yaml:1; keeping that one", "Pool/demo"
    )
    assert store.errors_for("Pool/demo") == [error]


def test_the_file_that_held_an_object_keeps_it(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "b.yaml").write_text(pool(replicas=2))
    store.load()
    (tmp_path / "a.yaml").write_text(pool(replicas=1))
    assert store.load() == set()
    assert replicas(store) == 2
    [error] = store.errors()
    assert (error.file, error.message) == (
        "a.yaml",
        "Pool/demo is also defined in b.yaml:1; keeping that one",
    )

    (tmp_path / "b.yaml").unlink()
    assert store.load() == {"Pool/demo"}
    assert replicas(store) == 1 and store.errors() == []


def test_a_duplicate_within_one_file(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "a.yaml").write_text(pool(replicas=1) + "---\n" + pool(replicas=2))
    store.load()
    assert replicas(store) == 1
    [error] = store.errors()
    assert (error.file, error.line, error.message) == (
        "a.yaml",
        9,
        "Pool/demo is also defined in a.yaml:1; keeping that one",
    )


# -- what counts as a change -------------------------------------------------------------------------


def test_removing_a_file_or_a_document_removes_its_objects(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "a.yaml").write_text(pool("a") + "---\n" + pool("b"))
    (tmp_path / "c.yaml").write_text(pool("c"))
    store.load()
    (tmp_path / "a.yaml").write_text(pool("a"))
    assert store.load() == {"Pool/b"}
    (tmp_path / "c.yaml").unlink()
    assert store.reload_files([tmp_path / "c.yaml"]) == {"Pool/c"}
    assert store.keys() == {"Pool/a"}


def test_removing_a_subfolder_removes_its_objects(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yaml").write_text(pool("a"))
    store.load()
    (tmp_path / "sub").rename(tmp_path / ".trash")
    # A folder moved away arrives as a single event for the folder.
    assert store.reload_files([tmp_path / "sub"]) == {"Pool/a"}
    (tmp_path / ".trash").rename(tmp_path / "back")
    assert store.reload_files([tmp_path / "back"]) == {"Pool/a"}


def test_reload_files_reads_only_those_files(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "a.yaml").write_text(pool("a"))
    (tmp_path / "b.yaml").write_text(pool("b"))
    store.load()
    (tmp_path / "a.yaml").write_text(pool("a", replicas=2))
    (tmp_path / "b.yaml").write_text(pool("b", replicas=2))
    assert store.reload_files([Path("a.yaml")]) == {"Pool/a"}
    assert replicas(store, "Pool/b") == 1
    assert store.reload_files([tmp_path / "b.yaml", Path("/elsewhere/x.yaml")]) == {"Pool/b"}


def test_comment_and_formatting_edits_change_nothing(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool())
    store.load()
    flow = "# reformatted\napiVersion: 'llorch.dev/v1'\nkind: Pool   # a comment\nmetadata: {name: demo}\n"
    path.write_text(flow + "spec:\n\n  replicas: 1\n  model: tiny-llama\n  engine: llamacpp  # the default\n")
    assert store.load() == set()
    entry = store.get("Pool/demo")
    assert entry is not None and entry.text.startswith("# reformatted\n")


@settings(max_examples=50)
@given(inserts=st.lists(st.tuples(st.integers(0, 7), st.sampled_from(["# note\n", "\n", "  # indented\n"]))))
def test_comment_lines_anywhere_change_nothing(
    tmp_path_factory: pytest.TempPathFactory, inserts: list[tuple[int, str]]
) -> None:
    folder = tmp_path_factory.mktemp("comments")
    store = ManifestStore(folder)
    (folder / "p.yaml").write_text(pool())
    store.load()
    lines = pool().splitlines(keepends=True)
    for index, line in sorted(inserts, reverse=True):
        lines.insert(index, line)
    (folder / "p.yaml").write_text("".join(lines))
    assert store.load() == set()
    assert store.errors() == []


def test_an_object_moved_to_another_file_changes_only_if_its_content_does(
    tmp_path: Path, store: ManifestStore
) -> None:
    (tmp_path / "a.yaml").write_text(pool())
    store.load()
    (tmp_path / "a.yaml").unlink()
    (tmp_path / "b.yaml").write_text(pool())
    assert store.load() == set()
    entry = store.get("Pool/demo")
    assert entry is not None and entry.file == "b.yaml"
    (tmp_path / "b.yaml").unlink()
    (tmp_path / "c.yaml").write_text(pool(replicas=2))
    assert store.load() == {"Pool/demo"}


def test_readers_and_writers_on_several_threads(tmp_path: Path, store: ManifestStore) -> None:
    failures: list[BaseException] = []

    def hammer(index: int) -> None:
        try:
            for round_ in range(20):
                store.apply_text(pool(f"p{index}", replicas=round_))
                store.load()
                store.errors()
                assert store.get(f"Pool/p{index}") is not None
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=hammer, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert store.keys() == {"Pool/p0", "Pool/p1", "Pool/p2", "Pool/p3"}


# -- apply -------------------------------------------------------------------------------------------


def test_apply_creates_a_new_file(tmp_path: Path, store: ManifestStore) -> None:
    store.load()
    text = "# my pool\n" + pool()
    [result] = store.apply_text(text)
    assert (result.key, result.action, result.file) == ("Pool/demo", "created", "pool-demo.yaml")
    assert (tmp_path / "pool-demo.yaml").read_text() == text
    assert result.diff.startswith("--- a/pool-demo.yaml\n+++ b/pool-demo.yaml\n@@ -0,0 +1,8 @@\n+# my pool\n")
    assert replicas(store) == 1


def test_apply_picks_a_free_file_name(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "pool-demo.yaml").write_text(model("unrelated"))
    (tmp_path / "pool-demo-2.yaml").write_text("# not even yaml objects\n")
    results = store.apply_text(pool() + "---\n" + pool("demo-3"))
    assert [(result.action, result.file) for result in results] == [
        ("created", "pool-demo-3.yaml"),
        ("created", "pool-demo-3-2.yaml"),
    ]
    assert store.keys() == {"Model/unrelated", "Pool/demo", "Pool/demo-3"}


def test_apply_configures_one_document_and_leaves_the_rest_byte_for_byte(
    tmp_path: Path, store: ManifestStore
) -> None:
    head = "# Everything for the demo.\r\n" + model().replace("\n", "\r\n") + "# trailing note\r\n\r\n---\r\n"
    middle_old = "# the pool\n" + pool(replicas=1)
    tail = "\n---   # the end\n" + pool("other") + "# last words, no newline at the end"
    path = tmp_path / "all.yaml"
    path.write_bytes((head + middle_old + tail).encode())
    store.load()

    middle_new = "# the pool, scaled\n" + pool(replicas=3)
    [result] = store.apply_text("---\n" + middle_new, source="pool.yaml")
    assert (result.action, result.file) == ("configured", "all.yaml")
    assert path.read_bytes() == (head + middle_new + tail).encode()
    assert "-  replicas: 1\n+  replicas: 3\n" in result.diff
    assert "-# the pool\n+# the pool, scaled\n" in result.diff
    assert result.diff.startswith("--- a/all.yaml\n+++ b/all.yaml\n")
    assert replicas(store) == 3
    assert store.errors() == []


def test_apply_leaves_an_unchanged_object_alone(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool())
    store.load()
    before = path.stat().st_mtime_ns
    [result] = store.apply_text(
        "# reformatted\n" + pool().replace("  model: tiny-llama\n", "  model: 'tiny-llama'\n")
    )
    assert (result.action, result.file, result.diff) == ("unchanged", "p.yaml", "")
    assert path.stat().st_mtime_ns == before and path.read_text() == pool()


def test_apply_of_several_objects_to_one_file_writes_them_together(
    tmp_path: Path, store: ManifestStore
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool("a") + "---\n" + pool("b") + "---\n" + pool("c"))
    store.load()
    results = store.apply_text(pool("c", replicas=3) + "---\n" + pool("a", replicas=2) + "---\n" + pool("b"))
    assert [(result.key, result.action) for result in results] == [
        ("Pool/c", "configured"),
        ("Pool/a", "configured"),
        ("Pool/b", "unchanged"),
    ]
    assert path.read_text() == pool("a", replicas=2) + "---\n" + pool("b") + "---\n" + pool("c", replicas=3)
    # Each result's diff shows its own document's change.
    assert "+  replicas: 3" in results[0].diff and "+  replicas: 2" not in results[0].diff
    assert "+  replicas: 2" in results[1].diff and "+  replicas: 3" not in results[1].diff


def test_apply_of_invalid_text_writes_nothing(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "p.yaml").write_text(pool("a"))
    store.load()
    before = folder_bytes(tmp_path)
    with pytest.raises(ManifestInvalid) as raised:
        store.apply_text(pool("a", replicas=2) + "---\n" + pool("b", replicas=-1), source="new.yaml")
    assert [str(error) for error in raised.value.errors] == [
        "new.yaml:15: spec.replicas: Input should be greater than or equal to 0"
    ]
    assert folder_bytes(tmp_path) == before
    assert replicas(store, "Pool/a") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (pool() + "  x: [\n", "<stdin>:9: "),
        (pool() + "---\n" + pool(), "<stdin>:9: Pool/demo is also defined in <stdin>:1"),
        ("# nothing here\n", "<stdin>: no objects to apply"),
    ],
)
def test_apply_rejects_syntax_errors_duplicates_and_empty_text(
    tmp_path: Path, store: ManifestStore, text: str, expected: str
) -> None:
    with pytest.raises(ManifestInvalid) as raised:
        store.apply_text(text)
    assert str(raised.value).startswith(expected)
    assert folder_bytes(tmp_path) == {}


def test_apply_dry_run_writes_nothing(tmp_path: Path, store: ManifestStore) -> None:
    (tmp_path / "p.yaml").write_text(pool("a"))
    store.load()
    before = folder_bytes(tmp_path)
    results = store.apply_text(pool("a", replicas=2) + "---\n" + pool("b"), dry_run=True)
    assert [(result.action, result.file) for result in results] == [
        ("configured", "p.yaml"),
        ("created", "pool-b.yaml"),
    ]
    assert "+  replicas: 2" in results[0].diff and "+kind: Pool" in results[1].diff
    assert folder_bytes(tmp_path) == before
    assert store.keys() == {"Pool/a"} and replicas(store, "Pool/a") == 1


def test_apply_sees_saves_the_store_has_not_loaded_yet_and_leaves_them_to_report(
    tmp_path: Path, store: ManifestStore
) -> None:
    store.load()
    (tmp_path / "mine.yaml").write_text(pool())
    (tmp_path / "other.yaml").write_text(pool("other"))
    [result] = store.apply_text(pool(replicas=2))
    assert (result.action, result.file) == ("configured", "mine.yaml")
    # The watcher's reload of those saves finds the files as the store has them; it must still hear of them.
    assert store.reload_files([tmp_path / "other.yaml"]) == {"Pool/demo", "Pool/other"}
    assert store.load() == set()


def test_a_relative_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = ManifestStore(Path("m"))
    [result] = store.apply_text(pool())
    assert (result.action, result.file) == ("created", "pool-demo.yaml")
    assert store.keys() == {"Pool/demo"}
    store.delete("Pool/demo")
    assert store.keys() == set() and os.listdir("m") == []


def test_apply_fixes_an_invalid_document_in_place(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool("other") + "---\n" + pool(replicas=-1))
    store.load()
    [result] = store.apply_text(pool(replicas=2))
    assert (result.action, result.file) == ("created", "p.yaml")
    assert path.read_text() == pool("other") + "---\n" + pool(replicas=2)
    assert store.errors() == []


def test_apply_refuses_a_file_with_a_syntax_error(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool())
    store.load()
    path.write_text(pool() + "  x: [\n")
    with pytest.raises(ManifestInvalid) as raised:
        store.apply_text(pool(replicas=2))
    assert [(error.file, error.line) for error in raised.value.errors] == [("p.yaml", 9)]
    with pytest.raises(ManifestInvalid):
        store.delete("Pool/demo")
    assert path.read_text() == pool() + "  x: [\n"


def test_apply_keeps_a_document_written_on_its_marker_line_apart(
    tmp_path: Path, store: ManifestStore
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        model() + "--- {apiVersion: llorch.dev/v1, kind: Pool, metadata: {name: demo}, spec: {model: m}}\n"
    )
    store.load()
    store.apply_text(pool())
    assert path.read_text() == model() + "---\n" + pool()
    assert store.keys() == {"Model/tiny-llama", "Pool/demo"}


def test_apply_keeps_file_permissions(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool())
    path.chmod(0o640)
    store.load()
    store.apply_text(pool(replicas=2))
    assert path.stat().st_mode & 0o777 == 0o640
    assert [name for name in os.listdir(tmp_path)] == ["p.yaml"]


# -- delete ------------------------------------------------------------------------------------------


def test_delete_removes_one_document_of_a_multi_document_file(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    first, last = "# first\n" + pool("a") + "\n", "# last\n" + pool("c")
    path.write_text(first + "---\n# the middle one\n" + pool("b") + "---\n" + last)
    store.load()
    result = store.delete("Pool/b")
    assert (result.key, result.action, result.file) == ("Pool/b", "deleted", "p.yaml")
    assert path.read_text() == first + "---\n" + last
    assert "-# the middle one\n" in result.diff and "-  name: b\n" in result.diff
    assert store.keys() == {"Pool/a", "Pool/c"}


def test_delete_of_the_first_document(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool("a") + "---\n" + pool("b"))
    store.load()
    store.delete("Pool/a")
    assert path.read_text() == "---\n" + pool("b")
    assert store.keys() == {"Pool/b"}


def test_delete_of_the_only_document_removes_the_file(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("# a comment that goes with it\n" + pool() + "---\n# and a lonely one\n")
    store.load()
    result = store.delete("Pool/demo")
    assert not path.exists()
    assert result.diff.startswith("--- a/p.yaml\n+++ b/p.yaml\n@@ -1,10 +0,0 @@\n")
    assert store.keys() == set()


def test_delete_dry_run_and_unknown_keys(tmp_path: Path, store: ManifestStore) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(pool())
    store.load()
    result = store.delete("Pool/demo", dry_run=True)
    assert result.action == "deleted" and "-kind: Pool" in result.diff
    assert path.read_text() == pool() and store.keys() == {"Pool/demo"}
    with pytest.raises(ObjectNotFound):
        store.delete("Pool/nope")
