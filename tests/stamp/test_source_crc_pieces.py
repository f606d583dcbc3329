"""`apr stamp -o` checks its input's CRC in pieces read into one reused buffer, with zlib-ng's
CRC where installed (`apr.format.crc.bulk_crc32`): the same values as zlib, whatever the piece
size, so a damaged byte in any piece is refused and an intact file in many pieces is accepted."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apr.errors import DamagedInputError
from apr.format.crc import BULK_BYTES, bulk_crc32
from apr.stamp import ProvenancePatch, stamp_file
from apr.stamp import rewrite
from stamp_builders import write_checkpoint

PATCH = ProvenancePatch(license="MIT", name="pieces")


@given(data=st.binary(max_size=4096), start=st.integers(0, 0xFFFFFFFF))
def test_bulk_crc_equals_zlib(data: bytes, start: int) -> None:
    assert bulk_crc32(BULK_BYTES)(data, start) & 0xFFFFFFFF == zlib.crc32(data, start)


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("preadv", [True, False])
@pytest.mark.parametrize("bulk", [0, BULK_BYTES])  # 0: zlib-ng even for this small file
def test_every_piece_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, preadv: bool,
                                bulk: int) -> None:
    monkeypatch.setattr(rewrite, "CHUNK_SIZE", chunk)
    monkeypatch.setattr("apr.format.crc.BULK_BYTES", bulk)
    if not preadv:  # the pread fallback of platforms without preadv
        monkeypatch.delattr("os.preadv")
    src = write_checkpoint(tmp_path / "in.apr", metadata={"architecture": "LlamaForCausalLM"}, flags=0x0001)
    assert stamp_file(src, PATCH, output=str(tmp_path / "ok.apr")).damaged is None
    raw = bytearray(Path(src).read_bytes())
    for index in (-5, len(raw) // 2):  # the last data byte, and one in the middle
        damaged = bytearray(raw)
        damaged[index] ^= 0x01
        bad = tmp_path / f"bad{index}.apr"
        bad.write_bytes(bytes(damaged))
        with pytest.raises(DamagedInputError):
            stamp_file(str(bad), PATCH, output=str(tmp_path / f"out{index}.apr"))
        assert not (tmp_path / f"out{index}.apr").exists()
