"""Tests for llorch.runtime.demo_model: the generated GGUF is deterministic, complete and cached."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import gguf
import pytest

from llorch.runtime.demo_model import MODEL_NAME, ensure_demo_model


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _value(reader: gguf.GGUFReader, key: str) -> Any:
    return reader.fields[key].contents()


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # The tokenizer source comes from the real cache (downloaded there once); the model goes to tmp.
    return ensure_demo_model(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def reader(demo_model: Path) -> gguf.GGUFReader:
    return gguf.GGUFReader(demo_model)  # parsing 32000 tokens takes seconds, so once per module


def test_generating_twice_gives_identical_bytes(demo_model: Path, tmp_path: Path) -> None:
    again = ensure_demo_model(tmp_path)
    assert again.name == demo_model.name
    assert _sha256(again) == _sha256(demo_model)


def test_file_lives_in_models_folder_with_a_hashed_name(demo_model: Path) -> None:
    assert demo_model.parent.name == "models"
    assert demo_model.name.startswith("tiny-llama-")
    assert demo_model.suffix == ".gguf"
    assert [p.name for p in demo_model.parent.iterdir()] == [demo_model.name]  # no temp file left


def test_has_llama_hparams(reader: gguf.GGUFReader) -> None:
    assert _value(reader, "general.architecture") == "llama"
    assert _value(reader, "general.name") == MODEL_NAME
    assert _value(reader, "llama.embedding_length") == 64
    assert _value(reader, "llama.block_count") == 2
    assert _value(reader, "llama.attention.head_count") == 4
    assert _value(reader, "llama.context_length") == 2048
    assert _value(reader, "llama.rope.dimension_count") == 16
    assert _value(reader, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(1e-5)


def test_has_the_llama_spm_tokenizer(reader: gguf.GGUFReader) -> None:
    assert _value(reader, "tokenizer.ggml.model") == "llama"
    tokens = _value(reader, "tokenizer.ggml.tokens")
    assert len(tokens) == 32000
    assert tokens[:3] == ["<unk>", "<s>", "</s>"]
    assert len(_value(reader, "tokenizer.ggml.scores")) == 32000
    assert len(_value(reader, "tokenizer.ggml.token_type")) == 32000
    assert _value(reader, "tokenizer.ggml.bos_token_id") == 1
    assert _value(reader, "tokenizer.ggml.eos_token_id") == 2
    assert _value(reader, "tokenizer.ggml.add_bos_token") is True


def test_has_all_llama_tensors_in_f32(reader: gguf.GGUFReader) -> None:
    tensors = {t.name: t for t in reader.tensors}
    parts = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up"]
    parts.append("ffn_down")
    expected = {"token_embd.weight", "output_norm.weight", "output.weight"}
    expected |= {f"blk.{i}.{part}.weight" for i in range(2) for part in parts}
    assert set(tensors) == expected
    assert all(t.tensor_type == gguf.GGMLQuantizationType.F32 for t in tensors.values())
    assert list(tensors["token_embd.weight"].shape) == [64, 32000]
    assert list(tensors["blk.0.attn_k.weight"].shape) == [64, 32]
    assert list(tensors["blk.1.ffn_down.weight"].shape) == [128, 64]


def test_second_call_does_not_regenerate(demo_model: Path) -> None:
    before = demo_model.stat().st_mtime_ns
    assert ensure_demo_model(demo_model.parent.parent) == demo_model
    assert demo_model.stat().st_mtime_ns == before
