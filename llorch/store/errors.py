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


class ArtifactNotFound(StoreError):
    """No artifact has the requested id."""


class ArtifactInvalid(StoreError):
    """An artifact that cannot be stored as asked (a parent that does not exist, content that is not text)."""


class ArtifactTooLarge(StoreError):
    """Content over the configured limit."""

    def __init__(self, size_bytes: int, limit_bytes: int) -> None:
        super().__init__(f"artifact content is {size_bytes} bytes, over the limit of {limit_bytes}")
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes
