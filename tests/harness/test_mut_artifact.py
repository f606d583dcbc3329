"""The file a run is about, exactly (issue 23): its digest, the change that makes a verdict UNKNOWN,
and each artifact mutator's fault, checked byte by byte or key by key against the original (which
is never touched)."""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from apr.format import Flags, save_file
from apr.format.reader import load, open_file
from falsifiers import artifact
from falsifiers.artifact import CHANGED, MUTATORS, NO_ARTIFACT, ArtifactRecord, artifact_change, digest_artifact, \
    mutate_artifact
from falsifiers.errors import ArtifactNotFoundError
from falsifiers.records import Mutant

METADATA = {"architecture": "qwen2", "license": "MIT", "rope_theta": 1000.0, "tokenizer.model": "bpe",
            "tokenizer.vocabulary": ["a", "b"]}
FLAGS = int(Flags.HAS_VOCAB) | int(Flags.LAYOUT_ROW_MAJOR)


def _tensors() -> dict[str, np.ndarray]:
    # "ints" has the most values but is not floating point: the default target is "big"
    return {"big": np.arange(1, 17, dtype=np.float32).reshape(4, 4), "small": np.array([2.0, 3.0], np.float32),
            "ints": np.arange(40, dtype=np.int32)}


@pytest.fixture
def model(tmp_path: Path) -> ArtifactRecord:
    path = tmp_path / "model.apr"
    save_file(_tensors(), path, METADATA, flags=FLAGS)
    return digest_artifact(path)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, Any], int]:
    with open_file(path, verify_checksum=True) as reader:
        metadata, flags = dict(reader.metadata), int(reader.flags)
    return load(path.read_bytes()), metadata, flags


def _mutate(model: ArtifactRecord, tmp_path: Path, name: str, **args: Any) -> tuple[ArtifactRecord, bytes]:
    original = Path(model.path).read_bytes()
    folder = tmp_path / "out"
    folder.mkdir(exist_ok=True)
    copy = mutate_artifact(model, Mutant("m", artifact=name, args=tuple(args.items())), folder)
    assert Path(model.path).read_bytes() == original  # the original is never touched
    assert copy.path == os.fspath(folder / "model.apr")
    assert copy.sha256 == hashlib.sha256(Path(copy.path).read_bytes()).hexdigest() != model.sha256
    return copy, original


# --- the record, the digest, the change ------------------------------------------------------------


def test_the_record_crosses_to_workers_as_a_dict() -> None:
    record = ArtifactRecord("/m.apr", "ab" * 32, 12, "/card.md")
    assert record.to_dict() == {"path": "/m.apr", "sha256": "ab" * 32, "size": 12, "model_card": "/card.md"}
    assert ArtifactRecord.from_dict(record.to_dict()) == record
    assert ArtifactRecord.from_dict({"path": "/m", "sha256": "x", "size": "7"}) == ArtifactRecord("/m", "x", 7, None)
    assert NO_ARTIFACT == "no --artifact given" and CHANGED == "artifact changed during verification"


def test_the_digest_is_the_whole_files_sha256_and_size_read_in_chunks(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytes(range(256)) * 3 + b"tail"
    (tmp_path / "m.apr").write_bytes(data)
    (tmp_path / "card.md").write_text("# card")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(artifact, "_CHUNK", 7)  # many blocks, the last one short
    record = digest_artifact("m.apr", "card.md")
    assert record == ArtifactRecord(os.fspath(tmp_path / "m.apr"), hashlib.sha256(data).hexdigest(), len(data),
                                    os.fspath(tmp_path / "card.md"))
    assert digest_artifact(Path("m.apr")).model_card is None
    (tmp_path / "empty.apr").write_bytes(b"")
    assert digest_artifact("empty.apr").size == 0


def test_a_missing_artifact_or_model_card_is_an_error_saying_what_to_give(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ArtifactNotFoundError) as raised:
        digest_artifact("nope.apr")
    assert (raised.value.message, raised.value.path, raised.value.hint) == (
        "--artifact nope.apr: no such file", os.fspath(tmp_path / "nope.apr"),
        "give the path of the checkpoint to verify, e.g. --artifact model.apr")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ArtifactNotFoundError) as raised:
        digest_artifact("folder")
    assert raised.value.message == "--artifact folder: not a file"
    (tmp_path / "m.apr").write_bytes(b"x")
    with pytest.raises(ArtifactNotFoundError) as raised:
        digest_artifact("m.apr", "card.md")
    assert (raised.value.message, raised.value.path, raised.value.hint) == (
        "--model-card card.md: no such file", os.fspath(tmp_path / "card.md"),
        "write one with `apr card m.apr -o card.md`")
    with pytest.raises(ArtifactNotFoundError):
        digest_artifact("m.apr", "folder")  # a folder is no model card


