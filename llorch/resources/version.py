"""Which llorch this is: the installed distribution's version, and the answer of `GET /version`."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

from pydantic import BaseModel, ConfigDict, Field

from llorch.resources.meta import API_VERSION

DISTRIBUTION = "llorch"
# What a source tree that was never installed (no metadata to read) calls itself.
UNKNOWN_VERSION = "0+unknown"


def package_version() -> str:
    """The version pip installed (a wheel, pipx, or an editable checkout)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION


class VersionInfo(BaseModel):
    """One side's version, as `kubectl version` shows client and server. Unknown fields are
    kept out of the way rather than refused, so an older client still reads a newer server."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str = Field(description="The llorch distribution's version.")
    api_version: str = Field(description="The apiVersion of the kinds and of the /v1 API it serves.")
    python: str
    platform: str = Field(description="Operating system and machine, e.g. linux-x86_64.")


def this_version() -> VersionInfo:
    """The version of the llorch running this code."""
    return VersionInfo(
        version=package_version(),
        api_version=API_VERSION,
        python=platform.python_version(),
        platform=f"{sys.platform}-{platform.machine()}",
    )
