"""A Model's software bill of materials, in short: CycloneDX or SPDX JSON, read for its format,
how many components it lists and which licenses it names."""

from __future__ import annotations

import json
from typing import Any

from llorch.resources.errors import ErrorCode
from llorch.resources.status import SbomSummary
from llorch.runtime.errors import RuntimeFailure

SBOM_MAX_BYTES = 16 * 1024 * 1024


class SbomError(RuntimeFailure):
    """The SBOM is not CycloneDX or SPDX JSON llorch can read."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_PARAMS, message, retriable=False)


def summarize(data: bytes) -> SbomSummary:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SbomError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SbomError("not a CycloneDX or SPDX document (the JSON is not an object)")
    if doc.get("bomFormat") == "CycloneDX":
        return _cyclonedx(doc)
    if isinstance(doc.get("spdxVersion"), str):
        return _spdx(doc)
    raise SbomError("neither CycloneDX (bomFormat) nor SPDX (spdxVersion) JSON")


def _cyclonedx(doc: dict[str, Any]) -> SbomSummary:
    components = _objects(doc.get("components"), "components")
    licenses: set[str] = set()
    metadata = doc.get("metadata")
    root = metadata.get("component") if isinstance(metadata, dict) else None
    for component in [root, *components]:
        if isinstance(component, dict):
            for choice in _objects(component.get("licenses"), "licenses"):
                licenses |= _cyclonedx_license(choice)
    return SbomSummary(
        format=f"CycloneDX {doc.get('specVersion', '?')}",
        components=len(components),
        licenses=sorted(licenses),
    )


def _cyclonedx_license(choice: dict[str, Any]) -> set[str]:
    """A license choice is `{license: {id | name}}` or `{expression}`."""
    if isinstance(choice.get("expression"), str):
        return {choice["expression"]}
    license_ = choice.get("license")
    if isinstance(license_, dict):
        named = license_.get("id") or license_.get("name")
        if isinstance(named, str):
            return {named}
    return set()


# What SPDX writes when it does not say a license.
_SPDX_NO_LICENSE = {"NOASSERTION", "NONE", ""}


def _spdx(doc: dict[str, Any]) -> SbomSummary:
    packages = _objects(doc.get("packages"), "packages")
    licenses = {
        value
        for package in packages
        for field in ("licenseConcluded", "licenseDeclared")
        if isinstance(value := package.get(field), str) and value not in _SPDX_NO_LICENSE
    }
    return SbomSummary(format=str(doc["spdxVersion"]), components=len(packages), licenses=sorted(licenses))


def _objects(value: Any, name: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SbomError(f"{name} is not a list")
    return [item for item in value if isinstance(item, dict)]
