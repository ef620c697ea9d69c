"""Artifacts through a real llorchd and llorchctl: put, show, list, and where the content lands."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.e2e.conftest import Llorchd

# It needs llorchd, and llorchd needs the engine binary at start, though no pool runs here.
pytestmark = [pytest.mark.engine]

DIFF = "--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-print('hi')\n+print('hello')"


def test_put_show_and_list_an_artifact(llorchd: Llorchd, tmp_path: Path) -> None:
    change = tmp_path / "change.diff"
    change.write_text(DIFF)
    put = llorchd.ctl(
        "artifact", "put", str(change), "--kind", "diff", "--tag", "e2e", "--meta", "agent=test"
    )
    artifact_id, status = put.stdout.split()
    assert status == "created" and artifact_id == hashlib.sha256(DIFF.encode()).hexdigest()
    stored = llorchd.state / "artifacts" / artifact_id[:2] / artifact_id
    assert stored.read_text() == DIFF

    assert llorchd.ctl("artifact", "show", artifact_id).stdout == DIFF
    again = llorchd.ctl("artifact", "put", "--kind", "diff", "--tag", "again", input_=DIFF)
    assert again.stdout == f"{artifact_id} unchanged\n"

    header, row = llorchd.ctl("get", "artifacts", "--tag", "e2e").stdout.splitlines()
    assert header.split() == ["ID", "KIND", "SIZE", "TAGS", "AGE"]
    assert row.split()[:4] == [artifact_id[:12], "diff", f"{len(DIFF)}B", "e2e,again"]
    answer = llorchd.get(f"/v1/artifacts/{artifact_id}")
    assert answer["metadata"] == {"agent": "test"} and answer["content"] == DIFF
