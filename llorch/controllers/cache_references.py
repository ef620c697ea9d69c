"""Which Models reference which cache entry: a Model's source names the folder it downloads to."""

from __future__ import annotations

from llorch.resources import Lifecycle, Model
from llorch.runtime.downloads import download_for
from llorch.store.cache import Reference, WeightsCache
from llorch.store.db import StateDB
from llorch.store.manifests import ManifestStore


def cache_references(store: ManifestStore, db: StateDB, cache: WeightsCache) -> dict[str, Reference]:
    found: dict[str, list[tuple[str, bool, float | None]]] = {}
    for entry in store.entries("Model"):
        assert isinstance(entry.obj, Model)
        spec = entry.obj.spec
        download = download_for(spec.source, cache.root, spec.digest)
        name = cache.entry_of(download.target) if download is not None else None
        if name is None:
            continue
        model = entry.obj.metadata.name
        retired_at = db.model_runtime(model).retired_at
        found.setdefault(name, []).append((model, spec.lifecycle is Lifecycle.ACTIVE, retired_at))
    references = {}
    for name, models in found.items():
        active = any(is_active for _, is_active, _ in models)
        # Removable once the last of them has been Retired for the grace period; a Model whose
        # retirement the controller has not recorded yet counts as retired just now.
        moments = [at for _, is_active, at in models if not is_active]
        since = None if active or None in moments else max(m for m in moments if m is not None)
        references[name] = Reference(tuple(sorted(m for m, _, _ in models)), active, since)
    return references
