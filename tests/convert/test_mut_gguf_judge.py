"""What `export_gguf` reports (issue 23, the fifth pass's unjudged survivors of
apr/convert/gguf_export.py): the report's path, format, tensor count, size and fallbacks (the JSON
`apr export --json` prints), a Q8_0 fallback's block size, and the exact refusal texts of a short
write and a damaged input. Oracles: the file on disk (its size, the ``gguf`` package's reader),
llama.cpp's block sizes (32 values for Q8_0) and the source checkpoint's own tensor list."""

from __future__ import annotations

import os

import gguf
import pytest

from apr.convert import gguf_export as ge
from apr.convert.gguf_export import GgufQuant
from apr.errors import DamagedInputError
from tests.convert.test_mut_gguf_export import _base, _damaged_copy, _nothing_written


def _source_names(path):
    from apr.format import open_file

    with open_file(path) as reader:
        return list(reader.keys())


@pytest.mark.parametrize("quant", [GgufQuant.F32, GgufQuant.F16])
def test_the_report_names_the_file_its_format_count_and_size(tmp_path, quant):
    """Float exports store every 2-D tensor as asked: no fallback line; only F16 has an error to record."""
    source, _, meta = _base(tmp_path)
    target = tmp_path / "o.gguf"
    report = ge.export_gguf(source, target, quantize=quant)
    expected = [n for n in _source_names(source) if not (meta.get("tied_embeddings") and n == "lm_head.weight")]
    written = gguf.GGUFReader(os.fspath(target)).tensors
    assert (report.path, report.format, report.quantize) == (os.fspath(target), "gguf", quant.value)
    assert report.tensor_count == len(expected) == len(written)
    assert report.file_size == target.stat().st_size
    assert report.fallbacks == () and report.damaged is None
    assert set(report.quant_error) == ({"F16"} if quant is GgufQuant.F16 else set())
    assert report.to_dict()["fallback_summary"] == []


def test_a_q8_0_fallback_names_its_32_value_blocks(tmp_path):
    """Rows of 48 values (the output projection of 2 heads of 24) do not split into Q8_0's 32-value
    blocks: llama.cpp stores them F16, and the report says so with the row length and block size."""
    from apr.convert.hf_import import import_hf
    from tests.convert.tiny_hf import build_hf_folder

    folder = build_hf_folder(tmp_path / "hf", "qwen2", hidden=32, layers=1, heads=2, kv_heads=1, inter=64,
                             head_dim=24)
    import_hf(folder, tmp_path / "m.apr")
    report = ge.export_gguf(tmp_path / "m.apr", tmp_path / "o.gguf", quantize=GgufQuant.Q8_0)
    assert report.fallbacks == ("model.layers.0.self_attn.o_proj.weight: rows of 48 values do not split "
                                "into 32-value Q8_0 blocks: stored F16",)
    kinds = {t.name: t.tensor_type.name for t in gguf.GGUFReader(os.fspath(tmp_path / "o.gguf")).tensors}
    assert kinds["blk.0.attn_output.weight"] == "F16" and kinds["blk.0.attn_q.weight"] == "Q8_0"


def test_a_short_write_says_how_many_bytes_reached_the_disk(tmp_path, monkeypatch):
    """The disk-full refusal's message names the bytes on disk and the bytes planned; the planned
    size is that of the same export written whole (the export is deterministic)."""
    source, _, _ = _base(tmp_path)
    ge.export_gguf(source, tmp_path / "whole.gguf")
    planned = (tmp_path / "whole.gguf").stat().st_size
    (tmp_path / "whole.gguf").unlink()
    real = os.path.getsize

    def short(path):  # the writer's temporary (.o.gguf.tmp-...) reads one byte short
        return real(path) - os.path.basename(os.fspath(path)).startswith(".o.gguf")

    monkeypatch.setattr(ge.os.path, "getsize", short)
    with pytest.raises(ge.AprIOError) as info:
        ge.export_gguf(source, tmp_path / "o.gguf")
    assert info.value.message == (f"cannot write: only {planned - 1} of {planned} bytes reached the disk (ENOSPC); "
                                  "the existing file (if any) is unchanged")
    monkeypatch.undo()
    assert _nothing_written(tmp_path, "m.apr")


