"""`apr.format.footer_check` against zlib.crc32 as the independent oracle: the footer CRC computed
while a copy reads the payloads (fed whole, twice, overlapping, past the footer, as typed arrays, or
not at all) equals zlib's CRC of the bytes before the footer; a damaged header or footer becomes
a `Damage` whose stored and computed values are the oracle's, key by key in ``--json``; without
``--allow-damaged`` it is `DamagedInputError` (exit 5) naming both CRCs (issue 23)."""

from __future__ import annotations

import errno
import os
import signal
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apr.errors import AprIOError, DamagedInputError
from apr.format import open_file, save
from apr.format.footer_check import Damage, FooterCheck, refuse_damage

TENSORS = {"a.weight": np.arange(37, dtype=np.float32), "b.bias": np.arange(5, dtype=np.float32) * -1.5,
           "c": np.arange(64, dtype=np.float32)}
HEADER_CRC_AT = 40  # §1.2: the header checksum, bytes 40..44


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    """Fail a test whose CRC loop never ends (a fault in the gap fill) instead of hanging the run."""
    def alarm(signum, frame):
        raise TimeoutError("the footer check did not finish in 20 s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, 20)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _footer(raw: bytes) -> tuple[int, int]:
    """(stored footer, zlib CRC-32 of everything before it)."""
    return int.from_bytes(raw[-4:], "little"), zlib.crc32(raw[:-4])


def _header_crcs(raw: bytes) -> tuple[int, int]:
    """(stored header CRC, zlib CRC-32 of bytes 0..40 then 44..64)."""
    return struct.unpack_from("<I", raw, HEADER_CRC_AT)[0], zlib.crc32(raw[44:64], zlib.crc32(raw[:40]))


def _hex(value: int) -> str:
    return "0x" + format(value, "08x")


@pytest.fixture
def intact(tmp_path: Path) -> Path:
    path = tmp_path / "m.apr"
    path.write_bytes(save(TENSORS, {"architecture": "llama"}))
    return path


def _write(tmp_path: Path, raw: bytes, name: str = "d.apr") -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


def _flip_data(raw: bytes) -> bytes:
    damaged = bytearray(raw)
    damaged[len(raw) - 10] ^= 0x10  # in the last payload's bytes or padding
    return bytes(damaged)


def _flip_header_keep_footer(raw: bytes) -> bytes:
    """A wrong header CRC, with the footer recomputed so that it matches the bytes before it."""
    damaged = bytearray(raw)
    damaged[HEADER_CRC_AT] ^= 0x01
    damaged[-4:] = zlib.crc32(bytes(damaged[:-4])).to_bytes(4, "little")
    return bytes(damaged)


# --- the CRC itself -----------------------------------------------------------------------------------


def test_the_descriptor_is_not_inherited_and_closed_once(intact: Path) -> None:
    before = set(os.listdir("/proc/self/fd"))
    check = FooterCheck(intact)
    assert check.size == intact.stat().st_size and check.tensors == 0
    assert os.get_inheritable(check._fd) is False
    with check:
        pass
    check.close()  # a second close is harmless
    assert set(os.listdir("/proc/self/fd")) == before


def test_an_unopenable_file_is_an_io_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "absent.apr"
    with pytest.raises(AprIOError) as info:
        FooterCheck(path)
    assert info.value.exit_code == 7 and info.value.path == str(path)
    assert info.value.message == f"cannot open file: {os.strerror(errno.ENOENT)}"


def test_nothing_fed_reads_everything_and_matches_zlib(intact: Path) -> None:
    raw = intact.read_bytes()
    with FooterCheck(intact) as check:
        assert check.finish() is None
        assert check._crc == zlib.crc32(raw[:-4]) and check._pos == len(raw) - 4


def test_every_tensor_fed_in_order_counts_and_matches_zlib(intact: Path) -> None:
    raw = intact.read_bytes()
    with open_file(intact) as reader, FooterCheck(intact) as check:
        for name in reader.keys():
            check.feed_tensor(reader, name)
        assert check.tensors == 3
        assert check.finish(reader) is None
        assert check._crc == zlib.crc32(raw[:-4])


def test_the_same_bytes_fed_twice_or_overlapping_are_counted_once(intact: Path) -> None:
    raw = intact.read_bytes()
    with FooterCheck(intact) as check:
        check.feed(0, raw[:100])
        check.feed(0, raw[:100])  # again
        check.feed(50, raw[50:300])  # overlaps the first
        assert check._pos == 300 and check._crc == zlib.crc32(raw[:300])
        check.feed(10, raw[10:20])  # already covered
        assert check._pos == 300 and check._crc == zlib.crc32(raw[:300])
        assert check.finish() is None


def test_a_payload_that_runs_into_the_footer_is_cut_at_the_footer(intact: Path) -> None:
    raw = intact.read_bytes()
    with FooterCheck(intact) as check:
        check.feed(0, raw)  # the whole file, footer included
        assert check._pos == len(raw) - 4 and check._crc == zlib.crc32(raw[:-4])
        check.feed(len(raw) - 4, raw[-4:])  # the footer alone: not data
        assert check._pos == len(raw) - 4
        assert check.finish() is None


def test_bytes_fed_from_inside_the_footer_are_not_data(intact: Path) -> None:
    raw = intact.read_bytes()
    with FooterCheck(intact) as check:
        check.feed(len(raw) - 2, raw[-2:])  # before anything else: neither filled up to nor counted
        assert check._pos == 0 and check._crc == 0
        assert check.finish() is None
        assert check._pos == len(raw) - 4 and check._crc == zlib.crc32(raw[:-4])


def test_a_gap_before_a_payload_is_filled_from_the_file(intact: Path) -> None:
    raw = intact.read_bytes()
    with FooterCheck(intact) as check:
        check.feed(200, raw[200:260])
        assert check._pos == 260 and check._crc == zlib.crc32(raw[:260])
        assert check.finish() is None


def test_a_typed_array_is_fed_by_its_bytes(intact: Path) -> None:
    raw = intact.read_bytes()
    with FooterCheck(intact) as check:
        check.feed(64, np.frombuffer(raw[64:192], dtype=np.float32))
        assert check._pos == 192 and check._crc == zlib.crc32(raw[:192])


@settings(max_examples=40, deadline=None)
@given(cuts=st.lists(st.tuples(st.integers(0, 600), st.integers(0, 400)), max_size=8))
def test_any_feeding_matches_zlib_over_the_bytes_before_the_footer(tmp_path_factory, cuts) -> None:
    folder = tmp_path_factory.mktemp("feed")
    raw = save(TENSORS, {"architecture": "llama"})
    path = _write(folder, raw)
    with FooterCheck(path) as check:
        for start, length in cuts:
            start = min(start, len(raw))
            check.feed(start, raw[start:start + length])
        assert check.finish() is None
        assert check._crc == zlib.crc32(raw[:-4])


def test_a_file_shorter_than_a_footer(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\x07\x01")
    with FooterCheck(path) as check:
        damage = check.finish()
    assert damage == Damage(path=str(path), footer_stored=0x0107, footer_computed=0, tensors=0)


def test_an_empty_file(tmp_path: Path) -> None:
    path = _write(tmp_path, b"")
    with FooterCheck(path) as check:
        assert check.finish() is None  # no bytes, CRC 0, no footer read: zeros


def test_a_file_that_shrinks_while_it_is_read(intact: Path) -> None:
    raw = intact.read_bytes()
    with FooterCheck(intact) as check:
        check.feed(0, raw[:128])
        with open(intact, "r+b") as handle:
            handle.truncate(200)
        with pytest.raises(AprIOError) as info:
            check.finish()
    assert info.value.exit_code == 7 and info.value.path == str(intact)
    assert info.value.message == "file shrank while being read (at byte 200)"
    assert info.value.hint == "another program is writing this file; retry when it is done"


def test_a_reader_of_another_size_is_refused(intact: Path, tmp_path: Path) -> None:
    other = _write(tmp_path, save({"x": np.zeros(100, np.float32)}), "other.apr")
    with open_file(other) as reader, FooterCheck(intact) as check:
        with pytest.raises(AprIOError) as info:
            check.finish(reader)
    assert info.value.path == str(intact) and info.value.message == "file changed size while being read"
    assert info.value.hint == "another program is writing this file; retry when it is done"


# --- damage -------------------------------------------------------------------------------------------


def test_damaged_data_is_a_damage_with_zlibs_values(intact: Path, tmp_path: Path) -> None:
    raw = _flip_data(intact.read_bytes())
    stored, computed = _footer(raw)
    assert stored != computed
    path = _write(tmp_path, raw)
    with open_file(path, verify_checksum=False) as reader, FooterCheck(path) as check:
        check.feed_tensor(reader, "c")
        damage = check.finish(reader)
    assert damage == Damage(path=str(path), footer_stored=stored, footer_computed=computed, tensors=3)
    assert damage.to_dict() == {
        "path": str(path), "footer_stored": _hex(stored), "footer_computed": _hex(computed),
        "header_stored": None, "header_computed": None, "tensors_carried_over": 3,
        "carried_over": f"all 3 tensors were carried over as read, damage included (footer CRC stored "
                        f"{_hex(stored)}, computed {_hex(computed)}); APR v2 keeps one CRC for the whole file, "
                        "so which bytes differ cannot be told",
    }


def test_without_a_reader_the_damage_counts_the_tensors_fed(intact: Path, tmp_path: Path) -> None:
    raw = _flip_data(intact.read_bytes())
    path = _write(tmp_path, raw)
    with open_file(path, verify_checksum=False) as reader, FooterCheck(path) as check:
        check.feed_tensor(reader, "a.weight")
        check.feed_tensor(reader, "b.bias")
        damage = check.finish()
    assert damage is not None and damage.tensors == 2
    assert (damage.footer_stored, damage.footer_computed) == _footer(raw)


def test_a_damaged_header_crc_alone_is_a_damage(intact: Path, tmp_path: Path) -> None:
    raw = _flip_header_keep_footer(intact.read_bytes())
    header_stored, header_computed = _header_crcs(raw)
    footer, _ = _footer(raw)
    assert header_stored != header_computed and _footer(raw)[0] == _footer(raw)[1]
    path = _write(tmp_path, raw)
    with FooterCheck(path) as check:
        assert check.finish() is None  # the footer alone sees nothing
    with open_file(path, verify_checksum=False) as reader, FooterCheck(path) as check:
        damage = check.finish(reader)
    assert damage == Damage(path=str(path), footer_stored=footer, footer_computed=footer,
                            header_stored=header_stored, header_computed=header_computed, tensors=3)
    as_json = damage.to_dict()
    assert (as_json["header_stored"], as_json["header_computed"]) == (_hex(header_stored), _hex(header_computed))
    assert as_json["footer_stored"] == as_json["footer_computed"] == _hex(footer)
    assert damage.summary == f"header CRC stored {_hex(header_stored)}, computed {_hex(header_computed)}"


def test_header_and_footer_both_damaged(intact: Path, tmp_path: Path) -> None:
    raw = bytearray(intact.read_bytes())
    raw[HEADER_CRC_AT + 1] ^= 0x80
    raw = bytes(raw)
    header_stored, header_computed = _header_crcs(raw)
    stored, computed = _footer(raw)
    path = _write(tmp_path, raw)
    with open_file(path, verify_checksum=False) as reader, FooterCheck(path) as check:
        damage = check.finish(reader)
    assert damage == Damage(path=str(path), footer_stored=stored, footer_computed=computed,
                            header_stored=header_stored, header_computed=header_computed, tensors=3)


# --- refusing or salvaging ----------------------------------------------------------------------------


def test_refuse_damage_without_allow_damaged_is_exit_5_naming_both_crcs(tmp_path: Path) -> None:
    damage = Damage(path=str(tmp_path / "m.apr"), footer_stored=0x0000ABCD, footer_computed=0x12345678, tensors=4)
    with pytest.raises(DamagedInputError) as info:
        refuse_damage(damage, allow_damaged=False, command="apr export")
    err = info.value
    assert err.exit_code == 5 and err.code == "damaged-input" and err.path == damage.path
    assert err.message == ("the input is damaged: footer CRC stored 0x0000abcd, computed 0x12345678; "
                           "apr export wrote nothing")
    assert err.hint == (f"see `apr validate {damage.path}`; restore the file from its source, or pass "
                        "--allow-damaged to carry its bytes over as they are (the report then says so)")


def test_refuse_damage_passes_no_damage_and_a_salvage(tmp_path: Path) -> None:
    damage = Damage(path="m.apr", footer_stored=1, footer_computed=2)
    assert refuse_damage(None, allow_damaged=False, command="apr stamp") is None
    assert refuse_damage(None, allow_damaged=True, command="apr stamp") is None
    assert refuse_damage(damage, allow_damaged=True, command="apr stamp") is damage
