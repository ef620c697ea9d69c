"""What the store raises; the API maps these to its error envelope."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llorch.store.manifests import ManifestError


class StoreError(Exception):
    """Base of every store failure."""


class ManifestInvalid(StoreError):
    """Manifests that cannot be used as they are, each problem with its file, line and field."""

    def __init__(self, errors: list[ManifestError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


class ObjectNotFound(StoreError):
    """No manifest defines the requested kind/name."""
