"""The VRAM estimate, against the real demo GGUF (64-dim llama, 2 layers, 4 heads, 2 KV heads)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from llorch.runtime.vram import (
    GIB,
    MIB,
    VramEstimate,
    cache_types_from_args,
    estimate_llamacpp,
    format_bytes,
)

# The demo model's shape (llorch.runtime.demo_model._PARAMS): what the formula should see.
LAYERS, EMBD, HEADS, KV_HEADS = 2, 64, 4, 2
HEAD_DIM = EMBD // HEADS


def kv_formula(context: int, bytes_k: float, bytes_v: float) -> float:
    return LAYERS * context * KV_HEADS * (HEAD_DIM * bytes_k + HEAD_DIM * bytes_v)


def test_weights_are_the_sum_of_the_tensors(demo_model: Path) -> None:
    reader = gguf.GGUFReader(demo_model)
    tensors = sum(int(t.n_bytes) for t in reader.tensors)
    estimate = estimate_llamacpp(demo_model, context_total=2048)
    assert estimate.weights_bytes == tensors
    # The file is the tensors plus metadata (the tokenizer's vocabulary is most of that).
    size = demo_model.stat().st_size
    assert 0.9 * size < estimate.weights_bytes <= size


def test_kv_cache_follows_the_formula_exactly(demo_model: Path) -> None:
    estimate = estimate_llamacpp(demo_model, context_total=4096)
    assert estimate.kv_cache_bytes == kv_formula(4096, 2, 2) == 1 * MIB
    assert estimate_llamacpp(demo_model, context_total=8192).kv_cache_bytes == 2 * MIB


def test_quantized_cache_types_shrink_the_kv_cache(demo_model: Path) -> None:
    f16 = estimate_llamacpp(demo_model, context_total=4096)
    q8 = estimate_llamacpp(demo_model, context_total=4096, cache_type_k="q8_0", cache_type_v="q8_0")
    mixed = estimate_llamacpp(demo_model, context_total=4096, cache_type_k="q8_0", cache_type_v="q4_0")
    assert q8.kv_cache_bytes == kv_formula(4096, 34 / 32, 34 / 32)
    assert 0.5 < q8.kv_cache_bytes / f16.kv_cache_bytes < 0.55  # q8_0 roughly halves f16
    assert mixed.kv_cache_bytes == kv_formula(4096, 34 / 32, 18 / 32)
    assert estimate_llamacpp(
        demo_model, context_total=4096, cache_type_k="f32", cache_type_v="f32"
    ).kv_cache_bytes == (2 * f16.kv_cache_bytes)


def test_the_total_is_the_sum_of_the_parts(demo_model: Path) -> None:
    e = estimate_llamacpp(demo_model, context_total=2048, overhead_bytes=100 * MIB)
    assert e.overhead_bytes == 100 * MIB
    assert e.compute_bytes > 0
    assert e.total_bytes == e.weights_bytes + e.kv_cache_bytes + e.compute_bytes + e.overhead_bytes


def test_default_overhead_is_half_a_gib(demo_model: Path) -> None:
    assert estimate_llamacpp(demo_model, context_total=2048).overhead_bytes == 512 * MIB


def test_describe_names_every_part() -> None:
    e = VramEstimate(
        weights_bytes=int(8.9 * GIB),
        kv_cache_bytes=4 * GIB,
        compute_bytes=int(0.6 * GIB),
        overhead_bytes=GIB,
        context_total=32768,
    )
    assert e.describe() == (
        "14.5 GiB = weights 8.9 GiB + KV 4.0 GiB (ctx 32768, all f16) + compute 614.4 MiB + overhead 1.0 GiB"
    )
    mixed = VramEstimate(GIB, GIB, GIB, GIB, context_total=1024, cache_type_k="q8_0", cache_type_v="q4_0")
    assert "(ctx 1024, K q8_0 V q4_0)" in mixed.describe()


def test_format_bytes() -> None:
    assert format_bytes(int(14.5 * GIB)) == "14.5 GiB"
    assert format_bytes(12 * GIB) == "12.0 GiB"
    assert format_bytes(512 * MIB) == "512.0 MiB"
    assert format_bytes(0) == "0.0 MiB"


def test_unknown_cache_type_is_a_value_error_naming_it(demo_model: Path) -> None:
    with pytest.raises(ValueError, match="'q3_k'"):
        estimate_llamacpp(demo_model, context_total=2048, cache_type_k="q3_k")
    with pytest.raises(ValueError, match="'Q8_0'"):  # llama-server's names are lower case, exactly
        cache_types_from_args(["--cache-type-v", "Q8_0"])


def test_context_must_be_positive(demo_model: Path) -> None:
    with pytest.raises(ValueError, match="context_total"):
        estimate_llamacpp(demo_model, context_total=0)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], ("f16", "f16")),
        (["--flash-attn", "on", "-t", "8"], ("f16", "f16")),
        (["--cache-type-k", "q8_0"], ("q8_0", "f16")),
        (["-ctk", "q8_0", "-ctv", "q4_0"], ("q8_0", "q4_0")),
        (["--cache-type-k=q5_1", "--cache-type-v=iq4_nl"], ("q5_1", "iq4_nl")),
        (
            ["-ctv", "q8_0", "--cache-type-v", "bf16"],
            ("f16", "bf16"),
        ),  # the last one wins, as in llama-server
    ],
)
def test_cache_types_from_args(args: list[str], expected: tuple[str, str]) -> None:
    assert cache_types_from_args(args) == expected


def test_a_cache_flag_without_a_value_is_an_error() -> None:
    with pytest.raises(ValueError, match="-ctk"):
        cache_types_from_args(["-ctk"])


def test_parsed_cache_types_feed_the_estimate(demo_model: Path) -> None:
    k, v = cache_types_from_args(["-ctk", "q8_0", "-ctv", "q8_0"])
    q8 = estimate_llamacpp(demo_model, context_total=4096, cache_type_k=k, cache_type_v=v)
    f16 = estimate_llamacpp(demo_model, context_total=4096)
    assert q8.kv_cache_bytes < 0.55 * f16.kv_cache_bytes


# --- metadata variations, on small GGUFs written here ----------------------------------------------


def _write(path: Path, *, kv_heads: int | list[int] | None, key_length: int | None = None) -> Path:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_embedding_length(128)
    writer.add_block_count(3)
    writer.add_feed_forward_length(256)
    writer.add_head_count(8)
    if kv_heads is not None:
        writer.add_head_count_kv(kv_heads)
    if key_length is not None:
        writer.add_key_length(key_length)
        writer.add_value_length(key_length)
    writer.add_vocab_size(1000)
    writer.add_tensor("w", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_missing_kv_heads_default_to_heads(tmp_path: Path) -> None:
    e = estimate_llamacpp(_write(tmp_path / "m.gguf", kv_heads=None), context_total=100)
    assert e.kv_cache_bytes == 3 * 100 * 8 * (16 * 2 + 16 * 2)
    assert e.weights_bytes == 4 * 8 * 4


def test_explicit_key_and_value_lengths_win(tmp_path: Path) -> None:
    e = estimate_llamacpp(_write(tmp_path / "m.gguf", kv_heads=2, key_length=64), context_total=100)
    assert e.kv_cache_bytes == 3 * 100 * 2 * (64 * 2 + 64 * 2)


def test_per_layer_kv_heads_are_summed(tmp_path: Path) -> None:
    e = estimate_llamacpp(_write(tmp_path / "m.gguf", kv_heads=[2, 0, 4]), context_total=100)
    assert e.kv_cache_bytes == 100 * (2 + 0 + 4) * (16 * 2 + 16 * 2)


def test_metadata_the_estimate_needs_must_be_there(tmp_path: Path) -> None:
    writer = gguf.GGUFWriter(tmp_path / "bare.gguf", "llama")
    writer.add_embedding_length(128)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ValueError, match=r"llama\.block_count"):
        estimate_llamacpp(tmp_path / "bare.gguf", context_total=100)


def _shard(path: Path, tensor_rows: int, *, first: bool) -> None:
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_uint16("split.count", 2)
    if first:
        writer.add_embedding_length(128)
        writer.add_block_count(3)
        writer.add_head_count(8)
    writer.add_tensor(f"w{tensor_rows}", np.zeros((tensor_rows, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_a_split_model_counts_every_shard(tmp_path: Path) -> None:
    first = tmp_path / "big-00001-of-00002.gguf"
    _shard(first, 4, first=True)
    with pytest.raises(ValueError, match="shard 2 of 2 is missing"):
        estimate_llamacpp(first, context_total=100)
    _shard(tmp_path / "big-00002-of-00002.gguf", 6, first=False)
    assert estimate_llamacpp(first, context_total=100).weights_bytes == (4 + 6) * 8 * 4
