"""Exact values for apr/convert/gguf_export.py (issue 23): the ``--quantize`` spellings, the ggml type
each tensor is stored as (llama.cpp's fallbacks at the exact row-length boundaries), the
``general.file_type`` codes, the architecture refusals, and every KV pair an export writes, read
back key by key with its GGUF type by the ``gguf`` package's own reader (an independent oracle).
"""

from __future__ import annotations

import errno
import os
from types import SimpleNamespace

import gguf
import numpy as np
import pytest

from apr.convert import gguf_export as ge
from apr.convert.gguf_export import GgufQuant
from apr.errors import ConvertError, UnsupportedArchitectureError, UsageError
from tests.convert.test_gguf_export_lane import _record as record_writes_and_releases

VT = gguf.GGUFValueType


# --- parse_gguf_quant / GgufQuant / _FILE_TYPE --------------------------------------------------------

def test_quant_values_are_the_cli_spellings():
    assert [q.value for q in GgufQuant] == ["f32", "f16", "q8_0", "q4_k", "q6_k"]


@pytest.mark.parametrize(("text", "quant"), [
    (None, GgufQuant.F32), ("f32", GgufQuant.F32), ("F32", GgufQuant.F32), ("fp32", GgufQuant.F32),
    ("FP32", GgufQuant.F32), ("f16", GgufQuant.F16), ("fp16", GgufQuant.F16), ("Fp16", GgufQuant.F16),
    ("q8_0", GgufQuant.Q8_0), ("q8", GgufQuant.Q8_0), ("Q8", GgufQuant.Q8_0), ("Q8_0", GgufQuant.Q8_0),
    ("q4_k", GgufQuant.Q4_K), ("q4k", GgufQuant.Q4_K), ("Q4K", GgufQuant.Q4_K), ("Q4_K", GgufQuant.Q4_K),
    ("q6_k", GgufQuant.Q6_K), ("q6k", GgufQuant.Q6_K), ("Q6K", GgufQuant.Q6_K),
])
def test_parse_gguf_quant_accepts_each_spelling(text, quant):
    assert ge.parse_gguf_quant(text) is quant


@pytest.mark.parametrize("text", ["q4", "q4_0", "bf16", "", "q8_1", "f64", "q6"])
def test_parse_gguf_quant_refuses_the_rest_naming_the_flag(text):
    with pytest.raises(UsageError) as info:
        ge.parse_gguf_quant(text)
    err = info.value
    assert err.message == f"--quantize {text!r} is not one of f32, f16, q8_0, q4_k, q6_k for GGUF export"
    assert err.field == "--quantize"
    assert err.hint == "e.g. apr export model.apr --format gguf --quantize q4_k -o m.gguf"
    assert err.__cause__ is None and err.__suppress_context__


def test_file_type_codes_are_llama_cpps():
    # llama.cpp's LlamaFileType, as the gguf package numbers it; every 2-D tensor is Q4_K (no Q6_K
    # mix as in Q4_K_M), so the file is labelled Q4_K_S
    F = gguf.LlamaFileType
    assert ge._FILE_TYPE == {GgufQuant.F32: int(F.ALL_F32), GgufQuant.F16: int(F.MOSTLY_F16),
                             GgufQuant.Q8_0: int(F.MOSTLY_Q8_0), GgufQuant.Q4_K: int(F.MOSTLY_Q4_K_S),
                             GgufQuant.Q6_K: int(F.MOSTLY_Q6_K)}


# --- storage_type -------------------------------------------------------------------------------------

@pytest.mark.parametrize("quant", list(GgufQuant))
@pytest.mark.parametrize("shape", [(), (256,), (512,), (7,)])
def test_vectors_are_always_f32(quant, shape):
    assert ge.storage_type(quant, shape) == "F32"


@pytest.mark.parametrize(("quant", "row", "kind"), [
    (GgufQuant.F32, 256, "F32"), (GgufQuant.F32, 7, "F32"),
    (GgufQuant.F16, 256, "F16"), (GgufQuant.F16, 7, "F16"),
    (GgufQuant.Q8_0, 32, "Q8_0"), (GgufQuant.Q8_0, 64, "Q8_0"), (GgufQuant.Q8_0, 31, "F16"), (GgufQuant.Q8_0, 33, "F16"),
    (GgufQuant.Q8_0, 16, "F16"),
    (GgufQuant.Q4_K, 256, "Q4_K"), (GgufQuant.Q4_K, 512, "Q4_K"), (GgufQuant.Q4_K, 255, "F16"),
    (GgufQuant.Q4_K, 257, "F16"), (GgufQuant.Q4_K, 224, "Q5_0"), (GgufQuant.Q4_K, 288, "Q5_0"),
    (GgufQuant.Q4_K, 32, "Q5_0"), (GgufQuant.Q4_K, 31, "F16"), (GgufQuant.Q4_K, 128, "Q5_0"),
    (GgufQuant.Q6_K, 256, "Q6_K"), (GgufQuant.Q6_K, 768, "Q6_K"), (GgufQuant.Q6_K, 255, "F16"),
    (GgufQuant.Q6_K, 224, "Q8_0"), (GgufQuant.Q6_K, 32, "Q8_0"), (GgufQuant.Q6_K, 33, "F16"),
    (GgufQuant.Q6_K, 128, "Q8_0"), (GgufQuant.Q6_K, 16, "F16"),
])
def test_storage_type_at_the_block_boundaries(quant, row, kind):
    """The row (last dimension) decides; the other dimensions never do."""
    assert ge.storage_type(quant, (3, row)) == kind
    assert ge.storage_type(quant, (row + 1, row)) == kind
    assert ge.storage_type(quant, (2, 5, row)) == kind


# --- require_finite -----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["F32", "F16"])
def test_float_kinds_keep_non_finite_values(kind):
    ge.require_finite("w", np.array([np.nan, np.inf, -np.inf], np.float32), kind)


@pytest.mark.parametrize("kind", ["Q8_0", "Q4_K", "Q6_K", "Q5_0"])
def test_quantized_kinds_refuse_and_count_non_finite_values(kind):
    values = np.zeros((4, 32), np.float32)
    values[0, 0], values[3, 31], values[2, 5] = np.nan, np.inf, -np.inf
    with pytest.raises(ConvertError) as info:
        ge.require_finite("model.w", values, kind)
    err = info.value
    assert err.message == f"tensor 'model.w' has 3 non-finite value(s) (NaN or Inf); {kind} cannot store them"
    assert err.field == "model.w"
    assert err.hint == "find them with `apr validate FILE`; or export with `--quantize f16` to keep them as they are"
    ge.require_finite("model.w", np.ones((4, 32), np.float32), kind)  # finite: nothing raised


def test_non_finite_values_are_counted_across_chunks():
    from apr.convert.quant_pool import CHUNK_VALUES

    values = np.zeros(2 * CHUNK_VALUES + 5, np.float32)
    bad = [0, CHUNK_VALUES - 1, CHUNK_VALUES, 2 * CHUNK_VALUES + 4]
    values[bad] = np.nan
    with pytest.raises(ConvertError, match=r"has 4 non-finite value\(s\)"):
        ge.require_finite("w", values.reshape(-1, 1), "Q8_0")


