"""Where llorch keeps what it downloads and builds (engine binaries, sources, demo models)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$LLORCH_CACHE`, else `$XDG_CACHE_HOME/llorch`, else `~/.cache/llorch`."""
    explicit = os.environ.get("LLORCH_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "llorch"
    return Path.home() / ".cache" / "llorch"
