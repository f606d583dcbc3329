"""The refusals of apr/convert/hf_import.py's source checks, word for word (issue 23, the fifth pass's
unjudged survivors of `_source_kind` and `collect_safetensors`): a refusal's message and hint are what
`apr import` prints, so each is stated exactly, with the path and field it names. The expected texts
are the documented refusals themselves (what the user reads), not read back from a first run."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
from safetensors.numpy import save_file

from apr.convert import hf_import as hi
from apr.errors import AprFileNotFoundError, ConvertError

SOURCE_HINT = "pass a Hugging Face model folder or a .gguf file"
NOT_A_SOURCE_HINT = "pass a Hugging Face model folder, a .safetensors file or a .gguf file"


def test_a_missing_source_is_refused_word_for_word(tmp_path):
    with pytest.raises(AprFileNotFoundError) as caught:
        hi._source_kind(tmp_path / "nope")
    err = caught.value
    assert (err.message, err.hint, err.path) == ("source not found", SOURCE_HINT, os.fspath(tmp_path / "nope"))
    assert err.__cause__ is None and err.__suppress_context__  # `from None`: no traceback chain is printed


def test_a_source_stat_cannot_read_is_refused_with_the_os_reason(tmp_path):
    source = tmp_path / ("x" * 300)  # ENAMETOOLONG: an OSError other than "not found"
    with pytest.raises(ConvertError) as caught:
        hi._source_kind(source)
    err = caught.value
    assert err.message == f"cannot look at the source: {os.strerror(errno.ENAMETOOLONG)}"
    assert err.path == os.fspath(source) and err.hint is None
    assert isinstance(err.__cause__, OSError) and err.__cause__.errno == errno.ENAMETOOLONG


def test_a_fifo_source_is_refused_word_for_word(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConvertError) as caught:
        hi._source_kind(fifo)
    err = caught.value
    assert err.message == "the source is a FIFO (named pipe), not a model folder or a regular file"
    assert (err.hint, err.path) == (NOT_A_SOURCE_HINT, os.fspath(fifo))


def test_a_character_device_source_is_refused_naming_what_it_is(tmp_path):
    with pytest.raises(ConvertError) as caught:
        hi._source_kind(hi.Path("/dev/null"))
    err = caught.value
    assert err.message == "the source is a character device, not a model folder or a regular file"
    assert (err.hint, err.path) == (NOT_A_SOURCE_HINT, "/dev/null")


def test_a_folder_without_weights_is_refused_word_for_word(tmp_path):
    with pytest.raises(AprFileNotFoundError) as caught:
        hi.collect_safetensors(tmp_path)
    err = caught.value
    assert err.message == "no model.safetensors or model.safetensors.index.json in the folder"
    assert err.hint == ("pass a Hugging Face model folder (save_pretrained output); "
                        ".bin files are not read (pickle)")
    assert err.path == os.fspath(tmp_path)


@pytest.mark.parametrize("beside", ["model.safetensors", "model.safetensors.index.json"])
def test_a_lone_file_ignores_the_folders_weights_it_does_not_read(tmp_path, beside):
    """Importing one .safetensors file reads only that file and its folder's config and tokenizer
    files: a `model.safetensors` or index beside it that is no regular file is not read, so not refused."""
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    save_file({"w": values}, os.fspath(tmp_path / "weights.safetensors"), metadata={"format": "pt"})
    (tmp_path / beside).mkdir()
    root, tensors, metadata = hi.collect_safetensors(tmp_path / "weights.safetensors")
    assert root == tmp_path and list(tensors) == ["w"] and metadata == {"format": "pt"}
    assert tensors["w"].shape == (2, 3) and tensors["w"].file == (tmp_path / "weights.safetensors").resolve()


@pytest.mark.parametrize("quantize", [None, "q8"])
def test_an_import_without_a_tokenizer_sets_no_flag_but_quantized(tmp_path, quantize):
    """The header flags an import writes: LAYOUT_ROW_MAJOR always, HAS_VOCAB only with a tokenizer,
    QUANTIZED only for a quantized import, and nothing else (an uncompressed file sets no LZ4/ZSTD
    bit; AprV2Flags, docs/aprender-format.md)."""
    from apr.convert.targets import ImportQuant
    from apr.format import open_file

    src = tmp_path / "src"
    src.mkdir()
    save_file({"encoder.block.weight": np.ones((4, 32), np.float32)}, os.fspath(src / "model.safetensors"))
    report = hi.import_hf(src, tmp_path / "m.apr", allow_no_config=True,
                          quantize=None if quantize is None else ImportQuant(quantize))
    with open_file(tmp_path / "m.apr") as reader:
        flags = int(reader.flags)
    assert not report.has_vocab
    row_major, quantized = 0x0400, 0x0020
    assert flags == (row_major if quantize is None else row_major | quantized)
