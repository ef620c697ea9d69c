"""Artifact retention: which artifacts `artifacts.retention` lets go, oldest first.

Artifacts older than `maxAgeDays` go; past `maxTotalBytes` the oldest go until the rest fit.
With `keepTagged` an artifact carrying any tag is never removed. Lineage stays whole: an
artifact that a kept one names as its parent (or its parent's parent ...) is kept too, so
every kept artifact can still be followed back to its origin.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from llorch.resources.config import ArtifactRetention
from llorch.store.db import ArtifactRecord

DAY_MS = 86_400_000


def expired(records: Sequence[ArtifactRecord], rules: ArtifactRetention, now_ms: int) -> list[ArtifactRecord]:
    """What the rules remove, oldest first; `records` oldest first."""
    protected = {r.id for r in records if rules.keep_tagged and r.tags}
    gone: set[str] = set()
    if rules.max_age_days is not None:
        cutoff = now_ms - rules.max_age_days * DAY_MS
        gone = {r.id for r in records if r.created_ms < cutoff and r.id not in protected}
        gone -= _ancestors_of_kept(records, gone)
    if rules.max_total_bytes is not None:
        gone |= _over_size(records, rules.max_total_bytes, protected, gone)
    return [r for r in records if r.id in gone]


def _ancestors_of_kept(records: Sequence[ArtifactRecord], gone: set[str]) -> set[str]:
    parents = {r.id: r.parent for r in records}
    needed: set[str] = set()
    for record in records:
        if record.id in gone:
            continue
        parent = record.parent
        while parent is not None and parent not in needed:
            needed.add(parent)
            parent = parents.get(parent)
    return needed


def _over_size(
    records: Sequence[ArtifactRecord], limit: int, protected: set[str], gone: set[str]
) -> set[str]:
    """The oldest removable artifacts until the rest fit. An artifact is removable once no kept
    artifact names it as parent, so a parent becomes a candidate when its last child goes."""
    order = {r.id: index for index, r in enumerate(records)}
    by_id = {r.id: r for r in records}
    kept_children: dict[str, int] = dict.fromkeys(by_id, 0)
    for record in records:
        if record.id not in gone and record.parent in kept_children:
            kept_children[record.parent] += 1
    left = sum(r.size_bytes for r in records if r.id not in gone)
    candidates = [order[r.id] for r in records if r.id not in gone | protected and kept_children[r.id] == 0]
    heapq.heapify(candidates)
    removed: set[str] = set()
    while left > limit and candidates:
        record = records[heapq.heappop(candidates)]
        removed.add(record.id)
        left -= record.size_bytes
        parent = record.parent
        if parent in kept_children:
            kept_children[parent] -= 1
            if kept_children[parent] == 0 and parent not in protected | gone | removed:
                heapq.heappush(candidates, order[parent])
    return removed
