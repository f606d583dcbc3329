"""Contract apr-gguf-roundtrip-v1: what an import reads from a GGUF file, an export writes back
(issue 15, part 5); dequantization and fallbacks reported once. Checked with the gguf package."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apr.cli.main import main
from apr.format import open_file
from tests.convert.gguf_rt_inputs import TOKENS, gguf_kv, round_trip_keys, write_source

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
_optional = {
    "general.name": _text,
    "general.organization": _text,
    "general.basename": _text,
    "general.size_label": st.sampled_from(["135M", "1.7B"]),
    "general.license": st.sampled_from(["apache-2.0", "MIT", "see LICENSE", "llama3"]),
    "general.languages": st.lists(st.sampled_from(["en", "fr", "de"]), min_size=1, max_size=3),
    "llama.rope.scaling.type": st.sampled_from(["linear", "yarn"]),
    "llama.rope.scaling.factor": st.sampled_from([2.0, 4.0, 8.0]),
    "llama.rope.scaling.original_context_length": st.integers(1, 1 << 20),
    "tokenizer.ggml.add_bos_token": st.booleans(),
    "tokenizer.ggml.add_space_prefix": st.booleans(),
    "tokenizer.ggml.unknown_token_id": st.just(0),
    "tokenizer.ggml.padding_token_id": st.sampled_from([3, 2]),
    "tokenizer.chat_template": _text,
}


@st.composite
def _sources(draw):
    keys = draw(st.lists(st.sampled_from(sorted(_optional)), unique=True))
    extra = {k: draw(_optional[k]) for k in keys}
    # 0 <unk> may be unknown (2), 1/2 are control (3), 3 <pad> control or unused (5), 7 a byte (6)
    types = [draw(st.sampled_from([1, 2])), 3, 3, draw(st.sampled_from([3, 5])), 1, 1, 1, draw(st.sampled_from([1, 6]))]
    return extra, types, draw(st.sampled_from(["f32", "q8_0"]))


@pytest.mark.falsifies("FALSIFY-GGUF-RT-001")
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_sources())
def test_tokenizer_general_and_rope_keys_come_back(tmp_path_factory, case):
    extra, types, quant = case
    folder = tmp_path_factory.mktemp("rt")
    source = write_source(folder / "src.gguf", extra=extra, types=types)
    assert main(["import", os.fspath(source), "-o", os.fspath(folder / "m.apr")]) == 0
    assert main(["export", os.fspath(folder / "m.apr"), "-o", os.fspath(folder / "out.gguf"),
                 "--quantize", quant]) == 0
    before, after = round_trip_keys(gguf_kv(source)), round_trip_keys(gguf_kv(folder / "out.gguf"))
    assert {key: after.get(key) for key in before} == before
    # what the export adds to a source that lacked it: a name, the quantization version, add_bos false
    assert set(after) - set(before) <= {"general.name", "general.quantization_version", "tokenizer.ggml.add_bos_token"}


@pytest.mark.falsifies("FALSIFY-GGUF-RT-001")
def test_exact_round_trip_of_a_smollm2_like_header(tmp_path):
    extra = {"general.name": "Smollm2 135M", "general.organization": "HuggingFaceTB", "general.license": "apache-2.0",
             "general.languages": ["en"], "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.padding_token_id": 2,
             "tokenizer.ggml.add_bos_token": False, "llama.rope.scaling.type": "linear"}
    source = write_source(tmp_path / "src.gguf", extra=extra, types=[2, 3, 3, 5, 1, 1, 1, 6])
    assert main(["import", os.fspath(source), "-o", os.fspath(tmp_path / "m.apr")]) == 0
    with open_file(tmp_path / "m.apr") as reader:
        assert reader.metadata["license"] == "Apache-2.0"
        assert reader.metadata["special_tokens"]["unk_token"] == "<unk>"
        assert reader.metadata["special_tokens"]["pad_token"] == "</s>"
        assert reader.metadata["source_metadata"]["tokenizer.ggml.token_type"] == {"2": [0], "5": [3], "6": [7]}
    assert main(["export", os.fspath(tmp_path / "m.apr"), "-o", os.fspath(tmp_path / "out.gguf")]) == 0
    kv = gguf_kv(tmp_path / "out.gguf")
    assert kv["general.name"] == "Smollm2 135M"
    assert kv["general.license"] == "apache-2.0"
    assert kv["general.organization"] == "HuggingFaceTB"
    assert kv["general.languages"] == ["en"]
    assert kv["tokenizer.ggml.pre"] == "smollm"
    assert kv["tokenizer.ggml.token_type"] == [2, 3, 3, 5, 1, 1, 1, 6]
    assert (kv["tokenizer.ggml.unknown_token_id"], kv["tokenizer.ggml.padding_token_id"]) == (0, 2)
    assert kv["llama.rope.scaling.type"] == "linear"
    assert kv["general.file_type"] == 0


@pytest.mark.falsifies("FALSIFY-GGUF-RT-001")
def test_a_name_stamped_after_import_wins_over_the_sources(tmp_path):
    source = write_source(tmp_path / "src.gguf", extra={"general.name": "Smollm2 135M"}, types=[2, 3, 3, 5, 1, 1, 1, 6])
    assert main(["import", os.fspath(source), "-o", os.fspath(tmp_path / "m.apr")]) == 0
    with open_file(tmp_path / "m.apr") as reader:
        assert reader.metadata["name"] == "m"
        assert reader.metadata["source_metadata"]["apr.import_name"] == "m"
    assert main(["export", os.fspath(tmp_path / "m.apr"), "-o", os.fspath(tmp_path / "kept.gguf")]) == 0
    assert gguf_kv(tmp_path / "kept.gguf")["general.name"] == "Smollm2 135M"
    assert main(["stamp", os.fspath(tmp_path / "m.apr"), "--name", "albor-370m-v1",
                 "-o", os.fspath(tmp_path / "s.apr")]) == 0
    assert main(["export", os.fspath(tmp_path / "s.apr"), "-o", os.fspath(tmp_path / "renamed.gguf")]) == 0
    assert gguf_kv(tmp_path / "renamed.gguf")["general.name"] == "albor-370m-v1"


def _export_with_specials(tmp_path, specials):
    from tests.reliability import cli_targets as ct

    tensors, metadata, flags = ct._base_model()
    ct.write_with_raw_metadata(tmp_path / "m.apr", tensors, {**metadata, "special_tokens": specials}, flags)
    assert main(["export", os.fspath(tmp_path / "m.apr"), "-o", os.fspath(tmp_path / "out.gguf")]) == 0
    with open_file(tmp_path / "m.apr") as reader:
        vocabulary = reader.metadata["tokenizer.vocabulary"]
    return gguf_kv(tmp_path / "out.gguf"), vocabulary


@pytest.mark.falsifies("FALSIFY-GGUF-RT-002")
def test_unk_and_pad_ids_are_the_tokenizers(tmp_path):
    from tests.reliability import cli_targets as ct

    vocabulary = ct._base_model()[1]["tokenizer.vocabulary"]
    unk, pad = vocabulary[5], vocabulary[-1]
    kv, _ = _export_with_specials(tmp_path, {"unk_token": unk, "pad_token": pad})
    assert kv["tokenizer.ggml.unknown_token_id"] == vocabulary.index(unk)
    assert kv["tokenizer.ggml.padding_token_id"] == vocabulary.index(pad)


@pytest.mark.falsifies("FALSIFY-GGUF-RT-002")
@pytest.mark.parametrize("specials", [{}, {"unk_token": None, "pad_token": None},
                                      {"unk_token": "\u2603 not a token", "pad_token": "<nope>"}])
def test_no_unk_or_pad_id_is_invented(tmp_path, specials):
    kv, vocabulary = _export_with_specials(tmp_path, specials)
    assert all(t not in vocabulary for t in specials.values() if t)
    assert "tokenizer.ggml.unknown_token_id" not in kv
    assert "tokenizer.ggml.padding_token_id" not in kv


@pytest.mark.falsifies("FALSIFY-GGUF-RT-003")
@pytest.mark.parametrize("ggml_type", ["Q8_0", "Q4_0"])
def test_a_dequantizing_import_says_what_and_how_much(tmp_path, capsys, ggml_type):
    import gguf

    source = write_source(tmp_path / "src.gguf", ggml_type=ggml_type)
    quantized = [t for t in gguf.GGUFReader(os.fspath(source)).tensors if t.tensor_type.name == ggml_type]
    assert main(["import", os.fspath(source), "-o", os.fspath(tmp_path / "m.apr"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dequantized"] == {
        "tensors": len(quantized), "types": {ggml_type: len(quantized)}, "stored_as": "F32",
        "source_bytes": sum(int(t.n_bytes) for t in quantized),
        "stored_bytes": sum(4 * int(t.n_elements) for t in quantized)}
    assert main(["import", os.fspath(source), "-o", os.fspath(tmp_path / "n.apr")]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if "dequantized" in line]
    assert len(notes) == 1
    assert f"dequantized {len(quantized)} tensors ({ggml_type} x{len(quantized)}) to F32" in notes[0]


@pytest.mark.falsifies("FALSIFY-GGUF-RT-003")
def test_raw_capable_types_stay_raw_and_nothing_is_reported(tmp_path, capsys):
    import gguf
    import numpy as np

    source = write_source(tmp_path / "src.gguf", ggml_type="F16")
    assert main(["import", os.fspath(source), "-o", os.fspath(tmp_path / "m.apr"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["dequantized"] is None
    gguf_reader = gguf.GGUFReader(os.fspath(source))
    embed = next(t for t in gguf_reader.tensors if t.name == "token_embd.weight")
    with open_file(tmp_path / "m.apr") as reader:
        assert reader.entry("model.embed_tokens.weight").dtype.name == "F16"
        assert np.array_equal(np.asarray(reader.get_tensor("model.embed_tokens.weight")).view(np.uint16).ravel(),
                              np.asarray(embed.data).view(np.uint16).ravel())


@pytest.mark.falsifies("FALSIFY-GGUF-RT-004")
@pytest.mark.parametrize("quant", ["q4_k", "q6_k"])
def test_a_quantized_export_notes_each_reason_once(tmp_path, capsys, quant):
    source = write_source(tmp_path / "src.gguf")  # rows of 32 and 64 values: no 256-value blocks
    assert main(["import", os.fspath(source), "-o", os.fspath(tmp_path / "m.apr")]) == 0
    capsys.readouterr()
    assert main(["export", os.fspath(tmp_path / "m.apr"), "-o", os.fspath(tmp_path / "a.gguf"), "--quantize", quant]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert main(["export", os.fspath(tmp_path / "m.apr"), "-o", os.fspath(tmp_path / "b.gguf"), "--quantize", quant,
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    summary = report["fallback_summary"]
    assert len(report["fallbacks"]) > len(summary) >= 1
    assert sum(group["count"] for group in summary) == len(report["fallbacks"])
    assert len(notes) == len(summary)
    for group, line in zip(summary, notes, strict=True):
        noun = "tensor" if group["count"] == 1 else "tensors"
        assert line == f"note: {group['count']} {noun} fell back ({group['reason']}), e.g. {group['tensors'][0]}"


@pytest.mark.falsifies("FALSIFY-GGUF-RT-004")
@given(st.lists(st.tuples(st.from_regex(r"[a-z.0-9]{1,12}", fullmatch=True), st.sampled_from(["r1", "r2: x", "r3"])),
                max_size=20))
def test_grouping_counts_every_note_once_per_reason(pairs):
    from apr.convert.fallbacks import group_fallbacks

    groups = group_fallbacks([f"{name}: {reason}" for name, reason in pairs])
    assert [g.reason for g in groups] == list(dict.fromkeys(reason for _, reason in pairs))
    for group in groups:
        assert list(group.tensors) == [name for name, reason in pairs if reason == group.reason]


def test_tokens_fixture_has_the_ids_the_tests_name():
    assert TOKENS[0] == "<unk>" and TOKENS[2] == "</s>" and TOKENS[7] == "\u0100"
