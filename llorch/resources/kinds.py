"""The registry of kinds: how a raw document becomes a typed object."""

from __future__ import annotations

from typing import Any

from llorch.resources.errors import ErrorCode, LlorchError
from llorch.resources.meta import API_VERSION
from llorch.resources.model import Model
from llorch.resources.policy import Policy
from llorch.resources.pool import Pool

Resource = Model | Pool | Policy

KINDS: dict[str, type[Model] | type[Pool] | type[Policy]] = {"Model": Model, "Pool": Pool, "Policy": Policy}

# `llorchctl get pools`, `get pool`, `get po` all mean the same kind, as in kubectl.
_NAMES = {
    "Model": ("models", "model", "mo"),
    "Pool": ("pools", "pool", "po"),
    "Policy": ("policies", "policy", "pol"),
}


class KindError(LlorchError, ValueError):
    """A document's apiVersion or kind is not one llorch knows."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_PARAMS, message)


def plural(kind: str) -> str:
    return _NAMES[kind][0]


def api_path(kind: str) -> str:
    """Where the API lists objects of `kind`. Models live under the catalog, as the wire contract
    has them, which leaves `/v1/models` to the OpenAI-compatible list its clients expect."""
    return "/v1/catalog/models" if kind == "Model" else f"/v1/{plural(kind)}"


def kind_for(name: str) -> str:
    lowered = name.lower()
    for kind, names in _NAMES.items():
        if lowered == kind.lower() or lowered in names:
            return kind
    known = ", ".join(names[0] for names in _NAMES.values())
    raise KindError(f"unknown resource type {name!r} (known: {known})")


def key_of(obj: Resource) -> str:
    return f"{obj.kind}/{obj.metadata.name}"


def parse_object(doc: Any) -> Resource:
    """Validate one document; pydantic's ValidationError carries the failing field's location."""
    if not isinstance(doc, dict):
        raise KindError(f"a manifest document must be a mapping, got {type(doc).__name__}")
    api_version = doc.get("apiVersion")
    if api_version != API_VERSION:
        raise KindError(f"apiVersion must be {API_VERSION!r}, got {api_version!r}")
    kind = doc.get("kind")
    # A kind that is not a string (a mapping, a list) is no kind, and cannot even be looked up.
    if not isinstance(kind, str) or kind not in KINDS:
        raise KindError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    return KINDS[kind].model_validate(doc)
