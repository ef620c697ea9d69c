"""What the store raises: the store layer's errors in the one error model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llorch.resources.errors import ErrorCode, LlorchError

if TYPE_CHECKING:
    from llorch.store.manifests import ManifestError


class StoreError(LlorchError):
    """Base of every store failure."""


class ManifestInvalid(StoreError):
    """Manifests that cannot be used as they are, each problem with its file, line and field."""

    def __init__(self, errors: list[ManifestError]) -> None:
        count = len(errors)
        super().__init__(
            ErrorCode.INVALID_PARAMS,
            f"invalid manifest: {count} error{'s' if count != 1 else ''} (see details); nothing was written",
            details=[
                {"file": e.file, "line": e.line, "field": e.field, "message": e.message} for e in errors
            ],
        )
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


class ObjectNotFound(StoreError):
    """No manifest defines the requested kind/name."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.NOT_FOUND, message)


class ArtifactNotFound(StoreError):
    """No artifact has the requested id."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.NOT_FOUND, message)


class ArtifactInvalid(StoreError):
    """An artifact that cannot be stored as asked (a parent that does not exist, content that is not text)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.INVALID_PARAMS, message)


class ArtifactTooLarge(StoreError):
    """Content over the configured limit."""

    def __init__(self, size_bytes: int, limit_bytes: int) -> None:
        super().__init__(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"artifact content is {size_bytes} bytes, over the limit of {limit_bytes} bytes "
            "(artifacts.maxBytes in the server config)",
        )
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes
