"""Which pool a task runs on: its target (a pool, or a model some pools serve), its filters
(engine, context, GPU device mask, pools to avoid) and its placement mode (pin, prefer, auto).

A pure function over a snapshot of the pools, so every rule is testable without a server. A pin
is never silently replaced by another pool: it is honoured or the task is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llorch.dataplane.errors import DataplaneError
from llorch.resources.errors import ErrorCode


@dataclass(frozen=True)
class PlacementPrefs:
    mode: str = "auto"  # pin | prefer | auto
    pin_pool: str | None = None
    prefer: tuple[str, ...] = ()
    avoid: tuple[str, ...] = ()
    # Bit i set: the task may run on GPU i. None: any device.
    device_mask: int | None = None
    allow_fallback: bool = True


@dataclass(frozen=True)
class Want:
    """What a task asks of its pool."""

    pool: str | None = None
    model_ref: str | None = None
    engine: str | None = None
    ctx: int | None = None
    placement: PlacementPrefs = PlacementPrefs()


@dataclass(frozen=True)
class Candidate:
    """A pool as routing sees it now."""

    name: str
    model: str
    engine: str
    context: int  # tokens a task may use there (see TaskService.context_limit)
    serving: int  # replicas that take new work
    free_slots: int
    devices: frozenset[int] = frozenset()  # GPU indexes its replicas run on; empty on CPU


def choose(candidates: Sequence[Candidate], want: Want) -> str:
    """The name of the pool the task goes to; DataplaneError when none can take it."""
    by_name = {c.name: c for c in candidates}
    pinned = _pinned(want)
    if pinned is not None:
        chosen = by_name.get(pinned)
        if chosen is None:
            raise DataplaneError(ErrorCode.NOT_FOUND, f"no pool {pinned!r}")
        if want.model_ref is not None and chosen.model != want.model_ref:
            raise DataplaneError(
                ErrorCode.INVALID_PARAMS,
                f"pool {pinned!r} serves model {chosen.model!r}, not {want.model_ref!r}",
            )
        misfit = _misfit(chosen, want)
        if misfit:
            raise DataplaneError(
                ErrorCode.INVALID_PARAMS, f"pinned pool {pinned!r} cannot take this task: {misfit}"
            )
        return chosen.name
    serving_model = [c for c in candidates if c.model == want.model_ref]
    if not serving_model:
        raise DataplaneError(ErrorCode.NOT_FOUND, f"no pool serves model {want.model_ref!r}")
    misfits = {c.name: _misfit(c, want) for c in serving_model}
    fit = [c for c in serving_model if not misfits[c.name]]
    if not fit:
        reasons = "; ".join(f"pool {name!r}: {why}" for name, why in sorted(misfits.items()))
        raise DataplaneError(
            ErrorCode.INVALID_PARAMS,
            f"no pool serving model {want.model_ref!r} can take this task ({reasons})",
        )
    placement = want.placement
    if placement.mode == "prefer":
        ready = {c.name: c for c in fit if c.serving > 0}
        for name in placement.prefer:
            if name in ready:
                return name
        if not placement.allow_fallback:
            raise DataplaneError(
                ErrorCode.POOL_UNAVAILABLE,
                f"none of the preferred pools {list(placement.prefer)} can take this task now, "
                "and allow_fallback is false",
                retriable=True,
                retry_after_ms=1000,
            )
    return _best(fit).name


def _pinned(want: Want) -> str | None:
    placement = want.placement
    if placement.mode == "pin":
        pinned = want.pool or placement.pin_pool
        if pinned is None:
            raise DataplaneError(ErrorCode.INVALID_PARAMS, "placement mode pin needs pin_pool_id (or pool)")
        if want.pool is not None and placement.pin_pool is not None and want.pool != placement.pin_pool:
            raise DataplaneError(
                ErrorCode.INVALID_PARAMS,
                f"pool {want.pool!r} and pin_pool_id {placement.pin_pool!r} disagree",
            )
        return pinned
    if want.pool is not None:
        # Naming a pool is a pin: a task that asked for `chat` never lands on `batch`.
        return want.pool
    if want.model_ref is None:
        raise DataplaneError(ErrorCode.INVALID_PARAMS, "give a pool, a model_ref or a pin_pool_id")
    return None


def _misfit(pool: Candidate, want: Want) -> str:
    """Why `pool` cannot take the task, or "" when it can."""
    reasons = []
    if want.engine is not None and pool.engine != want.engine:
        reasons.append(f"engine is {pool.engine}, not {want.engine}")
    if want.ctx is not None and want.ctx > pool.context:
        reasons.append(f"context {pool.context} < ctx {want.ctx}")
    mask = want.placement.device_mask
    if mask is not None:
        outside = sorted(d for d in pool.devices if not mask >> d & 1)
        if outside:
            gpus = ", ".join(map(str, outside))
            reasons.append(f"runs on GPU {gpus}, outside require_device_mask {mask:#x}")
    if pool.name in want.placement.avoid:
        reasons.append("in avoid_pools")
    return ", ".join(reasons)


def _best(fit: Sequence[Candidate]) -> Candidate:
    """Ready pools first, then the most free slots, then the name (stable for equal pools)."""
    return min(fit, key=lambda c: (c.serving == 0, -c.free_slots, c.name))
