"""The reader's page release and a packed tensor's flat scan (issue 23: mutation score of
apr/format/reader.py, eighth pass).

``_FileSource.release`` is advice to the kernel (``MADV_DONTNEED``): nothing read through the map
changes, so its effect is stated through the call it makes, recorded by a stand-in for the map: the
advice, the page-aligned start and the length clipped to the file.
"""

from __future__ import annotations

import mmap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import apr.format.reader as reader
from apr.format.quant import quantize_q8
from apr.format.reader import open_bytes, open_file
from apr.format.writer import save

needs_madvise = pytest.mark.skipif(not hasattr(mmap, "MADV_DONTNEED"), reason="no MADV_DONTNEED here")


class _RecordingMap:
    """Stands in for the source's mmap: records each ``madvise`` call, optionally failing."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.error = error

    def madvise(self, *args: Any) -> None:
        self.calls.append(args)
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        pass


@pytest.fixture
def source(tmp_path: Path) -> reader._FileSource:
    path = tmp_path / "f"
    path.write_bytes(bytes(3 * mmap.PAGESIZE + 100))
    opened = reader._FileSource(str(path))
    yield opened
    opened.close()


@pytest.fixture
def recording(source: reader._FileSource) -> _RecordingMap:
    """The source's map replaced by a recorder."""
    recorder = _RecordingMap()
    source._map = recorder
    return recorder


@needs_madvise
def test_release_advises_dontneed_from_the_page_start_to_the_range_end(source, recording) -> None:
    page = mmap.PAGESIZE
    source.release(page + 10, 2 * page + 5)
    source.release(0, 7)
    assert recording.calls == [(mmap.MADV_DONTNEED, page, page + 5), (mmap.MADV_DONTNEED, 0, 7)]


@needs_madvise
def test_release_clips_the_range_at_the_end_of_the_file(source, recording) -> None:
    page = mmap.PAGESIZE
    source.release(3 * page + 1, 10 * page)
    assert recording.calls == [(mmap.MADV_DONTNEED, 3 * page, 100)]


@needs_madvise
@pytest.mark.parametrize(("start", "stop"), [(50, 50), (60, 50)])
def test_an_empty_range_is_not_advised(source, recording, start: int, stop: int) -> None:
    source.release(start, stop)
    assert recording.calls == []


def test_nothing_is_advised_before_the_map_exists(source) -> None:
    source.release(0, 100)  # no map yet: nothing to release, and none is created
    assert source._map is None


def test_a_platform_without_dontneed_is_not_advised(source, recording, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(mmap, "MADV_DONTNEED", raising=False)
    source.release(0, 100)
    assert recording.calls == []


@needs_madvise
@pytest.mark.parametrize("error", [OSError(22, "Invalid argument"), ValueError("madvise start out of bounds")])
def test_a_refused_advice_is_ignored(source, error: BaseException) -> None:
    recording = _RecordingMap(error)
    source._map = recording
    source.release(0, 100)  # advice only: the pages simply stay
    assert len(recording.calls) == 1


@needs_madvise
def test_released_pages_read_back_the_same_bytes(tmp_path: Path) -> None:
    weights = {"a": np.arange(5000, dtype=np.float32), "b": np.linspace(-1, 1, 3000, dtype=np.float32)}
    path = tmp_path / "m.apr"
    path.write_bytes(save(weights))
    with open_file(path) as r:
        before = np.array(r.get_tensor("a"))
        r.release("a")
        assert np.array_equal(r.get_tensor("a"), before)
        assert np.array_equal(r.get_tensor("b"), weights["b"])


def test_a_packed_tensor_is_scanned_as_one_flat_piece() -> None:
    values = np.linspace(-2.0, 2.0, 2 * 64, dtype=np.float32).reshape(2, 64)
    q = quantize_q8(values)
    r = open_bytes(save({"q": q, "f": np.ones(3, np.float32)}))
    pieces = list(r.iter_float32("q", chunk=16))  # blocks do not split: the chunk is not honoured
    assert len(pieces) == 1
    (piece,) = pieces
    assert piece.shape == (128,) and piece.dtype == np.float32
    assert np.array_equal(piece, q.dequantize().reshape(-1))


def test_a_reader_releases_the_byte_range_of_the_named_tensor(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(save({"a": np.arange(100, dtype=np.float32), "b": np.ones(50, np.float32)}))
    with open_file(path) as r:
        asked: list[tuple[int, int]] = []
        monkeypatch.setattr(r._source, "release", lambda start, stop: asked.append((start, stop)))
        r.release("b")
        start, stop = r.absolute_range(r.entry("b"))
        assert asked == [(start, stop)] and stop - start == 50 * 4


def test_an_in_memory_reader_has_no_pages_to_release() -> None:
    r = open_bytes(save({"a": np.arange(4, dtype=np.float32)}))
    assert not hasattr(r._source, "release")
    r.release("a")  # a no-op, not an error
    assert r.get_tensor("a").tolist() == [0.0, 1.0, 2.0, 3.0]
