"""The writer's streaming paths: the background-thread footer CRC must not change a byte."""

from __future__ import annotations

import io
import zlib

import pytest

import apr.format.writer as writer
from apr.format import save
from tests.format.apr_samples import SAMPLE_METADATA, sample_file, sample_tensors


def test_threaded_and_sequential_crc_give_identical_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    sequential = sample_file()
    monkeypatch.setattr(writer, "_THREADED_CRC_MIN_BYTES", 0)
    threaded = save(sample_tensors(), SAMPLE_METADATA)
    assert threaded == sequential
    assert int.from_bytes(threaded[-4:], "little") == zlib.crc32(threaded[:-4])


def test_a_failing_write_stops_the_crc_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer, "_THREADED_CRC_MIN_BYTES", 0)

    class Broken(io.BytesIO):
        def write(self, data) -> int:  # type: ignore[override]
            if self.tell() > 100:
                raise OSError(28, "No space left on device")
            return super().write(data)

    planned = writer.plan_tensors(sample_tensors())
    _header, prefix = writer.build_prefix(planned, SAMPLE_METADATA, 0)
    with pytest.raises(OSError):
        writer.write_stream(Broken(), planned, prefix)
