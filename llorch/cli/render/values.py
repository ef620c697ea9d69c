"""Small values: reading the API's JSON defensively, and writing one value as a cell, an age, a size.

Objects are read defensively: a field the daemon did not fill (a pool never reconciled has
`status: {}`) shows as `<none>` or a zero, never as a crash. Pool and Model status, their
conditions and events are read once per object into the typed shapes of `llorch.resources.status`;
what an older or newer llorchd sent that does not fit those shapes reads as not sent. Also the
layout every view shares: kubectl's aligned tables, `Label:  value` fields, titled sections, and
whole objects as yaml/json.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import yaml
from pydantic import ValidationError

from llorch.resources.status import Condition, EventView, GpuRef, ModelStatus, PoolStatus

Obj = dict[str, Any]

NONE = "<none>"
UNKNOWN = "<unknown>"
_GAP = "   "  # kubectl's column padding


# -- reading the API's JSON: a missing or mistyped field reads as empty ----------------------------


def status_of(obj: Obj) -> Obj:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def spec_of(obj: Obj) -> Obj:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def name_of(obj: Obj) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, dict) else ""


def sub(spec: Obj, name: str) -> Obj:
    value = spec.get(name)
    return value if isinstance(value, dict) else {}


def dicts(value: Any) -> list[Obj]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def integer(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# -- typed status: parsed once per object, never failing -------------------------------------------

StatusShape = TypeVar("StatusShape", PoolStatus, ModelStatus)


def typed_status(shape: type[StatusShape], value: Any) -> StatusShape:
    """An object's `status` as `shape`. Missing or not an object, it reads as empty (never
    reconciled); a field that does not validate (an older or newer llorchd wrote it) reads as if it
    had not been sent, so that the rest of the status still shows."""
    data = dict(value) if isinstance(value, dict) else {}
    while True:
        try:
            return shape.model_validate(data)
        except ValidationError as error:
            bad = {e["loc"][0] for e in error.errors() if e["loc"]} & data.keys()
            if not bad:
                return shape()
            data = {key: item for key, item in data.items() if key not in bad}


def pool_status(obj: Obj) -> PoolStatus:
    return typed_status(PoolStatus, obj.get("status"))


def model_status(obj: Obj) -> ModelStatus:
    return typed_status(ModelStatus, obj.get("status"))


def was_sent(status: PoolStatus | ModelStatus, field: str) -> bool:
    """Whether the server gave `field` (one not sent, or not valid, holds its default)."""
    return field in status.model_fields_set


ItemShape = TypeVar("ItemShape", Condition, EventView)


def _valid(shape: type[ItemShape], items: Any) -> list[ItemShape]:
    valid: list[ItemShape] = []
    for item in dicts(items):
        try:
            valid.append(shape.model_validate(item))
        except ValidationError:
            continue  # from a newer llorchd, most likely: nothing of it can be shown faithfully
    return valid


def conditions_of(items: Any) -> list[Condition]:
    """Conditions outside a typed status (a Policy's); those that do not validate are left out."""
    return _valid(Condition, items)


def events_of(obj: Obj) -> list[EventView]:
    """An object's events; one that does not validate is left out."""
    return _valid(EventView, obj.get("events"))


# -- one value -------------------------------------------------------------------------------------


def text(value: Any) -> str:
    """One table cell or describe value: never empty, never more than one line."""
    if value is None or value == "" or value == [] or value == {}:
        return NONE
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split("\n"))


def human_duration(seconds: float) -> str:
    """kubectl's short form: one unit, truncated (45s, 3m, 2h, 5d, 1y)."""
    total = max(int(seconds), 0)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m"
    hours = total // 3600
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{hours // (24 * 365)}y"


def timestamp(value: Any) -> float | None:
    """Unix seconds of a moment: a datetime (typed status), RFC 3339 / ISO 8601 text (the wire) or
    epoch seconds (an older llorchd, artifacts). A moment without a zone is UTC, as on the wire."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).timestamp()
    return None


def age(value: Any, now: float) -> str:
    at = timestamp(value)
    return UNKNOWN if at is None else human_duration(now - at)


def human_size(size: Any) -> str:
    if not isinstance(size, int | float) or isinstance(size, bool):
        return NONE
    if size < 1024:
        return f"{int(size)}B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f}{unit}"


def millis_text(millis: int) -> str:
    """A deadline as the drain line shows it: `60s`, `0.5s`."""
    return f"{millis / 1000:g}s"


def percent(ratio: Any) -> str:
    value = number(ratio)
    return NONE if value is None else f"{value * 100:.0f}%"


def yes(value: Any) -> str:
    return "yes" if value is True else "no"


def mapping_text(value: Any) -> str:
    if not isinstance(value, dict) or not value:
        return NONE
    return ",".join(f"{k}={v}" for k, v in sorted(value.items()))


def short_gpu_name(name: str) -> str:
    """`NVIDIA GeForce RTX 3090` → `RTX 3090`: the vendor words every card of a box shares."""
    words = name.split()
    while len(words) > 1 and words[0] in ("NVIDIA", "GeForce"):
        words.pop(0)
    return " ".join(words)


def gpu_list(gpus: Any) -> str:
    """A replica's GPUs, `0:RTX 3090,1:RTX 3090` (bare indices are fine too); `cpu` when it has none."""
    parts: list[str] = []
    for gpu in gpus if isinstance(gpus, list) else []:
        if isinstance(gpu, GpuRef):
            parts.append(f"{gpu.index}:{short_gpu_name(gpu.name)}" if gpu.name else str(gpu.index))
        elif isinstance(gpu, dict):
            index, name = text(gpu.get("index")), gpu.get("name")
            parts.append(f"{index}:{short_gpu_name(name)}" if isinstance(name, str) and name else index)
        else:
            parts.append(text(gpu))
    return ",".join(parts) or "cpu"


# -- places and names ------------------------------------------------------------------------------


def where(file: Any, line: Any) -> str:
    place = str(file or "<unknown file>")
    return f"{place}:{line}" if isinstance(line, int) else place


def located(file: Any, line: Any, field: Any, message: Any) -> str:
    """`file:line: field: message`, the shape compilers use, leaving out what is unknown."""
    place = where(file, line)
    return f"{place}: {field}: {message}" if field else f"{place}: {message}"


def error_line(error: Obj) -> str:
    """A manifest error of the API (file, line, field, message) as one `located` line."""
    return located(error.get("file"), error.get("line"), error.get("field"), error.get("message"))


def resource_name(kind: str, name: str) -> str:
    """`pool/demo`, as kubectl's `-o name` and apply lines write it."""
    return f"{kind.lower()}/{name}"


def key_name(key: str) -> str:
    kind, _, name = key.partition("/")
    return resource_name(kind, name)


# -- layout ----------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "") -> list[str]:
    cells = [list(headers), *([" ".join(cell.splitlines()) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        indent + _GAP.join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]


def follow_row(headers: Sequence[str], row: Sequence[str]) -> str:
    """One more line under a table already printed (`-w`): cells at least as wide as its headers,
    so a change lines up with the columns above as well as it can without knowing what follows."""
    return table(headers, [row])[1]


def fields(pairs: Sequence[tuple[str, str]], indent: str = "") -> list[str]:
    width = max(len(label) for label, _ in pairs) + 3
    return [f"{indent}{(label + ':').ljust(width)}{value}" for label, value in pairs]


def section(title: str, lines: list[str]) -> list[str]:
    return [f"{title}:", *lines] if lines else [f"{title}:  {NONE}"]


# -- whole objects ---------------------------------------------------------------------------------


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")
