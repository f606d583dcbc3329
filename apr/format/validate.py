"""`apr validate`: every structural check and the content checks, in one streaming pass.

Structural checks look at the header, metadata and index (and never trust one to check another);
then one sequential read of the file feeds the footer CRC-32 and per-tensor statistics (NaN, Inf,
all-zero, constant) through a fixed-size buffer, so memory stays flat whatever the file size.
aprender declares ~26 checks and runs ~4 and never checks the footer; here every declared check
runs, or says which failed check blocked it.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from apr.errors import AprError, AprFileNotFoundError, FormatError
from apr.format.dtypes import DType, expected_nbytes
from apr.format.header import (
    ALIGNMENT,
    FOOTER_SIZE,
    HEADER_SIZE,
    MAGIC,
    VERSION,
    Flags,
    Header,
    check_header_layout,
    decode_header,
)
from apr.format.metadata import MAX_METADATA_SIZE, decode_metadata
from apr.format.sniff import require_apr2
from apr.format.tensor_index import TensorEntry, parse_index

CHUNK_SIZE = 8 * 1024 * 1024  # a multiple of 64 and of every element size
MAX_INDEX_READ = 256 * 1024 * 1024  # the most of a tensor index read (the reader's MAX_INDEX_SIZE)


class Status(str, enum.Enum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    SKIP = "SKIP"  # blocked by an earlier failure; the detail names it


@dataclass(frozen=True, slots=True)
class Check:
    id: int
    name: str
    status: Status
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status.value, "detail": self.detail}


# The declared checklist, in order. Each entry: (id, key, human name).
CHECKS: tuple[tuple[int, str, str], ...] = (
    (1, "magic", "Magic bytes are APR\\0"),
    (2, "header_size", "File holds a 64-byte header and a footer"),
    (3, "version", "Format version is 2.x"),
    (4, "header_checksum", "Header CRC-32 matches"),
    (5, "layout_flag", "Row-major layout (LAYOUT-002)"),
    (6, "sections_in_file", "Metadata, index and data sections lie within the file, in order"),
    (7, "section_alignment", "Sections start on 64-byte boundaries"),
    (8, "metadata_json", "Metadata is a valid JSON object with well-typed fields"),
    (9, "tensor_index", "Tensor index parses (names UTF-8, dtypes known, ndim <= 8)"),
    (10, "index_sorted_unique", "Tensor names sorted and unique"),
    (11, "tensor_bounds", "Every payload lies within the data section"),
    (12, "tensor_alignment", "Every payload starts on a 64-byte boundary"),
    (13, "tensor_sizes", "Every payload size matches its dtype and shape"),
    (14, "no_overlap", "No two payloads overlap"),
    (15, "footer_checksum", "Footer CRC-32 matches the file"),
    (16, "no_nan_inf", "No NaN or Inf values"),
    (17, "no_all_zero", "No all-zero tensors"),
    (18, "no_constant", "No constant tensors (all values equal)"),
)


@dataclass(slots=True)
class TensorStats:
    """Content statistics of one tensor, accumulated chunk by chunk."""

    name: str
    dtype: str
    elements: int = 0
    finite: int = 0
    nan: int = 0
    inf: int = 0
    nonzero: bool = False
    min: float = float("inf")
    max: float = float("-inf")

    @property
    def all_zero(self) -> bool:
        return is_all_zero(self)

    @property
    def constant(self) -> bool:
        return is_constant(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "elements": self.elements,
            "nan": self.nan,
            "inf": self.inf,
            "all_zero": self.all_zero,
            "constant": self.constant,
        }


@dataclass
class ValidationReport:
    path: str
    file_size: int
    strict: bool
    checks: list[Check] = field(default_factory=list)
    tensors: list[TensorStats] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return failed_checks(self.checks)

    @property
    def passed(self) -> bool:
        return all_passed(self.checks)

    def to_dict(self) -> dict[str, Any]:
        ran = [c for c in self.checks if c.status is not Status.SKIP]
        passed = [c for c in ran if c.status in (Status.PASS, Status.WARN)]
        score = round(100 * len(passed) / len(ran)) if ran else None
        content = [c for c in self.checks if c.id >= 16]
        return {
            "input": self.path,
            "format": "apr",
            "verdict": "VALID" if self.passed else "INVALID",
            "passed": self.passed,
            "strict": self.strict,
            "total_score": score,
            "total_checks": len(self.checks),
            "checks_ran": len(ran),
            "failed": len(self.failed),
            "checks": [c.to_dict() for c in self.checks],
            "content_passed": all(c.status in (Status.PASS, Status.WARN) for c in content),
            "content_total_nan": sum(t.nan for t in self.tensors),
            "content_total_inf": sum(t.inf for t in self.tensors),
            "content_all_zero_tensors": [t.name for t in self.tensors if t.all_zero],
            "content_constant_tensors": [t.name for t in self.tensors if t.constant],
            "content_failed_tensors": [t.name for t in self.tensors if t.nan or t.inf],
            "bytes": self.file_size,
        }


def is_all_zero(stats: TensorStats) -> bool:
    """Some elements, none of them non-zero and none NaN."""
    return stats.elements > 0 and not stats.nonzero and stats.nan == 0


def is_constant(stats: TensorStats) -> bool:
    """At least two elements, all finite and equal, and not all zero (that is its own finding)."""
    return stats.finite > 1 and stats.finite == stats.elements and stats.min == stats.max and not is_all_zero(stats)


def failed_checks(checks: list[Check]) -> list[Check]:
    """The checks that failed or could not run (a skipped check is not a pass)."""
    return [c for c in checks if c.status in (Status.FAIL, Status.SKIP)]


def all_passed(checks: list[Check]) -> bool:
    """The verdict: VALID when no check failed or was skipped (WARN passes)."""
    return not failed_checks(checks)


class _Recorder:
    """Collects check results; a check whose prerequisite failed is recorded as SKIP."""

    def __init__(self) -> None:
        self.results: dict[str, Check] = {}
        self._ids = {key: (cid, name) for cid, key, name in CHECKS}

    def record(self, key: str, ok: bool | None, detail: str, *, warn: bool = False) -> bool:
        cid, name = self._ids[key]
        if ok is None:
            status = Status.SKIP
        elif ok:
            status = Status.PASS
        else:
            status = Status.WARN if warn else Status.FAIL
        self.results[key] = Check(cid, name, status, detail)
        return bool(ok)

    def block_rest(self, reason: str) -> None:
        for cid, key, name in CHECKS:
            if key not in self.results:
                self.results[key] = Check(cid, name, Status.SKIP, f"not run: {reason}")

    def checks(self) -> list[Check]:
        return sorted(self.results.values(), key=lambda c: c.id)


def _structural(rec: _Recorder, f, size: int) -> tuple[Header, list[TensorEntry]] | None:
    """Checks 1–14. Returns header and entries when the data pass can run."""
    head = f.read(min(size, HEADER_SIZE))
    try:
        require_apr2(head, size)
        rec.record("magic", True, "APR\\0")
    except FormatError as err:
        rec.record("magic", head[:4] == MAGIC, err.message)
        if head[:4] != MAGIC:
            rec.block_rest("not an APR v2 file")
            return None
    if not rec.record("header_size", size >= HEADER_SIZE + FOOTER_SIZE, f"{size} bytes"):
        rec.block_rest("file too small")
        return None
    header = decode_header(head)  # the checksum and the layout flag are checks 4 and 5 below
    rec.record("version", header.version[0] == VERSION[0], "{}.{}".format(*header.version))
    rec.record(
        "header_checksum",
        header.is_checksum_valid,
        f"stored 0x{header.checksum:08x}, computed 0x{header.computed_checksum:08x}",
    )
    rec.record(
        "layout_flag",
        not header.flags & Flags.LAYOUT_COLUMN_MAJOR,
        "LAYOUT_COLUMN_MAJOR set" if header.flags & Flags.LAYOUT_COLUMN_MAJOR else "row-major",
    )
    try:
        check_header_layout(header, size)
        rec.record("sections_in_file", True, f"metadata@{header.metadata_offset}, index@{header.tensor_index_offset}, data@{header.data_offset}")
    except FormatError as err:
        rec.record("sections_in_file", False, err.message)
        rec.block_rest("the header's offsets are unusable")
        return None
    misaligned = [
        name
        for name, value in (
            ("metadata", header.metadata_offset),
            ("tensor index", header.tensor_index_offset),
            ("data", header.data_offset),
        )
        if value % ALIGNMENT
    ]
    rec.record("section_alignment", not misaligned, "misaligned: " + ", ".join(misaligned) if misaligned else "all aligned")
    try:
        if header.metadata_size > MAX_METADATA_SIZE:
            raise FormatError(f"metadata claims {header.metadata_size} bytes, over the limit")
        f.seek(header.metadata_offset)
        decode_metadata(f.read(header.metadata_size))
        rec.record("metadata_json", True, f"{header.metadata_size} bytes")
    except FormatError as err:
        rec.record("metadata_json", False, err.message)
    span = header.data_offset - header.tensor_index_offset
    f.seek(header.tensor_index_offset)
    try:
        entries = parse_index(f.read(min(span, MAX_INDEX_READ)), header.tensor_count, base_offset=header.tensor_index_offset)
    except FormatError as err:
        sorted_problem = "sorted" in err.message or "duplicate" in err.message
        rec.record("tensor_index", sorted_problem, err.message if not sorted_problem else "parses")
        rec.record("index_sorted_unique", False if sorted_problem else None, err.message if sorted_problem else "not run: index unreadable")
        rec.block_rest("the tensor index is unreadable")
        return None
    rec.record("tensor_index", True, f"{len(entries)} tensors")
    rec.record("index_sorted_unique", True, "sorted by UTF-8 bytes, no duplicates")
    data_len = size - FOOTER_SIZE - header.data_offset
    out_of_bounds = [e.name for e in entries if e.offset + e.size > data_len]
    rec.record("tensor_bounds", not out_of_bounds, _names("past the data section", out_of_bounds))
    misaligned_t = [e.name for e in entries if (header.data_offset + e.offset) % ALIGNMENT]
    rec.record("tensor_alignment", not misaligned_t, _names("misaligned", misaligned_t))
    bad_size = [
        f"{e.name} ({e.dtype.name} {list(e.shape)}: {e.size} bytes, expected {expected_nbytes(e.dtype, e.shape)})"
        for e in entries
        if expected_nbytes(e.dtype, e.shape) != e.size
    ]
    rec.record("tensor_sizes", not bad_size, _names("inconsistent", bad_size))
    ordered = sorted((e for e in entries if e.size), key=lambda e: e.offset)
    overlaps = [f"{a.name} / {b.name}" for a, b in pairwise(ordered) if a.offset + a.size > b.offset]
    rec.record("no_overlap", not overlaps, _names("overlapping", overlaps))
    if out_of_bounds or bad_size:
        return header, [e for e in entries if e.name not in set(out_of_bounds) and expected_nbytes(e.dtype, e.shape) == e.size]
    return header, entries


def _names(what: str, names: list[str]) -> str:
    if not names:
        return "ok"
    shown = ", ".join(names[:5])
    return f"{len(names)} {what}: {shown}" + (" ..." if len(names) > 5 else "")


class _Accumulator:
    """Feeds one tensor's payload bytes, in order and in arbitrary chunks, into `TensorStats`."""

    def __init__(self, entry: TensorEntry) -> None:
        self.entry = entry
        self.stats = TensorStats(entry.name, entry.dtype.name)
        self.carry = b""
        dtype = entry.dtype
        if dtype is DType.Q4_K:
            self.unit = 144
        elif dtype is DType.Q6_K:
            self.unit = 210
        elif dtype is DType.APR_Q4:
            self.unit = 18
        elif dtype is DType.APR_Q8:
            self.unit = 1
            self.scale: float | None = None
        else:
            self.unit = dtype.numpy_dtype.itemsize

    def feed(self, data: memoryview) -> None:
        if self.entry.dtype is DType.APR_Q8 and self.scale is None:
            need = 4 - len(self.carry)
            self.carry += bytes(data[:need])
            data = data[need:]
            if len(self.carry) < 4:
                return
            self.scale = float(np.frombuffer(self.carry, np.float32)[0])
            self.carry = b""
        if self.carry:
            data = memoryview(self.carry + bytes(data))
            self.carry = b""
        usable = len(data) - len(data) % self.unit
        if usable < len(data):
            self.carry = bytes(data[usable:])
        if usable:
            self._observe(self._values(data[:usable]))

    def _values(self, data: memoryview) -> np.ndarray:
        dtype = self.entry.dtype
        raw = np.frombuffer(data, dtype=np.uint8)
        if dtype is DType.APR_Q8:
            return raw.view(np.int8).astype(np.float32) * np.float32(self.scale)
        if dtype.is_packed:
            from apr.format.quant import dequantize

            blocks = len(raw) // self.unit
            elems = 32 if dtype is DType.APR_Q4 else 256
            return dequantize(dtype, (blocks * elems,), raw)
        values = raw.view(dtype.numpy_dtype)
        if dtype in (DType.F16, DType.BF16):
            values = values.astype(np.float32)
        return values

    def _observe(self, values: np.ndarray) -> None:
        s = self.stats
        if self.entry.dtype is DType.APR_Q4:  # the last block's padding is not data
            remaining = self._logical_elements() - s.elements
            values = values[: max(remaining, 0)]
        s.elements += int(values.size)
        if not values.size:
            return
        if values.dtype.kind == "f":
            finite = np.isfinite(values)
            n_finite = int(np.count_nonzero(finite))
            if n_finite != values.size:
                nans = int(np.count_nonzero(np.isnan(values)))
                s.nan += nans
                s.inf += values.size - n_finite - nans
                values = values[finite]
        s.finite += int(values.size)
        if values.size:
            s.nonzero = s.nonzero or bool(np.any(values))
            s.min = min(s.min, float(values.min()))
            s.max = max(s.max, float(values.max()))

    def _logical_elements(self) -> int:
        n = 1
        for d in self.entry.shape:
            n *= d
        return n


