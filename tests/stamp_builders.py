"""Builders shared by the stamp, identity and quality tests: small checkpoints, tokenizer folders,
Hypothesis strategies and a CLI runner. (Imported by tests/test_apr_*_v1.py and, through
tests/stamp/conftest.py and tests/identity/conftest.py, by the unit tests.)"""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from apr.format import save_file
from apr.format.header import FOOTER_SIZE, Flags, parse_header

QWEN2_NAMES = ("model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.q_proj.weight")
LLAMA_NAMES = ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.input_layernorm.weight")


def write_checkpoint(path: str | os.PathLike[str], *, names=QWEN2_NAMES, metadata: dict | None = None,
                     flags: int = 0, tensors: dict | None = None) -> str:
    """A small valid APR v2 file; tensors default to one float32 [2, 3] per name."""
    if tensors is None:
        tensors = {n: (np.arange(6, dtype=np.float32) + i).reshape(2, 3) for i, n in enumerate(names)}
    save_file(tensors, path, metadata if metadata is not None else {"architecture": "LlamaForCausalLM"}, flags)
    return os.fspath(path)


def seed_checkpoint(path: str | os.PathLike[str]) -> str:
    """The seed's file: Qwen2 tensors, architecture "LlamaForCausalLM", dimensions, no hf_* fields."""
    return write_checkpoint(path, names=QWEN2_NAMES + ("model.embed_tokens.weight",), metadata={
        "model_type": "qwen2", "architecture": "LlamaForCausalLM", "hidden_size": 896, "num_layers": 24,
        "num_heads": 14,
    })


def data_section(path: str | os.PathLike[str]) -> bytes:
    raw = Path(path).read_bytes()
    return raw[parse_header(raw[:64]).data_offset : len(raw) - FOOTER_SIZE]


def write_tokenizer_json(folder: str | os.PathLike[str], *, added: bool = True, merges: bool = True) -> str:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<unk>": 0, "Ġ": 1, "t": 2, "h": 3, "e": 4, "Ġt": 5, "he": 6, "Ġthe": 7}
    doc: dict[str, Any] = {
        "version": "1.0",
        "added_tokens": [{"id": 8, "content": "<|endoftext|>", "special": True}] if added else [],
        "model": {"type": "BPE", "vocab": vocab, "merges": ["Ġ t", "h e", "Ġt he"] if merges else []},
    }
    (folder / "tokenizer.json").write_text(json.dumps(doc), encoding="utf-8")
    return os.fspath(folder)


def write_vocab_merges(folder: str | os.PathLike[str]) -> str:
    """aprender's test fixture (§2.6): vocab.json + merges.txt with a #version header."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({"<unk>": 0, "Ġ": 1, "the": 2}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\nĠ t\nh e\nĠt he\n", encoding="utf-8")
    return os.fspath(folder)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Run `apr ARGV` in-process; return (exit code, stdout, stderr)."""
    from apr.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def stderr_lines(stderr: str) -> list[str]:
    """stderr's lines, less the empty ones a transient progress bar leaves off a terminal."""
    return [line for line in stderr.splitlines() if line.strip()]


def listing(folder: str | os.PathLike[str]) -> list[str]:
    return sorted(os.listdir(folder))


# --- Hypothesis strategies ----------------------------------------------------------------------

_DTYPES = (np.float32, np.float16, np.int8, np.uint8, np.int32, np.float64)
_NAME = st.text(alphabet="abcdefghij._0123456789", min_size=1, max_size=24)
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)


@st.composite
def tensor_dicts(draw) -> dict[str, np.ndarray]:
    names = draw(st.lists(_NAME, min_size=1, max_size=5, unique=True))
    tensors = {}
    for name in names:
        dtype = draw(st.sampled_from(_DTYPES))
        shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))
        count = int(np.prod(shape)) if shape else 1
        raw = draw(st.binary(min_size=count * np.dtype(dtype).itemsize, max_size=count * np.dtype(dtype).itemsize))
        tensors[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    return tensors


@st.composite
def metadata_dicts(draw) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key in ("architecture", "hf_architecture", "hf_model_type", "license", "data_source", "data_license",
                "name", "model_type"):
        if draw(st.booleans()):
            meta[key] = draw(st.sampled_from(["", "qwen2", "llama", "LlamaForCausalLM", "Apache-2.0"]) | _TEXT)
    for key in ("hidden_size", "num_layers", "num_heads"):
        if draw(st.booleans()):
            meta[key] = draw(st.integers(1, 4096))
    custom = draw(st.dictionaries(st.sampled_from(["zeta", "alpha", "tokenizer.vocabulary", "tokenizer.bos_token_id", "x.y"]),
                                  st.integers(0, 9) | _TEXT, max_size=3))
    if "tokenizer.vocabulary" in custom:
        custom["tokenizer.vocabulary"] = ["a", "b"]
    meta.update(custom)
    return meta


FLAG_BITS = [int(f) for f in Flags if f is not Flags.LAYOUT_COLUMN_MAJOR]
# One coin per bit, so every bit is set in about half the examples: a falsifier about one flag
# (e.g. HAS_VOCAB) must not depend on a derandomized run happening to draw it.
flag_values = st.tuples(*(st.booleans() for _ in FLAG_BITS)).map(
    lambda coins: sum(bit for bit, on in zip(FLAG_BITS, coins, strict=True) if on))
VALID_LICENSES = ("Apache-2.0", "MIT", "Apache-2.0 OR MIT", "CC-BY-4.0", "llama3.1", "")


@st.composite
def patches(draw, *, allow_empty: bool = False, tokenizer=None):
    from apr.stamp import ProvenancePatch

    values: dict[str, Any] = {}
    for key in ("data_source", "hf_architecture", "hf_model_type", "architecture", "name", "description"):
        if draw(st.booleans()):
            values[key] = draw(st.just("") | _TEXT | st.sampled_from(["qwen2", "Qwen2ForCausalLM", "teacher-only"]))
    for key in ("license", "data_license"):
        if draw(st.booleans()):
            values[key] = draw(st.sampled_from(VALID_LICENSES[:-1]))
    if tokenizer is not None and draw(st.booleans()):
        values["tokenizer"] = tokenizer
    if not values and not allow_empty:
        values["architecture"] = draw(st.sampled_from(["qwen2", "llama", "gpt2"]))
    return ProvenancePatch(**values)
