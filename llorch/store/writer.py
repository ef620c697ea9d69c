"""Text-level mechanics of editing a manifest file: line spans, diffs, atomic writes.

Nothing here knows YAML; manifests.py decides which lines a document occupies.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import uuid
from pathlib import Path

# The line breaks PyYAML counts (its marks' line numbers must index the same list): \r\n, \n, a lone \r,
# and the YAML 1.1 breaks NEL, LS and PS.
_LINE = re.compile(r"[^\r\n\x85\u2028\u2029]*(?:\r\n|[\r\n\x85\u2028\u2029]|$)")
_BREAKS = "\r\n\x85\u2028\u2029"


def split_lines(text: str) -> list[str]:
    """The lines of text, each keeping its own line break, so that "".join() gives text back exactly."""
    lines = _LINE.findall(text)
    # findall ends with an empty match at the end of the string; it is not a line.
    return [line for line in lines if line]


def strip_break(line: str) -> str:
    return line.rstrip(_BREAKS)


def with_final_break(text: str) -> str:
    return text if not text or text[-1] in _BREAKS else text + "\n"


def replace_lines(text: str, start: int, end: int, new: str) -> str:
    """Replace lines [start, end) of text with new (which should end with a line break)."""
    lines = split_lines(text)
    return "".join(lines[:start]) + new + "".join(lines[end:])


def remove_lines(text: str, start: int, end: int) -> str:
    return replace_lines(text, start, end, "")


def unified_diff(before: str, after: str, name: str) -> str:
    """A git-style diff of one file, "" when nothing differs."""
    diff = difflib.unified_diff(
        [strip_break(line) for line in split_lines(before)],
        [strip_break(line) for line in split_lines(after)],
        fromfile=f"a/{name}",
        tofile=f"b/{name}",
        lineterm="",
    )
    return "".join(line + "\n" for line in diff)


def atomic_write(path: Path, text: str) -> None:
    """Write text so that readers see the old file or the new one, never a half-written one.

    A symlinked manifest is written through (the link stays a link), and an existing file keeps its
    permissions: the user's files are theirs.
    """
    target = Path(os.path.realpath(path))
    try:
        mode: int | None = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    # A hidden name, so neither the store nor the watcher takes the temp file for a manifest.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; some platforms cannot open a directory, which only costs durability.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
