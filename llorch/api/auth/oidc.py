"""OIDC bearer tokens: JWTs signed by the provider's keys (JWKS), with its issuer and our audience,
unexpired (a small leeway for clock skew); the caller's scopes are read from a configured claim."""

from __future__ import annotations

import jwt

from llorch.api.auth.scopes import Principal
from llorch.resources.config import SCOPES, Oidc, Scope
from llorch.runtime.jwks import KeySetSource


class TokenRejected(Exception):
    """Why a JWT was not accepted, in words safe to log (never the token)."""


def looks_like_jwt(token: str) -> bool:
    parts = token.split(".")
    return len(parts) == 3 and all(parts) and token.startswith("eyJ")


class OidcVerifier:
    def __init__(self, settings: Oidc, keys: KeySetSource) -> None:
        self._settings = settings
        self._keys = keys

    def verify(self, token: str) -> Principal:
        settings = self._settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"not a JWT: {exc}") from exc
        key = self._key(header.get("kid"))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(settings.algorithms),
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"{type(exc).__name__}: {exc}") from exc
        return Principal(f"oidc:{claims['sub']}", frozenset(_scopes(claims.get(settings.scopes_claim))))

    def _key(self, kid: object) -> jwt.PyJWK:
        for stale in (False, True):
            keys = jwt.PyJWKSet.from_dict(self._keys.keys(stale=stale)).keys
            matching = [k for k in keys if kid is None or k.key_id == kid]
            if len(matching) == 1 or (matching and kid is not None):
                return matching[0]
        raise TokenRejected(
            f"no key {kid!r} in the provider's JWKS" if kid else "the token names no key (kid)"
        )


def _scopes(claim: object) -> list[Scope]:
    values = claim.split() if isinstance(claim, str) else claim if isinstance(claim, list) else []
    return [scope for scope in SCOPES if scope in values]
