"""Contract apr-stamp-v1 (contracts/apr-stamp-v1.yaml): falsifiers bound to property tests.

The crash-safety and bad-input falsifiers (006, 009) are bound in tests/stamp/test_crash_safety.py
and tests/stamp/test_cli_errors.py; the rest are here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apr.errors import LicenseError
from apr.format import open_file
from apr.format.header import Flags, parse_header
from apr.format.metadata import canonical_metadata
from apr.stamp import ProvenancePatch, apply_patch, stamp_file, validate_license
from apr.stamp.plan import footer_after_prefix_change
from apr.stamp.spdx import spdx_license_ids
from apr.tokenizer import read_tokenizer_dir
from stamp_builders import (
    data_section,
    flag_values,
    metadata_dicts,
    patches,
    run_cli,
    tensor_dicts,
    write_checkpoint,
    write_tokenizer_json,
    write_vocab_merges,
)

_TOKENIZER = read_tokenizer_dir(write_tokenizer_json(tempfile.mkdtemp(prefix="apr-stamp-tok-")))
_FILES = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], deadline=None)


def _stamp_both(folder: str, src: str, patch: ProvenancePatch) -> tuple[bytes, bytes]:
    """(bytes of `-o`, bytes of `--in-place` on a copy) for the same input and patch."""
    out = os.path.join(folder, "out.apr")
    stamp_file(src, patch, output=out, force=True)
    copy = os.path.join(folder, "copy.apr")
    shutil.copyfile(src, copy)
    stamp_file(copy, patch, in_place=True)
    return Path(out).read_bytes(), Path(copy).read_bytes()


@pytest.mark.falsifies("FALSIFY-STAMP-001")
@_FILES
@given(tensors=tensor_dicts(), meta=metadata_dicts(), flags=flag_values, patch=patches(tokenizer=_TOKENIZER))
def test_falsify_stamp_001_tensor_bytes_preserved(tensors, meta, flags, patch):
    with tempfile.TemporaryDirectory() as folder:
        src = write_checkpoint(os.path.join(folder, "in.apr"), tensors=tensors, metadata=meta, flags=flags)
        before = data_section(src)
        with open_file(src) as reader:
            entries = [(e.name, e.dtype, e.shape, e.offset, e.size) for e in reader.entries]
            payloads = {n: bytes(reader.get_raw(n)) for n in reader.keys()}
        outputs = _stamp_both(folder, src, patch)
        for raw in outputs:
            stamped = os.path.join(folder, "check.apr")
            Path(stamped).write_bytes(raw)
            assert data_section(stamped) == before
            with open_file(stamped) as reader:
                assert [(e.name, e.dtype, e.shape, e.offset, e.size) for e in reader.entries] == entries
                assert {n: bytes(reader.get_raw(n)) for n in reader.keys()} == payloads


@pytest.mark.falsifies("FALSIFY-STAMP-002")
@_FILES
@given(flags=flag_values, patch=patches(tokenizer=_TOKENIZER))
def test_falsify_stamp_002_flags_preserved_plus_has_vocab(flags, patch):
    with tempfile.TemporaryDirectory() as folder:
        src = write_checkpoint(os.path.join(folder, "in.apr"), flags=flags)
        expected = flags | Flags.LAYOUT_ROW_MAJOR | (Flags.HAS_VOCAB if patch.tokenizer is not None else 0)
        for raw in _stamp_both(folder, src, patch):
            assert parse_header(raw[:64]).flags == expected


@pytest.mark.falsifies("FALSIFY-STAMP-003")
@_FILES
@given(tensors=tensor_dicts(), meta=metadata_dicts(), flags=flag_values, patch=patches(tokenizer=_TOKENIZER))
def test_falsify_stamp_003_idempotent_and_modes_agree(tensors, meta, flags, patch):
    with tempfile.TemporaryDirectory() as folder:
        src = write_checkpoint(os.path.join(folder, "in.apr"), tensors=tensors, metadata=meta, flags=flags)
        once_o, once_in_place = _stamp_both(folder, src, patch)
        assert once_o == once_in_place
        again = os.path.join(folder, "again.apr")
        stamp_file(os.path.join(folder, "out.apr"), patch, output=again)
        assert Path(again).read_bytes() == once_o
        result = stamp_file(os.path.join(folder, "copy.apr"), patch, in_place=True)
        assert result.mode == "unchanged"
        assert Path(folder, "copy.apr").read_bytes() == once_o


@pytest.mark.falsifies("FALSIFY-STAMP-004")
@pytest.mark.parametrize("where", [["-o", "OUT"], ["--in-place"]])
def test_falsify_stamp_004_empty_patch_refused_nothing_written(tmp_path, where):
    src = write_checkpoint(tmp_path / "in.apr")
    before, mtime = Path(src).read_bytes(), os.stat(src).st_mtime_ns
    argv = ["stamp", src] + [str(tmp_path / "out.apr") if w == "OUT" else w for w in where]
    code, _out, err = run_cli(argv)
    assert code == 5
    assert "at least one" in err
    assert sorted(os.listdir(tmp_path)) == ["in.apr"]
    assert Path(src).read_bytes() == before and os.stat(src).st_mtime_ns == mtime


_LICENSE_IDS = spdx_license_ids()


@pytest.mark.falsifies("FALSIFY-STAMP-005")
def test_falsify_stamp_005_every_spdx_id_accepted_and_canonical():
    bad = []
    for license_id in _LICENSE_IDS:
        try:
            value = validate_license(license_id)
        except LicenseError:
            bad.append(license_id)
            continue
        if validate_license(value) != value or validate_license(license_id.lower()) != value:
            bad.append(license_id)
    assert not bad, f"{len(bad)} SPDX ids mishandled: {bad[:10]}"


@pytest.mark.falsifies("FALSIFY-STAMP-005")
@given(ids=st.lists(st.sampled_from(_LICENSE_IDS), min_size=1, max_size=3), ops=st.lists(st.sampled_from(["AND", "OR", "and", "or"]), min_size=2, max_size=2))
def test_falsify_stamp_005_expressions_accepted(ids, ops):
    expression = ids[0] + "".join(f" {op} {i}" for op, i in zip(ops, ids[1:], strict=False))
    value = validate_license(expression)
    assert validate_license(value) == value


@pytest.mark.falsifies("FALSIFY-STAMP-005")
@pytest.mark.parametrize("value", ["Apache-2.0", "mit", "CC-BY-4.0", "llama3.1", "  MIT  ", "Apache-2.0 OR MIT",
                                   "Apache-2.0 WITH LLVM-exception", "GPL-3.0-only", "LicenseRef-acme-model-1.0"])
def test_falsify_stamp_005_aprender_examples_accepted(value):
    assert validate_license(value)


@pytest.mark.falsifies("FALSIFY-STAMP-005")
@pytest.mark.parametrize("value", ["NOT-A-LICENSE-!!", "Apache2", "MIT License", "whatever", "", "Apache-2", "GPL",
                                   "unknown", "TBD", "proprietary", "custom", "MIT AND", "(MIT", "   "])
def test_falsify_stamp_005_rejected_with_exit_5_and_nothing_written(tmp_path, value):
    src = write_checkpoint(tmp_path / "in.apr")
    before = Path(src).read_bytes()
    for flag in (["--license"], ["--data-license"] if not value.strip() or value.strip().lower() in (
            "unknown", "tbd", "proprietary", "custom") else ["--strict", "--data-license"]):
        code, _out, err = run_cli(["stamp", src, *flag, value, "-o", str(tmp_path / "out.apr")])
        assert code == 5, err
        assert "SPDX" in err and flag[-1] in err
    assert sorted(os.listdir(tmp_path)) == ["in.apr"] and Path(src).read_bytes() == before


@pytest.mark.falsifies("FALSIFY-STAMP-005")
def test_falsify_stamp_005_did_you_mean():
    with pytest.raises(LicenseError) as info:
        validate_license("Apache2")
    assert info.value.suggestion == "Apache-2.0"
    assert "did you mean 'Apache-2.0'" in str(info.value)


@pytest.mark.falsifies("FALSIFY-STAMP-007")
@given(meta=metadata_dicts(), patch=patches(tokenizer=_TOKENIZER))
def test_falsify_stamp_007_exactly_the_patched_fields_change(meta, patch):
    new, _flags = apply_patch(meta, 0, patch)
    expected = dict(meta)
    for key in ("license", "data_source", "data_license", "hf_architecture", "hf_model_type", "architecture",
                "name", "description"):
        value = getattr(patch, key)
        if value == "":
            expected.pop(key, None)
        elif value is not None:
            expected[key] = value
    if patch.tokenizer is not None:
        expected = {k: v for k, v in expected.items() if not k.startswith("tokenizer.")}
        assert new["tokenizer.vocabulary"] == list(patch.tokenizer.vocabulary)
        expected.update({k: v for k, v in new.items() if k.startswith("tokenizer.")})
    assert new == expected
    assert canonical_metadata(new) == canonical_metadata(expected)


@pytest.mark.falsifies("FALSIFY-STAMP-007")
def test_falsify_stamp_007_partial_patch_on_disk(tmp_path):
    src = write_checkpoint(tmp_path / "in.apr", metadata={"architecture": "qwen2", "license": "MIT", "zeta": 1})
    stamp_file(src, ProvenancePatch(hf_architecture="Qwen2ForCausalLM", license=""), in_place=True)
    with open_file(src) as reader:
        meta = reader.metadata
    assert meta["hf_architecture"] == "Qwen2ForCausalLM" and meta["architecture"] == "qwen2"
    assert meta["license"] is None and meta["zeta"] == 1


@pytest.mark.falsifies("FALSIFY-STAMP-008")
@given(old_prefix=st.binary(max_size=300), new_prefix=st.binary(max_size=300), data=st.binary(max_size=3000))
def test_falsify_stamp_008_footer_algebra_equals_full_crc(old_prefix, new_prefix, data):
    old_footer = zlib.crc32(old_prefix + data)
    assert footer_after_prefix_change(old_footer, old_prefix, new_prefix, len(data)) == zlib.crc32(new_prefix + data)


@pytest.mark.falsifies("FALSIFY-STAMP-008")
@pytest.mark.parametrize("in_place", [False, True])
def test_falsify_stamp_008_corruption_is_preserved_not_laundered(tmp_path, in_place):
    src = write_checkpoint(tmp_path / "in.apr")
    raw = bytearray(Path(src).read_bytes())
    data_offset = parse_header(raw[:64]).data_offset
    raw[data_offset + 5] ^= 0xFF  # flip a tensor byte; the footer no longer matches
    Path(src).write_bytes(bytes(raw))

    def error(data: bytes) -> int:
        return int.from_bytes(data[-4:], "little") ^ zlib.crc32(data[:-4])

    before = error(bytes(raw))
    assert before != 0
    if in_place:
        stamp_file(src, ProvenancePatch(license="MIT"), in_place=True)
        after = error(Path(src).read_bytes())
    else:
        # -o refuses a damaged input unless salvaging (FALSIFY-RELIABILITY-009); the salvage keeps the damage
        stamp_file(src, ProvenancePatch(license="MIT"), output=tmp_path / "out.apr", allow_damaged=True)
        after = error((tmp_path / "out.apr").read_bytes())
    assert after == before


@pytest.mark.falsifies("FALSIFY-STAMP-010")
def test_falsify_stamp_010_in_place_writes_only_prefix_and_footer(tmp_path, monkeypatch):
    src = write_checkpoint(tmp_path / "in.apr", tensors={"w": np.ones(4096, np.float32)})
    size = os.path.getsize(src)
    data_offset = parse_header(Path(src).read_bytes()[:64]).data_offset
    target = os.path.realpath(src)
    writes, reads = [], []
    real_pwrite, real_pread, real_write = os.pwrite, os.pread, os.write

    def is_target(fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}") == target
        except OSError:
            return False

    def pwrite(fd, data, offset):
        if is_target(fd):
            writes.append((offset, offset + len(data)))
        return real_pwrite(fd, data, offset)

    def pread(fd, n, offset):
        if is_target(fd):
            reads.append((offset, offset + n))
        return real_pread(fd, n, offset)

    def write(fd, data):
        assert not is_target(fd), "sequential write to the target during an in-place stamp"
        return real_write(fd, data)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to map descriptors to paths")
    monkeypatch.setattr(os, "pwrite", pwrite)
    monkeypatch.setattr(os, "pread", pread)
    monkeypatch.setattr(os, "write", write)
    result = stamp_file(src, ProvenancePatch(license="Apache-2.0", architecture="qwen2"), in_place=True)
    assert result.mode == "in-place" and result.tensor_bytes_copied == 0
    assert writes
    for start, end in writes + reads:
        assert end <= data_offset or start >= size - 4, (start, end, data_offset, size)


@pytest.mark.falsifies("FALSIFY-STAMP-011")
@pytest.mark.parametrize("layout", ["tokenizer.json", "vocab+merges", "both"])
def test_falsify_stamp_011_tokenizer_folder(tmp_path, layout):
    folder = tmp_path / "tok"
    if layout in ("tokenizer.json", "both"):
        write_tokenizer_json(folder)
    if layout in ("vocab+merges", "both"):
        write_vocab_merges(folder)
    src = write_checkpoint(tmp_path / "in.apr")
    code, _out, err = run_cli(["stamp", src, "--tokenizer", str(folder), "-o", str(tmp_path / "out.apr")])
    assert code == 0, err
    with open_file(tmp_path / "out.apr") as reader:
        meta, flags = reader.metadata, reader.flags
    assert flags & Flags.HAS_VOCAB
    if layout == "vocab+merges":
        assert meta["tokenizer.vocabulary"] == ["<unk>", "Ġ", "the"]
        assert meta["tokenizer.merges"] == ["Ġ t", "h e", "Ġt he"] and meta["tokenizer.model_type"] == "BPE"
    else:  # tokenizer.json first, added token kept (aprender drops it)
        assert meta["tokenizer.vocabulary"][8] == "<|endoftext|>"
        assert meta["tokenizer.vocab_size"] == 9
        assert [t["content"] for t in meta["tokenizer.added_tokens"]] == ["<|endoftext|>"]


@pytest.mark.falsifies("FALSIFY-STAMP-011")
def test_falsify_stamp_011_tokenizer_alone_passes_has_any_gate(tmp_path):
    src = write_checkpoint(tmp_path / "in.apr")
    code, _out, err = run_cli(["stamp", src, "--tokenizer", write_vocab_merges(tmp_path / "tok"), "--in-place"])
    assert code == 0, err
    with open_file(src) as reader:
        assert reader.flags & Flags.HAS_VOCAB


@pytest.mark.falsifies("FALSIFY-STAMP-012")
def test_falsify_stamp_012_journal_durable_before_target_written(tmp_path, monkeypatch):
    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc to map descriptors to paths")
    src = write_checkpoint(tmp_path / "in.apr")
    target = os.path.realpath(src)
    folder = os.path.dirname(target)
    from apr.stamp.journal import journal_path

    journal = journal_path(target)
    events: list[tuple[str, str]] = []
    real = {name: getattr(os, name) for name in ("fsync", "pwrite", "replace", "unlink")}

    def name_of(fd: int) -> str:
        path = os.readlink(f"/proc/self/fd/{fd}")
        return "journal-tmp" if os.path.basename(journal) + ".tmp-" in path else {target: "target", folder: "folder"}.get(path, path)

    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", name_of(fd))), real["fsync"](fd))[1])
    monkeypatch.setattr(os, "pwrite", lambda fd, d, o: (events.append(("pwrite", name_of(fd))), real["pwrite"](fd, d, o))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("rename", "journal" if b == journal else b)), real["replace"](a, b))[1])
    monkeypatch.setattr(os, "unlink", lambda p: (events.append(("unlink", "journal" if p == journal else p)), real["unlink"](p))[1])
    result = stamp_file(src, ProvenancePatch(license="MIT"), in_place=True)
    assert result.mode == "in-place"
    first_write = events.index(("pwrite", "target"))
    assert ("fsync", "journal-tmp") in events[:first_write]
    assert events.index(("fsync", "journal-tmp")) < events.index(("rename", "journal")) < first_write
    assert ("fsync", "folder") in events[events.index(("rename", "journal")):first_write]
    target_fsync = events.index(("fsync", "target"))
    assert first_write < target_fsync < events.index(("unlink", "journal"))
    assert ("fsync", "folder") in events[events.index(("unlink", "journal")):]


@pytest.mark.falsifies("FALSIFY-STAMP-005")
@pytest.mark.parametrize(("typed", "stored"), [
    ("Apache-2.0 / permissive-aggregate", "Apache-2.0 / permissive-aggregate"),  # the seed's own words
    ("CC-BY-4.0 (captions), MIT (code)", "CC-BY-4.0 (captions), MIT (code)"),
    ("apache-2.0", "Apache-2.0"),  # an SPDX expression is still stored canonical
])
def test_falsify_stamp_005_data_license_free_text_is_stored_verbatim(tmp_path, typed, stored):
    """aprender stores --data-license as typed; so do we, and say where it is not SPDX."""
    from apr.format import open_file
    from apr.identity.explain import license_notes

    src = write_checkpoint(tmp_path / "in.apr")
    code, _out, err = run_cli(["stamp", src, "--data-license", typed, "-o", str(tmp_path / "out.apr")])
    assert code == 0, err
    with open_file(tmp_path / "out.apr") as reader:
        assert reader.metadata["data_license"] == stored
        notes = license_notes(reader.metadata)
    assert (notes == []) == (stored == "Apache-2.0")
    code, _out, err = run_cli(["stamp", src, "--strict", "--data-license", typed, "-o", str(tmp_path / "s.apr")])
    assert code == (0 if stored == "Apache-2.0" else 5), err
    assert (tmp_path / "s.apr").exists() == (stored == "Apache-2.0")
