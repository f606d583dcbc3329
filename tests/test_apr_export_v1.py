"""contracts/apr-export-v1.yaml: lossless round trips, bijective names, byte-exact K-quants."""

from __future__ import annotations

import hashlib
import json
import os

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apr.cli.main import main
from apr.convert import names
from apr.convert.gguf_export import GgufQuant, export_gguf, relative_rmse
from apr.convert.gguf_import import import_gguf
from apr.convert.hf_export import export_safetensors
from apr.convert.hf_import import import_hf
from apr.convert.quant_k import quantize_q4_k, quantize_q6_k
from apr.errors import AprError, ConvertError, MissingConfigError, OutputExistsError, TensorInputError
from apr.format import DType, open_file, save, save_file
from apr.format.stream_writer import TensorSpec, write_file_streaming
from tests.convert.kquant_inputs import kquant_inputs
from tests.convert.tiny_hf import build_hf_folder, load_tensors, shapes, train_tokenizer

FAMILIES = ("llama", "qwen2", "qwen3")


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    train_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def wide_models(tmp_path_factory, tokenizer_dir):
    """.apr files of each family with rows of 256 (so every quantization applies)."""
    root = tmp_path_factory.mktemp("wide")
    out = {}
    for family in FAMILIES:
        folder = build_hf_folder(root / family, family, tokenizer_from=tokenizer_dir, hidden=256, inter=512,
                                 heads=4, kv_heads=2, tied=family == "qwen2")
        import_hf(folder, root / f"{family}.apr")
        out[family] = root / f"{family}.apr"
    return out


def _tensors(path):
    with open_file(path) as reader:
        return {n: (reader.entry(n).dtype, reader.entry(n).shape, bytes(reader.get_raw(n))) for n in reader.keys()}


def _tensor_differences(a, b) -> list[str]:
    """Names of tensors that differ in dtype, shape or bytes, or that only one file has.

    Compared here rather than with ``==`` on the two dicts: with ``CI`` set pytest prints the full
    diff of a failed comparison, and a diff of megabytes of tensor bytes takes minutes.
    """
    ta, tb = _tensors(a), _tensors(b)
    return sorted(n for n in ta.keys() | tb.keys() if ta.get(n) != tb.get(n))


# --- FALSIFY-EXPORT-001 ---------------------------------------------------------------------------

@pytest.mark.falsifies("FALSIFY-EXPORT-001")
@pytest.mark.parametrize("family, dtype, tied, shards", [
    ("qwen2", "float32", False, 1), ("llama", "float16", True, 1), ("qwen3", "bfloat16", False, 3),
    ("llama", "float32", False, 2),
])
def test_falsify_export_001_hf_apr_hf_tensor_exact(tmp_path, tokenizer_dir, family, dtype, tied, shards):
    from safetensors import safe_open
    from tokenizers import Tokenizer

    src = build_hf_folder(tmp_path / "src", family, tokenizer_from=tokenizer_dir, dtype=dtype, tied=tied, shards=shards)
    assert main(["import", os.fspath(src), "-o", os.fspath(tmp_path / "m.apr"), "--json"]) == 0
    assert main(["export", os.fspath(tmp_path / "m.apr"), "--format", "safetensors", "-o", os.fspath(tmp_path / "hf"), "--json"]) == 0
    before, after = load_tensors(src), load_tensors(tmp_path / "hf")
    assert sorted(before) == sorted(after)
    for name in before:
        assert before[name].dtype == after[name].dtype and before[name].shape == after[name].shape, name
        assert before[name].tobytes() == after[name].tobytes(), name
    with safe_open(os.fspath(tmp_path / "hf" / "model.safetensors"), framework="np") as handle:
        assert handle.metadata()["format"] == "pt"
    text = "The capital of France is Paris. <|im_start|>user\nhi<|im_end|>"
    assert Tokenizer.from_file(os.fspath(src / "tokenizer.json")).encode(text).ids == \
        Tokenizer.from_file(os.fspath(tmp_path / "hf" / "tokenizer.json")).encode(text).ids
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == json.loads((src / "config.json").read_text())["architectures"]
    assert config["tie_word_embeddings"] is tied
    assert (tmp_path / "hf" / "generation_config.json").exists()


# --- FALSIFY-EXPORT-002 ---------------------------------------------------------------------------