# --- gguf_tensor_count --------------------------------------------------------------------------------

def test_gguf_tensor_count_reads_the_header(tmp_path):
    path = tmp_path / "x.gguf"
    path.write_bytes(b"GGUF" + (3).to_bytes(4, "little") + (0x0102030405).to_bytes(8, "little"))
    assert ge.gguf_tensor_count(path) == 0x0102030405
    path.write_bytes(b"GGUF" + bytes(4) + (7).to_bytes(8, "little") + b"rest")
    assert ge.gguf_tensor_count(os.fspath(path)) == 7


@pytest.mark.parametrize("data", [b"", b"GGUF" + bytes(11), b"GGUX" + bytes(12), b"gguf" + bytes(12)])
def test_gguf_tensor_count_refuses_what_is_not_a_gguf_header(tmp_path, data):
    path = tmp_path / "x.gguf"
    path.write_bytes(data)
    with pytest.raises(ConvertError) as info:
        ge.gguf_tensor_count(path)
    assert info.value.message == "the written file does not start with a GGUF header"
    assert info.value.path == os.fspath(path)


# --- gguf_norm_offset ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("family", "name", "offset"), [
    ("gemma", "model.norm.weight", 1.0), ("gemma", "model.layers.0.input_layernorm.weight", 1.0),
    ("gemma2", "model.layers.3.post_feedforward_layernorm.weight", 1.0),
    ("gemma", "model.layers.0.mlp.up_proj.weight", 0.0), ("gemma", "model.norm.bias", 0.0),
    ("llama", "model.norm.weight", 0.0), ("qwen3", "model.layers.0.self_attn.q_norm.weight", 0.0),
])
def test_gguf_norm_offset(family, name, offset):
    got = ge.gguf_norm_offset(family, name)
    assert got == offset and type(got) is float


# --- _gguf_arch / gemma2_gguf_problems ----------------------------------------------------------------

def _config(family="llama", **kw):
    base = {"family": family, "sliding_window": None, "max_position_embeddings": 128, "head_dim": 16,
            "query_pre_attn_scalar": 16, "num_layers": 4, "attn_softcap": 50.0, "final_softcap": 30.0,
            "tie_word_embeddings": True,
            "layer_types": ("sliding_attention", "full_attention", "sliding_attention", "full_attention")}
    return SimpleNamespace(**{**base, **kw})


@pytest.mark.parametrize(("family", "arch"), [("llama", "llama"), ("mistral", "llama"), ("qwen2", "qwen2"),
                                              ("qwen3", "qwen3"), ("gemma", "gemma"), ("phi3", "phi3"),
                                              ("gemma2", "gemma2")])
def test_gguf_arch_is_llama_cpps_name(family, arch):
    assert ge._gguf_arch(_config(family), "m.apr") == arch


def test_phi3_keeps_its_sliding_window():
    assert ge._gguf_arch(_config("phi3", sliding_window=64), None) == "phi3"


@pytest.mark.parametrize("window", [1, 64, 128, 4096])
def test_a_sliding_window_llama_cannot_carry_is_refused(window):
    with pytest.raises(UnsupportedArchitectureError) as info:
        ge._gguf_arch(_config("mistral", sliding_window=window), "d/m.apr")
    err = info.value
    assert err.message == (f"a mistral model with a sliding window of {window} tokens (context 128) cannot be "
                           "exported to GGUF exactly: llama.cpp's 'llama' architecture has no sliding window")
    assert (err.field, err.path) == ("sliding_window", "d/m.apr")
    assert err.hint == "export to safetensors instead (apr export FILE --format safetensors -o DIR)"
    assert err.architecture == "mistral"
    assert err.reasons == ("sliding window not representable in GGUF",)


def test_a_gemma2_llama_cpp_computes_differently_is_refused_with_every_reason():
    config = _config("gemma2", query_pre_attn_scalar=32, attn_softcap=None, tie_word_embeddings=False,
                     layer_types=("full_attention",) * 4)
    with pytest.raises(UnsupportedArchitectureError) as info:
        ge._gguf_arch(config, "g.apr")
    err = info.value
    reasons = ("query_pre_attn_scalar 32 != head_dim 16 (llama.cpp scales queries by 1/sqrt(head_dim))",
               "layer_types is not the alternating pattern llama.cpp's gemma2 uses",
               "a softcap is off (llama.cpp's gemma2 always softcaps)",
               "the head is not tied (llama.cpp's gemma2 reads it from token_embd)")
    assert err.reasons == reasons
    assert err.message == "this gemma2 model cannot be exported to GGUF exactly: " + "; ".join(reasons)
    assert (err.field, err.path, err.architecture) == ("architecture", "g.apr", "gemma2")
    assert err.hint == "export to safetensors instead (apr export FILE --format safetensors -o DIR)"


