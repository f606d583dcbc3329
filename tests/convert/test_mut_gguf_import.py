"""Exact values for apr/convert/gguf_import.py (issue 23): the metadata a GGUF import writes, the
names it reads each key by, the report, and every refusal. A wrong key, default or count here is a
mislabelled .apr file, so each test states the value derived from its input (the source GGUF is
written with the ``gguf`` package's own writer, an independent oracle of what the file holds).
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

import gguf
import numpy as np
import pytest

from apr.convert import gguf_import as gi
from apr.convert.gguf_fields import FIX
from apr.convert.targets import ImportQuant
from apr.errors import AprFileNotFoundError, ConvertError
from apr.format import DType, open_file
from apr.format.header import Flags
from tests.convert.gguf_rt_inputs import TOKENS, write_source

EPS32 = float(np.float32(1e-6))  # what a GGUF FLOAT32 key holding 1e-6 reads back as
MINE = int(Flags.HAS_VOCAB | Flags.QUANTIZED)  # the flag bits an import decides (the writer adds LAYOUT_ROW_MAJOR)


def test_kept_types_are_ggml_ids_of_the_bytes_apr_stores_unchanged():
    # ggml's own numbering (gguf.GGMLQuantizationType), not ours
    Q = gguf.GGMLQuantizationType
    assert gi._KEPT == {int(Q.F32): DType.F32, int(Q.F16): DType.F16, int(Q.Q4_K): DType.Q4_K,
                        int(Q.Q6_K): DType.Q6_K, int(Q.BF16): DType.BF16}


# --- read_gguf_fields -------------------------------------------------------------------------------

class _Field:
    def __init__(self, value=None, error=None):
        self.value, self.error = value, error

    def contents(self):
        if self.error is not None:
            raise self.error
        return self.value


def test_read_gguf_fields_leaves_out_pseudo_fields_only():
    reader = SimpleNamespace(fields={"GGUF.version": _Field(3), "GGUF.kv_count": _Field(2), "general.name": _Field("m"),
                                     "xGGUF.a": _Field(1), "gguf.b": _Field(2), "llama.block_count": _Field(4)})
    assert gi.read_gguf_fields(reader) == {"general.name": "m", "xGGUF.a": 1, "gguf.b": 2, "llama.block_count": 4}


def test_read_gguf_fields_names_a_non_utf8_key():
    bad = UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
    reader = SimpleNamespace(fields={"general.name": _Field(error=bad)})
    with pytest.raises(ConvertError) as info:
        gi.read_gguf_fields(reader, "d/m.gguf")
    err = info.value
    assert (err.field, err.path, err.hint) == ("general.name", "d/m.gguf", FIX)
    assert err.message.startswith("GGUF metadata key 'general.name' holds text that is not UTF-8: ")
    assert err.__cause__ is bad


def test_read_gguf_fields_names_any_other_malformed_value():
    reader = SimpleNamespace(fields={"a.b": _Field(1), "llama.x": _Field(error=ValueError("boom"))})
    with pytest.raises(ConvertError) as info:
        gi.read_gguf_fields(reader, "m.gguf")
    assert info.value.field == "llama.x"
    assert info.value.message == "GGUF metadata key 'llama.x' holds a malformed value: boom"


def test_read_gguf_fields_of_a_real_file_are_the_written_values(tmp_path):
    path = write_source(tmp_path / "s.gguf", extra={"general.name": "Tiny"})
    fields = gi.read_gguf_fields(gguf.GGUFReader(os.fspath(path)))
    assert not any(k.startswith("GGUF.") for k in fields)
    assert fields["general.architecture"] == "llama" and fields["general.name"] == "Tiny"
    assert fields["tokenizer.ggml.tokens"] == TOKENS and fields["llama.attention.head_count_kv"] == 1


# --- metadata_from_gguf_fields ----------------------------------------------------------------------

def _fields(arch="llama", **values):
    return {f"{arch}.{k.replace('__', '.')}": v for k, v in values.items()}


def test_metadata_from_complete_fields_is_exact():
    fields = {**_fields(block_count=2, embedding_length=64, attention__head_count=4, attention__head_count_kv=2,
                        feed_forward_length=128, context_length=256, rope__freq_base=500000.0,
                        attention__layer_norm_rms_epsilon=1e-5, attention__key_length=8, vocab_size=99),
              "tokenizer.ggml.tokens": ["a", "b"], "general.name": "Tiny 1B", "general.license": "mit"}
    assert gi.metadata_from_gguf_fields(fields, "llama") == {
        "model_type": "llama", "architecture": "llama", "hf_architecture": "LlamaForCausalLM",
        "hf_model_type": "llama", "hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
        "intermediate_size": 128, "max_position_embeddings": 256, "rope_theta": 500000.0, "rope_type": 0,
        "rms_norm_eps": 1e-5, "original_format": "gguf", "head_dim": 8, "vocab_size": 99,
        "description": "imported from GGUF model 'Tiny 1B'", "license": "MIT",
    }


def test_metadata_defaults_stand_in_only_for_absent_keys():
    fields = {**_fields("qwen2", embedding_length=64, attention__head_count=4), "tokenizer.ggml.tokens": ["a", "b", "c"]}
    meta = gi.metadata_from_gguf_fields(fields, "qwen2")
    assert meta == {
        "model_type": "qwen2", "architecture": "qwen2", "hf_architecture": "Qwen2ForCausalLM", "hf_model_type": "qwen2",
        "hidden_size": 64, "num_heads": 4, "num_kv_heads": 4, "rope_theta": 10000.0, "rope_type": 2,
        "rms_norm_eps": 1e-6, "original_format": "gguf", "head_dim": 16, "vocab_size": 3,
    }
    assert type(meta["rope_theta"]) is float and type(meta["rms_norm_eps"]) is float


def test_metadata_keeps_zeros_and_integer_floats_as_given():
    fields = _fields(embedding_length=0, attention__head_count=0, attention__head_count_kv=0, block_count=0,
                     rope__freq_base=0, attention__layer_norm_rms_epsilon=0, vocab_size=0, attention__key_length=0)
    meta = gi.metadata_from_gguf_fields(fields, "llama")
    assert (meta["hidden_size"], meta["num_heads"], meta["num_kv_heads"], meta["num_layers"]) == (0, 0, 0, 0)
    assert (meta["head_dim"], meta["vocab_size"]) == (0, 0)
    assert meta["rope_theta"] == 0.0 and type(meta["rope_theta"]) is float
    assert meta["rms_norm_eps"] == 0.0 and type(meta["rms_norm_eps"]) is float


@pytest.mark.parametrize(("hidden", "heads", "head_dim"), [
    (64, 4, 16), (64, 1, 64), (64, 64, 1), (63, 4, None), (64, 0, None), (64, None, None), (None, 4, None),
    ("64", 4, None), (64, "4", None), (65, 5, 13),
])
def test_head_dim_is_derived_only_from_an_exact_integer_split(hidden, heads, head_dim):
    values = {k: v for k, v in (("embedding_length", hidden), ("attention__head_count", heads)) if v is not None}
    meta = gi.metadata_from_gguf_fields(_fields(**values), "llama")
    assert meta.get("head_dim") == head_dim and ("head_dim" in meta) == (head_dim is not None)


def test_an_explicit_key_length_wins_over_the_split():
    meta = gi.metadata_from_gguf_fields(_fields(embedding_length=64, attention__head_count=4, attention__key_length=32),
                                        "llama")
    assert meta["head_dim"] == 32


@pytest.mark.parametrize(("tokens", "vocab"), [(None, None), ([], None), (["a"], 1), (["a", "b", "c", "d"], 4)])
def test_vocab_size_falls_back_to_the_token_count(tokens, vocab):
    fields = {} if tokens is None else {"tokenizer.ggml.tokens": tokens}
    meta = gi.metadata_from_gguf_fields(fields, "llama")
    assert meta.get("vocab_size") == vocab and ("vocab_size" in meta) == (vocab is not None)
    assert gi.metadata_from_gguf_fields({**fields, "llama.vocab_size": 7}, "llama")["vocab_size"] == 7


def test_metadata_reads_only_its_own_architectures_keys():
    fields = _fields("qwen2", block_count=3, embedding_length=64)
    meta = gi.metadata_from_gguf_fields(fields, "llama")
    assert "num_layers" not in meta and "hidden_size" not in meta


@pytest.mark.parametrize(("name", "description"), [
    ("Tiny", "imported from GGUF model 'Tiny'"), ("", "imported from GGUF model ''"), (3, None), (None, None),
])
def test_description_names_the_source_model_only_for_a_string(name, description):
    meta = gi.metadata_from_gguf_fields({} if name is None else {"general.name": name}, "llama")
    assert meta.get("description") == description


def test_metadata_leaves_out_a_license_that_is_not_an_expression():
    assert "license" not in gi.metadata_from_gguf_fields({"general.license": "see LICENSE"}, "llama")
    assert gi.metadata_from_gguf_fields({"general.license": "apache-2.0"}, "llama")["license"] == "Apache-2.0"


def test_the_private_alias_is_the_public_function():
    assert gi._metadata_from_fields is gi.metadata_from_gguf_fields


# --- license_from_gguf ------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("apache-2.0", "Apache-2.0"), ("MIT", "MIT"), ("mit OR apache-2.0", "MIT OR Apache-2.0"),
    ("", None), ("   ", None), (3, None), (None, None), (["MIT"], None),
])
def test_license_from_gguf(value, expected):
    assert gi.license_from_gguf(value) == expected


def test_a_license_that_is_not_spdx_is_logged_and_dropped(caplog):
    with caplog.at_level(logging.WARNING, logger="apr.convert.gguf_import"):
        assert gi.license_from_gguf("see LICENSE") is None
    assert [r.getMessage() for r in caplog.records] == [
        "general.license 'see LICENSE' is not an SPDX expression: kept in source_metadata only"]


# --- _gguf_key_for ----------------------------------------------------------------------------------

def test_each_metadata_key_is_spelled_as_the_gguf_file_spells_it():
    keys = ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "intermediate_size", "max_position_embeddings",
            "head_dim", "vocab_size", "rope_theta", "rms_norm_eps")
    every = _fields("qwen3", block_count=1, embedding_length=1, attention__head_count=1, attention__head_count_kv=1,
                    feed_forward_length=1, context_length=1, attention__key_length=1, vocab_size=1,
                    rope__freq_base=1.0, attention__layer_norm_rms_epsilon=1.0)
    spell = gi._gguf_key_for(every, "qwen3")
    assert [spell(k) for k in keys] == [
        "qwen3.block_count", "qwen3.embedding_length", "qwen3.attention.head_count", "qwen3.attention.head_count_kv",
        "qwen3.feed_forward_length", "qwen3.context_length", "qwen3.attention.key_length", "qwen3.vocab_size",
        "qwen3.rope.freq_base", "qwen3.attention.layer_norm_rms_epsilon"]
    assert spell("tied_embeddings") == "tied_embeddings"


def test_a_key_filled_by_a_default_says_which_default():
    spell = gi._gguf_key_for({}, "llama")
    assert spell("num_kv_heads") == "num_kv_heads (no llama.attention.head_count_kv: attention.head_count)"
    assert spell("head_dim") == ("head_dim (no llama.attention.key_length: "
                                 "embedding_length / attention.head_count)")
    assert spell("vocab_size") == "vocab_size (no llama.vocab_size: the number of tokenizer.ggml.tokens)"
    # a key without a default is named as the file would spell it, present or not
    assert spell("num_layers") == "llama.block_count"
    assert spell("rope_theta") == "llama.rope.freq_base"


# --- _dequantized_record ----------------------------------------------------------------------------

def test_dequantized_record_is_none_when_nothing_was_dequantized():
    assert gi._dequantized_record({"types": {}, "source_bytes": 0, "stored_bytes": 0, "stored_as": set()}) is None


def test_dequantized_record_sums_and_sorts():
    tally = {"types": {"Q8_0": 3, "Q4_0": 2, "Q5_1": 1}, "source_bytes": 10, "stored_bytes": 40,
             "stored_as": {"F32", "APR_Q8"}}
    record = gi._dequantized_record(tally)
    assert record == {"tensors": 6, "types": {"Q4_0": 2, "Q5_1": 1, "Q8_0": 3}, "stored_as": "APR_Q8/F32",
                      "source_bytes": 10, "stored_bytes": 40}
    assert list(record["types"]) == ["Q4_0", "Q5_1", "Q8_0"]
    assert list(record) == ["tensors", "types", "stored_as", "source_bytes", "stored_bytes"]


def test_all_names_the_public_functions():
    assert gi.__all__ == ["import_gguf", "metadata_from_gguf_fields", "open_gguf", "read_gguf_fields"]


# --- import_gguf end to end ---------------------------------------------------------------------------

def _llama_shapes(tied=True, hidden=32):
    from tests.convert.tiny_hf import shapes

    return shapes("llama", vocab=len(TOKENS), hidden=hidden, layers=1, heads=2, kv_heads=1, inter=2 * hidden,
                  head_dim=hidden // 2, tied=tied)


def test_import_writes_the_exact_metadata_flags_and_report(tmp_path):
    source = write_source(tmp_path / "s.gguf", extra={"general.name": "Tiny", "general.license": "mit"})
    shapes = _llama_shapes()  # the source's tensors (tied: no output.weight)
    params = sum(int(np.prod(s)) for s in shapes.values())
    stored = 4 * (params + shapes["model.embed_tokens.weight"][0] * shapes["model.embed_tokens.weight"][1])
    calls = []
    report = gi.import_gguf(source, tmp_path / "tiny.apr", progress=lambda done, total: calls.append((done, total)))
    assert report.to_dict() == {
        "path": os.fspath(tmp_path / "tiny.apr"), "source_format": "gguf", "tensor_count": len(shapes) + 1,
        "file_size": os.path.getsize(tmp_path / "tiny.apr"), "param_count": params, "architecture": "llama",
        "hf_architecture": "LlamaForCausalLM", "has_vocab": True, "quantize": None, "tied_embeddings": True,
        "fallbacks": [], "dequantized": None, "fallback_summary": []}
    # progress: once per tensor, in bytes, ending at the total
    assert len(calls) == len(shapes) + 1 and calls[-1] == (stored, stored)
    assert all(total == stored for _, total in calls) and [d for d, _ in calls] == sorted({d for d, _ in calls})
    with open_file(tmp_path / "tiny.apr") as reader:
        meta = dict(reader.metadata)
        assert int(reader.flags) == int(Flags.LAYOUT_ROW_MAJOR | Flags.HAS_VOCAB)
        assert sorted(reader.keys()) == sorted([*shapes, "lm_head.weight"])
        assert all(reader.entry(n).dtype is DType.F32 for n in reader.keys())
    expected = {
        "model_type": "llama", "architecture": "llama", "hf_architecture": "LlamaForCausalLM", "hf_model_type": "llama",
        "hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1, "intermediate_size": 64,
        "max_position_embeddings": 64, "rope_theta": 10000.0, "rope_type": 0, "rms_norm_eps": EPS32,
        "original_format": "gguf", "head_dim": 16, "vocab_size": len(TOKENS),
        "description": "imported from GGUF model 'Tiny'", "license": "MIT", "name": "tiny", "param_count": params,
        "total_size": stored, "tied_embeddings": True,
        "source_metadata": {"general.architecture": "llama", "llama.rope.freq_base": 10000.0,
                            "llama.rope.dimension_count": 16, "general.name": "Tiny", "general.license": "mit",
                            "apr.import_name": "tiny"},
    }
    assert {k: meta.get(k) for k in expected} == expected
    assert "quantization" not in meta
    assert meta["tokenizer.vocabulary"] == TOKENS and meta["tokenizer.pre_type"] == "smollm"
    assert (meta["tokenizer.bos_token_id"], meta["tokenizer.eos_token_id"]) == (1, 2)
    assert meta["special_tokens"]["bos_token"] == "<s>" and meta["special_tokens"]["eos_token"] == "</s>"


def test_unk_and_pad_from_the_gguf_ids_join_the_special_tokens(tmp_path):
    source = write_source(tmp_path / "s.gguf", extra={"tokenizer.ggml.unknown_token_id": 0,
                                                      "tokenizer.ggml.padding_token_id": 3})
    gi.import_gguf(source, tmp_path / "m.apr")
    with open_file(tmp_path / "m.apr") as reader:
        specials = reader.metadata["special_tokens"]
    assert (specials["unk_token"], specials["pad_token"], specials["bos_token"]) == ("<unk>", "<pad>", "<s>")


def test_a_quantizing_import_records_it_and_sets_the_quantized_flag(tmp_path):
    source = write_source(tmp_path / "s.gguf", hidden=256, inter=512)
    report = gi.import_gguf(source, tmp_path / "q.apr", quantize=ImportQuant.Q8)
    assert report.quantize == ImportQuant.Q8.value
    with open_file(tmp_path / "q.apr") as reader:
        assert reader.metadata["quantization"] == ImportQuant.Q8.quantization_record
        assert int(reader.flags) & MINE == int(Flags.HAS_VOCAB | Flags.QUANTIZED)
        assert reader.entry("model.layers.0.mlp.up_proj.weight").dtype is DType.APR_Q8


def test_a_kept_k_quant_sets_the_quantized_flag_without_a_quantization_record(tmp_path):
    source = _write_gguf(tmp_path / "s.gguf", hidden=256, k_quant=True)
    gi.import_gguf(source, tmp_path / "k.apr")
    with open_file(tmp_path / "k.apr") as reader:
        assert int(reader.flags) & MINE == int(Flags.HAS_VOCAB | Flags.QUANTIZED)
        assert "quantization" not in reader.metadata
        assert reader.entry("model.layers.0.mlp.up_proj.weight").dtype is DType.Q6_K
        assert reader.entry("model.norm.weight").dtype is DType.F32


def _write_gguf(path, arch="llama", *, tokens=True, extra_tensors=(), tied=True, hidden=32, k_quant=False,
                head_count=True):
    """A tiny GGUF with only the keys given here (no tokenizer when ``tokens`` is False; 2-D tensors
    in Q6_K, quantized by the project's ggml-exact quantizer, when ``k_quant``)."""
    from apr.convert.names import hf_to_gguf
    from apr.convert.quant_k import quantize_q6_k

    writer = gguf.GGUFWriter(os.fspath(path), arch)
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(2 * hidden)
    if head_count:
        writer.add_head_count(2)
    writer.add_head_count_kv(1)
    if tokens:
        writer.add_tokenizer_model("gpt2")
        writer.add_token_list(TOKENS)
        writer.add_token_merges(["a b"])
    rng = np.random.default_rng(0)
    for name, shape in _llama_shapes(tied, hidden).items():
        values = rng.standard_normal(shape).astype(np.float32)
        if k_quant and len(shape) == 2:
            writer.add_tensor(hf_to_gguf(name), quantize_q6_k(values), raw_dtype=gguf.GGMLQuantizationType.Q6_K)
        else:
            writer.add_tensor(hf_to_gguf(name), values)
    for name in extra_tensors:
        writer.add_tensor(name, np.zeros(4, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_an_untied_source_keeps_its_own_head(tmp_path):
    report = gi.import_gguf(_write_gguf(tmp_path / "s.gguf", tied=False), tmp_path / "m.apr")
    shapes = _llama_shapes(tied=False)
    assert report.tied_embeddings is False and report.tensor_count == len(shapes)
    assert report.param_count == sum(int(np.prod(s)) for s in shapes.values())
    with open_file(tmp_path / "m.apr") as reader:
        assert "tied_embeddings" not in reader.metadata
        assert reader.metadata["total_size"] == 4 * report.param_count


def test_a_source_without_tokens_imports_without_a_vocabulary_flag_or_keys(tmp_path, caplog):
    source = _write_gguf(tmp_path / "s.gguf", tokens=False)
    with caplog.at_level(logging.WARNING, logger="apr.convert.gguf_import"):
        report = gi.import_gguf(source, tmp_path / "m.apr")
    assert report.has_vocab is False
    assert f"{source} has no tokenizer.ggml.tokens: the .apr will have no embedded tokenizer" in caplog.messages
    with open_file(tmp_path / "m.apr") as reader:
        assert int(reader.flags) == int(Flags.LAYOUT_ROW_MAJOR)  # the writer's own bit, nothing else
        assert not any(k.startswith("tokenizer.") for k in reader.metadata)
        assert "vocab_size" not in reader.metadata


@pytest.mark.parametrize("arch", ["gemma", "phi3", "mistral", "falcon"])
def test_an_architecture_apr_does_not_import_is_refused_before_writing(tmp_path, arch):
    source = _write_gguf(tmp_path / "s.gguf", arch=arch)
    with pytest.raises(ConvertError) as info:
        gi.import_gguf(source, tmp_path / "m.apr")
    err = info.value
    assert err.message == f"GGUF architecture {arch!r} is not one apr imports (llama, qwen2, qwen3)"
    assert (err.field, err.path) == ("general.architecture", os.fspath(source))
    assert err.hint == "only llama, qwen2 and qwen3 GGUF files can be imported"
    assert sorted(os.listdir(tmp_path)) == ["s.gguf"]


@pytest.mark.parametrize("count", [1, 10, 11])
def test_unmappable_tensors_are_counted_and_the_first_ten_named_exactly(tmp_path, count):
    extra = [f"zz.{i:02d}.weight" for i in range(count)]
    source = _write_gguf(tmp_path / "s.gguf", extra_tensors=extra)
    with pytest.raises(ConvertError) as info:
        gi.import_gguf(source, tmp_path / "m.apr")
    err = info.value
    assert err.message == f"{count} GGUF tensor(s) cannot be mapped:\n    " + "\n    ".join(
        f"GGUF tensor {name!r} has no Hugging Face name in a llama/qwen2/qwen3 model" for name in extra[:10])
    assert err.path == os.fspath(source)
    assert sorted(os.listdir(tmp_path)) == ["s.gguf"]


def test_a_missing_source_is_named(tmp_path):
    with pytest.raises(AprFileNotFoundError) as info:
        gi.import_gguf(tmp_path / "none.gguf", tmp_path / "m.apr")
    err = info.value
    assert (err.message, err.path, err.hint) == ("GGUF file not found", os.fspath(tmp_path / "none.gguf"),
                                                 "check the path")


def test_a_dangling_symlink_is_refused_by_the_open_not_reported_missing_by_the_check(tmp_path):
    (tmp_path / "link.gguf").symlink_to(tmp_path / "gone.gguf")
    with pytest.raises(AprFileNotFoundError) as info:
        gi.import_gguf(tmp_path / "link.gguf", tmp_path / "m.apr")
    assert info.value.message == "link.gguf does not exist"  # open_regular's message, past the lexists check


def test_a_tokenizer_error_names_the_source_file(tmp_path):
    source = write_source(tmp_path / "s.gguf", extra={"tokenizer.ggml.bos_token_id": 99})
    with pytest.raises(Exception) as info:
        gi.import_gguf(source, tmp_path / "m.apr")
    assert getattr(info.value, "path", None) == os.fspath(source)
    assert sorted(os.listdir(tmp_path)) == ["s.gguf"]


def test_a_dimension_error_names_the_file_and_spells_the_gguf_key(tmp_path):
    source = write_source(tmp_path / "s.gguf", extra={"llama.block_count": 3})
    with pytest.raises(ConvertError) as info:
        gi.import_gguf(source, tmp_path / "m.apr")
    assert info.value.field == "llama.block_count" and info.value.hint == FIX
    assert info.value.message.startswith("the GGUF metadata of s.gguf does not describe the tensors beside it")
    assert "llama.block_count = 3, but the tensors hold 1 layer" in info.value.message
    assert os.fspath(source) == info.value.path


def test_open_gguf_returns_the_reader_fields_and_architecture(tmp_path):
    source = write_source(tmp_path / "s.gguf", extra={"general.name": "T"})
    with open(source, "rb") as handle:
        reader, fields, arch = gi.open_gguf(handle, source)
    assert arch == "llama" and fields["general.name"] == "T"
    assert [t.name for t in reader.tensors] == [t.name for t in gguf.GGUFReader(os.fspath(source)).tensors]


def test_open_gguf_refuses_what_the_reader_cannot_parse_naming_file_and_fix(tmp_path):
    """A tensor of ggml type 99: every count fits the file (the bounds walk passes it), but
    ``GGUFReader`` cannot parse it; its bare ValueError becomes the project's error."""
    writer = gguf.GGUFWriter(os.fspath(tmp_path / "ok.gguf"), "llama")
    writer.add_tensor("output_norm.weight", np.zeros(4, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    data = bytearray((tmp_path / "ok.gguf").read_bytes())
    end = data.find(b"output_norm.weight") + len(b"output_norm.weight")
    type_at = end + 4 + 8 * int.from_bytes(data[end:end + 4], "little")  # after n_dims and the dims
    data[type_at:type_at + 4] = (99).to_bytes(4, "little")
    path = tmp_path / "bad.gguf"
    path.write_bytes(bytes(data))
    with open(path, "rb") as handle, pytest.raises(ConvertError) as info:
        gi.open_gguf(handle, path)
    err = info.value
    assert err.message.startswith("not a readable GGUF file: ") and "99" in err.message
    assert (err.path, err.hint) == (os.fspath(path), FIX)
    assert isinstance(err.__cause__, ValueError)


def test_an_existing_output_is_replaced_only_with_force(tmp_path):
    from apr.errors import OutputExistsError

    source = write_source(tmp_path / "s.gguf")
    (tmp_path / "m.apr").write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        gi.import_gguf(source, tmp_path / "m.apr")
    assert (tmp_path / "m.apr").read_bytes() == b"keep"
    gi.import_gguf(source, tmp_path / "m.apr", force=True)
    with open_file(tmp_path / "m.apr") as reader:
        assert reader.metadata["architecture"] == "llama"


def test_a_q4_k_import_reports_each_row_that_falls_back(tmp_path):
    """hidden 32, intermediate 64: no row is a multiple of 256, so every 2-D tensor is stored F16 and
    each is named in the report (the embedding once: the tied head is not a tensor of the source)."""
    source = write_source(tmp_path / "s.gguf")
    report = gi.import_gguf(source, tmp_path / "m.apr", quantize=ImportQuant.Q4_K)
    two_d = {n: s for n, s in _llama_shapes().items() if len(s) == 2}
    assert sorted(report.fallbacks) == sorted(
        f"{n}: rows of {s[-1]} values are not a multiple of 256: stored F16, not Q4_K" for n, s in two_d.items())
    assert report.quantize == "q4_k"


# --- tensor payloads: llama's q/k rows unpermuted, kept bytes, dequantized values -------------------------

def _unpermute(rows: np.ndarray, heads: int) -> np.ndarray:
    """Inverse of llama.cpp's convert_hf_to_gguf permute (rows only), written out here independently:
    GGUF holds each head's rows as (half, pair) interleaved; HF as (pair, half)."""
    n = rows.shape[0]
    return rows.reshape(heads, n // heads // 2, 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def _gguf_arrays(path) -> dict:
    return {t.name: np.asarray(t.data) for t in gguf.GGUFReader(os.fspath(path)).tensors}


def test_llama_q_and_k_rows_are_unpermuted_and_nothing_else_is(tmp_path):
    source = write_source(tmp_path / "s.gguf")
    raw = _gguf_arrays(source)
    gi.import_gguf(source, tmp_path / "m.apr")
    with open_file(tmp_path / "m.apr") as reader:
        def got(name):
            return np.asarray(reader.get_tensor(name))

        assert np.array_equal(got("model.layers.0.self_attn.q_proj.weight"), _unpermute(raw["blk.0.attn_q.weight"], 2))
        assert np.array_equal(got("model.layers.0.self_attn.k_proj.weight"), _unpermute(raw["blk.0.attn_k.weight"], 1))
        assert np.array_equal(got("model.layers.0.self_attn.v_proj.weight"), raw["blk.0.attn_v.weight"])
        assert np.array_equal(got("model.layers.0.mlp.down_proj.weight"), raw["blk.0.ffn_down.weight"])
        assert np.array_equal(got("model.norm.weight"), raw["output_norm.weight"])
        assert np.array_equal(got("lm_head.weight"), raw["token_embd.weight"])


def test_kept_k_quant_bytes_are_unpermuted_by_row(tmp_path):
    source = _write_gguf(tmp_path / "s.gguf", hidden=256, k_quant=True)
    raw = _gguf_arrays(source)  # uint8 rows of Q6_K blocks
    gi.import_gguf(source, tmp_path / "m.apr")
    with open_file(tmp_path / "m.apr") as reader:
        def data(name):
            return np.asarray(reader.get_tensor(name).data).reshape(reader.entry(name).shape[0], -1)

        assert np.array_equal(data("model.layers.0.self_attn.q_proj.weight"), _unpermute(raw["blk.0.attn_q.weight"], 2))
        assert np.array_equal(data("model.layers.0.self_attn.k_proj.weight"), _unpermute(raw["blk.0.attn_k.weight"], 1))
        assert np.array_equal(data("model.layers.0.self_attn.v_proj.weight"), raw["blk.0.attn_v.weight"])
        assert np.array_equal(data("model.layers.0.mlp.up_proj.weight"), raw["blk.0.ffn_up.weight"])
        assert reader.entry("model.layers.0.mlp.up_proj.weight").shape == (512, 256)


def test_dequantized_values_have_the_tensor_shape_and_are_unpermuted(tmp_path):
    """Rows of 64 values (two Q8_0 blocks each): the decoded blocks are reshaped to the tensor's
    rows before the q/k unpermutation (with rows of one block the two shapes would coincide)."""
    from gguf.quants import dequantize

    source = write_source(tmp_path / "s.gguf", ggml_type="Q8_0", hidden=64, inter=128)
    raw = _gguf_arrays(source)
    Q8 = gguf.GGMLQuantizationType.Q8_0
    report = gi.import_gguf(source, tmp_path / "m.apr", quantize=ImportQuant.F16)
    with open_file(tmp_path / "m.apr") as reader:
        q = np.asarray(reader.get_tensor("model.layers.0.self_attn.q_proj.weight"))
        up = np.asarray(reader.get_tensor("model.layers.0.mlp.up_proj.weight"))
        assert q.dtype == np.float16 and up.dtype == np.float16
        assert np.array_equal(q, _unpermute(dequantize(raw["blk.0.attn_q.weight"], Q8), 2).astype(np.float16))
        assert np.array_equal(up, dequantize(raw["blk.0.ffn_up.weight"], Q8).astype(np.float16))
        norm = np.asarray(reader.get_tensor("model.norm.weight"))  # an F32 source tensor: converted to the target
        assert np.array_equal(norm, raw["output_norm.weight"].astype(np.float16)) and norm.dtype == np.float16
    two_d = sum(len(shape) == 2 for shape in _llama_shapes(hidden=64).values())
    assert report.dequantized["stored_as"] == "F16" and report.dequantized["types"] == {"Q8_0": two_d}


@pytest.mark.parametrize("quantize", [ImportQuant.Q8, ImportQuant.F16, ImportQuant.Q4_K])
def test_kept_k_quants_ignore_the_quantize_target(tmp_path, quantize):
    """A Q6_K tensor keeps its bytes whatever --quantize says (only what must be converted is)."""
    source = _write_gguf(tmp_path / "s.gguf", hidden=256, k_quant=True)
    raw = _gguf_arrays(source)
    report = gi.import_gguf(source, tmp_path / "m.apr", quantize=quantize)
    with open_file(tmp_path / "m.apr") as reader:
        entry = reader.entry("model.layers.0.mlp.up_proj.weight")
        assert entry.dtype is DType.Q6_K
        assert np.array_equal(np.asarray(reader.get_tensor("model.layers.0.mlp.up_proj.weight").data).reshape(512, -1),
                              raw["blk.0.ffn_up.weight"])
    assert report.fallbacks == ()


def test_more_tokens_than_embedding_rows_is_refused_naming_the_file(tmp_path):
    source = write_source(tmp_path / "s.gguf", extra={"tokenizer.ggml.tokens": [*TOKENS, "x", "y"]},
                          types=[1] * (len(TOKENS) + 2))
    with pytest.raises(ConvertError) as info:
        gi.import_gguf(source, tmp_path / "m.apr")
    err = info.value
    assert err.message.startswith(f"the tokenizer from s.gguf has {len(TOKENS) + 2} tokens but the embedding has "
                                  f"{len(TOKENS)} rows")
    assert (err.path, err.hint, err.field) == (os.fspath(source), FIX, "vocab_size")
    assert sorted(os.listdir(tmp_path)) == ["s.gguf"]


def test_llama_q_k_rows_without_a_head_count_are_refused_naming_the_tensor(tmp_path):
    """No attention.head_count (only head_count_kv): the q rows cannot be unpermuted; refused with the
    project's error, nothing written."""
    source = _write_gguf(tmp_path / "s.gguf", head_count=False)
    with pytest.raises(ConvertError) as info:
        gi.import_gguf(source, tmp_path / "m.apr")
    err = info.value
    assert err.message.endswith(": llama q/k rows cannot be unpermuted without both head counts")
    assert err.message.split(":")[0] in ("model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight")
    assert (err.path, err.field, err.hint) == (os.fspath(source), "attention.head_count", FIX)
    assert sorted(os.listdir(tmp_path)) == ["s.gguf"]


def test_a_one_dimensional_k_quant_keeps_its_bytes(tmp_path):
    """A vector stored as Q6_K (256 values: one 210-byte block): its bytes are one row, kept as they are."""
    from apr.convert.quant_k import quantize_q6_k

    source = _write_gguf(tmp_path / "s.gguf", hidden=256, k_quant=True)
    reader = gguf.GGUFReader(os.fspath(source))
    norm = np.asarray(next(t for t in reader.tensors if t.name == "output_norm.weight").data)
    block = quantize_q6_k(norm.reshape(1, 256)).reshape(-1)  # 210 bytes
    path = tmp_path / "v.gguf"
    writer = gguf.GGUFWriter(os.fspath(path), "llama")
    for key, field in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        writer.add_key_value(key, field.contents(), field.types[0], sub_type=field.types[-1] if len(field.types) > 1 else None)
    for tensor in reader.tensors:
        if tensor.name == "output_norm.weight":
            writer.add_tensor(tensor.name, block, raw_dtype=gguf.GGMLQuantizationType.Q6_K)
        else:
            writer.add_tensor(tensor.name, np.asarray(tensor.data), raw_dtype=tensor.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    gi.import_gguf(path, tmp_path / "m.apr")
    with open_file(tmp_path / "m.apr") as apr:
        assert apr.entry("model.norm.weight").dtype is DType.Q6_K and apr.entry("model.norm.weight").shape == (256,)
        assert np.array_equal(np.asarray(apr.get_tensor("model.norm.weight").data).reshape(-1), block)


def test_the_written_file_is_verified_for_every_tensor_before_it_replaces_anything(tmp_path, monkeypatch):
    source = write_source(tmp_path / "s.gguf")
    real = gi._verify_written
    counts, checked = [], []

    def spy(count):
        counts.append(count)
        inner = real(count)

        def verify(path):
            checked.append(path)
            inner(path)
        return verify

    monkeypatch.setattr(gi, "_verify_written", spy)
    report = gi.import_gguf(source, tmp_path / "m.apr")
    assert counts == [report.tensor_count] == [len(_llama_shapes()) + 1]
    assert len(checked) == 1 and os.fspath(checked[0]) != os.fspath(tmp_path / "m.apr")
    monkeypatch.setattr(gi, "_verify_written", lambda count: real(count + 1))  # a file one tensor short
    with pytest.raises(ConvertError, match=f"wrote {report.tensor_count} tensors, expected {report.tensor_count + 1}"):
        gi.import_gguf(source, tmp_path / "n.apr")
    assert not (tmp_path / "n.apr").exists()
