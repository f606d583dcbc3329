"""The GGUF export's second lane (`apr.convert.gguf_export._SideLane`): CRCs and writes beside conversion.

The export checks each tensor's CRC and writes each payload on one side thread while the next
tensor is converted. What must not change: every tensor is written once, in order, and released
only after its write; progress counts finished writes; a failure anywhere (a write, a CRC read, a
conversion) stops the export with its error, writes nothing more and leaves no file behind (an
existing output unchanged). Examples with exact expected events, no timing.
"""

from __future__ import annotations

import errno
from pathlib import Path

import gguf
import numpy as np
import pytest

from apr.convert import gguf_export
from apr.convert.gguf_export import GgufQuant, export_gguf
from apr.errors import AprIOError, ConvertError
from apr.format import open_file
from apr.format.footer_check import FooterCheck
from apr.format.reader import AprReader
from tests.convert.tiny_hf import build_hf_folder


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from apr.convert.hf_import import import_hf

    base = tmp_path_factory.mktemp("lane")
    hf = build_hf_folder(base / "hf", "llama", hidden=256, layers=2, heads=4, kv_heads=2, inter=512)
    path = base / "model.apr"
    import_hf(hf, path)
    return path


def _exported_names(model: Path) -> list[str]:
    with open_file(model) as reader:
        tied = reader.metadata.get("tie_word_embeddings") is True
        return [n for n in reader.keys() if not (tied and n == "lm_head.weight")]


def _record(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """Patch the writer and the reader to log ('write', shape) / ('release', name) in order."""
    events: list[tuple[str, object]] = []
    real_write = gguf.GGUFWriter.write_tensor_data
    real_release = AprReader.release

    def write(self, tensor, *args, **kwargs):
        events.append(("write", tuple(np.asarray(tensor).shape)))
        return real_write(self, tensor, *args, **kwargs)

    def release(self, name):
        events.append(("release", name))
        return real_release(self, name)

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", write)
    monkeypatch.setattr(AprReader, "release", release)
    return events


@pytest.mark.parametrize("quant", ["f32", "f16", "q8_0"])
def test_each_tensor_is_written_once_in_order_then_released(model, tmp_path, monkeypatch, quant):
    names = _exported_names(model)
    events = _record(monkeypatch)
    progress: list[tuple[int, int]] = []
    export_gguf(model, tmp_path / "m.gguf", quantize=GgufQuant(quant), progress=lambda d, t: progress.append((d, t)))
    writes = [e for e in events if e[0] == "write"]
    releases = [e[1] for e in events if e[0] == "release"]
    assert len(writes) == len(names)
    assert releases == names
    for index, name in enumerate(names):  # tensor i is released after its write, before write i+2
        position = events.index(("release", name))
        assert sum(1 for e in events[:position] if e[0] == "write") in (index + 1, index + 2)
    assert progress == [(i, len(names)) for i in range(1, len(names) + 1)]
    with open_file(model) as reader:  # the payload shapes in declaration order: the file's own order
        shapes = [tuple(reader.entry(n).shape) for n in names]
    read = gguf.GGUFReader(tmp_path / "m.gguf")
    assert [tuple(int(v) for v in reversed(t.shape)) for t in read.tensors] == shapes


@pytest.mark.parametrize("failing_call", [1, 3])
def test_a_failed_write_stops_the_export_and_leaves_no_file(model, tmp_path, monkeypatch, failing_call):
    out = tmp_path / "m.gguf"
    out.write_bytes(b"the user's earlier export")
    calls = []
    real_write = gguf.GGUFWriter.write_tensor_data

    def write(self, tensor, *args, **kwargs):
        calls.append(1)
        if len(calls) == failing_call:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, tensor, *args, **kwargs)

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", write)
    with pytest.raises(AprIOError) as caught:
        export_gguf(model, out, quantize=GgufQuant.F16, force=True)
    assert caught.value.exit_code == 7
    assert str(out) in str(caught.value)
    assert len(calls) <= failing_call + 1  # at most the tensor already converted goes after it
    assert out.read_bytes() == b"the user's earlier export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.gguf"]


def test_a_failed_crc_read_stops_the_export_naming_the_input(model, tmp_path, monkeypatch):
    out = tmp_path / "m.gguf"
    fed = []
    real_feed = FooterCheck.feed_tensor

    def feed(self, reader, name):
        fed.append(name)
        if len(fed) == 2:
            raise OSError(errno.EIO, "Input/output error")
        return real_feed(self, reader, name)

    monkeypatch.setattr(FooterCheck, "feed_tensor", feed)
    with pytest.raises(AprIOError) as caught:
        export_gguf(model, out, quantize=GgufQuant.F16)
    assert caught.value.exit_code == 7  # the input is named, not the output it was being copied to
    assert str(caught.value).startswith(f"{model}: cannot read: input/output error (EIO); nothing was written")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_conversion_writes_nothing_after_it(model, tmp_path, monkeypatch):
    names = _exported_names(model)
    out = tmp_path / "m.gguf"
    events = _record(monkeypatch)
    real_payload = gguf_export._tensor_payload

    def payload(reader, name, *args):
        if name == names[3]:
            raise ConvertError(f"tensor {name!r} refused (test)", field=name)
        return real_payload(reader, name, *args)

    monkeypatch.setattr(gguf_export, "_tensor_payload", payload)
    with pytest.raises(ConvertError, match="refused \\(test\\)"):
        export_gguf(model, out, quantize=GgufQuant.Q8_0)
    assert sum(1 for e in events if e[0] == "write") <= 3
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_input_is_still_refused(model, tmp_path):
    """The CRCs now run on the lane: a flipped payload byte must still refuse the export."""
    from apr.errors import DamagedInputError

    damaged = tmp_path / "damaged.apr"
    raw = bytearray(model.read_bytes())
    with open_file(model) as reader:
        start, _ = reader.absolute_range(reader.entry(_exported_names(model)[-1]))
    raw[start] ^= 0x01
    damaged.write_bytes(bytes(raw))
    with pytest.raises(DamagedInputError):
        export_gguf(damaged, tmp_path / "m.gguf", quantize=GgufQuant.F16)
    assert not (tmp_path / "m.gguf").exists()