@pytest.mark.falsifies("FALSIFY-EXPORT-002")
@pytest.mark.parametrize("family", FAMILIES)
def test_falsify_export_002_apr_gguf_apr_tensor_exact(tmp_path, wide_models, family):
    source = wide_models[family]
    export_gguf(source, tmp_path / "m.gguf")
    import_gguf(tmp_path / "m.gguf", tmp_path / "back.apr")
    assert _tensor_differences(source, tmp_path / "back.apr") == []
    with open_file(source) as a, open_file(tmp_path / "back.apr") as b:
        for key in ("tokenizer.vocabulary", "tokenizer.merges", "hidden_size", "num_layers", "num_heads",
                    "num_kv_heads", "intermediate_size", "head_dim", "hf_architecture", "architecture"):
            assert a.metadata[key] == b.metadata[key], key


@pytest.mark.falsifies("FALSIFY-EXPORT-002")
def test_falsify_export_002_llama_gguf_rows_are_permuted(tmp_path, wide_models):
    """The GGUF really holds llama.cpp's order (so a no-op permute pair cannot pass)."""
    import gguf

    export_gguf(wide_models["llama"], tmp_path / "m.gguf")
    reader = gguf.GGUFReader(os.fspath(tmp_path / "m.gguf"))
    stored = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight").data
    with open_file(wide_models["llama"]) as apr:
        original = apr.get_tensor("model.layers.0.self_attn.q_proj.weight")
    assert not np.array_equal(stored, original)
    assert np.array_equal(stored, names.permute_qk(np.asarray(original), 4))


# --- FALSIFY-EXPORT-003 ---------------------------------------------------------------------------

_SUFFIXES = sorted(names._LAYER_SUFFIXES)


@pytest.mark.falsifies("FALSIFY-EXPORT-003")
@given(layer=st.integers(0, 10_000), suffix=st.sampled_from(_SUFFIXES))
def test_falsify_export_003_layer_names_round_trip(layer, suffix):
    hf = f"model.layers.{layer}.{suffix}"
    gg = names.hf_to_gguf(hf)
    assert gg.startswith(f"blk.{layer}.") and names.gguf_to_hf(gg) == hf


@pytest.mark.falsifies("FALSIFY-EXPORT-003")
@pytest.mark.parametrize("family", FAMILIES)
def test_falsify_export_003_bijective_on_family_names(family):
    all_names = list(shapes(family, vocab=10, hidden=8, layers=12, heads=2, kv_heads=1, inter=8, head_dim=4, tied=False))
    mapped = [names.hf_to_gguf(n) for n in all_names]
    assert len(set(mapped)) == len(all_names)
    assert [names.gguf_to_hf(g) for g in mapped] == all_names
    assert all(len(g.encode()) <= names.GGUF_MAX_NAME_BYTES for g in mapped)


@pytest.mark.falsifies("FALSIFY-EXPORT-003")
@pytest.mark.parametrize("bad", ["model.layers.0.mlp.fc1.weight", "transformer.wte.weight", "model.layers.01.mlp.up_proj.weight", "blk.x.attn_q.weight"])
def test_falsify_export_003_unknown_names_refused(bad):
    with pytest.raises(ConvertError):
        names.hf_to_gguf(bad) if not bad.startswith("blk") else names.gguf_to_hf(bad)


