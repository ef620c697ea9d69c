"""The Model kind: where weights live and what they must hash to."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, WithJsonSchema, model_validator

from llorch.resources.meta import API_VERSION, HTTP_URL, ObjectMeta, Spec

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _digest(value: str) -> str:
    if not _DIGEST.match(value):
        raise ValueError(f"{value!r} is not a digest of the form sha256:<64 lowercase hex digits>")
    return value


Digest = Annotated[
    str, AfterValidator(_digest), WithJsonSchema({"type": "string", "pattern": _DIGEST.pattern})
]


class Lifecycle(StrEnum):
    ACTIVE = "Active"
    RETIRED = "Retired"


class Builtin(StrEnum):
    """Weights llorch generates itself, so a fresh machine can run something without downloads."""

    TINY_LLAMA = "tiny-llama"


_SOURCES = ("path", "url", "builtin")


def _exactly_one_source(schema: dict[str, Any]) -> None:
    """`_exactly_one` in the generated JSON Schema: one source given, the others absent or null."""
    schema["oneOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in _SOURCES
    ]


class ModelSource(Spec):
    """Exactly one of path, url or builtin."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_source)

    path: str | None = Field(
        default=None,
        description="Local file; '~' and $VARS expand; relative paths are relative to the manifest's folder.",
    )
    url: str | None = Field(
        default=None,
        description="http(s) URL, downloaded once into the cache.",
        json_schema_extra={"pattern": HTTP_URL},
    )
    builtin: Builtin | None = Field(default=None, description="Weights llorch generates itself.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        given = [name for name in _SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"exactly one of path, url, builtin must be set (got {given or 'none'})")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return self


class ModelSpec(Spec):
    source: ModelSource
    format: Literal["gguf", "safetensors"] = "gguf"
    digest: Digest | None = Field(default=None, description="sha256:<hex>; checked before use when set.")
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    signature: str | None = Field(default=None, description="Detached signature (path or URL).")
    sbom: str | None = Field(default=None, description="Software bill of materials (path or URL).")


class Model(Spec):
    api_version: Literal["llorch.dev/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Model"] = "Model"
    metadata: ObjectMeta
    spec: ModelSpec
