"""API keys: named keys with scopes, kept only as sha256 digests, and the legacy tokens (config
`tokens:` and `$LLORCH_TOKENS`), each an admin key."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from llorch.api.auth.scopes import Principal
from llorch.resources.config import SCOPES, ApiKey


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def identity(token: str) -> str:
    """How an unnamed token appears in logs and the audit trail: enough of its hash to tell
    tokens apart, never the token."""
    return "token:" + digest(token)[:6]


class KeyRing:
    def __init__(self, keys: Sequence[ApiKey], legacy_tokens: Sequence[str]) -> None:
        self.replace(keys, legacy_tokens)

    def replace(self, keys: Sequence[ApiKey], legacy_tokens: Sequence[str]) -> None:
        """Take these keys instead (a config reload). The list is swapped in one assignment, so a
        request being checked sees the old keys or the new ones, never a mix."""
        ring = [(bytes.fromhex(k.sha256), Principal(f"token:{k.name}", frozenset(k.scopes))) for k in keys]
        ring += [
            (hashlib.sha256(t.encode()).digest(), Principal(identity(t), frozenset(SCOPES)))
            for t in legacy_tokens
        ]
        self._keys = ring

    def __bool__(self) -> bool:
        return bool(self._keys)

    def find(self, token: str) -> Principal | None:
        """The key's principal, comparing digests in constant time and every one of them, so the
        time taken says nothing about which key came close."""
        presented = hashlib.sha256(token.encode()).digest()
        found: Principal | None = None
        for known, principal in self._keys:
            if hmac.compare_digest(presented, known) and found is None:
                found = principal
        return found
