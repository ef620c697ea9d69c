"""How much VRAM one llama.cpp replica needs, estimated from its GGUF file and its context size.

The estimate is what placement reserves before the engine starts, so it errs on the generous side:
an unschedulable pool says why, while an under-estimate becomes a CUDA out-of-memory crash loop.
A pool that knows better sets `gpus.vramMiB`, which replaces the estimate entirely.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import gguf

MIB = 1024**2
GIB = 1024**3

# Bytes per element of each KV cache type llama-server accepts (--cache-type-k/-v). Quantized types
# come in blocks of 32 elements: q8_0 stores 32 int8 plus one f16 scale = 34 bytes per 32, and so on.
_CACHE_TYPE_BYTES: dict[str, Fraction] = {
    "f32": Fraction(4),
    "f16": Fraction(2),
    "bf16": Fraction(2),
    "q8_0": Fraction(34, 32),
    "q4_0": Fraction(18, 32),
    "q4_1": Fraction(20, 32),
    "iq4_nl": Fraction(18, 32),
    "q5_0": Fraction(22, 32),
    "q5_1": Fraction(24, 32),
}
DEFAULT_CACHE_TYPE = "f16"  # llama-server's default for both K and V

# llama.cpp's shard naming (gguf-split): the first shard is what a pool's model path points at.
_SHARD_NAME = re.compile(r"(?P<prefix>.+)-00001-of-\d{5}\.gguf")

_CACHE_FLAGS = {"--cache-type-k": 0, "-ctk": 0, "--cache-type-v": 1, "-ctv": 1}

# What each process pays beyond weights, KV and compute: on a GPU the CUDA context and cuBLAS
# workspace (roughly 300-500 MiB depending on driver and card), on the CPU its own heap.
DEFAULT_OVERHEAD_BYTES = 512 * MIB
CPU_OVERHEAD_BYTES = 64 * MIB

# llama-server's default physical batch (-ub): the prompt tokens one graph evaluation processes.
_UBATCH = 512
_F32 = 4


def format_bytes(n: int) -> str:
    """Bytes for people: GiB with one decimal ("14.5 GiB"), MiB below 1 GiB ("512.0 MiB").

    The one place llorch formats VRAM sizes, so a message and a status field always agree.
    """
    if abs(n) >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / MIB:.1f} MiB"


@dataclass(frozen=True)
class VramEstimate:
    """One replica's VRAM, by part. `context_total` and the cache types are kept for `describe`."""

    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    overhead_bytes: int
    context_total: int = 0
    cache_type_k: str = DEFAULT_CACHE_TYPE
    cache_type_v: str = DEFAULT_CACHE_TYPE

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.overhead_bytes

    def describe(self) -> str:
        """E.g. "14.5 GiB = weights 8.9 GiB + KV 4.0 GiB (ctx 32768, all f16) + compute 0.6 GiB + ..."."""
        cache = (
            f"all {self.cache_type_k}"
            if self.cache_type_k == self.cache_type_v
            else f"K {self.cache_type_k} V {self.cache_type_v}"
        )
        return (
            f"{format_bytes(self.total_bytes)} = weights {format_bytes(self.weights_bytes)}"
            f" + KV {format_bytes(self.kv_cache_bytes)} (ctx {self.context_total}, {cache})"
            f" + compute {format_bytes(self.compute_bytes)} + overhead {format_bytes(self.overhead_bytes)}"
        )


@dataclass(frozen=True)
class _Shape:
    """The hyper-parameters the estimate needs, read from the GGUF metadata."""

    n_layer: int
    n_embd: int
    n_ff: int
    n_vocab: int
    n_head: int
    kv_heads: tuple[int, ...]  # per layer: some architectures vary it, and 0 means no KV in that layer
    key_length: int
    value_length: int


