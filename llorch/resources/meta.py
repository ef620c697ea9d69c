"""What every kind shares: apiVersion, kind, metadata; the pydantic base for specs."""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

API_VERSION: Final = "llorch.dev/v1"
# What a URL llorch fetches from or probes must start with (JSON Schema for `startswith` http(s)).
HTTP_URL: Final = "^https?://"

# RFC 1123 label, as Kubernetes names are, so the same documents can become custom resources.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Kubernetes label keys: an optional DNS-subdomain prefix and a name of up to 63 characters.
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS label (lowercase letters, digits and '-', at most 63, "
            "starting and ending with a letter or digit)"
        )
    return value


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, val in value.items():
        if not _LABEL_KEY.match(key):
            raise ValueError(f"label key {key!r} is not a valid label key")
        if not _LABEL_VALUE.match(val):
            raise ValueError(f"label value {val!r} for {key!r} is not a valid label value")
    return value


DnsLabel = Annotated[
    str,
    AfterValidator(_dns_label),
    WithJsonSchema({"type": "string", "pattern": _DNS_LABEL.pattern, "maxLength": 63}),
]
Labels = Annotated[
    dict[str, str],
    AfterValidator(_labels),
    WithJsonSchema(
        {
            "type": "object",
            "propertyNames": {"pattern": _LABEL_KEY.pattern},
            "additionalProperties": {"type": "string", "pattern": _LABEL_VALUE.pattern},
        }
    ),
]


class Spec(BaseModel):
    """Base of every manifest-facing model: camelCase on the wire, unknown fields are errors."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectMeta(Spec):
    name: DnsLabel = Field(description="Unique among objects of the same kind.")
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
