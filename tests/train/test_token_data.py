"""Token shards and batches: exact round trips, refused corruption, deterministic sampling
(FALSIFY-TRAIN-DATA-001)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from apr.errors import AprFileNotFoundError, DatasetError
from apr.train.batches import VAL_BATCHES, split_tokens, train_batch, val_batches
from apr.train.shards import HEADER_SIZE, encode_shard, open_dataset, read_manifest, read_shard, write_dataset

from train_fixtures import run_cli


@pytest.mark.falsifies("FALSIFY-TRAIN-DATA-001")
@pytest.mark.parametrize("vocab", [512, 70_000])
def test_falsify_train_data_001_shards_round_trip(tmp_path: Path, vocab: int) -> None:
    tokens = np.random.default_rng(0).integers(0, vocab, size=1000)
    manifest = write_dataset(tmp_path, tokens, vocab_size=vocab, eos_token_id=0, shard_tokens=300)
    assert [s.num_tokens for s in manifest.shards] == [300, 300, 300, 100]
    arrays, got_vocab = open_dataset(tmp_path)
    assert got_vocab == vocab and np.array_equal(np.concatenate(arrays), tokens)
    assert arrays[0].dtype.itemsize == (2 if vocab <= 65536 else 4)


def test_corrupt_shards_are_refused(tmp_path: Path) -> None:
    write_dataset(tmp_path, np.arange(100), vocab_size=128, eos_token_id=None, shard_tokens=1000)
    shard = tmp_path / "shard-00000.bin"
    data = shard.read_bytes()
    shard.write_bytes(data[:-2])
    with pytest.raises(DatasetError, match="promises 100 tokens"):
        read_shard(shard)
    shard.write_bytes(b"XXXXXXXX" + data[8:])
    with pytest.raises(DatasetError, match="bad magic"):
        read_shard(shard)
    with pytest.raises(AprFileNotFoundError):
        open_dataset(tmp_path / "missing")
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "apr-token-shards", "vocab_size": 128,
                                                        "shards": [{"file": "../x.bin", "num_tokens": 1, "sha256": ""}]}))
    with pytest.raises(DatasetError, match="plain file name"):
        read_manifest(tmp_path)


def test_out_of_range_ids_are_refused() -> None:
    with pytest.raises(DatasetError, match=r"\[0, 10\)"):
        encode_shard(np.array([0, 10]), vocab_size=10)
    assert len(encode_shard(np.array([1, 2]), vocab_size=10)) == HEADER_SIZE + 4


@pytest.mark.falsifies("FALSIFY-TRAIN-DATA-001")
def test_falsify_train_data_001_batches_are_a_function_of_seed_and_step() -> None:
    tokens = np.arange(5000) % 97
    split = split_tokens([tokens], None, batch_size=4, seq_length=16)
    a = train_batch(split, seed=1, step=5, batch_size=4)
    assert np.array_equal(a, train_batch(split, seed=1, step=5, batch_size=4))
    assert not np.array_equal(a, train_batch(split, seed=1, step=6, batch_size=4))
    assert a.shape == (4, 17)
    # rows are real contiguous windows of the corpus (no placeholder rows, ever)
    assert all(np.array_equal(np.diff(row) % 97, np.ones(16)) for row in a)
    # the held-out tail is never sampled for training
    held = split.val_windows.shape[0] * 17
    assert split.train_tokens == 5000 - held
    assert len(val_batches(split, batch_size=4)) <= VAL_BATCHES


def test_val_shard_and_too_small_corpora() -> None:
    split = split_tokens([np.arange(1000)], [np.arange(100)], batch_size=2, seq_length=9)
    assert split.val_windows.shape == (10, 10) and split.train_tokens == 1000
    with pytest.raises(DatasetError, match="--val-shard is too small"):
        split_tokens([np.arange(1000)], [np.arange(5)], batch_size=2, seq_length=9)
    with pytest.raises(DatasetError, match="too few to hold out"):
        split_tokens([np.arange(50)], None, batch_size=2, seq_length=9)


def test_tokenize_command_writes_shards_and_refuses_to_overwrite(tmp_path: Path, tokenizer_dir: Path,
                                                                  corpus_files: list[Path], capsys) -> None:
    out = tmp_path / "data"
    code, document = run_cli(["tokenize", str(corpus_files[0]), "--tokenizer", str(tokenizer_dir), "-o", str(out),
                              "--json"], capsys)
    assert code == 0 and document["num_tokens"] > 1000 and document["eos_token_id"] == 0
    arrays, _ = open_dataset(out)
    assert int(arrays[0][-1]) == 0  # EOS after the document
    code, document = run_cli(["tokenize", str(corpus_files[0]), "--tokenizer", str(tokenizer_dir), "-o", str(out),
                              "--json"], capsys)
    assert code == 5 and document["error"]["code"] == "output-exists"