def estimate_llamacpp(
    model_path: Path,
    *,
    context_total: int,
    cache_type_k: str = DEFAULT_CACHE_TYPE,
    cache_type_v: str = DEFAULT_CACHE_TYPE,
    overhead_bytes: int = DEFAULT_OVERHEAD_BYTES,
) -> VramEstimate:
    """Estimate the VRAM of llama-server serving `model_path` with `-c context_total`, all layers on GPU.

    * weights: the sum of the GGUF's tensor data sizes (the file is memory-mapped; no tensor is read).
    * KV cache: layers x context_total x kv_heads x (key_length x bytes(K) + value_length x bytes(V)),
      from `<arch>.block_count`, `.attention.head_count_kv` (default: head_count) and
      `.attention.key_length` / `.value_length` (default: embedding_length / head_count).
      Standard attention only: sliding-window, MLA and recurrent layers need less, so this over-counts them.
    * compute: the scratch buffer of one batch; see `_compute_bytes`.
    * overhead: the CUDA context and cuBLAS workspace every process pays on each GPU (roughly 300-500 MiB,
      depending on driver and card), which no file says anything about; 512 MiB by default.

    Raises ValueError for an unknown cache type, a non-positive context, or metadata the estimate needs
    and the file lacks.
    """
    if context_total <= 0:
        raise ValueError(f"context_total must be positive, got {context_total}")
    bytes_k, bytes_v = _cache_type_bytes(cache_type_k), _cache_type_bytes(cache_type_v)
    weights, shape = _read_model(model_path)
    kv_per_token: Fraction = sum(
        (heads * (shape.key_length * bytes_k + shape.value_length * bytes_v) for heads in shape.kv_heads),
        Fraction(0),
    )
    return VramEstimate(
        weights_bytes=weights,
        kv_cache_bytes=_ceil(kv_per_token * context_total),
        compute_bytes=_compute_bytes(shape),
        overhead_bytes=overhead_bytes,
        context_total=context_total,
        cache_type_k=cache_type_k,
        cache_type_v=cache_type_v,
    )


def _read_model(path: Path) -> tuple[int, _Shape]:
    """(weights bytes, shape) of a GGUF, remembered per file version.

    Parsing the metadata walks the whole tokenizer vocabulary (about a second per 32k tokens) and
    the pool controller asks on every reconcile, so the answer is kept until the file changes.
    """
    stat = path.stat()
    return _read_model_version(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _read_model_version(path: str, size: int, mtime_ns: int) -> tuple[int, _Shape]:
    del size, mtime_ns  # part of the cache key only
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, IndexError, KeyError, OSError) as exc:
        # A truncated or foreign file: the reader fails in whichever way it first stumbles.
        raise ValueError(f"{path} is not a readable GGUF file: {exc or type(exc).__name__}") from exc
    return _weights_bytes(reader, Path(path)), _shape(reader, Path(path))


def _weights_bytes(reader: gguf.GGUFReader, path: Path) -> int:
    """All tensor data of the model, across every shard of a split GGUF (`name-00001-of-00003.gguf`).

    Over-counts a little on purpose: llama.cpp keeps the token embedding in host memory.
    """
    total = sum(int(tensor.n_bytes) for tensor in reader.tensors)
    field = reader.get_field("split.count")
    shards = _int(field.contents()) if field is not None else 1
    if shards <= 1:
        return total
    match = _SHARD_NAME.fullmatch(path.name)
    if match is None:
        raise ValueError(f"{path}: split.count is {shards} but the name is not <prefix>-00001-of-NNNNN.gguf")
    for n in range(2, shards + 1):
        shard = path.with_name(f"{match['prefix']}-{n:05d}-of-{shards:05d}.gguf")
        if not shard.is_file():
            raise ValueError(f"{path}: shard {n} of {shards} is missing ({shard.name})")
        total += sum(int(tensor.n_bytes) for tensor in gguf.GGUFReader(shard).tensors)
    return total


def _compute_bytes(shape: _Shape) -> int:
    """The compute buffer: an estimate, not a measurement.

    llama.cpp sizes its scratch buffer for the largest graph it will run: one batch of `-ub` (512)
    tokens. Its graph allocator reuses memory between layers, so what stays live at once is roughly
    one layer's activations (embedding-wide tensors for attention, feed-forward-wide ones for the
    MLP) plus the f32 logits of the batch over the whole vocabulary, which dominate for small models
    with large vocabularies. Attention scores are not counted: llama-server enables flash attention
    by default on CUDA (`-fa auto`), which never materialises them.
    """
    per_token = shape.n_vocab + 2 * shape.n_ff + 4 * shape.n_embd
    return _UBATCH * per_token * _F32


