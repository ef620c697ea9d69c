"""Secrets taken out of text before it leaves llorch or is written down: an HTTP tool's answer,
a request line in the log, a URL in the audit trail.

Always redacted: the values of credential headers (Authorization, Cookie, API-key and token
headers), bearer/basic credentials, `name=value` and `"name": "value"` pairs whose name says
secret (api_key, token, password, ...), well-known key formats, and the exact secrets the
caller itself sent. A Policy adds its own patterns and header names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

REDACTED = "[REDACTED]"

_SECRET_HEADER = re.compile(r"auth|token|secret|passw|api[-_]?key|cookie|session", re.IGNORECASE)
_SECRET_NAME = (
    r"api[-_]?key|apikey|key|access[-_]?token|refresh[-_]?token|id[-_]?token|auth[-_]?token|token|"
    r"secret|client[-_]?secret|password|passwd|pwd|private[-_]?key|session[-_]?id|sig|signature"
)
_BUILTIN = (
    # name=value, name: value, "name": "value" (query strings, form bodies, JSON, YAML).
    re.compile(
        rf"(?<![A-Za-z0-9])((?:{_SECRET_NAME})[\"']?\s*[:=]\s*[\"']?)([^\"'\s&,;{{}}<>]{{4,}})",
        re.IGNORECASE,
    ),
    # Credentials after an auth scheme.
    re.compile(r"(?<![A-Za-z0-9])((?:bearer|basic|token)\s+)([A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE),
)
_KEY_FORMATS = re.compile(
    r"\bsk-[A-Za-z0-9_-]{16,}|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bxox[abprs]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b|\bllorch_[A-Za-z0-9_-]{16,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
# Shorter values would redact ordinary words that happen to equal them.
_MIN_SECRET = 6


def is_secret_header(name: str) -> bool:
    return bool(_SECRET_HEADER.search(name))


def redact_builtin(text: str) -> str:
    """The always-redacted patterns alone (for log lines and audit targets)."""
    for pattern in _BUILTIN:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return _KEY_FORMATS.sub(REDACTED, text)


def secrets_in(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The credentials a caller sent in `headers`, each as a whole value and, after an auth
    scheme (`Bearer x`), the credential alone: an upstream that echoes either is redacted."""
    found: list[str] = []
    for name, value in headers:
        if is_secret_header(name):
            found.append(value.strip())
            found.extend(part for part in value.split()[1:])
    return [secret for secret in found if len(secret) >= _MIN_SECRET]


@dataclass(frozen=True)
class Redactor:
    patterns: Sequence[re.Pattern[str]] = ()
    headers: frozenset[str] = frozenset()
    secrets: Sequence[str] = field(default_factory=tuple)

    def text(self, text: str) -> str:
        # Longest first: a secret that contains another is replaced whole.
        for secret in sorted(set(self.secrets), key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        text = redact_builtin(text)
        for pattern in self.patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def header_list(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        return [
            (name, REDACTED if is_secret_header(name) or name.lower() in self.headers else self.text(value))
            for name, value in headers
        ]