def _content_pass(rec: _Recorder, f, size: int, header: Header, entries: list[TensorEntry], progress) -> list[TensorStats]:
    """One sequential read: the footer CRC over everything, tensor stats over each payload."""
    from apr.format.crc import bulk_crc32

    crc32 = bulk_crc32(size)  # zlib-ng for a large file, the same values as zlib's
    end = size - FOOTER_SIZE
    spans = sorted(
        ((header.data_offset + e.offset, header.data_offset + e.offset + e.size, _Accumulator(e)) for e in entries if e.size),
        key=lambda s: s[0],
    )
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    crc = 0
    pos = 0
    first = 0  # index of the first span not yet finished
    f.seek(0)
    while pos < end:
        n = f.readinto(view[: min(CHUNK_SIZE, end - pos)])
        if not n:
            break
        chunk = view[:n]
        crc = crc32(chunk, crc)
        chunk_end = pos + n
        # A bounded walk over the spans this chunk reaches (a `while` with `i += 1` could spin forever
        # on a one-character fault; `range` cannot).
        for i in range(first, len(spans)):
            start, stop, acc = spans[i]
            if start >= chunk_end:
                break
            lo, hi = max(start, pos), min(stop, chunk_end)
            if lo < hi:
                acc.feed(chunk[lo - pos : hi - pos])
            if stop <= chunk_end and i == first:
                first += 1
        pos = chunk_end
        if progress is not None:
            progress(pos, end)
    f.seek(end)
    stored = int.from_bytes(f.read(FOOTER_SIZE), "little")
    rec.record("footer_checksum", stored == crc, f"stored 0x{stored:08x}, computed 0x{crc:08x}")
    by_name = {acc.entry.name: acc.stats for _s, _e, acc in spans}
    return [by_name.get(e.name, TensorStats(e.name, e.dtype.name)) for e in entries]


