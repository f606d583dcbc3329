"""Shared constants and helpers for the trainer's tests (imported by conftest and the tests;
a uniquely named module, since `conftest` is ambiguous across test folders): a real corpus (CPython's own stdlib source, always on the
machine), a byte-level BPE trained on it in well under a second, token shards made by
`apr tokenize`, and one tiny trained run shared by the checkpoint tests.

Everything is tiny (vocab 512, hidden 64, 2 layers, seq 64) so the whole folder runs in about a
minute on two cores; nothing is downloaded.
"""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

STDLIB = Path(sysconfig.get_paths()["stdlib"])
# Plain-text-like modules present in every CPython 3.10-3.13; ~90 KB of source in all.
TRAIN_FILES = ("textwrap.py", "string.py", "shlex.py", "fnmatch.py", "heapq.py", "bisect.py", "glob.py", "colorsys.py")
VAL_FILES = ("sched.py", "stat.py")

TINY_CONFIG = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "vocab_size": 512,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
# Flags every tiny run shares: CPU, small batches, fixed seed.
TINY_RUN = ["--batch-size", "8", "--seq-length", "64", "--device", "cpu", "--seed", "7"]


def train_bpe(files: list[Path], out_dir: Path, vocab_size: int = 512) -> Path:
    from apr.tokenizer import train_byte_level_bpe

    return train_byte_level_bpe(files, out_dir, vocab_size=vocab_size)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str] | None = None) -> tuple[int, dict | None]:
    """Run `apr ARGV` in-process; with capsys and --json, also parse stdout."""
    from apr.cli.main import main

    code = main(argv)
    document = None
    if capsys is not None:
        captured = capsys.readouterr()
        if "--json" in argv and captured.out.strip():
            document = json.loads(captured.out)
    return code, document




# --- golden logits from transformers (tests/train/data/hf_golden_logits.json) ------------------

GOLDEN_IDS = [1, 5, 9, 33, 2, 60, 7, 7, 41, 0]


def golden_config(family: str):
    from apr.train.config import ModelConfig

    return ModelConfig(family=family, vocab_size=64, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                       intermediate_size=48, head_dim=8 if family != "qwen3" else 12, max_position_embeddings=64,
                       rope_theta=10000.0 if family != "llama" else 500000.0, tie_word_embeddings=family != "llama")


def golden_weights(config) -> dict:
    """Weights from numpy's PCG64 (stable across numpy and torch versions), norms near 1."""
    import numpy as np

    rng = np.random.default_rng(1234)
    weights = {}
    for name, shape in sorted(config.parameter_shapes().items()):
        values = rng.standard_normal(shape).astype(np.float32)
        weights[name] = (1.0 + 0.1 * values) if name.endswith("norm.weight") else 0.1 * values
    return weights