def test_gemma2_problems_one_at_a_time():
    assert ge.gemma2_gguf_problems(_config("gemma2")) == []
    assert ge.gemma2_gguf_problems(_config("gemma2", query_pre_attn_scalar=17)) == [
        "query_pre_attn_scalar 17 != head_dim 16 (llama.cpp scales queries by 1/sqrt(head_dim))"]
    assert ge.gemma2_gguf_problems(_config("gemma2", final_softcap=None)) == [
        "a softcap is off (llama.cpp's gemma2 always softcaps)"]
    assert ge.gemma2_gguf_problems(_config("gemma2", attn_softcap=None)) == [
        "a softcap is off (llama.cpp's gemma2 always softcaps)"]
    assert ge.gemma2_gguf_problems(_config("gemma2", tie_word_embeddings=False)) == [
        "the head is not tied (llama.cpp's gemma2 reads it from token_embd)"]
    # the pattern starts with a sliding layer at layer 0, for every layer count
    for layers in (1, 2, 3, 5):
        good = tuple("sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers))
        assert ge.gemma2_gguf_problems(_config("gemma2", num_layers=layers, layer_types=good)) == []
        shifted = tuple("full_attention" if i % 2 == 0 else "sliding_attention" for i in range(layers))
        assert ge.gemma2_gguf_problems(_config("gemma2", num_layers=layers, layer_types=shifted)) == [
            "layer_types is not the alternating pattern llama.cpp's gemma2 uses"]
    assert ge.gemma2_gguf_problems(_config("gemma2", layer_types=None)) == [
        "layer_types is not the alternating pattern llama.cpp's gemma2 uses"]


# --- write_arch_keys ----------------------------------------------------------------------------------

def _kv_of(writer: gguf.GGUFWriter) -> dict[str, tuple[object, object]]:
    """(value, GGUF type) of each key an in-memory writer holds."""
    return {k: (v.value, v.type) for k, v in writer.kv_data[0].items()}


@pytest.mark.parametrize(("window", "written"), [(None, 128), (64, 64)])
def test_gemma2_keys(tmp_path, window, written):
    writer = gguf.GGUFWriter(os.fspath(tmp_path / "x.gguf"), "gemma2")
    base = set(_kv_of(writer))
    ge.write_arch_keys(writer, "gemma2", _config("gemma2", sliding_window=window, attn_softcap=50.0, final_softcap=30.0))
    kv = {k: v for k, v in _kv_of(writer).items() if k not in base}
    assert kv == {"gemma2.attn_logit_softcapping": (50.0, VT.FLOAT32),
                  "gemma2.final_logit_softcapping": (30.0, VT.FLOAT32),
                  "gemma2.attention.sliding_window": (written, VT.UINT32)}


@pytest.mark.parametrize(("window", "written"), [(None, 0), (48, 48)])
def test_phi3_keys(tmp_path, window, written):
    writer = gguf.GGUFWriter(os.fspath(tmp_path / "x.gguf"), "phi3")
    base = set(_kv_of(writer))
    ge.write_arch_keys(writer, "phi3", _config("phi3", sliding_window=window, max_position_embeddings=4096))
    kv = {k: v for k, v in _kv_of(writer).items() if k not in base}
    assert kv == {"phi3.rope.scaling.original_context_length": (4096, VT.UINT32),
                  "phi3.attention.sliding_window": (written, VT.UINT32)}


@pytest.mark.parametrize("arch", ["llama", "qwen2", "qwen3", "gemma"])
def test_other_architectures_get_no_extra_keys(tmp_path, arch):
    writer = gguf.GGUFWriter(os.fspath(tmp_path / "x.gguf"), arch)
    base = _kv_of(writer)
    ge.write_arch_keys(writer, arch, _config(arch, sliding_window=8))
    assert _kv_of(writer) == base


# --- _utf8_checked ------------------------------------------------------------------------------------

def test_utf8_checked_returns_the_mapping_itself():
    carried = {"general.name": "ok", "general.languages": ["en", "fr"], "x": 3, "y": [1, 2]}
    assert ge._utf8_checked(carried, "m.apr") is carried


@pytest.mark.parametrize(("carried", "key"), [
    ({"general.name": "a\udc80"}, "general.name"),
    ({"general.ok": "fine", "general.languages": ["en", "b\ud800"]}, "general.languages"),
])
def test_utf8_checked_names_the_carried_key(carried, key):
    with pytest.raises(ConvertError) as info:
        ge._utf8_checked(carried, "d/m.apr")
    assert info.value.field == f"source_metadata.{key}" and info.value.path == "d/m.apr"


def test_all_names_the_public_api():
    assert ge.__all__ == ["GgufQuant", "export_gguf", "parse_gguf_quant", "relative_rmse", "require_finite",
                          "storage_type"]


# --- export_gguf end to end: every KV pair with its GGUF type -------------------------------------------

def _typed_kv(path) -> dict[str, tuple[object, tuple[str, ...]]]:
    """(value, GGUF type names) of every KV pair, read with the gguf package's reader."""
    reader = gguf.GGUFReader(os.fspath(path))
    return {k: (f.contents(), tuple(t.name for t in f.types)) for k, f in reader.fields.items()
            if not k.startswith("GGUF.")}


def _base(tmp_path, file_name="m.apr", drop=(), **changes):
    """The tiny qwen2 checkpoint (tests.reliability.cli_targets) with metadata ``changes``."""
    from tests.reliability import cli_targets as ct

    tensors, metadata, flags = ct._base_model()
    metadata = {k: v for k, v in {**metadata, **changes}.items() if k not in drop}
    ct.write_with_raw_metadata(tmp_path / file_name, tensors, metadata, flags)
    return tmp_path / file_name, tensors, metadata


def test_every_kv_pair_of_a_plain_export_with_its_type(tmp_path):
    source, tensors, meta = _base(tmp_path, chat_template="{{ x }}", **{"tokenizer.pre_type": "smollm"},
                                  special_tokens={"unk_token": "a", "pad_token": "b", "bos_token": None})
    vocabulary = meta["tokenizer.vocabulary"]
    report = ge.export_gguf(source, tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    U32, F32, STR, BOOL = ("UINT32",), ("FLOAT32",), ("STRING",), ("BOOL",)
    types = [1] * len(vocabulary)
    for token in meta["tokenizer.added_tokens"]:
        types[token["id"]] = 3 if token["special"] else 4
    assert kv == {
        "general.architecture": ("qwen2", STR), "general.name": (meta["name"], STR), "general.file_type": (0, U32),
        "general.quantization_version": (2, U32),
        "qwen2.context_length": (meta["max_position_embeddings"], U32),
        "qwen2.embedding_length": (meta["hidden_size"], U32), "qwen2.block_count": (meta["num_layers"], U32),
        "qwen2.feed_forward_length": (meta["intermediate_size"], U32),
        "qwen2.attention.head_count": (meta["num_heads"], U32),
        "qwen2.attention.head_count_kv": (meta["num_kv_heads"], U32),
        "qwen2.attention.layer_norm_rms_epsilon": (float(np.float32(meta["rms_norm_eps"])), F32),
        "qwen2.rope.freq_base": (float(np.float32(meta["rope_theta"])), F32),
        "qwen2.rope.dimension_count": (meta["hidden_size"] // meta["num_heads"], U32),
        "qwen2.vocab_size": (meta["vocab_size"], U32),
        "general.license": (meta["license"], STR),
        "tokenizer.ggml.model": ("gpt2", STR), "tokenizer.ggml.pre": ("smollm", STR),
        "tokenizer.ggml.tokens": (vocabulary, ("ARRAY", "STRING")),
        "tokenizer.ggml.token_type": (types, ("ARRAY", "INT32")),
        "tokenizer.ggml.merges": (meta["tokenizer.merges"], ("ARRAY", "STRING")),
        "tokenizer.ggml.eos_token_id": (meta["tokenizer.eos_token_id"], U32),
        "tokenizer.ggml.unknown_token_id": (vocabulary.index("a"), U32),
        "tokenizer.ggml.padding_token_id": (vocabulary.index("b"), U32),
        "tokenizer.chat_template": ("{{ x }}", STR),
        "tokenizer.ggml.add_bos_token": (False, BOOL),
    }
    assert report.to_dict() == {
        "path": os.fspath(tmp_path / "o.gguf"), "format": "gguf", "tensor_count": len(tensors) - 0,
        "file_size": os.path.getsize(tmp_path / "o.gguf"), "quantize": "f32", "fallbacks": [],
        "fallback_summary": [], "quant_error": {}, "damaged": None}


def test_a_bos_id_is_written_and_an_empty_template_or_pre_type_is_not(tmp_path):
    source, _, _ = _base(tmp_path, chat_template="", **{"tokenizer.pre_type": "", "tokenizer.bos_token_id": 0})
    ge.export_gguf(source, tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    assert kv["tokenizer.ggml.bos_token_id"] == (0, ("UINT32",))
    assert kv["tokenizer.ggml.pre"] == ("gpt-2", ("STRING",))
    assert "tokenizer.chat_template" not in kv


def test_a_non_string_pre_type_falls_back(tmp_path):
    source, _, _ = _base(tmp_path, **{"tokenizer.pre_type": 5})
    ge.export_gguf(source, tmp_path / "o.gguf")
    assert _typed_kv(tmp_path / "o.gguf")["tokenizer.ggml.pre"] == ("gpt-2", ("STRING",))


def test_a_carried_add_bos_flag_replaces_the_default(tmp_path):
    source, _, _ = _base(tmp_path, source_metadata={"tokenizer.ggml.add_bos_token": True, "general.basename": "b"})
    ge.export_gguf(source, tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    assert kv["tokenizer.ggml.add_bos_token"] == (True, ("BOOL",))
    assert kv["general.basename"] == ("b", ("STRING",))


def test_without_a_tokenizer_only_the_model_and_carried_keys_are_written(tmp_path):
    source, _, meta = _base(tmp_path, drop=[k for k in _base_meta() if k.startswith("tokenizer.")],
                            source_metadata={"general.organization": "Org", "tokenizer.ggml.add_bos_token": True})
    ge.export_gguf(source, tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    assert not any(k.startswith("tokenizer.ggml.") and k != "tokenizer.ggml.add_bos_token" for k in kv)
    assert kv["general.organization"] == ("Org", ("STRING",))
    assert kv["tokenizer.ggml.add_bos_token"] == (True, ("BOOL",))
    assert kv["qwen2.block_count"] == (meta["num_layers"], ("UINT32",))


def test_without_a_tokenizer_no_add_bos_default_is_invented(tmp_path):
    source, _, _ = _base(tmp_path, drop=[k for k in _base_meta() if k.startswith("tokenizer.")])
    ge.export_gguf(source, tmp_path / "o.gguf")
    assert "tokenizer.ggml.add_bos_token" not in _typed_kv(tmp_path / "o.gguf")


def _base_meta():
    from tests.reliability import cli_targets as ct

    return ct._base_model()[1]


@pytest.mark.parametrize(("license", "carried", "written"), [
    ("Apache-2.0", "apache-2.0", "apache-2.0"),  # the source's own spelling of the same license
    ("Apache-2.0", "APACHE-2.0", "APACHE-2.0"),
    ("Apache-2.0", "mit", "Apache-2.0"),  # a different license: the checkpoint's
    ("MIT", None, "MIT"),
    ("MIT", 3, "MIT"),
    ("", "mit", None),  # no license of its own: the carried one is written as carried
    (None, None, None),
])
def test_the_license_key(tmp_path, license, carried, written):
    source_metadata = {} if carried is None else {"general.license": carried}
    source, _, _ = _base(tmp_path, license=license, source_metadata=source_metadata)
    ge.export_gguf(source, tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    if written is None and isinstance(carried, str):
        assert kv["general.license"] == (carried, ("STRING",))
    elif written is None:
        assert "general.license" not in kv
    else:
        assert kv["general.license"] == (written, ("STRING",))


def test_duplicate_tokens_are_made_unique_and_the_vocabulary_padded(tmp_path):
    from tests.reliability import cli_targets as ct

    _, metadata, _ = ct._base_model()
    vocabulary = list(metadata["tokenizer.vocabulary"])
    short = vocabulary[:-3]  # 3 rows of the embedding have no token
    short[5] = short[4]  # a duplicate
    merges = [m for m in metadata["tokenizer.merges"] if "".join(m.split(" ")) in short and
              all(p in short for p in m.split(" "))]
    source, _, meta = _base(tmp_path, **{"tokenizer.vocabulary": short, "tokenizer.merges": merges,
                                         "tokenizer.vocab_size": len(short)})
    ge.export_gguf(source, tmp_path / "o.gguf")
    tokens = _typed_kv(tmp_path / "o.gguf")["tokenizer.ggml.tokens"][0]
    expected = [*short[:5], f"{short[4]}_5", *short[6:]] + [f"<|pad_{i}|>" for i in range(len(short), len(vocabulary))]
    assert tokens == expected and len(tokens) == meta["vocab_size"]


@pytest.mark.parametrize(("quant", "code"), [("f32", 0), ("f16", 1), ("q8_0", 7)])
def test_the_file_type_follows_the_quantization(tmp_path, quant, code):
    source, _, _ = _base(tmp_path)
    report = ge.export_gguf(source, tmp_path / "o.gguf", quantize=GgufQuant(quant))
    assert _typed_kv(tmp_path / "o.gguf")["general.file_type"] == (code, ("UINT32",))
    assert report.quantize == quant
    kinds = {t.name: t.tensor_type.name for t in gguf.GGUFReader(os.fspath(tmp_path / "o.gguf")).tensors}
    two_d = {"F32": "F32", "F16": "F16", "Q8_0": "Q8_0"}[quant.upper()]
    assert kinds["blk.0.ffn_up.weight"] == two_d and kinds["blk.0.attn_norm.weight"] == "F32"


def test_a_quantized_export_reports_each_fallback_and_the_worst_error(tmp_path):
    """Rows of 32 and 64 values (hidden 32, intermediate 64): no 256-value Q4_K block fits, so every
    2-D tensor falls back to Q5_0; the report names each with its row length."""
    source, tensors, _ = _base(tmp_path)
    report = ge.export_gguf(source, tmp_path / "o.gguf", quantize=GgufQuant.Q4_K)
    two_d = sorted(n for n, v in tensors.items() if np.ndim(v) == 2)
    assert sorted(report.fallbacks) == sorted(
        f"{n}: rows of {tensors[n].shape[-1]} values do not split into 256-value Q4_K blocks: stored Q5_0"
        for n in two_d)
    assert set(report.quant_error) == {"Q5_0"} and 0 < report.quant_error["Q5_0"] < 0.1
    q8 = ge.export_gguf(source, tmp_path / "p.gguf", quantize=GgufQuant.Q8_0)
    assert q8.fallbacks == () and set(q8.quant_error) == {"Q8_0"}
    nothing = ge.export_gguf(source, tmp_path / "r.gguf", quantize=GgufQuant.Q8_0, measure_error=False)
    assert nothing.quant_error == {}


def test_q6_k_fallbacks_name_their_block_size(tmp_path):
    source, _, _ = _base(tmp_path)
    report = ge.export_gguf(source, tmp_path / "o.gguf", quantize=GgufQuant.Q6_K)
    name = "model.layers.0.mlp.down_proj.weight"
    assert f"{name}: rows of 64 values do not split into 256-value Q6_K blocks: stored Q8_0" in report.fallbacks


def test_the_head_dimension_keys_are_written_when_heads_do_not_tile_the_width(tmp_path):
    """key_length/value_length: always for qwen3, else only when head_dim * heads != hidden."""
    from apr.convert.hf_import import import_hf
    from tests.convert.tiny_hf import build_hf_folder

    folder = build_hf_folder(tmp_path / "hf", "qwen2", hidden=32, layers=1, heads=2, kv_heads=1, inter=64,
                             head_dim=24)
    import_hf(folder, tmp_path / "m.apr")
    ge.export_gguf(tmp_path / "m.apr", tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    assert kv["qwen2.attention.key_length"] == (24, ("UINT32",))
    assert kv["qwen2.attention.value_length"] == (24, ("UINT32",))
    assert kv["qwen2.rope.dimension_count"] == (24, ("UINT32",))


# --- what the export checks of what it wrote ------------------------------------------------------------

def _nothing_written(tmp_path, *keep):
    return sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_a_short_file_on_disk_is_a_disk_full_error_and_nothing_is_left(tmp_path, monkeypatch):
    """numpy's tofile drops a failed final flush: the size on disk is compared with what was planned."""
    source, _, _ = _base(tmp_path)
    real = os.path.getsize
    target = tmp_path / "o.gguf"

    def short(path):  # the writer's temporary (.o.gguf.tmp-...) reads one byte short
        return real(path) - os.path.basename(os.fspath(path)).startswith(".o.gguf")

    monkeypatch.setattr(ge.os.path, "getsize", short)
    with pytest.raises(ge.AprIOError) as info:
        ge.export_gguf(source, target)
    err = info.value
    assert err.errno == errno.ENOSPC and err.path == os.fspath(target)
    assert err.message.startswith("cannot write: ") and err.message.endswith("; the existing file (if any) is unchanged")
    monkeypatch.undo()
    assert _nothing_written(tmp_path, "m.apr")


def test_a_tensor_count_that_differs_from_the_plan_is_refused(tmp_path, monkeypatch):
    source, tensors, _ = _base(tmp_path)
    monkeypatch.setattr(ge, "gguf_tensor_count", lambda path: len(tensors) - 1)
    with pytest.raises(ConvertError) as info:
        ge.export_gguf(source, tmp_path / "o.gguf")
    assert info.value.message == f"wrote {len(tensors) - 1} tensors, expected {len(tensors)}"
    assert info.value.path is not None and info.value.path != os.fspath(tmp_path / "o.gguf")
    assert _nothing_written(tmp_path, "m.apr")


def test_a_payload_that_differs_from_its_declaration_is_refused(tmp_path, monkeypatch):
    source, _, _ = _base(tmp_path)
    real = ge._tensor_payload

    def wrong(reader, name, *args):
        array, kind, err = real(reader, name, *args)
        return (array.astype(np.float16) if name == "model.norm.weight" else array), kind, err

    monkeypatch.setattr(ge, "_tensor_payload", wrong)
    with pytest.raises(ConvertError) as info:
        ge.export_gguf(source, tmp_path / "o.gguf")
    assert info.value.message == "tensor 'model.norm.weight' encoded as float16 [32], declared float32 [32]"
    assert info.value.field == "model.norm.weight"
    assert _nothing_written(tmp_path, "m.apr")


def test_an_integer_tensor_is_refused_by_name(tmp_path):
    from tests.reliability import cli_targets as ct

    tensors, metadata, flags = ct._base_model()
    changed = {**tensors, "model.norm.weight": np.arange(32, dtype=np.int32)}
    ct.write_with_raw_metadata(tmp_path / "m.apr", changed, metadata, flags)
    with pytest.raises(ConvertError) as info:
        ge.export_gguf(tmp_path / "m.apr", tmp_path / "o.gguf")
    assert info.value.message == "tensor 'model.norm.weight' is an integer tensor; GGUF export takes float weights"
    assert info.value.field == "model.norm.weight"
    assert _nothing_written(tmp_path, "m.apr")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_inputs_are_widened_exactly(tmp_path, dtype):
    import ml_dtypes

    from tests.reliability import cli_targets as ct

    tensors, metadata, flags = ct._base_model()
    np_dtype = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
    half = {n: np.asarray(v).astype(np_dtype) for n, v in tensors.items()}
    ct.write_with_raw_metadata(tmp_path / "m.apr", half, metadata, flags)
    ge.export_gguf(tmp_path / "m.apr", tmp_path / "o.gguf")
    stored = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(os.fspath(tmp_path / "o.gguf")).tensors}
    assert stored["output_norm.weight"].dtype == np.float32
    assert np.array_equal(stored["output_norm.weight"], half["model.norm.weight"].astype(np.float32))
    assert np.array_equal(stored["blk.0.ffn_up.weight"].reshape(64, 32),
                          half["model.layers.0.mlp.up_proj.weight"].astype(np.float32))


# --- the side lane (_SideLane): order, release, progress ----------------------------------------------

def test_the_lane_writes_in_order_releases_after_each_write_and_counts_progress(tmp_path, monkeypatch):
    """Events logged on the real writer and reader: tensor i is written, then released, then counted,
    before tensor i+1 is written."""

    source, _, meta = _base(tmp_path)
    with open_file_(source) as reader:
        names = [n for n in reader.keys() if not (meta.get("tied_embeddings") and n == "lm_head.weight")]
        sizes = {n: int(np.prod(reader.entry(n).shape)) for n in names}
    events = record_writes_and_releases(monkeypatch)
    report = ge.export_gguf(source, tmp_path / "o.gguf", progress=lambda d, t: events.append(("progress", (d, t))))
    n = len(names)
    expected = []
    for index, name in enumerate(names):
        expected += [("write", sizes[name]), ("release", name), ("progress", (index + 1, n))]
    # write i+1 is handed to the lane only after write i finished, was released and counted
    events = [("write", int(np.prod(shape))) if kind == "write" else (kind, shape) for kind, shape in events]
    assert events == expected
    assert report.tensor_count == n


def open_file_(path):
    from apr.format import open_file

    return open_file(path)


def test_a_failed_check_on_the_lane_is_raised_at_the_next_call(tmp_path, monkeypatch):
    from apr.format.footer_check import FooterCheck

    source, _, _ = _base(tmp_path)
    fed = []

    def feed(self, reader, name):
        fed.append(name)
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(FooterCheck, "feed_tensor", feed)
    with pytest.raises(ge.AprIOError) as info:
        ge.export_gguf(source, tmp_path / "o.gguf")
    err = info.value
    assert err.path == os.fspath(source) and err.errno == errno.EIO
    assert err.message == "cannot read: input/output error (EIO); nothing was written"
    assert len(fed) <= 2  # stopped at the first failure, not after every tensor
    assert _nothing_written(tmp_path, "m.apr")


def test_an_apr_io_error_on_the_lane_is_raised_as_it_is(tmp_path, monkeypatch):
    from apr.format.footer_check import FooterCheck

    source, _, _ = _base(tmp_path)
    mine = ge.AprIOError("the project's own error", path="elsewhere.apr")
    monkeypatch.setattr(FooterCheck, "feed_tensor", lambda self, reader, name: (_ for _ in ()).throw(mine))
    with pytest.raises(ge.AprIOError) as info:
        ge.export_gguf(source, tmp_path / "o.gguf")
    assert info.value is mine


# --- GGUF -> APR -> GGUF: the tensors come back as the source held them -----------------------------------

@pytest.mark.parametrize(("ggml_type", "quant"), [("F32", GgufQuant.F32), ("F16", GgufQuant.F16),
                                                  ("Q8_0", GgufQuant.Q8_0)])
def test_a_llama_gguf_round_trips_its_tensors_exactly(tmp_path, ggml_type, quant):
    """llama's q/k rows: unpermuted on import, permuted back on export (the source GGUF, written by
    the gguf package, is the oracle). Q8_0 is dequantized on import and requantized: the same
    blocks, since Q8_0 of a dequantized Q8_0 block is that block."""
    from apr.convert.gguf_import import import_gguf
    from tests.convert.gguf_rt_inputs import write_source

    source = write_source(tmp_path / "s.gguf", ggml_type=ggml_type)
    import_gguf(source, tmp_path / "m.apr")
    report = ge.export_gguf(tmp_path / "m.apr", tmp_path / "o.gguf", quantize=quant)
    before = {t.name: (t.tensor_type.name, np.asarray(t.data)) for t in gguf.GGUFReader(os.fspath(source)).tensors}
    after = {t.name: (t.tensor_type.name, np.asarray(t.data)) for t in gguf.GGUFReader(os.fspath(tmp_path / "o.gguf")).tensors}
    assert sorted(after) == sorted(before) and "output.weight" not in after  # tied: no head written
    for name, (kind, data) in before.items():
        assert after[name][0] == kind, name
        assert np.array_equal(after[name][1], data), name
    assert report.tensor_count == len(before)


def test_kept_k_quant_bytes_round_trip_through_the_permutation(tmp_path):
    from apr.convert.gguf_import import import_gguf
    from tests.convert.test_mut_gguf_import import _write_gguf

    source = _write_gguf(tmp_path / "s.gguf", hidden=256, k_quant=True)
    import_gguf(source, tmp_path / "m.apr")
    report = ge.export_gguf(tmp_path / "m.apr", tmp_path / "o.gguf", quantize=GgufQuant.Q6_K)
    before = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(os.fspath(source)).tensors}
    after = {t.name: (t.tensor_type.name, np.asarray(t.data)) for t in gguf.GGUFReader(os.fspath(tmp_path / "o.gguf")).tensors}
    for name in ("blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.ffn_down.weight"):
        assert after[name][0] == "Q6_K" and np.array_equal(after[name][1], before[name]), name
    assert report.quant_error == {} and report.fallbacks == ()  # kept bytes: nothing measured, nothing fell back


# --- names ----------------------------------------------------------------------------------------------

def _padded_names(monkeypatch, length: int, pad: str = "x"):
    """Every GGUF name padded to ``length`` UTF-8 bytes (unique: the real name is its prefix)."""
    real = ge.hf_to_gguf_for

    made: list[str] = []

    def name(family, hf_name):
        base = real(family, hf_name)
        made.append(base + pad * ((length - len(base.encode())) // len(pad.encode())))
        return made[-1]

    monkeypatch.setattr(ge, "hf_to_gguf_for", name)
    return made


def test_a_63_byte_tensor_name_is_written(tmp_path, monkeypatch):
    source, _, _ = _base(tmp_path)
    _padded_names(monkeypatch, 63)
    ge.export_gguf(source, tmp_path / "o.gguf")
    names = [t.name for t in gguf.GGUFReader(os.fspath(tmp_path / "o.gguf")).tensors]
    assert names and all(len(n.encode()) == 63 for n in names)


@pytest.mark.parametrize(("length", "pad"), [(64, "x"), (64, "\u00e9"), (80, "x")])
def test_a_tensor_name_of_64_bytes_or_more_is_refused_counting_utf8_bytes(tmp_path, monkeypatch, length, pad):
    """é is two UTF-8 bytes: a name of 64 bytes but fewer characters is still refused."""
    source, _, _ = _base(tmp_path)
    made = _padded_names(monkeypatch, length, pad)
    with pytest.raises(ConvertError) as info:
        ge.export_gguf(source, tmp_path / "o.gguf")
    first = next(n for n in made if len(n.encode()) >= 64)  # in the file's tensor order
    assert info.value.field == first and (pad == "x" or len(first) < 64)
    assert info.value.message == f"GGUF tensor name {first!r} is 64 bytes or longer; ggml refuses it"
    assert _nothing_written(tmp_path, "m.apr")


# --- other families: gemma's norms, mistral written as llama ----------------------------------------------

def _as_family(tmp_path, family: str, hf_class: str):
    """The llama checkpoint an import of gguf_rt_inputs' source gives, relabelled as ``family``."""
    from apr.convert.gguf_import import import_gguf
    from apr.format import load
    from tests.convert.gguf_rt_inputs import write_source
    from tests.reliability import cli_targets as ct

    import_gguf(write_source(tmp_path / "s.gguf"), tmp_path / "llama.apr")
    with open_file_(tmp_path / "llama.apr") as reader:
        meta, flags = dict(reader.metadata), int(reader.flags)
    tensors = load((tmp_path / "llama.apr").read_bytes())
    meta.update(architecture=family, model_type=family, hf_architecture=hf_class, hf_model_type=family)
    ct.write_with_raw_metadata(tmp_path / f"{family}.apr", tensors, meta, flags)
    return tmp_path / f"{family}.apr", tensors


def test_gemma_norms_are_written_plus_one_and_its_rows_unpermuted(tmp_path):
    source, tensors = _as_family(tmp_path, "gemma", "GemmaForCausalLM")
    ge.export_gguf(source, tmp_path / "o.gguf")
    reader = gguf.GGUFReader(os.fspath(tmp_path / "o.gguf"))
    stored = {t.name: np.asarray(t.data) for t in reader.tensors}
    assert reader.get_field("general.architecture").contents() == "gemma"
    one = np.float32(1)
    assert np.array_equal(stored["output_norm.weight"], np.asarray(tensors["model.norm.weight"]) + one)
    assert np.array_equal(stored["blk.0.attn_norm.weight"],
                          np.asarray(tensors["model.layers.0.input_layernorm.weight"]) + one)
    assert np.array_equal(stored["blk.0.ffn_norm.weight"],
                          np.asarray(tensors["model.layers.0.post_attention_layernorm.weight"]) + one)
    # gemma's q/k rows are not permuted (NEOX rope), and weights are not offset
    assert np.array_equal(stored["blk.0.attn_q.weight"], np.asarray(tensors["model.layers.0.self_attn.q_proj.weight"]))
    assert np.array_equal(stored["blk.0.ffn_up.weight"], np.asarray(tensors["model.layers.0.mlp.up_proj.weight"]))


def test_mistral_without_a_window_is_written_as_llama_with_permuted_rows(tmp_path):
    source, _ = _as_family(tmp_path, "mistral", "MistralForCausalLM")
    ge.export_gguf(source, tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    assert kv["general.architecture"] == ("llama", ("STRING",)) and "llama.block_count" in kv
    before = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(os.fspath(tmp_path / "s.gguf")).tensors}
    after = {t.name: np.asarray(t.data) for t in gguf.GGUFReader(os.fspath(tmp_path / "o.gguf")).tensors}
    assert np.array_equal(after["blk.0.attn_q.weight"], before["blk.0.attn_q.weight"])
    assert np.array_equal(after["blk.0.attn_k.weight"], before["blk.0.attn_k.weight"])


def test_qwen3_always_gets_the_head_dimension_keys(tmp_path):
    """qwen3 decouples head_dim from hidden / heads, so llama.cpp reads key_length even when they agree."""
    from apr.convert.hf_import import import_hf
    from tests.convert.tiny_hf import build_hf_folder

    folder = build_hf_folder(tmp_path / "hf", "qwen3", hidden=32, layers=1, heads=2, kv_heads=1, inter=64)
    import_hf(folder, tmp_path / "m.apr")
    ge.export_gguf(tmp_path / "m.apr", tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    assert kv["general.architecture"] == ("qwen3", ("STRING",))
    assert kv["qwen3.attention.key_length"] == (16, ("UINT32",))
    assert kv["qwen3.attention.value_length"] == (16, ("UINT32",))


def test_no_merges_and_no_eos_write_no_such_keys(tmp_path):
    source, _, _ = _base(tmp_path, drop=["tokenizer.eos_token_id"], **{"tokenizer.merges": []})
    ge.export_gguf(source, tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    assert "tokenizer.ggml.merges" not in kv and "tokenizer.ggml.eos_token_id" not in kv
    assert "tokenizer.ggml.bos_token_id" not in kv and kv["tokenizer.ggml.model"] == ("gpt2", ("STRING",))


def test_a_failure_waits_for_the_lane_work_in_flight_and_cancels_what_is_queued(tmp_path, monkeypatch):
    """Tensor 2's conversion fails while tensor 1's CRC check is still running on the lane (a slow
    read) and tensor 1's write and tensor 2's check wait behind it: the export returns only after
    that check finished, and the queued work never runs (nothing is done after the failure)."""
    import time

    from apr.format.footer_check import FooterCheck

    source, _, _ = _base(tmp_path)
    with open_file_(source) as reader:
        names = list(reader.keys())
    events: list[str] = []
    real_feed, real_write, real_payload = FooterCheck.feed_tensor, gguf.GGUFWriter.write_tensor_data, ge._tensor_payload

    def feed(self, reader, name):
        if name == names[1]:
            time.sleep(0.6)
        result = real_feed(self, reader, name)
        events.append(f"feed {name}")
        return result

    def write(self, tensor, *args, **kwargs):
        events.append(f"write {sum(e.startswith('write') for e in events)}")
        return real_write(self, tensor, *args, **kwargs)

    def payload(reader, name, *args):
        if name == names[2]:
            time.sleep(0.2)  # the lane has picked up tensor 1's check by now
            raise ConvertError("refused (test)", field=name)
        return real_payload(reader, name, *args)

    monkeypatch.setattr(FooterCheck, "feed_tensor", feed)
    monkeypatch.setattr(gguf.GGUFWriter, "write_tensor_data", write)
    monkeypatch.setattr(ge, "_tensor_payload", payload)
    with pytest.raises(ConvertError, match="refused"):
        ge.export_gguf(source, tmp_path / "o.gguf")
    assert events == [f"feed {names[0]}", "write 0", f"feed {names[1]}"]
    time.sleep(0.3)
    assert len(events) == 3  # nothing ran on the lane afterwards
    assert _nothing_written(tmp_path, "m.apr")


@pytest.mark.parametrize("quant", [GgufQuant.F32, GgufQuant.Q4_K])
def test_a_k_quant_stored_as_another_type_is_dequantized_first(tmp_path, quant):
    """Q6_K tensors exported as F32 (or requantized as Q4_K): the values are the gguf package's
    dequantization of the source blocks (q/k rows back in GGUF order)."""
    from gguf.quants import dequantize

    from apr.convert.gguf_import import import_gguf
    from tests.convert.test_mut_gguf_import import _write_gguf

    source = _write_gguf(tmp_path / "s.gguf", hidden=256, k_quant=True)
    import_gguf(source, tmp_path / "m.apr")
    ge.export_gguf(tmp_path / "m.apr", tmp_path / "o.gguf", quantize=quant)
    Q6 = gguf.GGMLQuantizationType.Q6_K
    before = {t.name: dequantize(np.asarray(t.data), Q6) for t in gguf.GGUFReader(os.fspath(source)).tensors
              if t.tensor_type == Q6}
    after = {t.name: (t.tensor_type, np.asarray(t.data)) for t in gguf.GGUFReader(os.fspath(tmp_path / "o.gguf")).tensors}
    for name in ("blk.0.attn_q.weight", "blk.0.ffn_up.weight"):
        kind, data = after[name]
        if quant is GgufQuant.F32:
            assert kind == gguf.GGMLQuantizationType.F32 and np.array_equal(data, before[name]), name
        else:
            assert kind == gguf.GGMLQuantizationType.Q4_K
            decoded = dequantize(data, kind)
            assert np.sqrt(np.mean((decoded - before[name]) ** 2)) < 0.2 * np.sqrt(np.mean(before[name] ** 2)), name


def test_non_finite_values_are_kept_in_float_types_and_refused_by_name_for_quantized_ones(tmp_path):
    from tests.reliability import cli_targets as ct

    tensors, metadata, flags = ct._base_model()
    name = "model.layers.0.mlp.up_proj.weight"
    bad = np.array(tensors[name], dtype=np.float32, copy=True)
    bad[3, 7], bad[5, 1] = np.nan, np.inf
    ct.write_with_raw_metadata(tmp_path / "m.apr", {**tensors, name: bad}, metadata, flags)
    for quant in (GgufQuant.F32, GgufQuant.F16):
        ge.export_gguf(tmp_path / "m.apr", tmp_path / f"{quant.value}.gguf", quantize=quant)
        stored = next(t for t in gguf.GGUFReader(os.fspath(tmp_path / f"{quant.value}.gguf")).tensors
                      if t.name == "blk.0.ffn_up.weight")
        values = np.asarray(stored.data, np.float32).reshape(bad.shape)
        assert np.isnan(values[3, 7]) and np.isposinf(values[5, 1])
    with pytest.raises(ConvertError) as info:
        ge.export_gguf(tmp_path / "m.apr", tmp_path / "q.gguf", quantize=GgufQuant.Q8_0)
    assert info.value.message == f"tensor {name!r} has 2 non-finite value(s) (NaN or Inf); Q8_0 cannot store them"
    assert info.value.field == name
    assert not (tmp_path / "q.gguf").exists()


@pytest.mark.parametrize(("change", "field"), [
    ({"name": "a\udc80b"}, "name"),
    ({"chat_template": "x\ud800"}, "chat_template"),
    ({"tokenizer.pre_type": "p\udfff"}, "tokenizer.pre_type"),
    ({"license": "MIT\udc80"}, "license"),
    ({"rms_norm_eps": 1e39}, "rms_norm_eps"),
    ({"rope_theta": 1e39}, "rope_theta"),
    ({"source_metadata": {"general.basename": "b\udc80"}}, "source_metadata.general.basename"),
])
def test_a_value_gguf_cannot_hold_is_refused_naming_the_field_and_the_file(tmp_path, change, field):
    source, _, _ = _base(tmp_path, **change)
    with pytest.raises(ConvertError) as info:
        ge.export_gguf(source, tmp_path / "o.gguf")
    assert (info.value.field, info.value.path) == (field, os.fspath(source))
    assert _nothing_written(tmp_path, "m.apr")


def test_a_checkpoint_without_a_license_key_writes_none(tmp_path):
    source, _, _ = _base(tmp_path, drop=["license"])
    ge.export_gguf(source, tmp_path / "o.gguf")
    assert "general.license" not in _typed_kv(tmp_path / "o.gguf")


def test_a_gemma2_export_writes_its_softcaps_and_window(tmp_path):
    """The llama checkpoint relabelled gemma2 (sandwich norms added, llama.cpp's own layer pattern,
    query scalar = head_dim, tied): exported with gemma2's own keys."""
    _as_family(tmp_path, "gemma", "GemmaForCausalLM")  # builds llama.apr beside it
    from apr.format import load
    from tests.reliability import cli_targets as ct

    with open_file_(tmp_path / "llama.apr") as reader:
        meta, flags = dict(reader.metadata), int(reader.flags)
    tensors = dict(load((tmp_path / "llama.apr").read_bytes()))
    tensors.pop("lm_head.weight", None)
    for norm in ("pre_feedforward_layernorm", "post_feedforward_layernorm"):
        tensors[f"model.layers.0.{norm}.weight"] = np.ones(32, np.float32)
    meta.update(architecture="gemma2", model_type="gemma2", hf_architecture="Gemma2ForCausalLM",
                hf_model_type="gemma2", query_pre_attn_scalar=16, attn_logit_softcapping=50.0,
                final_logit_softcapping=30.0, sliding_window=32, layer_types=["sliding_attention"],
                tie_word_embeddings=True, hidden_act="gelu_pytorch_tanh")
    ct.write_with_raw_metadata(tmp_path / "g.apr", tensors, meta, flags)
    ge.export_gguf(tmp_path / "g.apr", tmp_path / "g.gguf")
    kv = _typed_kv(tmp_path / "g.gguf")
    assert kv["general.architecture"] == ("gemma2", ("STRING",))
    assert kv["gemma2.attn_logit_softcapping"] == (50.0, ("FLOAT32",))
    assert kv["gemma2.final_logit_softcapping"] == (30.0, ("FLOAT32",))
    assert kv["gemma2.attention.sliding_window"] == (32, ("UINT32",))


def test_without_a_tokenizer_the_carried_rope_keys_of_its_architecture_are_written(tmp_path):
    no_tokenizer = [k for k in _base_meta() if k.startswith("tokenizer.")]
    source, _, _ = _base(tmp_path, drop=no_tokenizer,
                         source_metadata={"qwen2.rope.scaling.type": "yarn", "llama.rope.scaling.type": "linear"})
    ge.export_gguf(source, tmp_path / "o.gguf")
    kv = _typed_kv(tmp_path / "o.gguf")
    assert kv["qwen2.rope.scaling.type"] == ("yarn", ("STRING",)) and "llama.rope.scaling.type" not in kv


def test_without_a_tokenizer_a_carried_value_gguf_cannot_hold_names_the_file(tmp_path):
    no_tokenizer = [k for k in _base_meta() if k.startswith("tokenizer.")]
    source, _, _ = _base(tmp_path, drop=no_tokenizer, source_metadata={"general.basename": "b\udc80"})
    with pytest.raises(ConvertError) as info:
        ge.export_gguf(source, tmp_path / "o.gguf")
    assert (info.value.field, info.value.path) == ("source_metadata.general.basename", os.fspath(source))


def test_an_existing_output_is_replaced_only_with_force(tmp_path):
    from apr.errors import OutputExistsError

    source, _, _ = _base(tmp_path)
    (tmp_path / "o.gguf").write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        ge.export_gguf(source, tmp_path / "o.gguf")
    assert (tmp_path / "o.gguf").read_bytes() == b"keep"
    ge.export_gguf(source, tmp_path / "o.gguf", force=True)
    assert (tmp_path / "o.gguf").read_bytes()[:4] == b"GGUF"


def test_a_tokenizer_the_export_cannot_read_names_the_file(tmp_path):
    from apr.errors import TokenizerError

    source, _, _ = _base(tmp_path, **{"tokenizer.bos_token_id": 999})
    with pytest.raises(TokenizerError) as info:
        ge.export_gguf(source, tmp_path / "o.gguf")
    assert (info.value.path, info.value.field) == (os.fspath(source), "tokenizer.bos_token_id")
    assert _nothing_written(tmp_path, "m.apr")


def test_a_sliding_window_refusal_names_the_file(tmp_path):
    from apr.format import load
    from tests.reliability import cli_targets as ct

    _as_family(tmp_path, "gemma", "GemmaForCausalLM")  # builds llama.apr beside it
    with open_file_(tmp_path / "llama.apr") as reader:
        meta, flags = dict(reader.metadata), int(reader.flags)
    meta.update(architecture="mistral", model_type="mistral", hf_architecture="MistralForCausalLM",
                hf_model_type="mistral", sliding_window=16)
    ct.write_with_raw_metadata(tmp_path / "w.apr", load((tmp_path / "llama.apr").read_bytes()), meta, flags)
    with pytest.raises(UnsupportedArchitectureError) as info:
        ge.export_gguf(tmp_path / "w.apr", tmp_path / "o.gguf")
    assert (info.value.path, info.value.field) == (os.fspath(tmp_path / "w.apr"), "sliding_window")


def _damaged_copy(tmp_path, where: str):
    """The base checkpoint with one byte flipped: in a tensor's payload, or inside the metadata JSON."""
    source, _, _ = _base(tmp_path)
    data = bytearray(source.read_bytes())
    if where == "tensor":
        with open_file_(source) as reader:
            start, _ = reader.absolute_range(reader.entry("model.norm.weight"))
        data[start] ^= 0x01
    else:
        at = bytes(data).index(b'"tiny-qwen2"') + 1
        data[at:at + 1] = b"T"  # still valid JSON, a different name: only the CRCs tell
    damaged = tmp_path / "d.apr"
    damaged.write_bytes(bytes(data))
    return damaged


@pytest.mark.parametrize("where", ["tensor", "metadata"])
def test_a_damaged_input_is_refused_unless_allowed(tmp_path, where):
    from apr.errors import AprError

    damaged = _damaged_copy(tmp_path, where)
    with pytest.raises(AprError):
        ge.export_gguf(damaged, tmp_path / "o.gguf")
    assert not (tmp_path / "o.gguf").exists()
    report = ge.export_gguf(damaged, tmp_path / "o.gguf", allow_damaged=True)
    assert report.damaged is not None and (tmp_path / "o.gguf").read_bytes()[:4] == b"GGUF"


def test_a_damaged_header_is_refused_as_it_is_opened_unless_allowed(tmp_path):
    """A flipped bit in the header's stored CRC: refused by the header check when the file is opened
    (ChecksumError, not the footer's DamagedInputError after converting); allowed, it is reported."""
    from apr.errors import ChecksumError, DamagedInputError

    source, _, _ = _base(tmp_path)
    data = bytearray(source.read_bytes())
    data[40] ^= 0x01  # the header CRC field (bytes 40..44)
    damaged = tmp_path / "h.apr"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as info:
        ge.export_gguf(damaged, tmp_path / "o.gguf")
    assert not isinstance(info.value, DamagedInputError) and "header checksum mismatch" in str(info.value)
    report = ge.export_gguf(damaged, tmp_path / "o.gguf", allow_damaged=True)
    assert report.damaged is not None and report.damaged.header_stored != report.damaged.header_computed
