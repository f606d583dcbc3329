"""A tokenizer embedded in APR metadata rebuilds the same tokenizer, from the checkpoint alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from apr.errors import TokenizerError
from apr.tokenizer import (
    build_tokenizer,
    has_embedded_tokenizer,
    read_tokenizer,
    read_tokenizer_dir,
    record_from_metadata,
    record_to_metadata,
)


def test_aprender_keys_are_written(tokenizer_json_dir: Path) -> None:
    record = read_tokenizer_dir(tokenizer_json_dir)
    keys = record_to_metadata(record)
    assert keys["tokenizer.vocabulary"] == list(record.vocabulary)
    assert keys["tokenizer.vocab_size"] == record.vocab_size
    assert all(isinstance(m, str) and m.count(" ") == 1 for m in keys["tokenizer.merges"])
    assert keys["tokenizer.model_type"] == "BPE"
    assert keys["tokenizer.eos_token_id"] == record.eos_token_id
    assert {t["content"] for t in keys["tokenizer.added_tokens"]} >= {"<|im_start|>", "<|im_end|>"}


def test_metadata_round_trip_gives_same_ids(tokenizer_json_dir: Path, hf_tokenizer, sample_text: str) -> None:
    record = read_tokenizer_dir(tokenizer_json_dir)
    metadata = json.loads(json.dumps(record_to_metadata(record)))  # as it comes back from a file
    again = record_from_metadata(metadata)
    assert again == record
    assert build_tokenizer(again).encode(sample_text).ids == hf_tokenizer.encode(sample_text).ids


def test_aprender_stamped_metadata_rebuilds_as_byte_level(vocab_merges_dir: Path, hf_tokenizer, sample_text: str) -> None:
    """Only aprender's four keys (no pipeline, no added tokens): still a working byte-level BPE."""
    record = read_tokenizer_dir(vocab_merges_dir)
    metadata = {k: v for k, v in record_to_metadata(record).items()
                if k in ("tokenizer.vocabulary", "tokenizer.vocab_size", "tokenizer.merges", "tokenizer.model_type")}
    text = sample_text.split("<|im_start|>")[0]
    assert build_tokenizer(record_from_metadata(metadata)).encode(text).ids == hf_tokenizer.encode(text).ids


def test_read_tokenizer_from_an_apr_checkpoint(tmp_path: Path, tokenizer_json_dir: Path, hf_tokenizer,
                                               sample_text: str) -> None:
    from apr.format import Flags, save_file

    record = read_tokenizer_dir(tokenizer_json_dir)
    path = tmp_path / "m.apr"
    save_file({"w": np.zeros((2, 2), np.float32)}, path, {"architecture": "qwen2", **record_to_metadata(record)},
              flags=int(Flags.HAS_VOCAB))
    assert build_tokenizer(read_tokenizer(path)).encode(sample_text).ids == hf_tokenizer.encode(sample_text).ids


def test_checkpoint_without_tokenizer_says_how_to_stamp_one() -> None:
    assert not has_embedded_tokenizer({"architecture": "qwen2"})
    with pytest.raises(TokenizerError, match="missing embedded tokenizer") as info:
        record_from_metadata({"architecture": "qwen2"}, path="m.apr")
    assert "apr stamp m.apr --tokenizer" in (info.value.hint or "")


def test_bad_embedded_keys_are_refused() -> None:
    with pytest.raises(TokenizerError, match="merges"):
        record_from_metadata({"tokenizer.vocabulary": ["a", "b"], "tokenizer.merges": ["ab"]})
    with pytest.raises(TokenizerError, match="not an id"):
        record_from_metadata({"tokenizer.vocabulary": ["a"], "tokenizer.eos_token_id": 5})
