"""Editing one scalar of a user's YAML document in place, nothing else of it.

ruamel.yaml's round-trip loader says where each key and value sit (line and column); the edit
replaces only the old value's characters, or adds one `key: value` line (one `key: value, ` in a
flow mapping) before the mapping's first key. Comments, key order, quoting, indentation and
spacing everywhere else stay byte for byte, which a re-dump (even ruamel's) does not promise:
it re-indents and re-spaces comments. The result is parsed again and must differ from the
original only in that value.
"""

from __future__ import annotations

import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from llorch.resources.errors import ErrorCode
from llorch.store.errors import StoreError
from llorch.store.writer import split_lines


class EditError(StoreError):
    """The document cannot be edited in place this way (the message says why); nothing was written."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_PARAMS, message)


def _load(text: str) -> Any:
    try:
        return YAML(typ="rt").load(text)
    except YAMLError as exc:
        raise EditError(f"the document does not parse: {exc}") from exc


def set_scalar(text: str, path: tuple[str, ...], value: str) -> str:
    """`text` (one YAML document) with the mapping key `path[-1]` under `path[:-1]` set to the plain
    scalar `value`. The mappings on the way must exist."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", value):
        raise EditError(f"{value!r} is not a plain word")
    data = _load(text)
    parent = data
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, CommentedMap) else None
    if not isinstance(parent, CommentedMap):
        raise EditError(f"{'.'.join(path[:-1])} is not a mapping")
    key = path[-1]
    lines = split_lines(text)
    if key in parent:
        edited = _replace_value(lines, parent, key, value)
    else:
        edited = _insert_key(lines, parent, key, value)
    _check(data, _load(edited), path, value)
    return edited


def _replace_value(lines: list[str], parent: CommentedMap, key: str, value: str) -> str:
    old = parent[key]
    if not isinstance(old, str):
        raise EditError(f"{key} holds a {type(old).__name__}, not a word")
    line, column = parent.lc.value(key)
    found = re.compile(rf"([\"']?){re.escape(old)}\1").match(lines[line], column)
    if found is None:
        raise EditError(f"{key}'s value is not written on one line as {old!r}")
    quote = found[1]
    lines[line] = lines[line][: found.start()] + f"{quote}{value}{quote}" + lines[line][found.end() :]
    return "".join(lines)


def _insert_key(lines: list[str], parent: CommentedMap, key: str, value: str) -> str:
    if not parent:
        raise EditError("the mapping is empty: there is no key to place the new one beside")
    first = next(iter(parent))
    line, column = parent.lc.key(first)
    if parent.fa.flow_style():
        lines[line] = lines[line][:column] + f"{key}: {value}, " + lines[line][column:]
    else:
        break_ = lines[line][len(lines[line].rstrip("\r\n")) :] or "\n"
        lines.insert(line, " " * column + f"{key}: {value}{break_}")
    return "".join(lines)


def _check(before: Any, after: Any, path: tuple[str, ...], value: str) -> None:
    """The edit changed that one value, and only it."""
    node = after
    for key in path[:-1]:
        node = node[key]
    if node.get(path[-1]) != value:
        raise EditError("the edit did not take; nothing was written")
    expected = _plain(before)
    target = expected
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    if _plain(after) != expected:
        raise EditError("the edit would change more than the one value; nothing was written")


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node
