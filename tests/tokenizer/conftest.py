"""A real byte-level BPE tokenizer, trained offline on CPython's stdlib source in a fraction of a
second (formats.md §4), saved the ways Hugging Face saves tokenizers."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SAMPLE_FILES = ("textwrap.py", "shlex.py", "heapq.py")


@pytest.fixture(scope="session")
def sample_text() -> str:
    return (STDLIB / "string.py").read_text(encoding="utf-8") + "\n<|im_start|>user hi<|im_end|><|endoftext|>"


@pytest.fixture(scope="session")
def hf_tokenizer():
    """A trained `tokenizers.Tokenizer` with one trained special token and two added ones."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, min_frequency=2, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train([str(STDLIB / name) for name in SAMPLE_FILES], trainer)
    tokenizer.add_special_tokens(["<|im_start|>", "<|im_end|>"])
    return tokenizer


@pytest.fixture()
def tokenizer_json_dir(tmp_path: Path, hf_tokenizer) -> Path:
    folder = tmp_path / "tok-json"
    folder.mkdir()
    hf_tokenizer.save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture()
def vocab_merges_dir(tmp_path: Path, hf_tokenizer) -> Path:
    """The slow-tokenizer layout: vocab.json + merges.txt (+ added_tokens.json)."""
    import json

    folder = tmp_path / "tok-files"
    folder.mkdir()
    hf_tokenizer.model.save(str(folder), "x")
    (folder / "x-vocab.json").rename(folder / "vocab.json")
    (folder / "x-merges.txt").rename(folder / "merges.txt")
    added = {t.content: i for i, t in hf_tokenizer.get_added_tokens_decoder().items()}
    (folder / "added_tokens.json").write_text(json.dumps(added))
    return folder
