"""SBOM summaries: CycloneDX and SPDX JSON read for format, component count and licenses."""

from __future__ import annotations

import json

import pytest

from llorch.runtime.sbom import SbomError, summarize

CYCLONEDX = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "metadata": {"component": {"name": "tiny", "licenses": [{"license": {"id": "Apache-2.0"}}]}},
    "components": [
        {"name": "tokenizer", "licenses": [{"license": {"name": "Custom Tokenizer License"}}]},
        {"name": "weights", "licenses": [{"expression": "MIT OR Apache-2.0"}]},
        {"name": "dataset"},
    ],
}
SPDX = {
    "spdxVersion": "SPDX-2.3",
    "packages": [
        {"name": "a", "licenseConcluded": "MIT", "licenseDeclared": "MIT"},
        {"name": "b", "licenseConcluded": "NOASSERTION", "licenseDeclared": "CC-BY-4.0"},
    ],
}


def test_cyclonedx_components_and_licenses() -> None:
    summary = summarize(json.dumps(CYCLONEDX).encode())
    assert summary.format == "CycloneDX 1.5" and summary.components == 3
    assert summary.licenses == ["Apache-2.0", "Custom Tokenizer License", "MIT OR Apache-2.0"]


def test_spdx_packages_and_licenses() -> None:
    summary = summarize(json.dumps(SPDX).encode())
    assert summary.format == "SPDX-2.3" and summary.components == 2
    assert summary.licenses == ["CC-BY-4.0", "MIT"]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"name": "x"}', "neither CycloneDX"),
        (b'{"bomFormat": "CycloneDX", "components": {"a": 1}}', "components is not a list"),
    ],
)
def test_unreadable_sboms_say_why(data: bytes, why: str) -> None:
    with pytest.raises(SbomError, match=why):
        summarize(data)
