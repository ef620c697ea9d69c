"""Without a reference box the suite skips these, saying why, and no warning: `./dev test` and CI
stay clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.reference.conftest import URL_ENV

SUITE = Path(__file__).with_name("test_reference.py")


def test_unset_means_skipped_with_the_reason() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLORCH_REFERENCE_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(SUITE)],
        capture_output=True,
        text=True,
        env=env,
        cwd=SUITE.parents[2],
        timeout=120,
    )
    assert done.returncode == 0, done.stdout
    summary = done.stdout.splitlines()[-1]
    assert summary.startswith("4 skipped in") and "warning" not in summary, summary
    assert f"${URL_ENV} is not set" in done.stdout