def cache_types_from_args(engine_args: Sequence[str]) -> tuple[str, str]:
    """(K type, V type) from llama-server arguments: `--cache-type-k`/`-ctk` and `--cache-type-v`/`-ctv`.

    Both `--cache-type-k q8_0` and `--cache-type-k=q8_0` are read; the last one given wins, as in
    llama-server. Absent flags mean f16. A flag without a value, or a type llama-server does not
    support, raises ValueError naming it.
    """
    types = [DEFAULT_CACHE_TYPE, DEFAULT_CACHE_TYPE]
    args = list(engine_args)
    i = 0
    while i < len(args):
        flag, sep, value = args[i].partition("=")
        if flag in _CACHE_FLAGS:
            if not sep:
                if i + 1 >= len(args):
                    raise ValueError(f"{flag} needs a cache type after it")
                i += 1
                value = args[i]
            _cache_type_bytes(value)
            types[_CACHE_FLAGS[flag]] = value
        i += 1
    return types[0], types[1]


def _cache_type_bytes(cache_type: str) -> Fraction:
    try:
        return _CACHE_TYPE_BYTES[cache_type]
    except KeyError:
        known = ", ".join(_CACHE_TYPE_BYTES)
        raise ValueError(f"unknown KV cache type {cache_type!r} (llama-server takes {known})") from None


def _shape(reader: gguf.GGUFReader, path: Path) -> _Shape:
    arch = _field(reader, "general.architecture", path)
    if not isinstance(arch, str):
        raise ValueError(f"{path}: general.architecture is not a string")

    def need(key: str) -> Any:
        return _field(reader, f"{arch}.{key}", path)

    def may(key: str) -> Any:
        return _field(reader, f"{arch}.{key}", path, required=False)

    n_layer = _int(need("block_count"))
    n_embd = _int(need("embedding_length"))
    n_head = _per_layer(need("attention.head_count"), n_layer)
    kv_raw = may("attention.head_count_kv")
    kv_heads = n_head if kv_raw is None else _per_layer(kv_raw, n_layer)
    # The default head width is embedding / heads; with per-layer head counts, the widest layer's.
    head_dim = n_embd // max(max(n_head, default=0), 1)
    ff_raw = may("feed_forward_length")
    return _Shape(
        n_layer=n_layer,
        n_embd=n_embd,
        n_ff=max(_per_layer(ff_raw, n_layer), default=0) if ff_raw is not None else 4 * n_embd,
        n_vocab=_vocab_size(reader, arch),
        n_head=max(n_head, default=0),
        kv_heads=kv_heads,
        key_length=_int(may("attention.key_length") or head_dim),
        value_length=_int(may("attention.value_length") or head_dim),
    )


def _vocab_size(reader: gguf.GGUFReader, arch: str) -> int:
    explicit = reader.get_field(f"{arch}.vocab_size")
    if explicit is not None:
        return _int(explicit.contents())
    tokens = reader.get_field("tokenizer.ggml.tokens")
    return len(tokens.data) if tokens is not None else 0


def _field(reader: gguf.GGUFReader, key: str, path: Path, *, required: bool = True) -> Any:
    field = reader.get_field(key)
    if field is None:
        if required:
            raise ValueError(f"{path}: GGUF metadata lacks {key}, which the VRAM estimate needs")
        return None
    return field.contents()


def _per_layer(value: Any, n_layer: int) -> tuple[int, ...]:
    """A count that is either one number for every layer or an array with one per layer."""
    if isinstance(value, list):
        return tuple(_int(v) for v in value) or (0,) * n_layer
    return (_int(value),) * n_layer


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer in GGUF metadata, got {value!r}")
    return value


def _ceil(x: Fraction) -> int:
    return -(-x.numerator // x.denominator)
