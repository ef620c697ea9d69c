"""The desired state: every object the manifests folder defines, and what is wrong with the rest.

A file is split into documents by its `---` lines, so that each document owns exact lines of the file
(its leading comments included) and apply/delete can rewrite one document without touching the others.
Whatever goes wrong in a file, the objects it last defined well stay in force: a half-saved file must
never tear down what is running.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from llorch.resources import KindError, Resource, key_of, parse_object
from llorch.resources.locate import locate
from llorch.store import writer
from llorch.store.errors import ManifestInvalid, ObjectNotFound

SUFFIXES = (".yaml", ".yml")

# A document marker as PyYAML's scanner sees one: `---` at column 0 followed by a blank or the end.
_MARKER = re.compile(r"---(?=[ \t\r\n\x85\u2028\u2029]|$)")
# A marker line with nothing of the document on it, which stays put when its document is replaced.
_BARE_MARKER = re.compile(r"---(?:[ \t]+(?:#.*)?)?")


@dataclass(frozen=True)
class ManifestError:
    file: str
    """Path relative to the manifests folder, or the source name given to apply_text."""
    line: int | None
    """1-based line of the failing field, of the YAML problem, or of the document."""
    field: str | None
    """Dotted path with list indexes, e.g. "spec.gpus.devices.0"."""
    message: str
    key: str | None
    """"Pool/demo" when the document's kind and metadata.name could be read."""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass(frozen=True)
class Entry:
    obj: Resource
    file: str
    """Path relative to the manifests folder."""
    line: int
    """1-based line where the document's content starts (text may begin earlier, with its comments)."""
    text: str
    """The document's exact source lines, leading comments included."""


@dataclass(frozen=True)
class ApplyResult:
    key: str
    action: str
    """"created", "configured", "unchanged" or "deleted"."""
    file: str
    diff: str
    """Unified diff of this object's change to the file ("" when unchanged)."""


def is_visible(relative: PurePath) -> bool:
    """False for hidden files and folders and editor backups (`.git/`, `.#x`, `.x.swp`, `x~`)."""
    return not any(part.startswith(".") or part.endswith("~") for part in relative.parts)


def is_manifest_path(relative: PurePath) -> bool:
    """Whether a path relative to the manifests folder names a file the store reads."""
    return relative.suffix.lower() in SUFFIXES and is_visible(relative)


@dataclass(frozen=True)
class _Chunk:
    """Where one document sits in its file, as 0-based line indexes; ends are exclusive."""

    start: int
    """Its `---` line, or 0 for a file's first document."""
    end: int
    """The next document's `---` line, or the end of the file."""
    text_start: int
    """The document's own text: without a bare `---` line or surrounding blank lines."""
    text_end: int


@dataclass(frozen=True)
class _Doc:
    chunk: _Chunk
    line: int
    text: str
    key: str | None
    """The key it defines; for an invalid document whose name cannot be read, the key the same
    document of the file's previous version had, so that a half-typed document keeps its object."""
    obj: Resource | None
    errors: tuple[ManifestError, ...]


@dataclass(frozen=True)
class _File:
    docs: tuple[_Doc, ...]
    """From the last contents that parsed."""
    text: str
    """Those contents."""
    error: ManifestError | None = None
    """Set while the current contents cannot be read or parsed; docs then still hold the last good ones."""


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    text: str


class ManifestStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.RLock()
        self._files: dict[str, _File] = {}
        self._entries: dict[str, Entry] = {}
        self._duplicates: list[ManifestError] = []
        # Keys that apply/delete loaded from saves nobody had reported yet; the next load or reload_files
        # reports them, as the watcher's own reload of those saves will find nothing new.
        self._unreported: set[str] = set()

    # -- loading ------------------------------------------------------------------------------------

    def load(self) -> set[str]:
        """Rescan the whole folder; returns the keys added, changed or removed."""
        with self._lock:
            self._refresh(PurePath("."))
            return self._resolve() | self._take_unreported()

    def reload_files(self, paths: Iterable[Path]) -> set[str]:
        """Re-read these files or folders (created, modified or deleted); returns the keys that changed.

        Relative paths are relative to the folder.
        """
        with self._lock:
            for path in paths:
                relative = self._relative(path)
                if relative is not None and is_visible(relative):
                    self._refresh(relative)
            return self._resolve() | self._take_unreported()

    def _take_unreported(self) -> set[str]:
        keys, self._unreported = self._unreported, set()
        return keys

    def _catch_up(self) -> None:
        """Load saves the watcher may not have seen yet, so that apply/delete edit what is on disk now."""
        self._refresh(PurePath("."))
        self._unreported |= self._resolve()

    def _relative(self, path: Path) -> PurePath | None:
        full = Path(os.path.abspath(self.folder / path))
        # The watcher may report paths under the folder's real location rather than the name it was given.
        for base in (os.path.abspath(self.folder), os.path.realpath(self.folder)):
            try:
                return PurePath(full.relative_to(base))
            except ValueError:
                continue
        return None

    def _refresh(self, relative: PurePath) -> None:
        """Bring the files at or under relative (a file or a folder, present or gone) up to date."""
        name = relative.as_posix()
        base = self.folder / relative
        present: set[str] = set()
        if base.is_dir():
            present = self._scan(base)
        elif is_manifest_path(relative):
            present = {name}
        tracked = {
            known for known in self._files if name == "." or known == name or known.startswith(name + "/")
        }
        for gone in tracked - present:
            del self._files[gone]
        for found in present:
            state = self._read(found)
            if state is None:
                self._files.pop(found, None)
            else:
                self._files[found] = state

    def _scan(self, base: Path) -> set[str]:
        found = set()
        for dirpath, dirnames, filenames in os.walk(base):
            # Pruned here only to save the walk through .git; is_manifest_path has the last word.
            dirnames[:] = [name for name in dirnames if not name.startswith(".")]
            for filename in filenames:
                relative = PurePath(os.path.relpath(os.path.join(dirpath, filename), self.folder))
                if is_manifest_path(relative):
                    found.add(relative.as_posix())
        return found

    def _read(self, name: str) -> _File | None:
        """The file's new state, None when it is gone."""
        try:
            raw = (self.folder / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        except OSError as exc:
            return self._broken(name, ManifestError(name, None, None, f"cannot read: {exc.strerror}", None))
        previous = self._files.get(name)
        if not raw and previous is not None and previous.docs:
            # Most likely a save caught between truncating and writing, rarely someone emptying it on purpose.
            message = "the file is empty; its objects stay as they were until it has content or is deleted"
            return self._broken(name, ManifestError(name, None, None, message, None))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            return self._broken(name, ManifestError(name, line, None, f"not UTF-8: {exc.reason}", None))
        try:
            docs = _parse(text, name)
        except ManifestInvalid as exc:
            return self._broken(name, exc.errors[0])
        return _File(self._inherit_keys(name, docs), text)

    def _broken(self, name: str, error: ManifestError) -> _File:
        previous = self._files.get(name)
        return _File((), "", error) if previous is None else replace(previous, error=error)

    def _inherit_keys(self, name: str, docs: list[_Doc]) -> tuple[_Doc, ...]:
        previous = self._files.get(name)
        before = previous.docs if previous is not None else ()
        return tuple(
            replace(doc, key=before[index].key)
            if doc.key is None and doc.obj is None and index < len(before)
            else doc
            for index, doc in enumerate(docs)
        )

    def _resolve(self) -> set[str]:
        """Decide which document each key comes from; returns the keys whose object changed."""
        candidates: dict[str, list[Entry]] = {}
        holders: dict[str, set[str]] = {}
        for name in sorted(self._files):
            state = self._files[name]
            for doc in state.docs:
                if doc.key is None:
                    continue
                if doc.obj is not None and state.error is None:
                    candidates.setdefault(doc.key, []).append(Entry(doc.obj, name, doc.line, doc.text))
                else:
                    holders.setdefault(doc.key, set()).add(name)
        old, self._entries, self._duplicates = self._entries, {}, []
        for key in sorted(candidates.keys() | holders.keys()):
            found = candidates.get(key, [])
            winner = _winner(old.get(key), found, holders.get(key, set()))
            if winner is None:
                continue
            self._entries[key] = winner
            self._duplicates.extend(_duplicate(key, loser, winner) for loser in found if loser is not winner)
        return {
            key for key in old.keys() | self._entries.keys() if _differs(old.get(key), self._entries.get(key))
        }

    # -- reading ------------------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        with self._lock:
            return self._entries.get(key)

    def entries(self, kind: str | None = None) -> list[Entry]:
        with self._lock:
            chosen = [entry for entry in self._entries.values() if kind is None or entry.obj.kind == kind]
        return sorted(chosen, key=lambda entry: (entry.obj.kind, entry.obj.metadata.name))

    def keys(self) -> set[str]:
        with self._lock:
            return set(self._entries)

    def errors(self) -> list[ManifestError]:
        with self._lock:
            found = list(self._duplicates)
            for state in self._files.values():
                if state.error is not None:
                    found.append(state.error)
                else:
                    found.extend(error for doc in state.docs for error in doc.errors)
        return sorted(found, key=lambda error: (error.file, error.line or 0))

    def errors_for(self, key: str) -> list[ManifestError]:
        """What is wrong with the documents that define key, including a broken file it is kept from."""
        with self._lock:
            entry = self._entries.get(key)
            found = [error for error in self._duplicates if error.key == key]
            for name, state in self._files.items():
                if state.error is not None:
                    if entry is not None and entry.file == name:
                        found.append(state.error)
                    continue
                found.extend(error for doc in state.docs if doc.key == key for error in doc.errors)
        return sorted(found, key=lambda error: (error.file, error.line or 0))

    # -- writing ------------------------------------------------------------------------------------

    def apply_text(self, text: str, *, source: str = "<stdin>", dry_run: bool = False) -> list[ApplyResult]:
        """Write each object of text into the folder: in place where it is defined, else in a new file."""
        with self._lock:
            wanted = _valid_documents(text, source)
            self._catch_up()
            results: list[ApplyResult] = []
            before: dict[str, str] = {}
            edits: dict[str, list[_Edit]] = {}
            for obj, doc in wanted:
                key = key_of(obj)
                target = self._target(key)
                if target is not None and target[1].obj == obj:
                    results.append(ApplyResult(key, "unchanged", target[0], ""))
                    continue
                if target is None:
                    name = self._new_file_name(obj, planned=edits.keys())
                    edit = _Edit(0, 0, writer.with_final_break(doc.text))
                else:
                    name, current = target
                    edit = _Edit(current.chunk.text_start, current.chunk.text_end, _replacement(current, doc))
                before.setdefault(name, self._files[name].text if name in self._files else "")
                edits.setdefault(name, []).append(edit)
                action = "configured" if key in self._entries else "created"
                diff = writer.unified_diff(before[name], _edited(before[name], [edit]), name)
                results.append(ApplyResult(key, action, name, diff))
            if not dry_run:
                self._write({name: _edited(before[name], changes) for name, changes in edits.items()})
            return results

    def delete(self, key: str, *, dry_run: bool = False) -> ApplyResult:
        """Remove key's document from its file, and the file when no document is left in it."""
        with self._lock:
            self._catch_up()
            entry = self._entries.get(key)
            if entry is None:
                raise ObjectNotFound(f"{key} is not defined in {self.folder}")
            doc = self._held_by(entry.file, key)
            text = self._files[entry.file].text
            after = writer.remove_lines(text, doc.chunk.start, doc.chunk.end)
            if not _parse(after, entry.file):
                after = ""
            if not dry_run:
                self._write({entry.file: after})
            return ApplyResult(key, "deleted", entry.file, writer.unified_diff(text, after, entry.file))

    def _target(self, key: str) -> tuple[str, _Doc] | None:
        """The file and document an applied key goes to; None when it goes to a new file."""
        entry = self._entries.get(key)
        if entry is not None:
            return entry.file, self._held_by(entry.file, key)
        # A document that names the key but does not validate: the applied one fixes it in place rather
        # than becoming a duplicate of it.
        for name in sorted(self._files):
            state = self._files[name]
            for doc in state.docs if state.error is None else ():
                if doc.key == key:
                    return name, doc
        return None

    def _held_by(self, name: str, key: str) -> _Doc:
        state = self._files[name]
        if state.error is not None:
            raise ManifestInvalid([state.error])
        return next(doc for doc in state.docs if doc.key == key)

    def _new_file_name(self, obj: Resource, planned: Iterable[str]) -> str:
        stem = f"{obj.kind.lower()}-{obj.metadata.name}"
        taken = set(planned) | set(self._files)
        name, number = f"{stem}.yaml", 1
        while name in taken or (self.folder / name).exists():
            number += 1
            name = f"{stem}-{number}.yaml"
        return name

    def _write(self, texts: dict[str, str]) -> None:
        """Write (or, for "", remove) each file, then reload them so reads reflect the change at once.

        The keys this changes are not reported by the next load: the caller reports its own change.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, text in texts.items():
            if text:
                writer.atomic_write(self.folder / name, text)
            else:
                (self.folder / name).unlink()
            self._refresh(PurePath(name))
        self._resolve()


# -- parsing ----------------------------------------------------------------------------------------


def _parse(text: str, source: str) -> list[_Doc]:
    """The non-empty documents of text; ManifestInvalid with the YAML problem when text does not parse."""
    lines = writer.split_lines(text)
    docs = []
    for chunk in _chunks(lines):
        doc_text = "".join(lines[chunk.text_start : chunk.text_end])
        node, data = _compose(doc_text, source, chunk.text_start)
        if node is not None:
            docs.append(_document(chunk, doc_text, node, data, source))
    return docs


def _chunks(lines: Sequence[str]) -> list[_Chunk]:
    if not lines:
        return []
    markers = [index for index, line in enumerate(lines) if _MARKER.match(line)]
    starts = markers if markers[:1] == [0] else [0, *markers]
    chunks = []
    for start, end in zip(starts, [*starts[1:], len(lines)], strict=True):
        first = start + 1 if _BARE_MARKER.fullmatch(writer.strip_break(lines[start])) else start
        while first < end and not lines[first].strip():
            first += 1
        last = end
        while last > first and not lines[last - 1].strip():
            last -= 1
        chunks.append(_Chunk(start, end, first, last))
    return chunks


def _compose(text: str, source: str, offset: int) -> tuple[yaml.Node | None, Any]:
    try:
        loader = yaml.SafeLoader(text)  # checks the characters already
        try:
            node = loader.get_single_node()
            return node, (None if node is None else loader.construct_document(node))
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise ManifestInvalid([_yaml_error(exc, text, source, offset)]) from exc


def _yaml_error(exc: yaml.YAMLError, text: str, source: str, offset: int) -> ManifestError:
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or "invalid YAML"
        if exc.context:
            message += f" ({exc.context})"
        return ManifestError(source, None if mark is None else mark.line + offset + 1, None, message, None)
    if isinstance(exc, yaml.reader.ReaderError):
        line = len(writer.split_lines(text[: exc.position + 1])) + offset
        return ManifestError(source, line, None, f"unacceptable character #x{exc.character:04x}", None)
    return ManifestError(source, None, None, str(exc), None)


def _document(chunk: _Chunk, text: str, node: yaml.Node, data: Any, source: str) -> _Doc:
    line = node.start_mark.line + chunk.text_start + 1
    key = _readable_key(data)
    try:
        obj = parse_object(data)
    except KindError as exc:
        errors: tuple[ManifestError, ...] = (ManifestError(source, line, None, str(exc), key),)
    except ValidationError as exc:
        errors = tuple(
            _field_error(error, node, chunk.text_start, source, key)
            for error in exc.errors(include_url=False)
        )
    else:
        return _Doc(chunk, line, text, key_of(obj), obj, ())
    return _Doc(chunk, line, text, key, None, errors)


def _readable_key(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    kind, metadata = data.get("kind"), data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f"{kind}/{name}" if isinstance(kind, str) and isinstance(name, str) else None


def _field_error(
    error: ErrorDetails, root: yaml.Node, offset: int, source: str, key: str | None
) -> ManifestError:
    at = locate(root, error)
    return ManifestError(source, at.line + offset, at.field, error["msg"], key)


def _valid_documents(text: str, source: str) -> list[tuple[Resource, _Doc]]:
    """The objects of text and their documents, when every document is valid and no object appears twice."""
    docs = _parse(text, source)
    errors = [error for doc in docs for error in doc.errors]
    valid: list[tuple[Resource, _Doc]] = []
    first_line: dict[str, int] = {}
    for doc in docs:
        if doc.obj is None:
            continue
        key = key_of(doc.obj)
        if key in first_line:
            message = f"{key} is also defined in {source}:{first_line[key]}"
            errors.append(ManifestError(source, doc.line, None, message, key))
        first_line.setdefault(key, doc.line)
        valid.append((doc.obj, doc))
    if not docs:
        errors.append(ManifestError(source, None, None, "no objects to apply", None))
    if errors:
        raise ManifestInvalid(sorted(errors, key=lambda error: error.line or 0))
    return valid


# -- deciding and editing ---------------------------------------------------------------------------


def _winner(previous: Entry | None, found: list[Entry], holders: set[str]) -> Entry | None:
    """The file that held a key keeps it, even while its document is broken; else the first one wins."""
    if previous is not None:
        own = [entry for entry in found if entry.file == previous.file]
        if own:
            return own[0]
        if previous.file in holders:
            return previous
    return found[0] if found else None


def _duplicate(key: str, loser: Entry, winner: Entry) -> ManifestError:
    message = f"{key} is also defined in {winner.file}:{winner.line}; keeping that one"
    return ManifestError(loser.file, loser.line, None, message, key)


def _differs(before: Entry | None, after: Entry | None) -> bool:
    if before is None or after is None:
        return before is not after
    return before.obj != after.obj


def _replacement(current: _Doc, new: _Doc) -> str:
    # A document that starts on its own `---` line (`--- {...}`) takes that marker with it when replaced;
    # the new text must bring one, or it would merge into the document before it.
    if _MARKER.match(current.text) and not _MARKER.match(new.text):
        return "---\n" + writer.with_final_break(new.text)
    return writer.with_final_break(new.text)


def _edited(text: str, edits: list[_Edit]) -> str:
    # Bottom-up, so each edit's line numbers are still those of the original text.
    for edit in sorted(edits, key=lambda edit: edit.start, reverse=True):
        text = writer.replace_lines(text, edit.start, edit.end, edit.text)
    return text
