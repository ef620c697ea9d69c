"""JSON request bodies, refused before parsing when nested deeper than `server.maxJsonDepth`:
Python's parser recurses, and a body of a million `[` would otherwise end in a RecursionError."""

from __future__ import annotations

import json
import re
from typing import Any

import falcon.media

from llorch.api.errors import RequestError
from llorch.resources.errors import ErrorCode

# Strings (whose brackets do not nest anything) and brackets: all that depth depends on.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def nested_deeper_than(text: str, limit: int) -> bool:
    depth = 0
    for token in _TOKENS.findall(text):
        first = token[0]
        if first in "[{":
            depth += 1
            if depth > limit:
                return True
        elif first in "]}":
            depth -= 1
    return False


def handler(max_depth: int) -> falcon.media.JSONHandler:
    def loads(text: str) -> Any:
        if nested_deeper_than(text, max_depth):
            raise RequestError(
                ErrorCode.INVALID_PARAMS,
                f"the JSON body is nested deeper than {max_depth} levels (server.maxJsonDepth)",
            )
        return json.loads(text)

    return falcon.media.JSONHandler(loads=loads)
