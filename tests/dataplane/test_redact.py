"""Secrets out of text: credential headers, name=value pairs, key formats, the caller's own."""

from __future__ import annotations

import re

import pytest

from llorch.dataplane.redact import REDACTED, Redactor, redact_builtin, secrets_in


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("/v1/x?api_key=abcd1234&q=1", "abcd1234"),
        ("https://h/?access_token=zzzz9999", "zzzz9999"),
        ('{"password": "hunter22"}', "hunter22"),
        ("client_secret: s3cr3tvalue", "s3cr3tvalue"),
        ("Authorization: Bearer eyJhbGciOi.abc", "eyJhbGciOi.abc"),
        ("key sk-abcdefghijklmnopqrstuv", "sk-abcdefghijklmnopqrstuv"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123", "ghp_abcdefghijklmnopqrstuvwxyz0123"),
        ("AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
        ("x_api_key=abcdefgh", "abcdefgh"),
    ],
)
def test_builtin_patterns(text: str, gone: str) -> None:
    redacted = redact_builtin(text)
    assert gone not in redacted and REDACTED in redacted


def test_ordinary_text_is_left_alone() -> None:
    text = "monkey=banana; the token count is 12; keys are fine"
    assert redact_builtin(text) == text


def test_the_callers_own_secrets_and_the_policys_patterns() -> None:
    sent = [("Authorization", "Bearer opaque-value-77"), ("X-Trace", "t-1")]
    assert secrets_in(sent) == ["Bearer opaque-value-77", "opaque-value-77"]
    redactor = Redactor(
        patterns=(re.compile(r"int-[0-9]{4}"),), headers=frozenset({"x-mine"}), secrets=secrets_in(sent)
    )
    assert redactor.text("echo opaque-value-77 and int-1234") == f"echo {REDACTED} and {REDACTED}"
    headers = redactor.header_list([("set-cookie", "a=b"), ("x-mine", "v"), ("x-trace", "t-1")])
    assert headers == [("set-cookie", REDACTED), ("x-mine", REDACTED), ("x-trace", "t-1")]
