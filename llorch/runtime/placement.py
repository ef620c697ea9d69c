"""Which GPU(s) a replica goes on: a pure function of the inventory, the reservations and the request.

The rules, in order:

1. **Available VRAM.** A GPU's available bytes are `min(free - loading, total - reserved)`: NVML's free
   memory less what replicas still loading will take, capped by what llorch has not yet promised
   (`available_bytes` says why no replica counts twice).
2. **Candidates.** With pins (`devices`: NVML indexes or UUIDs), the pinned GPUs; otherwise all.
   A pin that names no GPU makes the request unschedulable: a typo must not silently run elsewhere.
3. **Choice.** The `count` candidates with the most available bytes, ties to the lowest index. For one
   GPU that is simply the roomiest one that fits. For several, the split is proportional to available
   bytes ("free-vram") or equal ("even"); in both cases no other set of `count` GPUs could fit the
   replica if these do not, so the choice is never worse than a search.
4. **Fit.** Every chosen GPU must hold its share within its available bytes; placement never returns
   more than `available_bytes` on any GPU, and never picks a GPU with nothing available (a CUDA
   context alone would not fit there, even for a replica whose share rounds to nothing).

Everything is ordered by GPU index before any decision, so the result does not depend on the order
of the inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llorch.runtime.gpus import Gpu
from llorch.runtime.vram import format_bytes

SPLITS = ("free-vram", "even")


@dataclass(frozen=True)
class Reservation:
    """VRAM llorch promised a replica on one GPU, from the moment it is placed until it stops.

    `loaded` says whether the replica's memory is already in NVML's numbers: False while it is
    starting (placed, model still loading), True once it is ready, None when the caller does not
    know. Saying it makes `available_bytes` exact; see there for what None costs.
    """

    replica_id: str
    gpu_uuid: str
    bytes: int
    loaded: bool | None = None


@dataclass(frozen=True)
class PlacementRequest:
    """One replica's GPU needs. `vram_bytes` is its total, split across GPUs when `count` > 1."""

    replica_id: str
    count: int
    vram_bytes: int
    devices: tuple[str | int, ...] = ()  # pins: NVML index or UUID; empty means any GPU
    split: str = "free-vram"  # or "even"


@dataclass(frozen=True)
class GpuPlacement:
    """The chosen GPUs in index order, each one's share of the replica, and llama.cpp's --tensor-split."""

    gpus: tuple[Gpu, ...]
    tensor_split: tuple[float, ...]
    bytes_per_gpu: tuple[int, ...]

    @property
    def indexes(self) -> tuple[int, ...]:
        return tuple(gpu.index for gpu in self.gpus)


@dataclass(frozen=True)
class Unschedulable:
    """Why nothing fits: problems with the request itself first, then one reason per GPU in index order.

    `gpu_count` is the size of the inventory, for the "0/N" of the message (the number of
    reasons when not given).
    """

    reasons: tuple[str, ...]
    gpu_count: int | None = None

    @property
    def message(self) -> str:
        """kube-scheduler style: "0/2 GPUs fit: GPU0 …: …; GPU1 …: …"."""
        n = len(self.reasons) if self.gpu_count is None else self.gpu_count
        return f"0/{n} GPUs fit: " + "; ".join(self.reasons)


def available_bytes(gpu: Gpu, reservations: Sequence[Reservation]) -> int:
    """What a new replica may take on `gpu`: `min(free - loading, total - reserved)`, never below 0.

    Over the reservations on this GPU (matched by UUID): `reserved` sums them all, `loading` sums
    those known to be still loading (`loaded=False`). The two terms:

    * `free - loading`: NVML's free memory already excludes loaded replicas and every other
      program, but not what a loading replica is about to allocate, so that is taken off.
      (A replica part way through loading is counted twice for a moment: safe, and brief.)
    * `total - reserved`: llorch never promises more than the GPU has, whatever NVML says. This
      is what holds back replicas whose state is unknown (`loaded=None`): while such a replica
      loads, the term keeps its bytes back; once it has loaded its bytes are in both `used` and
      `reserved`, so the term is no smaller than `free` and the min subtracts them once. A replica
      that uses less than it reserved goes on holding back its whole promise.

    With every reservation's state given, this never over-commits. With unknown states it is
    `min(free, total - reserved)`, which has one blind spot: a replica still loading on a GPU where
    another program holds memory, since that memory looks like it could be the replica's; the
    over-commit is then at most that program's use, until the replica's own memory appears.
    """
    mine = [r for r in reservations if r.gpu_uuid == gpu.uuid]
    loading = sum(r.bytes for r in mine if r.loaded is False)
    reserved = sum(r.bytes for r in mine)
    return max(0, min(gpu.free_bytes - loading, gpu.total_bytes - reserved))