def validate_file(
    path: str | os.PathLike[str],
    *,
    strict: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ValidationReport:
    """Run every check on ``path`` and return the report (it never raises for bad content).

    Args:
        path: the file to check.
        strict: all-zero tensors fail instead of warning (aprender's ``--strict``: NaN, Inf and
            all-zero fail). Constant tensors always only warn: a freshly initialised norm is 1.0
            everywhere.
        progress: called with (bytes read, bytes to read) during the data pass.

    Raises:
        AprFileNotFoundError: the path is missing or not a file.
    """
    target = os.fspath(path)
    if not os.path.exists(target):
        raise AprFileNotFoundError("file not found", path=target, hint="check the path")
    if not os.path.isfile(target):
        raise AprFileNotFoundError("not a file (a folder or device)", path=target, hint="pass the path of an .apr file")
    size = os.path.getsize(target)
    report = ValidationReport(path=target, file_size=size, strict=strict)
    rec = _Recorder()
    with open(target, "rb", buffering=0) as f:
        try:
            found = _structural(rec, f, size)
        except AprError as err:  # defensive: a structural parser refused in an unplanned place
            rec.block_rest(err.message)
            found = None
        if found is not None:
            header, entries = found
            report.tensors = _content_pass(rec, f, size, header, entries, progress)
            t = report.tensors
            bad = [x.name for x in t if x.nan or x.inf]
            zero = [x.name for x in t if x.all_zero]
            const = [x.name for x in t if x.constant]
            rec.record(
                "no_nan_inf",
                not bad,
                f"{sum(x.nan for x in t)} NaN, {sum(x.inf for x in t)} Inf" + (f" in {_names('tensors', bad)}" if bad else ""),
            )
            rec.record("no_all_zero", not zero, _names("all-zero", zero), warn=not strict)
            rec.record("no_constant", not const, _names("constant", const), warn=True)
    report.checks = rec.checks()
    return report
