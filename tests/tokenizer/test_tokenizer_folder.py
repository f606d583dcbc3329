"""Reading tokenizer folders: both Hugging Face layouts, added tokens kept, and every bad folder
refused with an error that says what and where (docs/aprender-format.md §2.5)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from apr.errors import AprFileNotFoundError, TokenizerError
from apr.tokenizer import build_tokenizer, read_tokenizer_dir


def test_tokenizer_json_gives_the_same_ids(tokenizer_json_dir: Path, hf_tokenizer, sample_text: str) -> None:
    record = read_tokenizer_dir(tokenizer_json_dir)
    assert record.vocab_size == hf_tokenizer.get_vocab_size()
    assert record.model_type == "BPE" and record.merges and " " in record.merges[0]
    rebuilt = build_tokenizer(record)
    assert rebuilt.encode(sample_text).ids == hf_tokenizer.encode(sample_text).ids
    assert rebuilt.decode(rebuilt.encode(sample_text).ids, skip_special_tokens=False) == sample_text


def test_added_tokens_are_kept(tokenizer_json_dir: Path, hf_tokenizer) -> None:
    record = read_tokenizer_dir(tokenizer_json_dir)
    contents = {t.content: t.id for t in record.added_tokens}
    assert set(contents) == {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
    for content, index in contents.items():
        assert record.vocabulary[index] == content == hf_tokenizer.id_to_token(index)
    assert record.eos_token_id == contents["<|endoftext|>"]


def test_vocab_json_and_merges_txt_fallback(vocab_merges_dir: Path, hf_tokenizer, sample_text: str) -> None:
    record = read_tokenizer_dir(vocab_merges_dir)
    assert record.pipeline is None and record.model_type == "BPE"
    assert record.vocab_size == hf_tokenizer.get_vocab_size()
    assert build_tokenizer(record).encode(sample_text).ids == hf_tokenizer.encode(sample_text).ids


def test_aprender_fixture_vocab_and_merges(tmp_path: Path) -> None:
    """aprender's stamp_p3c_defect1_embeds_tokenizer_from_vocab_merges fixture."""
    (tmp_path / "vocab.json").write_text(json.dumps({"<unk>": 0, "Ġ": 1, "the": 2}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ t\nh e\nĠt he\n")
    record = read_tokenizer_dir(tmp_path)
    assert record.vocabulary == ("<unk>", "Ġ", "the")
    assert record.merges == ("Ġ t", "h e", "Ġt he")
    assert record.model_type == "BPE"


def test_missing_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError) as info:
        read_tokenizer_dir(tmp_path / "nope")
    assert info.value.exit_code == 3


def test_folder_without_files(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match=r"neither tokenizer\.json nor vocab\.json"):
        read_tokenizer_dir(tmp_path)


def test_file_instead_of_folder(tokenizer_json_dir: Path) -> None:
    with pytest.raises(AprFileNotFoundError, match="must be a folder"):
        read_tokenizer_dir(tokenizer_json_dir / "tokenizer.json")


def test_tokenizer_json_without_model_vocab(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "merges": []}}))
    with pytest.raises(TokenizerError) as info:
        read_tokenizer_dir(tmp_path)
    assert "model.vocab" in str(info.value) and info.value.field == "model.vocab"


def test_tokenizer_json_without_model(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text(json.dumps({"version": "1.0"}))
    with pytest.raises(TokenizerError, match="no `model` object"):
        read_tokenizer_dir(tmp_path)


@pytest.mark.parametrize("bad_id", ["7", 1.5, None, -1, True])
def test_non_integer_ids_are_refused(tmp_path: Path, bad_id: object) -> None:
    vocab = {"a": 0, "b": bad_id}
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": vocab, "merges": []}}))
    with pytest.raises(TokenizerError, match="not a non-negative integer"):
        read_tokenizer_dir(tmp_path)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "b": 0}))
    with pytest.raises(TokenizerError, match="id 0 is given to both"):
        read_tokenizer_dir(tmp_path)


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text('{"model": ')
    with pytest.raises(TokenizerError, match=r"not valid JSON.*line 1"):
        read_tokenizer_dir(tmp_path)


def test_unigram_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text(json.dumps({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}))
    with pytest.raises(TokenizerError, match="only BPE"):
        read_tokenizer_dir(tmp_path)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks on this platform")
def test_symlink_out_of_the_folder_is_refused(tmp_path: Path, tokenizer_json_dir: Path) -> None:
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "tokenizer.json").symlink_to(tokenizer_json_dir / "tokenizer.json")
    with pytest.raises(TokenizerError, match="outside the tokenizer folder"):
        read_tokenizer_dir(folder)


def test_dotdot_path_is_resolved_not_escaped(tmp_path: Path, tokenizer_json_dir: Path, hf_tokenizer) -> None:
    """A folder given with `..` is fine when it resolves to a real folder; its files stay inside it."""
    spelled = tokenizer_json_dir / ".." / tokenizer_json_dir.name
    assert read_tokenizer_dir(spelled).vocab_size == hf_tokenizer.get_vocab_size()
