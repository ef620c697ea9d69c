"""JSON Schemas generated from the pydantic models: the one source of truth for `schema/`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llorch.resources.config import ServerConfig
from llorch.resources.diagnostics import Diagnostics
from llorch.resources.gpus import GpuList
from llorch.resources.kinds import KINDS
from llorch.resources.status import EventView, ModelStatus, PoolStatus
from llorch.resources.version import VersionInfo
from llorch.resources.wire import Capabilities, ReplicaSets

SCHEMA_FILES: dict[str, type[BaseModel]] = {
    **{f"{kind.lower()}.schema.json": model for kind, model in KINDS.items()},
    "pool-status.schema.json": PoolStatus,
    "model-status.schema.json": ModelStatus,
    "event.schema.json": EventView,
    "config.schema.json": ServerConfig,
    "capabilities.schema.json": Capabilities,
    "replicasets.schema.json": ReplicaSets,
    "version.schema.json": VersionInfo,
    "diagnostics.schema.json": Diagnostics,
    "gpus.schema.json": GpuList,
}


def generate(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def render(model: type[BaseModel]) -> str:
    return json.dumps(generate(model), indent=2, sort_keys=True) + "\n"


def write_all(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, model in SCHEMA_FILES.items():
        path = folder / filename
        path.write_text(render(model))
        written.append(path)
    return written


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("schema")
    for path in write_all(folder):
        print(path)


if __name__ == "__main__":
    main()