def test_a_changed_or_vanished_file_is_named_and_an_unchanged_one_is_not() -> None:
    before = ArtifactRecord("/m.apr", "0123456789abcdef" + "0" * 48, 10)
    assert artifact_change(before, before) is None
    assert artifact_change(before, ArtifactRecord("/elsewhere.apr", before.sha256, 10, "/c.md")) is None
    assert artifact_change(before, None) == "artifact changed during verification: /m.apr is gone"
    after = ArtifactRecord("/m.apr", "fedcba9876543210" + "1" * 48, 10)
    assert artifact_change(before, after) == ("artifact changed during verification: sha256 0123456789abcdef… at "
                                              "start, fedcba9876543210… at end")
    assert artifact_change(before, ArtifactRecord("/m.apr", before.sha256, 11)) is not None  # the size alone


# --- the mutators -----------------------------------------------------------------------------------


def test_the_built_in_mutators() -> None:
    assert sorted(MUTATORS) == sorted(["zero_tensor", "nan_tensor", "set_metadata", "swap_architecture",
                                       "clear_metadata", "drop_tokenizer", "clear_has_vocab", "scale_rope_theta",
                                       "flip_data_byte", "flip_header_byte", "truncate"])


def test_a_mutant_naming_no_mutator_is_a_key_error(model: ArtifactRecord, tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        mutate_artifact(model, Mutant("m", artifact="no_such_mutator"), tmp_path)


def test_the_copy_keeps_the_model_card(tmp_path: Path) -> None:
    path = tmp_path / "model.apr"
    save_file(_tensors(), path, METADATA, flags=FLAGS)
    (tmp_path / "card.md").write_text("# card")
    record = digest_artifact(path, tmp_path / "card.md")
    copy, _ = _mutate(record, tmp_path, "truncate")
    assert copy.model_card == record.model_card == os.fspath(tmp_path / "card.md")


def _same_except(copy: Path, source: tuple[dict[str, Any], dict[str, Any], int], *,
                 tensors: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None,
                 dropped: tuple[str, ...] = (), flags: int = FLAGS) -> None:
    """``copy`` holds ``source``'s tensors, metadata and flags but for the changes named."""
    source_tensors, source_meta, _ = source
    got_tensors, got_meta, got_flags = _read(copy)
    expected = {**source_tensors, **(tensors or {})}
    assert sorted(got_tensors) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got_tensors[name], value, err_msg=name)
        assert got_tensors[name].dtype == value.dtype
    assert got_meta == {k: v for k, v in {**source_meta, **(metadata or {})}.items() if k not in dropped}
    assert got_flags == flags


@pytest.fixture
def source(model: ArtifactRecord) -> tuple[dict[str, Any], dict[str, Any], int]:
    return _read(Path(model.path))


def test_zero_tensor_zeroes_the_largest_floating_tensor_or_the_one_named(model: ArtifactRecord,
                                                                        tmp_path: Path, source: Any) -> None:
    copy, _ = _mutate(model, tmp_path, "zero_tensor")
    _same_except(Path(copy.path), source, tensors={"big": np.zeros((4, 4), np.float32)})
    copy, _ = _mutate(model, tmp_path, "zero_tensor", tensor="small")
    _same_except(Path(copy.path), source, tensors={"small": np.zeros(2, np.float32)})


def test_nan_tensor_sets_one_value_of_the_largest_floating_tensor_or_the_one_named(model: ArtifactRecord,
                                                                                  tmp_path: Path, source: Any) -> None:
    copy, _ = _mutate(model, tmp_path, "nan_tensor")
    big = _tensors()["big"]
    big.flat[0] = math.nan
    _same_except(Path(copy.path), source, tensors={"big": big})
    copy, _ = _mutate(model, tmp_path, "nan_tensor", tensor="small")
    _same_except(Path(copy.path), source, tensors={"small": np.array([math.nan, 3.0], np.float32)})


def test_set_metadata_and_swap_architecture_set_one_key(model: ArtifactRecord, tmp_path: Path, source: Any) -> None:
    copy, _ = _mutate(model, tmp_path, "set_metadata", key="license", value="GPL-3.0-only")
    _same_except(Path(copy.path), source, metadata={"license": "GPL-3.0-only"})
    copy, _ = _mutate(model, tmp_path, "swap_architecture")
    _same_except(Path(copy.path), source, metadata={"architecture": "llama"})
    copy, _ = _mutate(model, tmp_path, "swap_architecture", value="gpt2")
    _same_except(Path(copy.path), source, metadata={"architecture": "gpt2"})


def test_clear_metadata_removes_the_license_or_the_key_named(model: ArtifactRecord, tmp_path: Path, source: Any) -> None:
    copy, _ = _mutate(model, tmp_path, "clear_metadata")
    _same_except(Path(copy.path), source, metadata={"license": None})  # the writer's default for a missing license
    copy, _ = _mutate(model, tmp_path, "clear_metadata", key="rope_theta")
    _same_except(Path(copy.path), source, dropped=("rope_theta",))


