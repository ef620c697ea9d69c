"""A tiny random-weight llama GGUF: a real model file for tests and demos, made without a download.

Its weights are noise, so it writes gibberish, but every llama.cpp code path (load, tokenize,
prefill, sample, detokenize) runs for real, in well under a second per request on a CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import numpy.typing as npt

from llorch.runtime.cache import cache_root
from llorch.runtime.provision import LLAMA_CPP_PYTHON_VERSION, Log, llama_cpp_source

MODEL_NAME = "llorch-tiny-llama"

# Bump when the code below changes what it writes; it goes into the file name through the hash.
_GENERATOR_VERSION = 1
_PARAMS: dict[str, Any] = {
    "n_embd": 64,
    "n_layer": 2,
    "n_head": 4,
    "n_head_kv": 2,
    "n_ff": 128,
    "n_ctx": 2048,
    "rope_freq_base": 10000.0,
    "rms_eps": 1e-5,
    "init_scale": 0.02,
    "seed": 20240601,
}
_VOCAB_FILE = Path("models") / "ggml-vocab-llama-spm.gguf"
_TOKENIZER_PREFIX = "tokenizer.ggml."


def ensure_demo_model(cache: Path | None = None, log: Log | None = None) -> Path:
    """`<cache>/models/tiny-llama-<hash>.gguf`, generated on first use."""
    root = cache or cache_root()
    path = root / "models" / f"tiny-llama-{_params_hash()}.gguf"
    if path.is_file():
        return path
    # The tokenizer always comes from the shared cache's source, so a test with its own cache folder
    # does not download the sdist again.
    vocab = llama_cpp_source(log=log) / _VOCAB_FILE
    if log is not None:
        log(f"generating demo model {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(path, vocab)
    return path


def _params_hash() -> str:
    # The tokenizer is part of the output, so the source version it is copied from is hashed too.
    spec = {"generator": _GENERATOR_VERSION, "llama_cpp_python": LLAMA_CPP_PYTHON_VERSION, **_PARAMS}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]


def _write_atomically(path: Path, vocab: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write_gguf(tmp, vocab)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the model is no secret
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _write_gguf(path: Path, vocab: Path) -> None:
    writer = gguf.GGUFWriter(path, "llama")
    try:
        _add_hparams(writer)
        n_vocab = _copy_tokenizer(writer, vocab)
        for name, tensor in _tensors(n_vocab):
            writer.add_tensor(name, tensor)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


def _add_hparams(writer: gguf.GGUFWriter) -> None:
    p = _PARAMS
    writer.add_name(MODEL_NAME)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(p["n_ctx"])
    writer.add_embedding_length(p["n_embd"])
    writer.add_block_count(p["n_layer"])
    writer.add_feed_forward_length(p["n_ff"])
    writer.add_head_count(p["n_head"])
    writer.add_head_count_kv(p["n_head_kv"])
    writer.add_rope_dimension_count(p["n_embd"] // p["n_head"])
    writer.add_rope_freq_base(p["rope_freq_base"])
    writer.add_layer_norm_rms_eps(p["rms_eps"])


def _copy_tokenizer(writer: gguf.GGUFWriter, vocab: Path) -> int:
    """Copy every `tokenizer.ggml.*` key, with its exact GGUF types, from llama.cpp's vocab-only file.

    Returns the vocabulary size.
    """
    reader = gguf.GGUFReader(vocab)
    for key, field in reader.fields.items():
        if not key.startswith(_TOKENIZER_PREFIX):
            continue
        main_type = field.types[0]
        sub_type = field.types[-1] if main_type == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), main_type, sub_type=sub_type)
    n_vocab = len(reader.fields[_TOKENIZER_PREFIX + "tokens"].data)
    writer.add_vocab_size(n_vocab)
    return n_vocab


def _tensors(n_vocab: int) -> list[tuple[str, npt.NDArray[np.float32]]]:
    """All weights, drawn in a fixed order from one seeded generator so the file is byte-identical.

    Shapes are numpy's (rows, columns); GGUF stores them reversed, which is what llama.cpp expects.
    """
    p = _PARAMS
    rng = np.random.default_rng(p["seed"])
    n_embd, n_ff = p["n_embd"], p["n_ff"]
    n_embd_kv = n_embd // p["n_head"] * p["n_head_kv"]

    def noise(*shape: int) -> npt.NDArray[np.float32]:
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(p["init_scale"])).astype(np.float32)

    def ones() -> npt.NDArray[np.float32]:
        return np.ones(n_embd, dtype=np.float32)

    tensors = [("token_embd.weight", noise(n_vocab, n_embd))]
    for i in range(p["n_layer"]):
        blk = f"blk.{i}"
        tensors += [
            (f"{blk}.attn_norm.weight", ones()),
            (f"{blk}.attn_q.weight", noise(n_embd, n_embd)),
            (f"{blk}.attn_k.weight", noise(n_embd_kv, n_embd)),
            (f"{blk}.attn_v.weight", noise(n_embd_kv, n_embd)),
            (f"{blk}.attn_output.weight", noise(n_embd, n_embd)),
            (f"{blk}.ffn_norm.weight", ones()),
            (f"{blk}.ffn_gate.weight", noise(n_ff, n_embd)),
            (f"{blk}.ffn_up.weight", noise(n_ff, n_embd)),
            (f"{blk}.ffn_down.weight", noise(n_embd, n_ff)),
        ]
    tensors += [("output_norm.weight", ones()), ("output.weight", noise(n_vocab, n_embd))]
    return tensors
