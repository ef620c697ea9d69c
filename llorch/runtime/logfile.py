"""Reading a worker's log file (its stdout and stderr): the last lines, and what is appended next.

A replica keeps one file across its restarts (each start appends a `--- starting` line), so a
reader that follows it sees a crash, the restart and the new process's output in order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_BLOCK = 64 * 1024


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail_offset(path: Path, lines: int) -> int:
    """Where the last `lines` lines of `path` begin (0: the whole file), reading back from its end
    a block at a time, so a long log is never read whole for a few lines."""
    try:
        with open(path, "rb") as handle:
            return _offset_of_last(handle, lines)
    except OSError:
        return 0


def _offset_of_last(handle: BinaryIO, lines: int) -> int:
    end = handle.seek(0, os.SEEK_END)
    if lines <= 0:
        return end
    position = end
    # A last line without its newline counts as a line all the same.
    handle.seek(max(0, end - 1))
    wanted = lines + (1 if handle.read(1) == b"\n" else 0)
    while position > 0:
        start = max(0, position - _BLOCK)
        handle.seek(start)
        block = handle.read(position - start)
        found = block.count(b"\n")
        if found >= wanted:
            cut = len(block)
            for _ in range(wanted):
                cut = block.rindex(b"\n", 0, cut)
            return start + cut + 1
        wanted -= found
        position = start
    return 0


def last_lines(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of `path`, decoded (invalid UTF-8 replaced); [] when unreadable."""
    text = b"".join(read_from(path, tail_offset(path, lines))[0])
    return text.decode("utf-8", "replace").splitlines()


def read_from(path: Path, offset: int) -> tuple[Iterator[bytes], int]:
    """The bytes of `path` from `offset` to its current end, in blocks, and the offset after them.
    A file now shorter than `offset` was truncated or replaced: it is read from its start."""
    end = size(path)
    if end < offset:
        offset = 0
    return _blocks(path, offset, end), end


def _blocks(path: Path, start: int, end: int) -> Iterator[bytes]:
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            left = end - start
            while left > 0:
                block = handle.read(min(_BLOCK, left))
                if not block:
                    return
                left -= len(block)
                yield block
    except OSError:
        return
