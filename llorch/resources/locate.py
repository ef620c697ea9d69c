"""Where in a YAML document a validation error points: the dotted field and its line.

llorchd (reporting a manifest file's errors) and llorchctl (checking files before it sends them)
both turn a pydantic error location into `file:line: field: message`; this is that one mapping.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from pydantic_core import ErrorDetails


@dataclass(frozen=True)
class Location:
    field: str | None
    """The dotted path with list indexes ("spec.gpus.devices.0"); None for the document itself."""
    line: int
    """1-based line, counted in the text the node tree was composed from."""


def locate(root: yaml.Node, error: ErrorDetails) -> Location:
    """Follow the error's location through the document's nodes as far as the YAML has them.

    A location has steps the document lacks: union member tags (devices.0.str) are left out of the
    field; a missing field keeps its own name, and its line is that of its nearest parent. The line
    is that of the mapping key, so an unknown field's error lands on the unknown key itself.
    """
    loc, missing = error["loc"], error["type"] == "missing"
    path: list[str] = []
    at = value = root
    for index, step in enumerate(loc):
        found = _child(value, step)
        if found is not None:
            at, value = found
            path.append(str(step))
        elif missing and index == len(loc) - 1:
            path.append(str(step))
    return Location(".".join(path) or None, at.start_mark.line + 1)


def _child(node: yaml.Node, step: int | str) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key, value) nodes one step down: a mapping's key, or a sequence's item (as both)."""
    if isinstance(node, yaml.MappingNode) and isinstance(step, str):
        # The last of repeated keys, as that is the one the loader kept.
        for key_node, value_node in reversed(node.value):
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == step:
                return key_node, value_node
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
        item: yaml.Node = node.value[step]
        return item, item
    return None
