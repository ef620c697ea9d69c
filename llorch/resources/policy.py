"""The Policy kind: admission, budgets, sessions, determinism and tool rules for selected pools."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, field_validator

from llorch.resources.hosts import address_of, canonical_host
from llorch.resources.meta import API_VERSION, Labels, ObjectMeta, Spec


class Overflow(StrEnum):
    REJECT = "reject"
    DROP_LRU = "drop-lru"


class Selector(Spec):
    match_labels: Labels = Field(default_factory=dict, description="Empty selects every pool.")

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in self.match_labels.items())


Priority = Literal["interactive", "batch"]


def _both_priorities() -> list[Priority]:
    return ["interactive", "batch"]


class Admission(Spec):
    queue_capacity: int = Field(default=64, ge=0, le=100_000)
    overflow: Overflow = Overflow.REJECT
    priorities: list[Priority] = Field(default_factory=_both_priorities, min_length=1)
    activation_timeout_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How long a task waits for a replica of its pool to start (an idle pool waking, "
        "a replica restarting, memory being freed) before it ends with the reason.",
    )


class Budgets(Spec):
    tokens: int | None = Field(default=None, ge=0)
    wall_time_seconds: float | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, ge=0)


class Sessions(Spec):
    ttl_seconds: float = Field(default=600.0, gt=0)
    max_turns: int = Field(default=8, ge=1)


class Determinism(Spec):
    default: Literal["strict", "best_effort"] = "best_effort"


HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
HttpScheme = Literal["http", "https"]
DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}
Port = Annotated[int, Field(ge=1, le=65535)]

# Characters that make a redact entry a regular expression rather than a bare name.
_BARE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def _rule_host(value: str) -> str:
    """`*` (any host), `*.suffix` (any name under suffix, not suffix itself) or one exact host,
    written canonically (see llorch.resources.hosts)."""
    if value == "*":
        return value
    if value.startswith("*."):
        suffix = canonical_host(value[2:])
        if address_of(suffix) is not None:
            raise ValueError(f"{value!r}: a wildcard takes a domain name, not an address")
        return "*." + suffix
    if "*" in value:
        raise ValueError(f"{value!r}: a wildcard is only '*' or a leading '*.'")
    return canonical_host(value)


# What `_rule_host` takes, as far as JSON Schema can say it (the document may be stricter, never
# looser): `*`, or a name (optionally `*.`-prefixed) whose last label is not a number, or a
# dotted-quad address. Addresses in other forms and IPv6 are taken too, but not promised.
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_NAME_LABEL = "[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_LAST_LABEL = "[A-Za-z_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_RULE_HOST = rf"^(\*|(\*\.)?({_NAME_LABEL}\.)*{_LAST_LABEL}|{_OCTET}(\.{_OCTET}){{3}})$"
RuleHost = Annotated[
    str,
    AfterValidator(_rule_host),
    WithJsonSchema({"type": "string", "maxLength": 253, "pattern": _RULE_HOST}),
]


class HostRule(Spec):
    """Which outbound calls a rule covers. Unset lists cover everything, except an allow rule's
    `ports`: unset, it covers only the scheme's own port (80, 443)."""

    name: str | None = Field(
        default=None, max_length=63, description="Names the rule in refusals; its position when unset."
    )
    host: RuleHost = Field(
        description="An exact host or address, `*.suffix` (names under suffix), or `*` (any public host). "
        "Loopback, private, link-local and metadata addresses need an allow rule naming the address "
        "itself."
    )
    ports: list[Port] | None = Field(default=None, min_length=1)
    schemes: list[HttpScheme] | None = Field(default=None, min_length=1)
    methods: list[HttpMethod] | None = Field(default=None, min_length=1)

    @field_validator("methods", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return [m.upper() if isinstance(m, str) else m for m in value] if isinstance(value, list) else value


def _no_url_prefixes(value: object) -> object:
    """The first form of `allow` was a list of URL prefixes. Widening one into a host rule would
    silently allow more than it did, so it is refused with the rule to write instead."""
    if isinstance(value, list):
        for index, entry in enumerate(value):
            if isinstance(entry, str):
                raise ValueError(
                    f"allow[{index}] {entry!r} is the old URL-prefix form; write a rule instead, "
                    f"e.g. {{host: {_host_hint(entry)}, schemes: [https], ports: [443], methods: [GET]}}"
                )
    return value


def _host_hint(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split("@")[-1].split(":")[0] or "api.example.com"


def _pattern(value: str) -> str:
    if _BARE_NAME.match(value):
        raise ValueError(
            f"{value!r} looks like a header or field name (the old form of redact); redact takes regular "
            "expressions, and header names go under redactHeaders (Authorization, Cookie, bearer tokens "
            "and API keys are always redacted)"
        )
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a regular expression: {exc}") from exc
    return value


def _header_name(value: str) -> str:
    if not _HEADER_NAME.match(value):
        raise ValueError(f"{value!r} is not an HTTP header name")
    return value.lower()


class HttpTools(Spec):
    """What `POST /v1/tools/http` may reach for the pools this Policy selects. Nothing is allowed
    unless an allow rule covers it; a deny rule wins over every allow rule."""

    allow: Annotated[list[HostRule], BeforeValidator(_no_url_prefixes)] = Field(default_factory=list)
    deny: list[HostRule] = Field(default_factory=list)
    max_response_bytes: int = Field(
        default=1_048_576, ge=1, le=64 * 1_048_576, description="Longer bodies are cut here (truncated)."
    )
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="The whole call, redirects included."
    )
    redact: list[
        Annotated[
            str,
            AfterValidator(_pattern),
            WithJsonSchema({"type": "string", "format": "regex", "not": {"pattern": _BARE_NAME.pattern}}),
        ]
    ] = Field(
        default_factory=list,
        description="Regular expressions whose matches are replaced in the answer's headers and body.",
    )
    redact_headers: list[
        Annotated[
            str,
            AfterValidator(_header_name),
            WithJsonSchema({"type": "string", "pattern": _HEADER_NAME.pattern}),
        ]
    ] = Field(
        default_factory=list,
        description="More answer headers whose values are replaced (Authorization, Cookie, Set-Cookie "
        "and API-key headers always are).",
    )


class PolicySpec(Spec):
    selector: Selector = Field(default_factory=Selector)
    admission: Admission = Field(default_factory=Admission)
    budgets: Budgets = Field(default_factory=Budgets)
    sessions: Sessions = Field(default_factory=Sessions)
    determinism: Determinism = Field(default_factory=Determinism)
    http_tools: HttpTools = Field(default_factory=HttpTools)


class Policy(Spec):
    api_version: Literal["llorch.dev/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Policy"] = "Policy"
    metadata: ObjectMeta
    spec: PolicySpec