def place(
    gpus: Sequence[Gpu], reservations: Sequence[Reservation], request: PlacementRequest
) -> GpuPlacement | Unschedulable:
    """Place one replica (rules in the module docstring). Pure: no I/O, same inputs give the same answer.

    The replica's own reservations (same `replica_id`) are ignored: re-placing a replica must not
    compete with itself. Raises ValueError for a request no inventory could satisfy by construction:
    `count` below 1 (CPU replicas are not placed), a negative size, an unknown split.
    """
    _check(request)
    inventory = sorted(gpus, key=lambda g: (g.index, g.uuid))
    others = [r for r in reservations if r.replica_id != request.replica_id]
    available = {gpu.uuid: available_bytes(gpu, others) for gpu in inventory}
    unknown = _unknown_pins(inventory, request.devices)
    if unknown:
        return Unschedulable(tuple(unknown), gpu_count=len(inventory))
    if not inventory:
        return Unschedulable(("no GPUs found (NVML reports none)",), gpu_count=0)
    candidates = [g for g in inventory if _pinned(g, request.devices)]
    usable = [g for g in candidates if available[g.uuid] > 0]
    if len(usable) < request.count and (request.count > 1 or request.vram_bytes == 0):
        return _too_few(inventory, candidates, usable, available, request, others)
    chosen = sorted(usable, key=lambda g: (-available[g.uuid], g.index))[: request.count]
    chosen.sort(key=lambda g: g.index)
    shares = _shares(request, [available[g.uuid] for g in chosen])
    if chosen and all(share <= available[g.uuid] for g, share in zip(chosen, shares, strict=True)):
        return GpuPlacement(tuple(chosen), _tensor_split(shares), tuple(shares))
    return _unfit(inventory, chosen, shares, available, request, others)


def _check(request: PlacementRequest) -> None:
    if request.count < 1:
        raise ValueError(f"replica {request.replica_id}: count must be at least 1 to place on GPUs")
    if request.vram_bytes < 0:
        raise ValueError(f"replica {request.replica_id}: vram_bytes must not be negative")
    if request.split not in SPLITS:
        raise ValueError(
            f"replica {request.replica_id}: split must be one of {SPLITS}, not {request.split!r}"
        )


def _matches(gpu: Gpu, pin: str | int) -> bool:
    """A pin is an NVML index (an int, or a string of digits as YAML may give it) or a UUID."""
    if isinstance(pin, int):
        return gpu.index == pin
    if pin.isdecimal():
        return gpu.index == int(pin)
    return gpu.uuid.lower() == pin.lower()


def _pinned(gpu: Gpu, pins: tuple[str | int, ...]) -> bool:
    return not pins or any(_matches(gpu, pin) for pin in pins)


def _unknown_pins(inventory: Sequence[Gpu], pins: tuple[str | int, ...]) -> list[str]:
    """One reason per pin that names no GPU, then every GPU with its UUID, so the pin can be fixed."""
    unknown = [pin for pin in pins if not any(_matches(g, pin) for g in inventory)]
    if not unknown:
        return []
    return [f"pinned device {pin!r} matches no GPU" for pin in unknown] + [
        f"{_label(g)}: UUID {g.uuid}" for g in inventory
    ]


def _shares(request: PlacementRequest, available: Sequence[int]) -> list[int]:
    """Split `vram_bytes` into integer shares summing to it exactly, in the chosen GPUs' order.

    "free-vram" weighs each GPU by its available bytes (equally when none has any); "even" weighs
    them equally. Leftover bytes go to the roomiest GPUs on ties, so a share never exceeds what its
    GPU could take unless no split could fit.
    """
    weights = list(available) if request.split == "free-vram" and sum(available) > 0 else [1] * len(available)
    return _apportion(request.vram_bytes, weights, prefer=available)


def _apportion(amount: int, weights: Sequence[int], *, prefer: Sequence[int]) -> list[int]:
    """`amount` split in proportion to `weights` as integers summing to it (largest remainder method).

    Each part is its exact proportion rounded down; the units that leaves go one each to the parts
    rounded down the most, ties to the larger `prefer`, then to the earlier part.
    """
    total = sum(weights)
    parts = [amount * w // total for w in weights]
    cut = [amount * w % total for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-cut[i], -prefer[i], i))
    for i in order[: amount - sum(parts)]:
        parts[i] += 1
    return parts


