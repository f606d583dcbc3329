"""`apr validate` check by check: each of the 18 checks passing, failing at its boundary, and the
checks it blocks; every single-byte corruption of header and index caught by the right check; the
content statistics identical whatever the read chunk size (issue 23: mutation score)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import apr.format.validate as validate
from apr.errors import AprFileNotFoundError, FormatError
from apr.format import save
from apr.format.dtypes import DType
from apr.format.quant import PackedTensor, dequantize, quantize_q4, quantize_q8
from apr.format.validate import Check, Status, TensorStats, ValidationReport, validate_file

KEYS = ["magic", "header_size", "version", "header_checksum", "layout_flag", "sections_in_file",
        "section_alignment", "metadata_json", "tensor_index", "index_sorted_unique", "tensor_bounds",
        "tensor_alignment", "tensor_sizes", "no_overlap", "footer_checksum", "no_nan_inf", "no_all_zero",
        "no_constant"]
P, F, W, S = Status.PASS, Status.FAIL, Status.WARN, Status.SKIP


def pad64(data: bytes) -> bytes:
    return data + bytes(-len(data) % 64)


def entry(name: bytes, code: int, shape: tuple[int, ...], offset: int, size: int) -> bytes:
    return (struct.pack("<H", len(name)) + name + bytes((code, len(shape)))
            + b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<QQ", offset, size))


def raw_file(meta: bytes = b"{}", index: bytes = b"", data: bytes = b"", *, count: int = 0, flags: int = 0x400,
             meta_off: int = 64, index_off: int | None = None, data_off: int | None = None,
             version: tuple[int, int] = (2, 0)) -> bytes:
    """A file laid out by hand (§1.2, §1.4); offsets may be forced to anything."""
    body = bytearray(64)
    body[meta_off:meta_off] = b""
    layout = bytearray(bytes(max(meta_off - 64, 0)))
    layout += meta
    index_off = 64 + len(pad64(bytes(layout))) if index_off is None else index_off
    layout += bytes(index_off - 64 - len(layout))
    layout += index
    data_off = 64 + len(pad64(bytes(layout))) if data_off is None else data_off
    layout += bytes(data_off - 64 - len(layout))
    layout += data
    head = struct.pack("<4sBBHIQIQQ", b"APR\x00", *version, flags, count, meta_off, len(meta), index_off, data_off)
    whole = head + struct.pack("<I", zlib.crc32(head + bytes(20))) + bytes(20) + bytes(layout)
    return whole + struct.pack("<I", zlib.crc32(whole))


def run(tmp_path: Path, data: bytes, **kwargs) -> ValidationReport:
    path = tmp_path / "m.apr"
    path.write_bytes(data)
    return validate_file(path, **kwargs)


def statuses(report: ValidationReport) -> list[Status]:
    assert [c.id for c in report.checks] == list(range(1, 19))
    return [c.status for c in report.checks]


def by_key(report: ValidationReport) -> dict[str, Check]:
    return dict(zip(KEYS, report.checks, strict=False))  # a report may stop early


GOOD = {"b": np.array([1.0, -2.0, 3.0], np.float32), "a": np.array([1, 2], np.int8)}


def test_a_good_file_passes_every_check_with_its_facts(tmp_path: Path) -> None:
    data = save(GOOD, {"name": "m"})
    report = run(tmp_path, data)
    assert statuses(report) == [P] * 18 and report.passed and report.failed == []
    c = by_key(report)
    header = struct.unpack_from("<4sBBHIQIQQI", data)
    assert c["magic"].detail == "APR\\0"
    assert c["header_size"].detail == f"{len(data)} bytes"
    assert c["version"].detail == "2.0"
    crc = header[9]
    assert c["header_checksum"].detail == f"stored 0x{crc:08x}, computed 0x{crc:08x}"
    assert c["layout_flag"].detail == "row-major"
    assert c["sections_in_file"].detail == f"metadata@64, index@{header[7]}, data@{header[8]}"
    assert c["section_alignment"].detail == "all aligned"
    assert c["metadata_json"].detail == f"{header[6]} bytes"
    assert c["tensor_index"].detail == "2 tensors"
    assert c["index_sorted_unique"].detail == "sorted by UTF-8 bytes, no duplicates"
    footer = int.from_bytes(data[-4:], "little")
    assert c["footer_checksum"].detail == f"stored 0x{footer:08x}, computed 0x{footer:08x}"
    assert c["no_nan_inf"].detail == "0 NaN, 0 Inf"
    for key in ("tensor_bounds", "tensor_alignment", "tensor_sizes", "no_overlap", "no_all_zero", "no_constant"):
        assert c[key].detail == "ok"


def test_the_json_report_of_a_good_file(tmp_path: Path) -> None:
    data = save(GOOD)
    report = run(tmp_path, data)
    doc = report.to_dict()
    assert json.loads(json.dumps(doc)) == doc
    checks = doc.pop("checks")
    assert doc == {
        "input": str(tmp_path / "m.apr"), "format": "apr", "verdict": "VALID", "passed": True, "strict": False,
        "total_score": 100, "total_checks": 18, "checks_ran": 18, "failed": 0, "content_passed": True,
        "content_total_nan": 0, "content_total_inf": 0, "content_all_zero_tensors": [],
        "content_constant_tensors": [], "content_failed_tensors": [], "bytes": len(data),
    }
    assert [list(c) for c in checks] == [["id", "name", "status", "detail"]] * 18
    assert [c["id"] for c in checks] == list(range(1, 19)) and {c["status"] for c in checks} == {"PASS"}
    assert checks[0]["name"] == "Magic bytes are APR\\0"
    assert [t.to_dict() for t in report.tensors] == [
        {"name": "a", "dtype": "I8", "elements": 2, "nan": 0, "inf": 0, "all_zero": False, "constant": False},
        {"name": "b", "dtype": "F32", "elements": 3, "nan": 0, "inf": 0, "all_zero": False, "constant": False},
    ]


def test_the_json_report_of_a_bad_file(tmp_path: Path) -> None:
    tensors = {"n": np.array([np.nan, 1, np.inf, -np.inf], np.float32), "z": np.zeros(3, np.float32),
               "k": np.full(2, 7.0, np.float32)}
    data = bytearray(save(tensors))
    data[-1] ^= 1  # footer
    report = run(tmp_path, bytes(data), strict=True)
    doc = report.to_dict()
    assert doc["verdict"] == "INVALID" and doc["passed"] is False and doc["strict"] is True
    assert doc["failed"] == 3 and doc["checks_ran"] == 18 and doc["total_score"] == round(100 * 15 / 18) == 83
    assert doc["content_passed"] is False
    assert (doc["content_total_nan"], doc["content_total_inf"]) == (1, 2)
    assert doc["content_all_zero_tensors"] == ["z"] and doc["content_constant_tensors"] == ["k"]
    assert doc["content_failed_tensors"] == ["n"]
    assert [c["status"] for c in doc["checks"]][14:] == ["FAIL", "FAIL", "FAIL", "WARN"]
    c = by_key(report)
    assert c["no_nan_inf"].detail == "1 NaN, 2 Inf in 1 tensors: n"
    assert c["no_all_zero"].detail == "1 all-zero: z" and c["no_constant"].detail == "1 constant: k"


def test_all_zero_warns_unless_strict_and_constant_only_warns(tmp_path: Path) -> None:
    data = save({"z": np.zeros(3, np.float32), "k": np.ones(2, np.float32)})
    lenient = run(tmp_path, data)
    assert statuses(lenient)[15:] == [P, W, W] and lenient.passed
    assert lenient.to_dict()["content_passed"] is True and lenient.to_dict()["verdict"] == "VALID"
    strict = run(tmp_path, data, strict=True)
    assert statuses(strict)[15:] == [P, F, W] and not strict.passed
    assert [c.key if hasattr(c, "key") else c.id for c in strict.failed] == [17]


def test_score_counts_only_checks_that_ran(tmp_path: Path) -> None:
    report = run(tmp_path, b"GGUF" + bytes(100))
    doc = report.to_dict()
    assert doc["checks_ran"] == 1 and doc["total_score"] == 0 and doc["failed"] == 18
    assert ValidationReport("x", 0, False).to_dict()["total_score"] is None
    half = ValidationReport("x", 0, False, checks=[Check(1, "a", P, ""), Check(2, "b", W, ""), Check(3, "c", F, ""),
                                                   Check(16, "d", S, "")])
    assert half.to_dict()["total_score"] == 67 and half.to_dict()["checks_ran"] == 3
    assert half.to_dict()["content_passed"] is False and half.to_dict()["failed"] == 2


# --- every single-byte corruption ------------------------------------------------------------------


def test_every_single_byte_corruption_of_the_header_is_caught_by_the_right_check(tmp_path: Path) -> None:
    good = save(GOOD)
    for position in range(64):
        data = bytearray(good)
        data[position] ^= 0x01
        report = run(tmp_path, bytes(data))
        s = statuses(report)
        assert not report.passed, position
        if position < 4:
            assert s == [F] + [S] * 17
            assert {c.detail for c in report.checks[1:]} == {"not run: not an APR v2 file"}
        else:
            assert s[3] is F, position  # header_checksum
            assert s[2] is (F if position == 4 else P)  # version: the major byte only
            assert s[14] in (F, S)  # the footer covers the header too


def test_every_single_byte_corruption_of_the_index_fails_a_check(tmp_path: Path) -> None:
    good = save(GOOD, {"name": "m"})
    index_off, data_off = struct.unpack_from("<QQ", good, 24)
    for position in range(index_off, data_off):
        data = bytearray(good)
        data[position] ^= 0x01
        report = run(tmp_path, bytes(data))
        s = statuses(report)
        assert not report.passed
        assert s[:5] == [P] * 5  # the header is intact
        first = next(x for x in s if x is not P)
        assert first is F, (position, s)


# --- the early checks and what they block -----------------------------------------------------------


@pytest.mark.parametrize("head, detail", [(b"GGUF", "GGUF"), (b"APRN", "legacy"), (b"\x00\x01\x02\x03", "invalid magic")])
def test_a_foreign_file_fails_magic_and_blocks_the_rest(tmp_path: Path, head: bytes, detail: str) -> None:
    report = run(tmp_path, head + bytes(200))
    assert statuses(report) == [F] + [S] * 17 and detail in report.checks[0].detail
    assert [c.name for c in report.checks] == [c.name for c in run(tmp_path, save(GOOD)).checks]
    assert report.checks[17].name == "No constant tensors (all values equal)"


@pytest.mark.parametrize("size, ok", [(63, False), (64, False), (67, False), (68, True)])
def test_header_size_needs_64_bytes_and_a_footer(tmp_path: Path, size: int, ok: bool) -> None:
    data = save({})[:64] + bytes(max(size - 64, 0))
    report = run(tmp_path, data[:size])
    c = by_key(report)
    assert c["magic"].status is P  # the magic is there even when the file is short
    assert c["header_size"].status is (P if ok else F) and c["header_size"].detail == f"{size} bytes"
    if not ok:
        assert statuses(report) == [P, F] + [S] * 16
        assert {x.detail for x in report.checks[2:]} == {"not run: file too small"}


@pytest.mark.parametrize("version, ok", [((2, 0), True), ((2, 9), True), ((1, 0), False), ((3, 0), False)])
def test_version_major_must_be_2(tmp_path: Path, version, ok: bool) -> None:
    report = run(tmp_path, raw_file(version=version))
    c = by_key(report)
    assert c["version"].status is (P if ok else F) and c["version"].detail == f"{version[0]}.{version[1]}"
    assert c["header_checksum"].status is P and report.passed is ok


def test_a_bad_header_checksum_fails_only_that_check_and_the_footer(tmp_path: Path) -> None:
    data = bytearray(save(GOOD))
    data[40] ^= 0xFF
    report = run(tmp_path, bytes(data))
    s = statuses(report)
    assert [KEYS[i] for i, x in enumerate(s) if x is not P] == ["header_checksum", "footer_checksum"]
    stored = struct.unpack_from("<I", data, 40)[0]
    computed = zlib.crc32(bytes(data[:40]) + bytes(data[44:64]))
    assert by_key(report)["header_checksum"].detail == f"stored 0x{stored:08x}, computed 0x{computed:08x}"


def test_the_column_major_flag_fails_layout_and_the_rest_runs(tmp_path: Path) -> None:
    report = run(tmp_path, raw_file(flags=0x0C00))
    c = by_key(report)
    assert c["layout_flag"].status is F and c["layout_flag"].detail == "LAYOUT_COLUMN_MAJOR set"
    assert [k for k, x in c.items() if x.status is not P] == ["layout_flag"]
    assert run(tmp_path, raw_file(flags=0x07FF)).passed


def test_sections_past_the_end_block_the_rest(tmp_path: Path) -> None:
    data = bytearray(raw_file())
    data[32:40] = struct.pack("<Q", len(data) + 1)
    data[40:44] = struct.pack("<I", zlib.crc32(bytes(data[:40]) + bytes(data[44:64])))
    report = run(tmp_path, bytes(data))
    s = statuses(report)
    assert s[:6] == [P] * 5 + [F] and s[6:] == [S] * 12
    assert {x.detail for x in report.checks[6:]} == {"not run: the header's offsets are unusable"}
    assert "tensor data" in report.checks[5].detail


@pytest.mark.parametrize("meta_off, index_off, data_off, names", [
    (65, 192, 256, "metadata"), (64, 130, 256, "tensor index"), (64, 128, 200, "data"),
    (65, 129, 257, "metadata, tensor index, data"), (128, 192, 256, None)])
def test_section_alignment(tmp_path: Path, meta_off: int, index_off: int, data_off: int, names) -> None:
    report = run(tmp_path, raw_file(meta_off=meta_off, index_off=index_off, data_off=data_off))
    c = by_key(report)["section_alignment"]
    if names is None:
        assert c.status is P and c.detail == "all aligned"
    else:
        assert c.status is F and c.detail == f"misaligned: {names}"
        assert [k for k, x in by_key(report).items() if x.status is not P] == ["section_alignment"]


@pytest.mark.parametrize("meta", [b"{", b"[]", b'{"x":NaN}', b'{"hidden_size":"1"}', b"\xff"])
def test_bad_metadata_fails_its_check_and_nothing_else(tmp_path: Path, meta: bytes) -> None:
    report = run(tmp_path, raw_file(meta=meta))
    assert [k for k, x in by_key(report).items() if x.status is not P] == ["metadata_json"]
    assert by_key(report)["metadata_json"].detail.startswith("metadata")


def test_metadata_size_limit_at_and_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert validate.MAX_METADATA_SIZE == 16 * 1024 * 1024
    meta = b'{"x":"' + b"a" * 100 + b'"}'
    monkeypatch.setattr(validate, "MAX_METADATA_SIZE", len(meta))
    report = run(tmp_path, raw_file(meta=meta))
    assert by_key(report)["metadata_json"].status is P
    assert by_key(report)["metadata_json"].detail == f"{len(meta)} bytes"
    monkeypatch.setattr(validate, "MAX_METADATA_SIZE", len(meta) - 1)
    report = run(tmp_path, raw_file(meta=meta))
    assert by_key(report)["metadata_json"].status is F
    assert by_key(report)["metadata_json"].detail == f"metadata claims {len(meta)} bytes, over the limit"


def test_an_unreadable_index_blocks_the_rest(tmp_path: Path) -> None:
    index = entry(b"w", 2, (1,), 0, 4)  # dtype code 2 does not exist
    report = run(tmp_path, raw_file(index=index, data=pad64(bytes(4)), count=1))
    s = statuses(report)
    assert s[:9] == [P] * 8 + [F] and s[9:] == [S] * 9
    assert "unknown dtype code 2" in report.checks[8].detail
    assert report.checks[9].detail == "not run: index unreadable"
    assert {x.detail for x in report.checks[10:]} == {"not run: the tensor index is unreadable"}


@pytest.mark.parametrize("names, what", [((b"b", b"a"), "tensor index not sorted"), ((b"a", b"a"), "duplicate tensor name")])
def test_an_unsorted_index_parses_but_fails_sorting(tmp_path: Path, names, what: str) -> None:
    index = entry(names[0], 0, (1,), 0, 4) + entry(names[1], 0, (1,), 64, 4)
    report = run(tmp_path, raw_file(index=index, data=pad64(bytes(4)) + pad64(bytes(4)), count=2))
    s = statuses(report)
    assert s[:10] == [P] * 9 + [F] and s[10:] == [S] * 8
    assert report.checks[8].detail == "parses" and what in report.checks[9].detail
    assert {x.detail for x in report.checks[10:]} == {"not run: the tensor index is unreadable"}


def _tensors_file(specs: list[tuple[bytes, int, tuple[int, ...], int, int]], data: bytes) -> bytes:
    return raw_file(index=b"".join(entry(*s) for s in specs), data=data, count=len(specs))


def test_payload_bounds_at_and_past_the_end_of_the_data(tmp_path: Path) -> None:
    values = np.array([1, 2, 3, 4], np.float32).tobytes()
    at = run(tmp_path, _tensors_file([(b"w", 0, (4,), 0, 16)], values))  # ends exactly at the footer
    assert at.passed
    past = run(tmp_path, _tensors_file([(b"w", 0, (4,), 4, 16)], values))  # 4 bytes too far
    c = by_key(past)
    assert past.checks[10].status is F
    assert c["tensor_bounds"].status is F and c["tensor_bounds"].detail == "1 past the data section: w"
    assert past.tensors == []  # an out-of-bounds tensor is not read


def test_payload_alignment(tmp_path: Path) -> None:
    values = np.array([1, 2], np.float32).tobytes()
    report = run(tmp_path, _tensors_file([(b"a", 0, (2,), 0, 8), (b"b", 0, (2,), 8, 8)], values * 2))
    c = by_key(report)
    assert c["tensor_alignment"].status is F and c["tensor_alignment"].detail == "1 misaligned: b"
    assert c["no_overlap"].status is P  # adjacent is not overlapping


def test_payload_sizes_must_match_dtype_and_shape(tmp_path: Path) -> None:
    report = run(tmp_path, _tensors_file([(b"w", 0, (3,), 0, 8), (b"x", 0, (2,), 64, 8)],
                                         pad64(bytes(8)) + np.array([1, 2], np.float32).tobytes()))
    c = by_key(report)
    assert c["tensor_sizes"].status is F
    assert c["tensor_sizes"].detail == "1 inconsistent: w (F32 [3]: 8 bytes, expected 12)"
    assert [(t.name, t.elements) for t in report.tensors] == [("x", 2)]  # the bad one is not read


def test_overlapping_payloads(tmp_path: Path) -> None:
    values = np.arange(1, 17, dtype=np.float32).tobytes()
    report = run(tmp_path, _tensors_file([(b"a", 0, (16,), 0, 64), (b"b", 0, (1,), 0, 4), (b"c", 0, (0,), 0, 0)], values))
    c = by_key(report)
    assert c["no_overlap"].status is F and c["no_overlap"].detail == "1 overlapping: a / b"
    touching = run(tmp_path, _tensors_file([(b"a", 0, (1,), 0, 4), (b"b", 0, (15,), 64, 60)],
                                           pad64(values[:4]) + values[4:]))
    assert by_key(touching)["no_overlap"].status is P


def test_names_lists_five_then_an_ellipsis() -> None:
    assert validate._names("bad", []) == "ok"
    assert validate._names("bad", list("abcde")) == "5 bad: a, b, c, d, e"
    assert validate._names("bad", list("abcdef")) == "6 bad: a, b, c, d, e ..."


def test_a_damaged_footer_fails_only_the_footer(tmp_path: Path) -> None:
    data = bytearray(save(GOOD))
    data[-4:] = b"\x00\x00\x00\x00"
    report = run(tmp_path, bytes(data))
    assert [k for k, x in by_key(report).items() if x.status is not P] == ["footer_checksum"]
    crc = zlib.crc32(bytes(data[:-4]))
    assert by_key(report)["footer_checksum"].detail == f"stored 0x00000000, computed 0x{crc:08x}"


# --- content statistics ------------------------------------------------------------------------------


def test_stats_rules() -> None:
    def stats(values) -> TensorStats:
        s = TensorStats("t", "F32")
        acc = validate._Accumulator(validate.TensorEntry("t", DType.F32, (len(values),), 0, 4 * len(values)))
        acc.feed(memoryview(np.array(values, np.float32).tobytes()))
        s = acc.stats
        return s

    assert stats([0, 0]).all_zero and not stats([0, 0]).constant
    assert not stats([0, 1e-30]).all_zero
    assert not stats([0, np.nan]).all_zero
    assert not stats([]).all_zero and not stats([]).constant
    assert stats([5, 5]).constant and not stats([5]).constant and not stats([5, 5, np.nan]).constant
    assert not stats([5, 6]).constant
    s = stats([np.nan, np.inf, -np.inf, 2.0, -3.0])
    assert (s.elements, s.finite, s.nan, s.inf, s.min, s.max, s.nonzero) == (5, 2, 1, 2, -3.0, 2.0, True)


def _dtype_cases() -> dict[str, object]:
    rng = np.random.default_rng(7)
    values = rng.standard_normal(300).astype(np.float32)
    values[5] = np.nan
    values[6] = np.inf
    values[200] = np.nan  # a second NaN and Inf, hundreds of bytes (several chunks) later
    values[250] = -np.inf
    return {
        "f32": values,
        "f16": values.astype(np.float16),
        "bf16": values.astype(ml_dtypes.bfloat16),
        "f64": values.astype(np.float64),
        "i32": np.arange(-5, 95, dtype=np.int32),
        "i64": np.arange(3, dtype=np.int64),
        "u8": np.arange(200, dtype=np.uint8),
        "q8": quantize_q8(np.nan_to_num(values[:77], posinf=1.0)),
        "q4": quantize_q4(np.nan_to_num(values[:45], posinf=1.0)),
        "q4k": PackedTensor(DType.Q4_K, (2, 256), rng.integers(0, 255, 288, dtype=np.uint8)),
        "q6k": PackedTensor(DType.Q6_K, (256,), rng.integers(0, 255, 210, dtype=np.uint8)),
    }


def _reference(value) -> np.ndarray:
    if isinstance(value, PackedTensor):
        return dequantize(value.dtype, value.shape, np.asarray(value.data)).reshape(-1)
    return np.asarray(value).astype(value.dtype if value.dtype.kind in "iu" else np.float64).reshape(-1)


@pytest.mark.parametrize("chunk", [64, 128, 7 * 64, 8 * 1024 * 1024])
def test_statistics_are_exact_whatever_the_chunk_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    cases = _dtype_cases()
    monkeypatch.setattr(validate, "CHUNK_SIZE", chunk)
    report = run(tmp_path, save(cases))
    by_name = {t.name: t for t in report.tensors}
    for name, value in cases.items():
        ref = _reference(value)
        t = by_name[name]
        is_float = ref.dtype.kind == "f"
        finite = ref[np.isfinite(ref)] if is_float else ref
        assert t.elements == ref.size, name
        assert t.nan == (int(np.isnan(ref).sum()) if is_float else 0), name
        assert t.inf == (int(np.isinf(ref).sum()) if is_float else 0), name
        assert t.finite == finite.size, name
        assert t.min == float(finite.min()) and t.max == float(finite.max()), name
        assert t.nonzero is bool(np.any(finite)), name
    assert by_key(report)["footer_checksum"].status is P


def test_progress_reports_bytes_read_up_to_the_footer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validate, "CHUNK_SIZE", 128)
    data = save(GOOD)
    seen: list[tuple[int, int]] = []
    run(tmp_path, data, progress=lambda done, total: seen.append((done, total)))
    end = len(data) - 4
    assert seen[-1] == (end, end) and all(total == end for _d, total in seen)
    assert [d for d, _t in seen] == [min(128 * (i + 1), end) for i in range(len(seen))]


# --- the file itself -----------------------------------------------------------------------------


def test_a_missing_path_and_a_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError) as info:
        validate_file(tmp_path / "nope.apr")
    assert info.value.message == "file not found"
    with pytest.raises(AprFileNotFoundError) as info:
        validate_file(tmp_path)
    assert info.value.message == "not a file (a folder or device)"


def test_an_unplanned_parser_refusal_blocks_every_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args):
        raise FormatError("parser gave up")

    monkeypatch.setattr(validate, "_structural", boom)
    report = run(tmp_path, save(GOOD))
    assert statuses(report) == [S] * 18 and not report.passed
    assert {c.detail for c in report.checks} == {"not run: parser gave up"}
    assert report.to_dict()["total_score"] is None


def test_recorder_statuses() -> None:
    rec = validate._Recorder()
    assert rec.record("magic", True, "a") is True
    assert rec.record("version", False, "b") is False
    assert rec.record("no_all_zero", False, "c", warn=True) is False
    assert rec.record("no_constant", True, "d", warn=True) is True
    assert rec.record("header_size", None, "e") is False
    rec.block_rest("why")
    checks = rec.checks()
    assert [c.id for c in checks] == list(range(1, 19))
    got = {c.id: (c.status, c.detail) for c in checks}
    assert got[1] == (P, "a") and got[3] == (F, "b") and got[17] == (W, "c") and got[18] == (P, "d")
    assert got[2] == (S, "e") and got[4] == (S, "not run: why")
    assert checks[0].to_dict() == {"id": 1, "name": "Magic bytes are APR\\0", "status": "PASS", "detail": "a"}


def test_every_path_refusal_says_how_to_fix_it(tmp_path: Path) -> None:
    for path in (tmp_path / "missing", tmp_path):
        with pytest.raises(AprFileNotFoundError) as info:
            validate_file(path)
        assert info.value.hint and info.value.path == str(path)


def test_the_index_read_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert validate.MAX_INDEX_READ == 256 * 1024 * 1024
    data = save(GOOD)
    _index_off, _data_off = struct.unpack_from("<QQ", data, 24)
    first_entry = 2 + 1 + 2 + 8 + 16  # "a", one dim
    monkeypatch.setattr(validate, "MAX_INDEX_READ", 2 * first_entry)  # both entries: 58 bytes
    assert run(tmp_path, data).passed
    monkeypatch.setattr(validate, "MAX_INDEX_READ", 2 * first_entry - 1)  # the last byte is cut off
    report = run(tmp_path, data)
    assert by_key(report)["tensor_index"].status is F


def test_the_index_span_bounds_the_count(tmp_path: Path) -> None:
    index = entry(b"w", 0, (64,), 0, 256)  # the 64-byte index span, then 256 bytes of data
    report = run(tmp_path, raw_file(index=index, data=np.ones(64, np.float32).tobytes(), count=4))
    c = by_key(report)["tensor_index"]
    assert c.status is F and c.detail == "header claims 4 tensors but the tensor index has room for at most 3"


@pytest.mark.parametrize("tensors, footer_ok, content_passed", [
    ({"n": np.array([np.nan, 1.0], np.float32)}, True, False),  # check 16 alone fails
    ({"w": np.array([1.0, 2.0], np.float32)}, False, True),  # check 15 is not a content check
])
def test_content_passed_is_checks_16_to_18(tmp_path: Path, tensors, footer_ok: bool, content_passed: bool) -> None:
    data = bytearray(save(tensors))
    if not footer_ok:
        data[-1] ^= 1
    doc = run(tmp_path, bytes(data)).to_dict()
    assert doc["content_passed"] is content_passed and doc["passed"] is False


@pytest.mark.parametrize("piece", [1, 3, 5, 7, 64])
def test_feeding_a_payload_in_any_pieces_gives_the_same_statistics(piece: int) -> None:
    for name, value in _dtype_cases().items():
        data = save({"t": value})
        r_entry = validate.parse_index(data[struct.unpack_from("<Q", data, 24)[0]:], 1)[0]
        start = struct.unpack_from("<Q", data, 32)[0]
        payload = data[start:start + r_entry.size]
        whole = validate._Accumulator(r_entry)
        whole.feed(memoryview(payload))
        pieces = validate._Accumulator(r_entry)
        for i in range(0, len(payload), piece):
            pieces.feed(memoryview(payload[i:i + piece]))
        a, b = whole.stats, pieces.stats
        assert (a.elements, a.finite, a.nan, a.inf, a.nonzero, a.min, a.max) == \
               (b.elements, b.finite, b.nan, b.inf, b.nonzero, b.min, b.max), (name, piece)
        assert pieces.carry == b"", name


def test_failed_tensors_have_a_nan_or_an_inf(tmp_path: Path) -> None:
    tensors = {"nan": np.array([np.nan, 1.0], np.float32), "inf": np.array([np.inf, 1.0], np.float32),
               "ok": np.array([1.0, 2.0], np.float32)}
    doc = run(tmp_path, save(tensors)).to_dict()
    assert doc["content_failed_tensors"] == ["inf", "nan"]


def test_a_single_zero_is_all_zero(tmp_path: Path) -> None:
    report = run(tmp_path, save({"z": np.zeros(1, np.float32), "e": np.zeros(0, np.float32)}))
    assert report.to_dict()["content_all_zero_tensors"] == ["z"]
    assert [t.to_dict() for t in report.tensors] == [  # a zero-size tensor gets empty statistics
        {"name": "e", "dtype": "F32", "elements": 0, "nan": 0, "inf": 0, "all_zero": False, "constant": False},
        {"name": "z", "dtype": "F32", "elements": 1, "nan": 0, "inf": 0, "all_zero": True, "constant": False},
    ]


def test_apr_q4_padding_is_trimmed_by_the_whole_shape(tmp_path: Path) -> None:
    values = np.linspace(-1, 1, 45, dtype=np.float32).reshape(3, 15)  # 2 blocks of 32: 19 padding values
    report = run(tmp_path, save({"q": quantize_q4(values)}))
    assert report.tensors[0].elements == 45


def test_the_structural_pass_reads_64_header_bytes_first(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(save(GOOD))
    sizes: list[int | None] = []
    with open(path, "rb") as real:
        class Spy:
            def read(self, n=None):
                sizes.append(n)
                return real.read(n)

            def seek(self, pos):
                return real.seek(pos)

        validate._structural(validate._Recorder(), Spy(), path.stat().st_size)
    assert sizes[0] == 64


def _nested_file() -> tuple[bytes, np.ndarray]:
    big = np.arange(1, 49, dtype=np.float32)  # 192 bytes at offset 0
    specs = [(b"a", 0, (48,), 0, 192), (b"b", 0, (1,), 64, 4)]  # b lies inside a
    return raw_file(index=b"".join(entry(*s) for s in specs), data=big.tobytes(), count=2), big


@pytest.mark.parametrize("chunk", [64, 128, 1 << 20])
def test_overlapping_payloads_are_each_read_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    monkeypatch.setattr(validate, "CHUNK_SIZE", chunk)
    data, _big = _nested_file()
    report = run(tmp_path, data)
    a, b = report.tensors
    assert (a.elements, a.min, a.max) == (48, 1.0, 48.0)
    assert (b.elements, b.min, b.max) == (1, 17.0, 17.0)
    assert by_key(report)["no_overlap"].status is F and by_key(report)["footer_checksum"].status is P


def test_two_payloads_at_the_same_place(tmp_path: Path) -> None:
    values = np.array([3.0, 4.0], np.float32).tobytes()
    specs = [(b"a", 0, (2,), 0, 8), (b"b", 0, (2,), 0, 8)]
    report = run(tmp_path, raw_file(index=b"".join(entry(*s) for s in specs), data=values, count=2))
    assert [(t.name, t.elements, t.max) for t in report.tensors] == [("a", 2, 4.0), ("b", 2, 4.0)]


def test_a_file_shorter_than_its_size_gives_a_footer_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.apr"
    data = save(GOOD)
    path.write_bytes(data)
    monkeypatch.setattr(validate.os.path, "getsize", lambda _p: len(data) + 64)  # it shrank after the stat
    report = validate_file(path)
    assert by_key(report)["footer_checksum"].status is F and report.to_dict()["bytes"] == len(data) + 64
    assert [t.name for t in report.tensors] == ["a", "b"]


def test_payload_alignment_is_of_the_absolute_position(tmp_path: Path) -> None:
    values = np.ones(1, np.float32).tobytes()
    index = entry(b"w", 0, (1,), 56, 4)  # the data section starts at 200: 200 + 56 = 256 is aligned
    report = run(tmp_path, raw_file(index=index, data=bytes(56) + values, count=1, data_off=200))
    c = by_key(report)
    assert c["section_alignment"].status is F and c["tensor_alignment"].status is P
    index = entry(b"w", 0, (1,), 0, 4)  # 200 is not
    report = run(tmp_path, raw_file(index=index, data=values, count=1, data_off=200))
    assert by_key(report)["tensor_alignment"].status is F