def test_a_damaged_input_refusal_names_the_export_command(tmp_path):
    damaged = _damaged_copy(tmp_path, "tensor")
    with pytest.raises(DamagedInputError) as info:
        ge.export_gguf(damaged, tmp_path / "o.gguf")
    assert info.value.message.startswith("the input is damaged: ")
    assert info.value.message.endswith("; apr export wrote nothing")
    assert info.value.path == os.fspath(damaged)


def test_an_os_error_about_another_file_keeps_its_file_and_nothing_is_written(tmp_path, monkeypatch):
    """An OSError that names neither the output nor its temporary (here: the source, read mid-export)
    is not reported as a failed write of the output: it leaves as it was raised, naming its own file
    (apr.cli.guard turns it into the documented error), and the temporary is removed. Before, the
    export rewrapped it as "cannot write" naming the output."""
    import errno

    source, _, _ = _base(tmp_path)
    failure = OSError(errno.EIO, "Input/output error", os.fspath(source))

    def failing(*args):
        raise failure

    monkeypatch.setattr(ge, "_tensor_payload", failing)
    with pytest.raises(OSError) as info:
        ge.export_gguf(source, tmp_path / "o.gguf")
    assert info.value is failure and not isinstance(info.value, ge.AprIOError)
    assert _nothing_written(tmp_path, "m.apr")


def test_the_guard_names_the_file_an_unwrapped_os_error_names(tmp_path):
    from apr.cli.guard import as_documented_error

    documented = as_documented_error(OSError(5, "Input/output error", os.fspath(tmp_path / "m.apr")))
    assert isinstance(documented, ge.AprIOError) and documented.path == os.fspath(tmp_path / "m.apr")


def test_the_report_keeps_the_worst_error_of_each_stored_type(tmp_path, monkeypatch):
    """quant_error[kind] is the largest relative RMSE of any tensor stored as kind, not the last one's:
    the per-tensor errors are recorded as the encoder returns them."""
    source, _, _ = _base(tmp_path)
    real = ge._tensor_payload
    seen: list[tuple[str, float]] = []

    def recording(*args):
        array, kind, err = real(*args)
        if err is not None:
            seen.append((kind, err))
        return array, kind, err

    monkeypatch.setattr(ge, "_tensor_payload", recording)
    report = ge.export_gguf(source, tmp_path / "o.gguf", quantize=GgufQuant.Q4_K)
    worst = {kind: max(e for k, e in seen if k == kind) for kind, _ in seen}
    assert report.quant_error == worst
    last = {kind: err for kind, err in seen}
    assert last != worst  # the fixture tells the worst from the last: a report of the last would differ


def test_an_export_onto_its_own_input_is_refused_even_with_force(tmp_path):
    from apr.errors import OutputIsInputError

    source, _, _ = _base(tmp_path)
    before = source.read_bytes()
    with pytest.raises(OutputIsInputError) as info:
        ge.export_gguf(source, source, force=True)
    assert info.value.path == os.fspath(source)
    assert source.read_bytes() == before and _nothing_written(tmp_path, "m.apr")


def test_with_a_tokenizer_the_carried_rope_keys_of_its_architecture_are_written(tmp_path):
    """The same rule as without a tokenizer (test_mut_gguf_export): a carried `{arch}.rope.*` key of
    the exported architecture (qwen2) is written with its type, another architecture's is not."""
    from tests.convert.test_mut_gguf_export import _typed_kv

    source, _, meta = _base(tmp_path, source_metadata={"qwen2.rope.scaling.type": "yarn",
                                                       "qwen2.rope.scaling.factor": 4.0,
                                                       "llama.rope.scaling.type": "linear"})
    assert any(k.startswith("tokenizer.") for k in meta)
    ge.export_gguf(source, tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    assert kv["qwen2.rope.scaling.type"] == ("yarn", ("STRING",))
    assert kv["qwen2.rope.scaling.factor"] == (4.0, ("FLOAT32",))
    assert "llama.rope.scaling.type" not in kv
