"""Token shards and their manifest (apr/train/shards.py), byte by byte and refusal by refusal (issue 23).

A shard's header and the manifest are stored formats another process reads: the expected bytes
are built here with `int.to_bytes` from the layout in the module's docstring, not with the
module's own `struct`. Every refusal is checked on a file one field away from a valid one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from apr.errors import AprFileNotFoundError, AprIOError, DatasetError
from tests.stamp.deadline import within
from apr.train.shards import (
    HEADER_SIZE,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    SHARD_MAGIC,
    Manifest,
    ShardInfo,
    ShardWriter,
    _file_digest,
    check_token_ids,
    encode_shard,
    itemsize_for_vocab,
    open_dataset,
    read_manifest,
    read_shard,
    shard_vocab_size,
    write_dataset,
)


def header(itemsize: int, count: int, vocab: int, *, header_size: int = 32, magic: bytes = b"APRTOK1\x00") -> bytes:
    return (magic + header_size.to_bytes(4, "little") + itemsize.to_bytes(4, "little") + count.to_bytes(8, "little")
            + vocab.to_bytes(4, "little") + bytes(4))


def ids_bytes(ids: list[int], itemsize: int) -> bytes:
    return b"".join(i.to_bytes(itemsize, "little") for i in ids)


def test_constants() -> None:
    assert (SHARD_MAGIC, HEADER_SIZE, MANIFEST_NAME, MANIFEST_FORMAT) == (b"APRTOK1\x00", 32, "manifest.json",
                                                                         "apr-token-shards")


def test_itemsize_threshold() -> None:
    """Every id of a vocabulary of 65536 fits a uint16 (the largest is 65535); one more needs 4 bytes."""
    assert [itemsize_for_vocab(v) for v in (1, 65535, 65536, 65537, 1 << 20)] == [2, 2, 2, 4, 4]


# --- one shard --------------------------------------------------------------------------------------

def test_encode_shard_bytes() -> None:
    assert encode_shard(np.array([0, 1, 511]), vocab_size=512) == header(2, 3, 512) + ids_bytes([0, 1, 511], 2)
    assert encode_shard(np.array([65536, 7]), vocab_size=70000) == header(4, 2, 70000) + ids_bytes([65536, 7], 4)
    assert encode_shard(np.array([], dtype=np.int64), vocab_size=9) == header(2, 0, 9)


@pytest.mark.parametrize(("ids", "message"), [
    ([3, 512], "token ids must lie in [0, 512); got 3..512"),
    ([-1, 5], "token ids must lie in [0, 512); got -1..5"),
])
def test_encode_shard_refuses_ids_outside_the_vocabulary(ids: list[int], message: str) -> None:
    with pytest.raises(DatasetError) as info:
        encode_shard(np.array(ids), vocab_size=512)
    assert info.value.message == message


def test_read_shard_reads_what_was_encoded(tmp_path: Path) -> None:
    for vocab, itemsize, dtype in ((512, 2, np.uint16), (70000, 4, np.uint32)):
        path = tmp_path / f"{vocab}.bin"
        path.write_bytes(header(itemsize, 3, vocab) + ids_bytes([4, 0, vocab - 1], itemsize))
        array = read_shard(str(path))
        assert array.dtype == dtype and array.tolist() == [4, 0, vocab - 1]
        assert not array.flags.writeable
        assert shard_vocab_size(path) == vocab
        empty = tmp_path / f"empty-{vocab}.bin"
        empty.write_bytes(header(itemsize, 0, vocab))
        assert read_shard(empty).dtype == dtype and read_shard(empty).size == 0


def test_a_missing_shard(tmp_path: Path) -> None:
    for path in (tmp_path / "none.bin", tmp_path):  # nothing there; a folder
        with pytest.raises(AprFileNotFoundError) as info:
            read_shard(path)
        assert (info.value.message, info.value.hint) == ("token shard not found", "run `apr tokenize` first")
        assert info.value.path == str(path)


@pytest.mark.parametrize("data", [b"", b"APRTOK1\x00" + bytes(23), b"APRTOK2\x00" + bytes(24),
                                  b"aprtok1\x00" + header(2, 0, 9)[8:]])
def test_bad_magic(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    with pytest.raises(DatasetError) as info:
        read_shard(path)
    assert info.value.message == "not an APR token shard (bad magic)" and info.value.offset == 0
    assert info.value.path == str(path)
    assert info.value.hint == "make shards with `apr tokenize TEXT... --tokenizer DIR -o OUT`"


@pytest.mark.parametrize(("data", "message"), [
    (header(2, 0, 9, header_size=33), "unsupported shard header (header_size=33, itemsize=2)"),
    (header(2, 0, 9, header_size=31), "unsupported shard header (header_size=31, itemsize=2)"),
    (header(3, 0, 9), "unsupported shard header (header_size=32, itemsize=3)"),
    (header(1, 0, 9), "unsupported shard header (header_size=32, itemsize=1)"),
    (header(8, 0, 9), "unsupported shard header (header_size=32, itemsize=8)"),
])
def test_unsupported_headers(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(data)
    with pytest.raises(DatasetError) as info:
        read_shard(path)
    assert info.value.message == message and info.value.path == str(path)


@pytest.mark.parametrize(("itemsize", "count", "payload"), [(2, 3, 5), (2, 3, 7), (4, 2, 7), (4, 2, 9), (2, 1, 0)])
def test_a_header_that_disagrees_with_the_size(tmp_path: Path, itemsize: int, count: int, payload: int) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(header(itemsize, count, 9) + bytes(payload))
    with pytest.raises(DatasetError) as info:
        read_shard(path)
    assert info.value.message == (f"shard header promises {count} tokens ({32 + count * itemsize} bytes) but the file "
                                  f"has {32 + payload} bytes")
    assert (info.value.hint, info.value.path) == ("re-run `apr tokenize`", str(path))


def test_a_one_token_shard_is_read(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(header(2, 1, 9) + ids_bytes([8], 2))
    assert read_shard(path).tolist() == [8]


# --- the writer ---------------------------------------------------------------------------------------

def test_the_writer_splits_across_calls_and_shards(tmp_path: Path) -> None:
    """Calls of 3, 4 and 3 ids into shards of 4: the shards hold 4, 4 and 2, in order, and the
    manifest lists each with the SHA-256 of its bytes as written (header count patched)."""
    with ShardWriter(tmp_path / "d", vocab_size=300, shard_tokens=4) as writer:
        writer.write([0, 1, 2])
        writer.write(np.array([[3, 4], [5, 299]]))  # any shape: flattened
        writer.write((8, 9, 7))
        manifest = writer.finish(eos_token_id=0, sources=[{"file": "a.txt"}])
    expected_ids = {"shard-00000.bin": [0, 1, 2, 3], "shard-00001.bin": [4, 5, 299, 8], "shard-00002.bin": [9, 7]}
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [MANIFEST_NAME, *expected_ids]
    for name, ids in expected_ids.items():
        assert (tmp_path / "d" / name).read_bytes() == header(2, len(ids), 300) + ids_bytes(ids, 2)
    assert manifest == Manifest(vocab_size=300, itemsize=2, eos_token_id=0, sources=({"file": "a.txt"},), shards=tuple(
        ShardInfo(name, len(ids), hashlib.sha256((tmp_path / "d" / name).read_bytes()).hexdigest())
        for name, ids in expected_ids.items()))
    assert manifest.num_tokens == 10
    assert read_manifest(tmp_path / "d") == manifest


def test_an_exactly_full_last_shard_gets_no_empty_successor(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "d", np.arange(8), vocab_size=9, eos_token_id=None, shard_tokens=4)
    assert [(s.file, s.num_tokens) for s in manifest.shards] == [("shard-00000.bin", 4), ("shard-00001.bin", 4)]
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [MANIFEST_NAME, "shard-00000.bin", "shard-00001.bin"]


def test_an_empty_dataset_still_has_one_empty_shard(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "d", np.array([], dtype=np.int64), vocab_size=70000, eos_token_id=None,
                             shard_tokens=4)
    assert manifest.shards == (ShardInfo("shard-00000.bin", 0, hashlib.sha256(header(4, 0, 70000)).hexdigest()),)
    assert (tmp_path / "d" / "shard-00000.bin").read_bytes() == header(4, 0, 70000)


def test_a_shard_of_one_token(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "d", [5, 6], vocab_size=9, eos_token_id=None, shard_tokens=1)
    assert [(s.file, s.num_tokens) for s in manifest.shards] == [("shard-00000.bin", 1), ("shard-00001.bin", 1)]


@pytest.mark.parametrize("size", [0, -1])
def test_the_shard_size_must_be_positive(tmp_path: Path, size: int) -> None:
    with pytest.raises(DatasetError) as info:
        ShardWriter(tmp_path / "d", vocab_size=9, shard_tokens=size)
    assert info.value.message == f"shard size must be positive, got {size}"
    assert not (tmp_path / "d").exists()


def test_a_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(AprIOError) as info:
        ShardWriter(tmp_path / "file" / "d", vocab_size=9, shard_tokens=4)
    assert info.value.message == "cannot create the dataset folder: Not a directory"  # the OS's words, once
    assert (info.value.field, info.value.hint) == ("--output", "choose a folder you can write to")
    assert info.value.path == str(tmp_path / "file" / "d")
    ShardWriter(tmp_path / "a" / "b", vocab_size=9, shard_tokens=4)  # parents made; an existing folder is fine
    ShardWriter(tmp_path / "a" / "b", vocab_size=9, shard_tokens=4)


@pytest.mark.parametrize(("ids", "message"), [([1, 9], "token ids must lie in [0, 9); got 1..9"),
                                              ([-2, 3], "token ids must lie in [0, 9); got -2..3")])
def test_the_writer_refuses_ids_outside_the_vocabulary(tmp_path: Path, ids: list[int], message: str) -> None:
    writer = ShardWriter(tmp_path / "d", vocab_size=9, shard_tokens=4)
    with pytest.raises(DatasetError) as info:
        writer.write(ids)
    assert info.value.message == message
    writer.write([8, 0])  # the largest id and the smallest are fine
    assert writer.finish(eos_token_id=None).shards[0].num_tokens == 2


def test_a_failure_mid_shard_leaves_no_shard_and_no_temporary(tmp_path: Path) -> None:
    """The writer as a context manager: an error with a shard open removes it (its temporary), and
    the complete shards before it stay; no manifest is written."""
    with pytest.raises(RuntimeError, match="stop"), ShardWriter(tmp_path / "d", vocab_size=9, shard_tokens=4) as w:
        w.write([1, 2, 3, 4, 5])
        raise RuntimeError("stop")
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["shard-00000.bin"]
    assert w._stack is None


def test_leaving_the_writer_after_finish_changes_nothing(tmp_path: Path) -> None:
    with ShardWriter(tmp_path / "d", vocab_size=9, shard_tokens=4) as writer:
        writer.write([1, 2])
        writer.finish(eos_token_id=None)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [MANIFEST_NAME, "shard-00000.bin"]


# --- the manifest ----------------------------------------------------------------------------------

def test_manifest_to_json_and_its_file(tmp_path: Path) -> None:
    manifest = write_dataset(tmp_path / "d", [1, 2, 3], vocab_size=70000, eos_token_id=2, shard_tokens=2,
                             sources=[{"file": "é.txt", "documents": 1}])
    text = (tmp_path / "d" / MANIFEST_NAME).read_bytes().decode("utf-8")
    assert text.startswith('{\n  "format": "apr-token-shards",\n') and text.endswith("}\n")
    assert '"é.txt"' in text  # UTF-8 as is, not \\u escapes
    digests = [hashlib.sha256((tmp_path / "d" / f"shard-0000{i}.bin").read_bytes()).hexdigest() for i in (0, 1)]
    assert json.loads(text) == manifest.to_json() == {
        "format": "apr-token-shards", "version": 1, "vocab_size": 70000, "dtype": "uint32", "eos_token_id": 2,
        "num_tokens": 3, "shards": [{"file": "shard-00000.bin", "num_tokens": 2, "sha256": digests[0]},
                                    {"file": "shard-00001.bin", "num_tokens": 1, "sha256": digests[1]}],
        "sources": [{"file": "é.txt", "documents": 1}]}
    assert Manifest(vocab_size=9, itemsize=2, eos_token_id=None, shards=()).to_json()["dtype"] == "uint16"


def write_manifest(folder: Path, document: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST_NAME
    path.write_text(json.dumps(document))
    return path


GOOD = {"format": "apr-token-shards", "vocab_size": 70000, "shards": [{"file": "s.bin", "num_tokens": "3",
                                                                       "sha256": "ab"}]}


def test_read_manifest_values(tmp_path: Path) -> None:
    write_manifest(tmp_path, {**GOOD, "eos_token_id": 5, "sources": [{"file": "a"}]})
    assert read_manifest(str(tmp_path)) == Manifest(vocab_size=70000, itemsize=4, eos_token_id=5,
                                                    shards=(ShardInfo("s.bin", 3, "ab"),), sources=({"file": "a"},))
    for eos in ("5", 5.0, None):
        write_manifest(tmp_path, {**GOOD, "eos_token_id": eos, "sources": None})
        assert read_manifest(tmp_path).eos_token_id is None and read_manifest(tmp_path).sources == ()
    write_manifest(tmp_path, {**GOOD, "vocab_size": "512"})
    assert (read_manifest(tmp_path).vocab_size, read_manifest(tmp_path).itemsize) == (512, 2)


def test_read_manifest_refusals(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError) as info:
        read_manifest(tmp_path / "none")
    assert (info.value.message, info.value.hint) == ("dataset folder not found", "run `apr tokenize ... -o DIR` first")
    assert info.value.path == str(tmp_path / "none")
    with pytest.raises(DatasetError) as info:
        read_manifest(tmp_path)
    assert (info.value.message, info.value.path) == ("dataset folder has no manifest.json", str(tmp_path))
    assert info.value.hint == "make it with `apr tokenize TEXT... --tokenizer DIR -o OUT`"
    (tmp_path / MANIFEST_NAME).mkdir()
    with pytest.raises(DatasetError, match=r"has no manifest\.json"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(("data", "start"), [
    (b"{not json", "manifest.json is not valid JSON: "),
    (b"\xff{}", "manifest.json is not valid JSON: "),
    (b"[]", "manifest.json is not an 'apr-token-shards' manifest"),
    (json.dumps({**GOOD, "format": "apr-token-shard"}).encode(), "manifest.json is not an 'apr-token-shards' manifest"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "format"}).encode(), "manifest.json is not an"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "shards"}).encode(), "manifest.json is missing a field: "),
    (json.dumps({k: v for k, v in GOOD.items() if k != "vocab_size"}).encode(), "manifest.json is missing a field: "),
    (json.dumps({**GOOD, "shards": None}).encode(), "manifest.json is missing a field: "),
    (json.dumps({**GOOD, "vocab_size": "many"}).encode(), "manifest.json is missing a field: "),
    (json.dumps({**GOOD, "shards": [{"file": "s.bin", "num_tokens": 3}]}).encode(), "manifest.json is missing a field: "),
    (json.dumps({**GOOD, "shards": [{"file": "s.bin", "num_tokens": "x", "sha256": ""}]}).encode(),
     "manifest.json is missing a field: "),
])
def test_malformed_manifests(tmp_path: Path, data: bytes, start: str) -> None:
    (tmp_path / MANIFEST_NAME).write_bytes(data)
    with pytest.raises(DatasetError) as info:
        read_manifest(tmp_path)
    assert info.value.message.startswith(start) and info.value.path == str(tmp_path / MANIFEST_NAME)


@pytest.mark.parametrize("name", ["../s.bin", "sub/s.bin", "/etc/passwd"])
def test_shard_names_stay_in_the_folder(tmp_path: Path, name: str) -> None:
    write_manifest(tmp_path, {**GOOD, "shards": [{"file": name, "num_tokens": 1, "sha256": ""}]})
    with pytest.raises(DatasetError) as info:
        read_manifest(tmp_path)
    assert info.value.message == f"shard name {name!r} is not a plain file name" and info.value.field == "shards"
    assert info.value.path == str(tmp_path / MANIFEST_NAME)


# --- opening a dataset --------------------------------------------------------------------------------

def test_open_dataset_folder_and_file(tmp_path: Path) -> None:
    write_dataset(tmp_path / "d", np.arange(10) % 7, vocab_size=7, eos_token_id=None, shard_tokens=4)
    arrays, vocab = open_dataset(str(tmp_path / "d"))
    assert vocab == 7 and [a.tolist() for a in arrays] == [[0, 1, 2, 3], [4, 5, 6, 0], [1, 2]]
    arrays, vocab = open_dataset(tmp_path / "d" / "shard-00001.bin")
    assert vocab == 7 and [a.tolist() for a in arrays] == [[4, 5, 6, 0]]


def test_a_shard_that_disagrees_with_the_manifest(tmp_path: Path) -> None:
    write_dataset(tmp_path / "d", np.arange(6), vocab_size=7, eos_token_id=None, shard_tokens=4)
    manifest = json.loads((tmp_path / "d" / MANIFEST_NAME).read_text())
    manifest["shards"][1]["num_tokens"] = 3
    (tmp_path / "d" / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path / "d")
    assert info.value.message == "shard-00001.bin holds 2 tokens, the manifest says 3"
    assert (info.value.path, info.value.hint) == (str(tmp_path / "d" / "shard-00001.bin"), "re-run `apr tokenize`")


def test_ids_are_checked_against_the_declared_vocabulary(tmp_path: Path) -> None:
    """The manifest's vocabulary for a folder, the header's for a single shard."""
    write_dataset(tmp_path / "d", np.arange(6), vocab_size=7, eos_token_id=None, shard_tokens=4)
    manifest = json.loads((tmp_path / "d" / MANIFEST_NAME).read_text())
    manifest["vocab_size"] = 5
    (tmp_path / "d" / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path / "d")
    assert info.value.message == "token id 5 at position 1 is outside the vocabulary [0, 5)"
    assert info.value.path == str(tmp_path / "d" / "shard-00001.bin")
    shard = tmp_path / "one.bin"
    shard.write_bytes(header(2, 2, 4) + ids_bytes([3, 4], 2))
    with pytest.raises(DatasetError) as info:
        open_dataset(shard)
    assert info.value.message == "token id 4 at position 1 is outside the vocabulary [0, 4)"
    assert info.value.path == str(shard)


def test_check_token_ids_names_the_first_bad_id_in_any_block() -> None:
    ids = np.array([0, 1, 2, 3, 4, 2, 9, 8, 1])
    check_token_ids(ids, 10)
    for block in (1, 2, 4, 5, 100):
        with pytest.raises(DatasetError) as info:
            check_token_ids(ids, 9, block=block)
        assert info.value.message == "token id 9 at position 6 is outside the vocabulary [0, 9)"
        assert (info.value.field, info.value.path) == ("--dataset", None)
        assert info.value.hint == ("re-tokenize with the model's tokenizer: apr tokenize TEXT... --tokenizer DIR -o OUT "
                                   "--force")
    with pytest.raises(DatasetError) as info:
        check_token_ids(np.array([3, -1, 12]), 10, path="x.bin", field="--val-shard", block=2)
    assert info.value.message == "token id -1 at position 1 is outside the vocabulary [0, 10)"
    assert (info.value.field, info.value.path) == ("--val-shard", "x.bin")
    check_token_ids(np.array([], dtype=np.uint16), 1)
    check_token_ids(np.zeros(5, dtype=np.uint16), 1, block=2)


def test_a_writer_left_without_writing_leaves_nothing(tmp_path: Path) -> None:
    with ShardWriter(tmp_path / "d", vocab_size=9, shard_tokens=4):
        pass
    assert list((tmp_path / "d").iterdir()) == []


def test_an_error_that_needs_arguments_reaches_the_caller_itself(tmp_path: Path) -> None:
    """The open shard is closed with the error as raised (an exception type that cannot be built
    without arguments must not be re-created), and its temporary goes."""
    error = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    with pytest.raises(UnicodeDecodeError) as info, ShardWriter(tmp_path / "d", vocab_size=9, shard_tokens=4) as w:
        w.write([1, 2])
        raise error
    assert info.value is error
    assert list((tmp_path / "d").iterdir()) == []


def test_filling_shards_exactly_ends(tmp_path: Path) -> None:
    """Ids that fill each shard exactly close it; the writer moves on (a deadline: a writer that does
    not close a full shard would loop for ever)."""
    def fill() -> list[int]:
        writer = ShardWriter(tmp_path / "d", vocab_size=9, shard_tokens=2)
        writer.write([1, 2, 3, 4, 5])
        return [s.num_tokens for s in writer.finish(eos_token_id=None).shards]

    assert within(20, fill) == [2, 2, 1]


def test_file_digest_reads_past_the_first_blocks(tmp_path: Path) -> None:
    """Blocks from 1 byte to more than the file: the offset must advance by each chunk (5 s is plenty
    for 1280 reads, and short of mutmut's own timeout, so an endless loop counts as found)."""
    import os

    path = tmp_path / "x"
    data = bytes(range(256)) * 5
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        for block in (1, 7, 256, 1280, 4096):
            assert within(5, _file_digest, fd, block) == hashlib.sha256(data).hexdigest(), block
        assert within(5, _file_digest, fd) == hashlib.sha256(data).hexdigest()
    finally:
        os.close(fd)


def test_a_bad_first_id_is_found() -> None:
    for block in (1, 4, 1 << 24):
        with pytest.raises(DatasetError) as info:
            check_token_ids(np.array([9, 1, 2]), 9, block=block)
        assert info.value.message == "token id 9 at position 0 is outside the vocabulary [0, 9)"


def test_check_token_ids_scans_block_by_block() -> None:
    """One pass over the data in blocks, not one block per id: two million ids in blocks of a
    million are checked well within the deadline (a scan that stepped by one id would take hours)."""
    ids = np.zeros(2_000_000, dtype=np.uint16)
    within(20, check_token_ids, ids, 1, block=1_000_000)
