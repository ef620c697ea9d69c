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


class TrustPolicy(StrEnum):
    PERMISSIVE = "permissive"
    STRICT = "strict"


class Lifecycle(StrEnum):
    ACTIVE = "Active"
    RETIRED = "Retired"


class Builtin(StrEnum):
    """Weights llorch generates itself, so a fresh machine can run something without downloads."""

    TINY_LLAMA = "tiny-llama"


_HF_REPO = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_.]*(/[A-Za-z0-9][-A-Za-z0-9_.]*)?$")


def _hf_repo(value: str) -> str:
    if not _HF_REPO.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a Hugging Face repo id (owner/name)")
    return value


def _relative_file(value: str) -> str:
    # The file lands under the cache: a name that climbs out of it or is absolute must not.
    parts = value.split("/")
    if not value or value.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"{value!r} is not a file path inside the repo")
    return value


class HuggingFaceSource(Spec):
    """One file of a Hugging Face repo, fetched with huggingface_hub (HF_ENDPOINT names the hub)."""

    repo: Annotated[
        str,
        AfterValidator(_hf_repo),
        WithJsonSchema({"type": "string", "pattern": r"^(?!.*\.\.)" + _HF_REPO.pattern[1:]}),
    ] = Field(description="owner/name")
    file: Annotated[
        str,
        AfterValidator(_relative_file),
        # Not absolute, no empty, "." or ".." segment: what `_relative_file` refuses.
        WithJsonSchema({"type": "string", "pattern": r"^(?!/)(?!.*//)(?!(.*/)?\.\.?(/|$)).+$"}),
    ] = Field(description="Path of the file in the repo.")
    revision: str = Field(
        default="main",
        max_length=255,
        pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.]*(/[A-Za-z0-9][-A-Za-z0-9_.]*)*$",
        description="Branch, tag or commit; a commit hash pins the exact file.",
    )


_SOURCES = ("path", "url", "huggingface", "builtin")


def _exactly_one_source(schema: dict[str, Any]) -> None:
    """`_exactly_one` in the generated JSON Schema: one source given, the others absent or null."""
    schema["oneOf"] = [
        {"required": [name], "properties": {name: {"not": {"type": "null"}}}} for name in _SOURCES
    ]


class ModelSource(Spec):
    """Exactly one of path, url, huggingface or builtin."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_source)

    path: str | None = Field(
        default=None,
        description="Local file; '~' and $VARS expand; relative paths are relative to the manifest's folder.",
    )
    url: str | None = Field(
        default=None,
        description="http(s) URL, downloaded once into the cache (resumed after an interruption).",
        json_schema_extra={"pattern": HTTP_URL},
    )
    huggingface: HuggingFaceSource | None = Field(default=None, description="A file of a Hugging Face repo.")
    builtin: Builtin | None = Field(default=None, description="Weights llorch generates itself.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ModelSource:
        given = [name for name in _SOURCES if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"exactly one of path, url, huggingface, builtin must be set (got {given or 'none'})"
            )
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return self


class ModelSpec(Spec):
    source: ModelSource
    format: Literal["gguf", "safetensors"] = "gguf"
    digest: Digest | None = Field(default=None, description="sha256:<hex>; checked before use when set.")
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    signature: str | None = Field(
        default=None,
        description="Detached `ssh-keygen -Y sign` signature (path or URL) of the text `sha256:<hex>` "
        "of the weights, checked against trust.keys in the server config.",
    )
    sbom: str | None = Field(
        default=None, description="CycloneDX or SPDX JSON software bill of materials (path or URL)."
    )
    trust_policy: TrustPolicy | None = Field(
        default=None,
        description="strict keeps this model from running unless its signature verifies; it can only "
        "tighten the server's trust.policy, never loosen it.",
    )


class Model(Spec):
    api_version: Literal["llorch.dev/v1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["Model"] = "Model"
    metadata: ObjectMeta
    spec: ModelSpec