def _tensor_split(shares: Sequence[int]) -> tuple[float, ...]:
    """Shares as fractions with two decimals, each within 0.01 of the truth, whose hundredths sum to 100."""
    weights = list(shares) if sum(shares) > 0 else [1] * len(shares)
    return tuple(h / 100 for h in _apportion(100, weights, prefer=weights))


def _label(gpu: Gpu) -> str:
    return f"GPU{gpu.index} {gpu.name}"


def _room(gpu: Gpu, have: int) -> str:
    return f"{_label(gpu)}: {format_bytes(have)} free"


def _lacks(gpu: Gpu, have: int, need: int, reservations: Sequence[Reservation]) -> str:
    """E.g. "GPU1 NVIDIA GeForce RTX 3060: 12.0 GiB free < 14.5 GiB needed", plus whose reservations count."""
    return f"{_room(gpu, have)} < {format_bytes(need)} needed{_held(gpu, have, reservations)}"


def _held(gpu: Gpu, have: int, reservations: Sequence[Reservation]) -> str:
    """When reservations left the GPU tighter than NVML says, which replicas hold how much of it."""
    if have >= gpu.free_bytes:
        return ""
    holders = ", ".join(sorted({r.replica_id for r in reservations if r.gpu_uuid == gpu.uuid}))
    held = format_bytes(gpu.free_bytes - have)
    return f" (NVML says {format_bytes(gpu.free_bytes)} free; {held} of that is reserved for {holders})"


def _not_pinned(gpu: Gpu, pins: tuple[str | int, ...]) -> str:
    return f"{_label(gpu)}: not in the pinned devices [{', '.join(str(p) for p in pins)}]"


def _too_few(
    inventory: Sequence[Gpu],
    candidates: Sequence[Gpu],
    usable: Sequence[Gpu],
    available: dict[str, int],
    request: PlacementRequest,
    reservations: Sequence[Reservation],
) -> Unschedulable:
    """Fewer eligible GPUs than the replica asks for: how many there are, then each GPU's room."""
    what = "pinned" if request.devices else "present"
    needs = f"needs {request.count} GPU{'s' if request.count > 1 else ''}"
    if len(candidates) < request.count:
        head = f"{needs}, {len(candidates)} {what}"
    else:
        head = f"{needs} with free VRAM, {len(usable)} of the {len(candidates)} {what} have any"
    reasons = [head]
    for gpu in inventory:
        if gpu in candidates:
            have = available[gpu.uuid]
            reasons.append(_room(gpu, have) + _held(gpu, have, reservations))
        else:
            reasons.append(_not_pinned(gpu, request.devices))
    return Unschedulable(tuple(reasons), gpu_count=len(inventory))


def _unfit(
    inventory: Sequence[Gpu],
    chosen: Sequence[Gpu],
    shares: Sequence[int],
    available: dict[str, int],
    request: PlacementRequest,
    reservations: Sequence[Reservation],
) -> Unschedulable:
    """One reason per GPU. For one GPU: every candidate lacks room (the roomiest one did).

    For several: how the replica was split, then the chosen GPUs with their shares, the others as
    not pinned or as having less room than the chosen (so no other set would do better).
    """
    share_of = {g.uuid: s for g, s in zip(chosen, shares, strict=True)}
    reasons: list[str] = []
    if request.count > 1:
        how = "by free VRAM" if request.split == "free-vram" else "evenly"
        reasons.append(f"{format_bytes(request.vram_bytes)} split {how} over {request.count} GPUs")
    for gpu in inventory:
        have, share = available[gpu.uuid], share_of.get(gpu.uuid)
        if not _pinned(gpu, request.devices):
            reasons.append(_not_pinned(gpu, request.devices))
        elif request.count == 1:
            reasons.append(_lacks(gpu, have, request.vram_bytes, reservations))
        elif share is None:
            reasons.append(f"{_room(gpu, have)}, less than the GPUs tried{_held(gpu, have, reservations)}")
        elif share > have:
            reasons.append(_lacks(gpu, have, share, reservations))
        else:
            reasons.append(f"{_room(gpu, have)}, holds its {format_bytes(share)} share")
    return Unschedulable(tuple(reasons), gpu_count=len(inventory))