def test_drop_tokenizer_removes_its_keys_and_the_flag_and_clear_has_vocab_only_the_flag(model: ArtifactRecord,
                                                                                       tmp_path: Path, source: Any) -> None:
    copy, _ = _mutate(model, tmp_path, "drop_tokenizer")
    _same_except(Path(copy.path), source, dropped=("tokenizer.model", "tokenizer.vocabulary"),
                 flags=int(Flags.LAYOUT_ROW_MAJOR))
    copy, _ = _mutate(model, tmp_path, "clear_has_vocab")
    _same_except(Path(copy.path), source, flags=int(Flags.LAYOUT_ROW_MAJOR))


def test_scale_rope_theta_multiplies_it_by_a_hundredth_or_the_factor_given(model: ArtifactRecord,
                                                                          tmp_path: Path, source: Any) -> None:
    copy, _ = _mutate(model, tmp_path, "scale_rope_theta")
    _same_except(Path(copy.path), source, metadata={"rope_theta": 10.0})
    copy, _ = _mutate(model, tmp_path, "scale_rope_theta", factor=3)
    _same_except(Path(copy.path), source, metadata={"rope_theta": 3000.0})


def test_scale_rope_theta_of_a_file_without_one_scales_the_default(tmp_path: Path) -> None:
    path = tmp_path / "model.apr"
    save_file(_tensors(), path, {"architecture": "qwen2"}, flags=FLAGS)
    copy, _ = _mutate(digest_artifact(path), tmp_path, "scale_rope_theta", factor=0.5)
    assert _read(Path(copy.path))[1]["rope_theta"] == 5000.0


def _flipped(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] = 0xFF - out[offset]
    return bytes(out)


def test_the_byte_mutators_flip_one_byte_or_cut_the_file(model: ArtifactRecord, tmp_path: Path) -> None:
    copy, original = _mutate(model, tmp_path, "flip_data_byte")
    assert Path(copy.path).read_bytes() == _flipped(original, len(original) - 64)
    copy, _ = _mutate(model, tmp_path, "flip_data_byte", from_end=1)
    assert Path(copy.path).read_bytes() == _flipped(original, len(original) - 1)
    copy, _ = _mutate(model, tmp_path, "flip_header_byte")
    assert Path(copy.path).read_bytes() == _flipped(original, 8)
    copy, _ = _mutate(model, tmp_path, "flip_header_byte", offset=0)
    assert Path(copy.path).read_bytes() == _flipped(original, 0)
    copy, _ = _mutate(model, tmp_path, "truncate")
    assert Path(copy.path).read_bytes() == original[: len(original) // 2]
    assert copy.size == len(original) // 2
    copy, _ = _mutate(model, tmp_path, "truncate", keep=0.9)
    assert Path(copy.path).read_bytes() == original[: int(len(original) * 0.9)]


def test_a_packed_tensor_is_copied_as_it_is(tmp_path: Path) -> None:
    from apr.format.dtypes import DType
    from apr.format.quant import PackedTensor

    packed = PackedTensor(DType.Q4_K, (256,), np.arange(144, dtype=np.uint8))
    path = tmp_path / "model.apr"
    save_file({**_tensors(), "q": packed}, path, METADATA, flags=FLAGS)
    copy, _ = _mutate(digest_artifact(path), tmp_path, "set_metadata", key="license", value="Apache-2.0")
    got = load(Path(copy.path).read_bytes())["q"]
    assert isinstance(got, PackedTensor) and (got.dtype, got.shape) == (DType.Q4_K, (256,))
    np.testing.assert_array_equal(got.data, packed.data)


def test_clearing_a_key_the_file_lacks_still_writes_the_copy(model: ArtifactRecord, tmp_path: Path,
                                                            source: Any) -> None:
    copy = mutate_artifact(model, Mutant("m", artifact="clear_metadata", args=(("key", "no_such_key"),)), tmp_path)
    assert copy.sha256 == model.sha256  # nothing to clear: the same file, rewritten
    _same_except(Path(copy.path), source)


def test_the_digest_reads_in_bounded_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A multi-gigabyte checkpoint is never read into memory at once."""
    import builtins

    (tmp_path / "m.apr").write_bytes(b"z" * 50)
    sizes: list[Any] = []
    real_open = builtins.open

    class _Recording:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __enter__(self) -> _Recording:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

        def read(self, size: Any = -1) -> bytes:
            sizes.append(size)
            return self.handle.read(size)

    monkeypatch.setattr(artifact, "_CHUNK", 16)
    monkeypatch.setattr(builtins, "open", lambda *a, **k: _Recording(real_open(*a, **k)))
    record = digest_artifact(tmp_path / "m.apr")
    monkeypatch.undo()
    assert record.size == 50 and record.sha256 == hashlib.sha256(b"z" * 50).hexdigest()
    assert sizes == [16, 16, 16, 16, 16]  # 16 + 16 + 16 + 2, then the empty read that ends the loop
    assert artifact._CHUNK == 8 * 1024 * 1024