@pytest.mark.falsifies("FALSIFY-EXPORT-003")
@settings(max_examples=40)
@given(heads=st.integers(1, 8), half=st.integers(1, 8), cols=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_falsify_export_003_permutation_inverts(heads, half, cols, seed):
    rows = np.random.default_rng(seed).standard_normal((heads * 2 * half, cols)).astype(np.float32)
    permuted = names.permute_qk(rows, heads)
    assert np.array_equal(names.unpermute_qk(permuted, heads), rows)
    assert np.array_equal(names.unpermute_qk(names.permute_qk(rows[:, 0], heads), heads), rows[:, 0])
    if half > 1:
        assert not np.array_equal(permuted, rows)


# --- FALSIFY-EXPORT-004 ---------------------------------------------------------------------------

# SHA-256 (first 32 hex digits) of quantize_q4_k / quantize_q6_k bytes, equal to ggml's C reference.
KQUANT_DIGESTS = {
    "n002": ("37497352ad698081648142fd62a862a4", "f25d4416f0b5870be7d5ee516615422d"),
    "u11": ("2918790685862bd3a83b60f4f2a92f78", "1c21d6ba5802ac752ebf1a6c090360b0"),
    "t3": ("f1d1d96ea80b939ce2cd4fabbe3c3389", "6c891e1e87afd41682df8c842f88f917"),
    "zeros": ("1a0295f4bf5986c5f74eca9153a6a4cb", "16d0edc8b7ad7705b23a14058f366ff1"),
    "u01": ("179e2f25fdacbe1459ec63a57ede188b", "f74d6689423fc3dec34399beee0dea50"),
    "const": ("6a05d3a44dbd399a75df8bf9c6f91c33", "417d20e8e29b06c47dbf2925a93efae0"),
    "neg": ("c858f093ad898fcb69d7ef2776383cef", "b682962094877000aa40a09cdd9db3a7"),
    "sparse": ("a1b27d1b9d48f2bf042b89e4380422a5", "f8a3c7f5347d5b1a74930dd6fca8acfd"),
    "big": ("cee5fa6165136425697acaa6263fa125", "0c57609761eb00887b104b622cde1d69"),
    "tiny": ("0c1538572d4edca5740dd54a75b3d81b", "3972584007307018947dc0c6a01b25df"),
}


@pytest.mark.falsifies("FALSIFY-EXPORT-004")
@pytest.mark.parametrize("case", sorted(KQUANT_DIGESTS))
def test_falsify_export_004_kquants_match_ggml_reference(case):
    x = kquant_inputs()[case]
    q4, q6 = quantize_q4_k(x, kernel="numpy"), quantize_q6_k(x, kernel="numpy")  # numba: test_quant_numba.py
    assert q4.shape == (x.shape[0], x.shape[1] // 256 * 144) and q6.shape == (x.shape[0], x.shape[1] // 256 * 210)
    assert (hashlib.sha256(q4.tobytes()).hexdigest()[:32], hashlib.sha256(q6.tobytes()).hexdigest()[:32]) == KQUANT_DIGESTS[case]


@pytest.mark.falsifies("FALSIFY-EXPORT-004")
def test_falsify_export_004_block_fields_decode_like_ggml():
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    x = kquant_inputs()["u11"]
    blocks = quantize_q4_k(x).reshape(-1, 144)
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)[:, 0]
    scales = blocks[:, 4:16]
    sc = np.concatenate([scales[:, 0:4] & 63, (scales[:, 8:12] & 0xF) | ((scales[:, 0:4] >> 6) << 4)], axis=1)
    assert (sc <= 63).all() and (d >= 0).all() and sc.max() == 63  # the largest sub-block scale maps to 63
    for kind, data in ((GGMLQuantizationType.Q4_K, quantize_q4_k(x)), (GGMLQuantizationType.Q6_K, quantize_q6_k(x))):
        restored = dequantize(data, kind)
        assert restored.shape == x.shape and np.isfinite(restored).all()


def test_kquant_refuses_bad_rows():
    with pytest.raises(ConvertError, match="multiple of 256"):
        quantize_q4_k(np.zeros((2, 100), np.float32))
    with pytest.raises(ConvertError, match="NaN"):
        quantize_q6_k(np.full((1, 256), np.nan, np.float32))


# --- FALSIFY-EXPORT-005 ---------------------------------------------------------------------------

BOUNDS = {"F16": 0.0005, "Q8_0": 0.007, "Q6_K": 0.025, "Q4_K": 0.08}


@pytest.mark.falsifies("FALSIFY-EXPORT-005")
@pytest.mark.parametrize("data", ["normal", "uniform"])
def test_falsify_export_005_error_within_recorded_bounds(data):
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    rng = np.random.default_rng(1)
    x = (rng.normal(0, 0.02, (64, 1024)) if data == "normal" else rng.uniform(-1, 1, (64, 1024))).astype(np.float32)
    errors = {
        "F16": relative_rmse(x, x.astype(np.float16), None),
        "Q8_0": relative_rmse(x, quantize(x, GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0),
        "Q6_K": relative_rmse(x, quantize_q6_k(x), GGMLQuantizationType.Q6_K),
        "Q4_K": relative_rmse(x, quantize_q4_k(x), GGMLQuantizationType.Q4_K),
    }
    assert all(errors[k] <= BOUNDS[k] for k in BOUNDS), errors
    assert errors["F16"] < errors["Q8_0"] < errors["Q6_K"] < errors["Q4_K"]


@pytest.mark.falsifies("FALSIFY-EXPORT-005")
@pytest.mark.parametrize("extreme", [False, True])
def test_falsify_export_005_f16_error_while_encoding_equals_decoded_error(extreme):
    """The export measures the F16 error on the float16 payload itself, widened inside the
    subtraction (no float32 copy); it must be the error of the decoded payload, exactly, also near
    the top of float16's range and with a NaN (the chunk's masked float64 path)."""
    from apr.convert.gguf_encode import encode

    x = np.random.default_rng(2).normal(0, 0.02, (48, 768)).astype(np.float32)
    if extreme:
        x[3, 5], x[9, 0], x[20, 700] = 6e4, np.nan, -65000.0
    with np.errstate(all="ignore"):
        encoded = encode(x, "F16", measure=True, threads=2)
        decoded = relative_rmse(x, x.astype(np.float16), None)
    assert encoded.array.tobytes() == x.astype(np.float16).tobytes()
    assert encoded.error == decoded and 0 < decoded < 0.0005


@pytest.mark.falsifies("FALSIFY-EXPORT-005")
@pytest.mark.parametrize("quant, kind", [("f16", "F16"), ("q8_0", "Q8_0"), ("q6_k", "Q6_K"), ("q4_k", "Q4_K")])
def test_falsify_export_005_export_reports_error(tmp_path, wide_models, quant, kind, capsys):
    assert main(["export", os.fspath(wide_models["qwen3"]), "--format", "gguf", "--quantize", quant,
                 "-o", os.fspath(tmp_path / "m.gguf"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["quant_error"]) == {kind} and 0 < report["quant_error"][kind] <= BOUNDS[kind]


@pytest.mark.falsifies("FALSIFY-EXPORT-005")
def test_falsify_export_005_non_finite_values_are_refused_for_quantized_types(tmp_path, wide_models, capsys):
    """A NaN cannot be quantized (ggml casts it to an integer): refused by name, nothing written;
    F16 keeps it as it is."""
    with open_file(wide_models["qwen3"]) as reader:
        tensors = {n: np.array(reader.get_tensor(n)) for n in reader.keys()}
        metadata, flags = dict(reader.metadata), reader.flags
    name = "model.layers.0.mlp.up_proj.weight"
    tensors[name][3, 7] = np.nan
    tensors[name][5, 1] = np.inf
    save_file(tensors, tmp_path / "nan.apr", metadata, flags)
    out = tmp_path / "m.gguf"
    for quant in ("q8_0", "q4_k", "q6_k"):
        assert main(["export", os.fspath(tmp_path / "nan.apr"), "--format", "gguf", "--quantize", quant,
                     "-o", os.fspath(out)]) == 5
        err = capsys.readouterr().err
        assert name in err and "2 non-finite" in err and "apr validate" in err
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["nan.apr"]
    assert main(["export", os.fspath(tmp_path / "nan.apr"), "--format", "gguf", "--quantize", "f16",
                 "-o", os.fspath(out)]) == 0
    import gguf

    stored = next(t for t in gguf.GGUFReader(os.fspath(out)).tensors if t.name == "blk.0.ffn_up.weight")
    values = np.asarray(stored.data, np.float32).reshape(tensors[name].shape)
    assert np.isnan(values[3, 7]) and np.isposinf(values[5, 1]) and np.isfinite(values).sum() == values.size - 2


# --- FALSIFY-EXPORT-007 ---------------------------------------------------------------------------

@pytest.mark.falsifies("FALSIFY-EXPORT-007")
def test_falsify_export_007_gguf_layout_and_keys(tmp_path, wide_models):
    import gguf

    from apr.convert.gguf_import import read_gguf_fields

    export_gguf(wide_models["llama"], tmp_path / "m.gguf", quantize=GgufQuant.Q4_K)
    reader = gguf.GGUFReader(os.fspath(tmp_path / "m.gguf"))
    fields = read_gguf_fields(reader)
    for key in ("general.architecture", "general.name", "general.file_type", "general.quantization_version",
                "llama.context_length", "llama.embedding_length", "llama.block_count", "llama.feed_forward_length",
                "llama.attention.head_count", "llama.attention.head_count_kv", "llama.rope.freq_base",
                "llama.attention.layer_norm_rms_epsilon", "llama.rope.dimension_count", "tokenizer.ggml.model",
                "tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type", "tokenizer.chat_template"):
        assert key in fields, key
    assert fields["general.architecture"] == "llama" and fields["tokenizer.ggml.pre"] == "gpt-2"
    assert fields["tokenizer.ggml.model"] == "gpt2"
    for tensor in reader.tensors:
        assert len(tensor.name.encode()) < 64
        names.gguf_to_hf(tensor.name)
        if len(tensor.shape) == 1:
            assert tensor.tensor_type.name == "F32", tensor.name
        else:
            assert tensor.tensor_type.name == "Q4_K", tensor.name
    assert "output.weight" in {t.name for t in reader.tensors}  # llama here is untied


@pytest.mark.falsifies("FALSIFY-EXPORT-007")
@pytest.mark.parametrize("quant, expected", [("q4_k", {"Q5_0"}), ("q6_k", {"Q8_0"}), ("q8_0", {"Q8_0"})])
def test_falsify_export_007_llama_cpp_fallbacks(tmp_path, tokenizer_dir, quant, expected):
    import gguf

    folder = build_hf_folder(tmp_path / "src", "qwen2", tokenizer_from=tokenizer_dir, hidden=96, heads=4, kv_heads=2, inter=160)
    import_hf(folder, tmp_path / "m.apr")
    report = export_gguf(tmp_path / "m.apr", tmp_path / "m.gguf", quantize=GgufQuant(quant))
    kinds = {t.tensor_type.name for t in gguf.GGUFReader(os.fspath(tmp_path / "m.gguf")).tensors if len(t.shape) > 1}
    assert kinds == expected
    assert (len(report.fallbacks) > 0) == (quant != "q8_0")
    odd = build_hf_folder(tmp_path / "odd", "qwen2", tokenizer_from=tokenizer_dir, hidden=40, heads=2, kv_heads=1, inter=72)
    import_hf(odd, tmp_path / "odd.apr")
    export_gguf(tmp_path / "odd.apr", tmp_path / "odd.gguf", quantize=GgufQuant(quant))
    kinds = {t.tensor_type.name for t in gguf.GGUFReader(os.fspath(tmp_path / "odd.gguf")).tensors if len(t.shape) > 1}
    assert kinds == {"F16"}


@pytest.mark.falsifies("FALSIFY-EXPORT-007")
def test_falsify_export_007_long_names_refused(monkeypatch, tmp_path, wide_models):
    monkeypatch.setattr("apr.convert.gguf_export.hf_to_gguf_for", lambda family, n: "blk." + "x" * 70)
    with pytest.raises(ConvertError, match="64 bytes"):
        export_gguf(wide_models["qwen2"], tmp_path / "m.gguf")
    assert os.listdir(tmp_path) == []


# --- FALSIFY-EXPORT-008 ---------------------------------------------------------------------------

@pytest.mark.falsifies("FALSIFY-EXPORT-008")
def test_falsify_export_008_existing_output_needs_force(tmp_path, wide_models, capsys):
    target = tmp_path / "m.gguf"
    target.write_bytes(b"keep")
    assert main(["export", os.fspath(wide_models["qwen2"]), "--format", "gguf", "-o", os.fspath(target)]) == 5
    assert target.read_bytes() == b"keep" and "--force" in capsys.readouterr().err
    assert main(["export", os.fspath(wide_models["qwen2"]), "--format", "gguf", "-o", os.fspath(target), "--force", "--json"]) == 0
    assert target.read_bytes()[:4] == b"GGUF"
    folder = tmp_path / "hf"
    folder.mkdir()
    with pytest.raises(OutputExistsError):
        export_safetensors(wide_models["qwen2"], folder)
    export_safetensors(wide_models["qwen2"], folder, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "m.gguf"]


@pytest.mark.falsifies("FALSIFY-EXPORT-008")
def test_falsify_export_008_bad_sources_leave_nothing(tmp_path, tokenizer_dir, capsys):
    src = build_hf_folder(tmp_path / "src", "qwen2", tokenizer_from=tokenizer_dir)
    out = tmp_path / "out"
    out.mkdir()
    (src / "config.json").rename(tmp_path / "config.json")
    assert main(["import", os.fspath(src), "-o", os.fspath(out / "m.apr")]) == 5
    assert "--allow-no-config" in capsys.readouterr().err
    with pytest.raises(MissingConfigError):
        import_hf(src, out / "m.apr")
    (tmp_path / "config.json").rename(src / "config.json")
    (src / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../outside.safetensors"}}))
    with pytest.raises(ConvertError, match="outside the model folder"):
        import_hf(src, out / "m.apr")
    (src / "model.safetensors.index.json").unlink()
    (src / "model.safetensors").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ConvertError, match="not a valid safetensors"):
        import_hf(src, out / "m.apr")
    assert os.listdir(out) == []


@pytest.mark.falsifies("FALSIFY-EXPORT-008")
def test_falsify_export_008_failure_mid_stream_leaves_nothing(tmp_path, tokenizer_dir, monkeypatch):
    src = build_hf_folder(tmp_path / "src", "qwen2", tokenizer_from=tokenizer_dir)
    out = tmp_path / "out"
    out.mkdir()
    calls = {"n": 0}
    real = __import__("apr.convert.hf_import", fromlist=["produce_payload"]).produce_payload

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr("apr.convert.hf_import.produce_payload", failing)
    with pytest.raises(AprError):
        import_hf(src, out / "m.apr")
    assert os.listdir(out) == []


# --- FALSIFY-EXPORT-009 ---------------------------------------------------------------------------

_DTYPES = {np.dtype(np.float32): DType.F32, np.dtype(np.float16): DType.F16, np.dtype(np.int64): DType.I64,
           np.dtype(ml_dtypes.bfloat16): DType.BF16, np.dtype(np.uint8): DType.U8}


@pytest.mark.falsifies("FALSIFY-EXPORT-009")
@settings(max_examples=30)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.tuples(st.sampled_from(sorted(_DTYPES, key=str)),
       st.lists(st.integers(0, 5), max_size=3)), min_size=0, max_size=6))
def test_falsify_export_009_streaming_equals_save_file(tmp_path_factory, spec):
    tensors = {name: np.arange(int(np.prod(shape)), dtype=np.float64).astype(dtype).reshape(shape)
               for name, (dtype, shape) in spec.items()}
    metadata = {"architecture": "llama", "custom": [1, 2]}
    folder = tmp_path_factory.mktemp("stream")
    asked: list[str] = []

    def produce(item):
        asked.append(item.name)
        return tensors[item.name]

    specs = [TensorSpec(n, _DTYPES[v.dtype], v.shape, v.nbytes) for n, v in tensors.items()]
    write_file_streaming(specs, produce, folder / "s.apr", metadata)
    assert (folder / "s.apr").read_bytes() == save(tensors, metadata)
    assert asked == sorted(tensors, key=lambda n: n.encode())


@pytest.mark.falsifies("FALSIFY-EXPORT-009")
def test_falsify_export_009_wrong_size_refused(tmp_path):
    specs = [TensorSpec("a", DType.F32, (2,), 8), TensorSpec("b", DType.F32, (2,), 8)]
    with pytest.raises(TensorInputError, match="producer returned"):
        write_file_streaming(specs, lambda s: np.zeros(3, np.float32), tmp_path / "x.apr")
    with pytest.raises(TensorInputError, match="needs 8 bytes"):
        write_file_streaming([TensorSpec("a", DType.F32, (2,), 7)], lambda s: b"", tmp_path / "x.apr")
    assert os.listdir(tmp_path) == []


# --- FALSIFY-EXPORT-010 ---------------------------------------------------------------------------

def _write_quantized_gguf(path, tokenizer_dir):
    import gguf
    from gguf.quants import quantize

    rng = np.random.default_rng(3)
    hidden, heads, kv, inter, vocab = 256, 4, 2, 512, 64
    writer = gguf.GGUFWriter(os.fspath(path), "llama")
    for setter, value in (("add_block_count", 1), ("add_context_length", 128), ("add_embedding_length", hidden),
                          ("add_feed_forward_length", inter), ("add_head_count", heads), ("add_head_count_kv", kv)):
        getattr(writer, setter)(value)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("gpt2")
    tokens = [chr(0x100 + i) for i in range(vocab)]
    writer.add_token_list(tokens)
    writer.add_token_merges([f"{tokens[0]} {tokens[1]}"])
    kinds = {"token_embd.weight": ("Q8_0", (vocab, hidden)), "blk.0.attn_q.weight": ("Q4_K", (hidden, hidden)),
             "blk.0.attn_k.weight": ("Q4_0", (kv * 64, hidden)), "blk.0.attn_v.weight": ("Q4_1", (kv * 64, hidden)),
             "blk.0.attn_output.weight": ("F16", (hidden, hidden)), "blk.0.ffn_gate.weight": ("Q5_0", (inter, hidden)),
             "blk.0.ffn_up.weight": ("Q8_0", (inter, hidden)), "blk.0.ffn_down.weight": ("Q4_K", (hidden, inter)),
             "blk.0.attn_norm.weight": ("F32", (hidden,)), "blk.0.ffn_norm.weight": ("F32", (hidden,)),
             "output_norm.weight": ("F32", (hidden,))}
    raw = {}
    for name, (kind, shape) in kinds.items():
        x = rng.normal(0, 0.05, shape).astype(np.float32)
        if kind == "F32":
            writer.add_tensor(name, x)
            raw[name] = (kind, x)
        elif kind == "F16":
            writer.add_tensor(name, x.astype(np.float16))
            raw[name] = (kind, x.astype(np.float16))
        else:
            qtype = gguf.GGMLQuantizationType[kind]
            data = quantize_q4_k(x) if kind == "Q4_K" else quantize(x, qtype)
            writer.add_tensor(name, data, raw_dtype=qtype)
            raw[name] = (kind, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return raw, heads, kv


@pytest.mark.falsifies("FALSIFY-EXPORT-010")
def test_falsify_export_010_other_quantizations_dequantized_not_refused(tmp_path, tokenizer_dir):
    import gguf
    from gguf.quants import dequantize

    raw, heads, kv = _write_quantized_gguf(tmp_path / "q.gguf", tokenizer_dir)
    report = import_gguf(tmp_path / "q.gguf", tmp_path / "q.apr")
    assert report.tied_embeddings and report.hf_architecture == "LlamaForCausalLM"
    with open_file(tmp_path / "q.apr") as apr:
        q = apr.get_tensor("model.layers.0.self_attn.q_proj.weight")
        assert q.dtype is DType.Q4_K
        assert np.array_equal(np.asarray(q.data).reshape(256, -1), names.unpermute_qk(raw["blk.0.attn_q.weight"][1], heads))
        assert apr.get_tensor("model.layers.0.self_attn.o_proj.weight").dtype == np.float16
        k = apr.get_tensor("model.layers.0.self_attn.k_proj.weight")
        expected_k = names.unpermute_qk(dequantize(raw["blk.0.attn_k.weight"][1], gguf.GGMLQuantizationType.Q4_0), kv)
        assert k.dtype == np.float32 and np.array_equal(k, expected_k)
        up = apr.get_tensor("model.layers.0.mlp.up_proj.weight")
        assert np.array_equal(up, dequantize(raw["blk.0.ffn_up.weight"][1], gguf.GGMLQuantizationType.Q8_0))
        assert np.array_equal(apr.get_tensor("lm_head.weight"), apr.get_tensor("model.embed_tokens.weight"))
    import_gguf(tmp_path / "q.gguf", tmp_path / "q8.apr", quantize=__import__("apr.convert.targets", fromlist=["ImportQuant"]).ImportQuant.Q8)
    with open_file(tmp_path / "q8.apr") as apr:
        assert apr.entry("model.layers.0.mlp.up_proj.weight").dtype is DType.APR_Q8
        assert apr.entry("model.layers.0.self_attn.q_proj.weight").dtype is DType.Q4_K  # kept
        assert apr.entry("model.layers.0.input_layernorm.weight").dtype is DType.F32


def test_import_quantize_options(tmp_path, tokenizer_dir):
    src = build_hf_folder(tmp_path / "src", "llama", tokenizer_from=tokenizer_dir, hidden=256, inter=512, heads=4, kv_heads=2)
    for quant, dtype in (("q4_k", DType.Q4_K), ("q4", DType.APR_Q4), ("q8", DType.APR_Q8), ("bf16", DType.BF16), ("f16", DType.F16)):
        assert main(["import", os.fspath(src), "-o", os.fspath(tmp_path / f"{quant}.apr"), "--quantize", quant, "--json"]) == 0
        with open_file(tmp_path / f"{quant}.apr") as apr:
            assert apr.entry("model.layers.0.mlp.up_proj.weight").dtype is dtype
            assert apr.metadata["quantization"]["quant_type"] in (dtype.name, "APR_Q4", "APR_Q8")
    assert main(["import", os.fspath(src), "-o", os.fspath(tmp_path / "x.apr"), "--quantize", "q3"]) == 64
