"""The pydantic kinds (Model, Pool, Policy), their validation and schema generation.

This package imports nothing else of llorch: every other package builds on it.
"""

from llorch.resources.config import ServerConfig
from llorch.resources.kinds import (
    KINDS,
    KindError,
    Resource,
    api_path,
    key_of,
    kind_for,
    parse_object,
    plural,
)
from llorch.resources.meta import API_VERSION, ObjectMeta
from llorch.resources.model import Builtin, Lifecycle, Model, ModelSource, ModelSpec
from llorch.resources.policy import Policy, PolicySpec
from llorch.resources.pool import Engine, Pool, PoolSpec, Workload
from llorch.resources.wire import ARTIFACT_KINDS, ArtifactKind

__all__ = [
    "API_VERSION",
    "ARTIFACT_KINDS",
    "KINDS",
    "ArtifactKind",
    "Builtin",
    "Engine",
    "KindError",
    "Lifecycle",
    "Model",
    "ModelSource",
    "ModelSpec",
    "ObjectMeta",
    "Policy",
    "PolicySpec",
    "Pool",
    "PoolSpec",
    "Resource",
    "ServerConfig",
    "Workload",
    "api_path",
    "key_of",
    "kind_for",
    "parse_object",
    "plural",
]
