"""The Policy's httpTools rules: written canonically, old forms refused with the form to write."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llorch.resources.policy import HttpTools


def test_rules_are_written_canonically() -> None:
    tools = HttpTools.model_validate(
        {
            "allow": [
                {"host": "API.GitHub.com.", "methods": ["get"]},
                {"host": "*.Partner.Test"},
                {"host": "[::1]"},
            ]
        }
    )
    assert [r.host for r in tools.allow] == ["api.github.com", "*.partner.test", "::1"]
    assert tools.allow[0].methods == ["GET"]


@pytest.mark.parametrize(
    ("tools", "says"),
    [
        ({"allow": ["https://api.github.com/"]}, "{host: api.github.com, schemes: [https], ports: [443]"),
        ({"redact": ["Authorization"]}, "redactHeaders"),
        ({"redact": ["(unclosed"]}, "not a regular expression"),
        ({"allow": [{"host": "a*.b"}]}, "a wildcard is only"),
        ({"allow": [{"host": "*.10.0.0.1"}]}, "takes a domain name"),
        ({"allow": [{"host": "x", "ports": [0]}]}, "greater than or equal to 1"),
        ({"allow": [{"host": "x", "schemes": ["ftp"]}]}, "'http' or 'https'"),
        ({"redactHeaders": ["bad header"]}, "not an HTTP header name"),
        ({"timeoutSeconds": 0}, "greater than 0"),
    ],
)
def test_bad_rules_say_what_to_write(tools: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=r".*") as refused:
        HttpTools.model_validate(tools)
    assert says in str(refused.value)
