"""apr/convert/hf_export.py piece by piece (issue 23): the folder an export writes (config.json,
generation_config.json, tokenizer files, model.safetensors and its metadata), the refusals, and
the report. Oracles: the ``safetensors`` library (safe_open) for tensors and metadata, ``json`` and
transformers' config classes for config.json, ``tokenizers`` for tokenizer.json, and the input
file's own tensors and metadata as written by the test."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from unittest import mock

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apr.convert import hf_export as he
from apr.errors import (
    ConvertError,
    DamagedInputError,
    ModelConfigError,
    OutputExistsError,
    UnsupportedArchitectureError,
)
from apr.format import PackedTensor, open_file, save_file
from apr.format.dtypes import DType
from apr.format.footer_check import Damage
from apr.format.quant import quantize_q8
from tests.convert.tiny_hf import build_hf_folder, train_tokenizer

WRITTEN = ("model.safetensors", "config.json", "generation_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Imported tiny models: a tied qwen2 and an untied llama (both with an embedded tokenizer)."""
    from apr.convert.hf_import import import_hf

    root = tmp_path_factory.mktemp("hf-export")
    train_tokenizer(root / "tok")
    out = {}
    for family, tied in (("qwen2", True), ("llama", False)):
        folder = build_hf_folder(root / family, family, tokenizer_from=root / "tok", hidden=32, layers=1, heads=2,
                                 kv_heads=1, inter=64, tied=tied)
        import_hf(folder, root / f"{family}.apr")
        out[family] = root / f"{family}.apr"
    return out


def read_apr(path: Path) -> tuple[dict, dict]:
    with open_file(path) as reader:
        tensors = {}
        for name in reader.keys():
            value = reader.get_tensor(name)
            tensors[name] = PackedTensor(value.dtype, tuple(value.shape), np.array(value.data)) \
                if isinstance(value, PackedTensor) else np.array(value)
        return tensors, dict(reader.metadata)


def rewrite(source: Path, out: Path, *, tensors=None, metadata=None, drop_metadata=(), raw=False) -> Path:
    """``source`` with some tensors or metadata keys replaced (the test's own input); ``raw``: the
    metadata written as a hostile writer would (no type or Unicode checks, valid CRCs)."""
    old_tensors, old_metadata = read_apr(source)
    old_tensors.update(tensors or {})
    old_metadata.update(metadata or {})
    for key in drop_metadata:
        old_metadata.pop(key, None)
    if raw:
        text = json.dumps(old_metadata, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        with mock.patch("apr.format.writer.encode_metadata", lambda _metadata: text):
            save_file(old_tensors, out, {})
    else:
        save_file(old_tensors, out, old_metadata)
    return out


def st_tensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(os.fspath(path), framework="np") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}, dict(handle.metadata() or {})


def without_tokenizer(metadata: dict) -> list[str]:
    return [k for k in metadata if k.startswith("tokenizer.")]


# ---- the report --------------------------------------------------------------------------------------

def test_report_dict_keys_and_values():
    report = he.ExportReport(path="out", format="safetensors", tensor_count=3, file_size=99, quantize="q8",
                             fallbacks=("a: rows of 5: F16", "b: rows of 5: F16"), quant_error={"F16": 0.5})
    assert report.to_dict() == {
        "path": "out", "format": "safetensors", "tensor_count": 3, "file_size": 99, "quantize": "q8",
        "fallbacks": ["a: rows of 5: F16", "b: rows of 5: F16"],
        "fallback_summary": [{"reason": "rows of 5: F16", "count": 2, "tensors": ["a", "b"]}],
        "quant_error": {"F16": 0.5}, "damaged": None,
    }
    damage = Damage(path="in.apr", footer_stored=1, footer_computed=2, tensors=3)
    damaged = he.ExportReport(path="o", format="safetensors", tensor_count=0, file_size=0, damaged=damage)
    assert damaged.to_dict()["damaged"] == damage.to_dict()
    assert damaged.to_dict()["quantize"] is None and damaged.to_dict()["fallbacks"] == []
    assert damaged.to_dict()["fallback_summary"] == [] and damaged.to_dict()["quant_error"] == {}


def test_report_of_an_export_describes_what_was_written(models, tmp_path):
    """The tied qwen2 leaves lm_head out (as save_pretrained does); the count and size are the file's."""
    report = he.export_safetensors(models["qwen2"], tmp_path / "hf")
    written, _meta = st_tensors(tmp_path / "hf" / "model.safetensors")
    with open_file(models["qwen2"]) as reader:
        stored = set(reader.keys())
    assert set(written) == stored - {"lm_head.weight"} and "lm_head.weight" in stored
    assert report.path == os.fspath((tmp_path / "hf").absolute())
    assert report.format == "safetensors"
    assert report.tensor_count == len(written)
    assert report.file_size == (tmp_path / "hf" / "model.safetensors").stat().st_size
    assert report.damaged is None and report.quantize is None


def test_untied_lm_head_is_exported(models, tmp_path):
    he.export_safetensors(models["llama"], tmp_path / "hf")
    written, _ = st_tensors(tmp_path / "hf" / "model.safetensors")
    source, _ = read_apr(models["llama"])
    assert sorted(written) == sorted(source)
    assert np.array_equal(written["lm_head.weight"], source["lm_head.weight"])


# ---- model_config_of ---------------------------------------------------------------------------------

def test_metadata_contradicting_the_tensors_is_a_convert_error_naming_the_field(models, tmp_path):
    src = rewrite(models["llama"], tmp_path / "bad.apr", metadata={"intermediate_size": 65})
    with open_file(src) as reader, pytest.raises(ConvertError) as caught:
        he.model_config_of(reader)
    err = caught.value
    assert err.message.startswith("cannot describe this model for export: ")
    assert isinstance(err.__cause__, ModelConfigError)
    assert err.field == err.__cause__.field and err.field is not None and "intermediate" in err.field
    assert err.hint == err.__cause__.hint
    assert err.__cause__.message in err.message
    assert err.path == os.fspath(src)
    assert not isinstance(err, ModelConfigError)


def test_unsupported_architecture_is_not_rewrapped(models, tmp_path):
    src = rewrite(models["llama"], tmp_path / "x.apr", tensors={"extra.weight": np.zeros(3, np.float32)})
    with open_file(src) as reader, pytest.raises(UnsupportedArchitectureError) as caught:
        he.model_config_of(reader)
    assert caught.value.path == os.fspath(src)
    out = tmp_path / "out"
    with pytest.raises(UnsupportedArchitectureError):
        he.export_safetensors(src, out)
    assert not out.exists()


def test_model_config_of_a_good_file(models):
    with open_file(models["llama"]) as reader:
        config = he.model_config_of(reader)
        assert (config.family, config.hidden_size, config.num_layers, config.intermediate_size) == ("llama", 32, 1, 64)
        assert config.tie_word_embeddings is False


# ---- config.json -------------------------------------------------------------------------------------

def _export_config(src: Path, out: Path) -> dict:
    he.export_safetensors(src, out)
    text = (out / "config.json").read_text()
    document = json.loads(text)
    assert text == json.dumps(document, indent=2) + "\n"  # the layout save_pretrained writes
    return document


def test_config_json_loads_in_transformers_with_the_files_values(models, tmp_path):
    LlamaConfig = pytest.importorskip("transformers").LlamaConfig  # the [hf] extra: an independent reader

    document = _export_config(models["llama"], tmp_path / "hf")
    _, metadata = read_apr(models["llama"])
    config = LlamaConfig.from_pretrained(tmp_path / "hf")
    assert document["architectures"] == ["LlamaForCausalLM"]
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.vocab_size) == \
        (metadata["hidden_size"], metadata["num_layers"], metadata["intermediate_size"], metadata["vocab_size"])
    assert config.bos_token_id == metadata["tokenizer.bos_token_id"]
    assert config.eos_token_id == metadata["tokenizer.eos_token_id"]
    assert document["torch_dtype"] == "float32"


def test_claimed_hf_class_of_the_same_family_is_kept(models, tmp_path):
    """Qwen2.5ForCausalLM is a qwen2 claim: the file's own class name goes to config.json."""
    src = rewrite(models["qwen2"], tmp_path / "m.apr", metadata={"hf_architecture": "Qwen2.5ForCausalLM"})
    assert _export_config(src, tmp_path / "hf")["architectures"] == ["Qwen2.5ForCausalLM"]


class _Entry:
    def __init__(self, dtype):
        self.dtype = dtype


class _Reader:
    """The three things hf_config_for reads of a file: metadata, tensor names, entries."""

    def __init__(self, metadata, dtypes):
        self.metadata, self._dtypes = metadata, dtypes

    def keys(self):
        return list(self._dtypes)

    def entry(self, name):
        return _Entry(self._dtypes[name])


@pytest.mark.parametrize(("claimed", "expected"), [
    ("Qwen2ForCausalLM", ["LlamaForCausalLM"]),   # another family's class: the tensors' family wins
    ("WeirdForCausalLM", ["LlamaForCausalLM"]),   # unknown: ignored
    (7, ["LlamaForCausalLM"]),                    # not a string: ignored
    ("MistralForCausalLM", ["MistralForCausalLM"]),  # a llama-family claim is kept
])
def test_claimed_hf_class_is_used_only_for_its_own_family(models, claimed, expected):
    with open_file(models["llama"]) as reader:
        config = he.model_config_of(reader)
    fake = _Reader({"hf_architecture": claimed}, {"w": DType.F32})
    assert he.hf_config_for(fake, config, None)["architectures"] == expected


def test_config_of_a_file_of_packed_tensors_only_is_float32(models):
    with open_file(models["llama"]) as reader:
        config = he.model_config_of(reader)
    fake = _Reader({}, {"a": DType.Q4_K, "b": DType.APR_Q8})
    assert he.hf_config_for(fake, config, None)["torch_dtype"] == "float32"


@pytest.mark.parametrize(("matrices", "vectors", "expected"), [
    (np.float16, np.float16, "float16"),
    (ml_dtypes.bfloat16, ml_dtypes.bfloat16, "bfloat16"),
    (np.float32, np.float32, "float32"),
    (np.float64, np.float64, "float32"),            # no torch_dtype for F64: float32
    (np.float16, np.float32, "float32"),            # mixed: float32
    ("q8", ml_dtypes.bfloat16, "bfloat16"),         # packed tensors do not count
    ("q8", np.float16, "float16"),
])
def test_torch_dtype_is_the_one_plain_dtype_of_the_file(models, tmp_path, matrices, vectors, expected):
    source, _ = read_apr(models["llama"])
    changed = {}
    for name, value in source.items():
        kind = matrices if value.ndim == 2 else vectors
        changed[name] = quantize_q8(value) if kind == "q8" else value.astype(kind)
    src = rewrite(models["llama"], tmp_path / "m.apr", tensors=changed)
    assert _export_config(src, tmp_path / "hf")["torch_dtype"] == expected


def test_config_without_a_tokenizer_keeps_the_configs_own_ids(models, tmp_path):
    _, metadata = read_apr(models["llama"])
    src = rewrite(models["llama"], tmp_path / "m.apr", drop_metadata=without_tokenizer(metadata))
    document = _export_config(src, tmp_path / "hf")
    assert "bos_token_id" not in document and "eos_token_id" not in document


def test_config_with_a_tokenizer_without_bos(models, tmp_path):
    src = rewrite(models["llama"], tmp_path / "m.apr", drop_metadata=["tokenizer.bos_token_id"])
    document = _export_config(src, tmp_path / "hf")
    _, metadata = read_apr(models["llama"])
    assert "bos_token_id" not in document
    assert document["eos_token_id"] == metadata["tokenizer.eos_token_id"]
    src = rewrite(models["llama"], tmp_path / "n.apr", drop_metadata=["tokenizer.eos_token_id"])
    document = _export_config(src, tmp_path / "hf2")
    assert "eos_token_id" not in document
    assert document["bos_token_id"] == metadata["tokenizer.bos_token_id"]


# ---- model.safetensors --------------------------------------------------------------------------------

@pytest.mark.parametrize(("numpy_dtype", "name"), [
    (np.int8, "I8"), (np.uint8, "U8"), (np.int32, "I32"), (np.int64, "I64"), (np.float64, "F64"),
    (np.float16, "F16"), (ml_dtypes.bfloat16, "BF16"), (np.float32, "F32"),
])
def test_plain_dtypes_keep_their_bytes_and_safetensors_name(models, tmp_path, numpy_dtype, name):
    """A norm vector stored in each plain dtype reaches safetensors with the same bytes and type."""
    value = (np.arange(32) % 7).astype(numpy_dtype)
    src = rewrite(models["llama"], tmp_path / "m.apr", tensors={"model.norm.weight": value})
    he.export_safetensors(src, tmp_path / "hf")
    raw = (tmp_path / "hf" / "model.safetensors").read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert header["model.norm.weight"]["dtype"] == name
    written, _ = st_tensors(tmp_path / "hf" / "model.safetensors")
    assert written["model.norm.weight"].tobytes() == value.tobytes()


def test_packed_tensors_are_dequantized_to_f32(models, tmp_path):
    source, _ = read_apr(models["llama"])
    packed = quantize_q8(source["model.layers.0.mlp.up_proj.weight"])
    src = rewrite(models["llama"], tmp_path / "m.apr", tensors={"model.layers.0.mlp.up_proj.weight": packed})
    he.export_safetensors(src, tmp_path / "hf")
    written, _ = st_tensors(tmp_path / "hf" / "model.safetensors")
    got = written["model.layers.0.mlp.up_proj.weight"]
    assert got.dtype == np.float32 and got.shape == (64, 32)
    assert np.array_equal(got, packed.dequantize())


def test_a_dtype_safetensors_cannot_hold_is_refused(models, tmp_path, monkeypatch):
    """Every APR plain dtype has a safetensors name today; one without would be refused, by name."""
    src = rewrite(models["llama"], tmp_path / "m.apr", tensors={"model.norm.weight": np.arange(32, dtype=np.int8)})
    monkeypatch.setattr(he, "_ST_NAMES", {k: v for k, v in he._ST_NAMES.items() if k is not DType.I8})
    with pytest.raises(ConvertError) as caught:
        he.export_safetensors(src, tmp_path / "hf")
    assert caught.value.field == "model.norm.weight" and "I8" in caught.value.message
    assert not (tmp_path / "hf").exists()


@pytest.mark.parametrize(("source_metadata", "expected"), [
    ({"format": "tf", "origin": "hub", "n": 5, "list": ["a"]}, {"format": "pt", "origin": "hub"}),
    ({}, {"format": "pt"}),
    (["format", "tf"], {"format": "pt"}),
    ("text", {"format": "pt"}),
    (None, {"format": "pt"}),
])
def test_safetensors_metadata_carries_the_sources_strings_and_format_pt(models, tmp_path, source_metadata, expected):
    src = rewrite(models["llama"], tmp_path / "m.apr", metadata={"source_metadata": source_metadata})
    he.export_safetensors(src, tmp_path / "hf")
    _, metadata = st_tensors(tmp_path / "hf" / "model.safetensors")
    assert metadata == expected


def test_progress_counts_the_safetensors_bytes(models, tmp_path):
    calls: list[tuple[int, int]] = []
    he.export_safetensors(models["llama"], tmp_path / "hf", progress=lambda done, total: calls.append((done, total)))
    written, _ = st_tensors(tmp_path / "hf" / "model.safetensors")
    sizes = sorted(v.nbytes for v in written.values())
    total = sum(sizes)
    assert len(calls) == len(written)
    assert all(t == total for _, t in calls)
    done = [d for d, _ in calls]
    steps = [b - a for a, b in itertools.pairwise([0, *done])]
    assert sorted(steps) == sizes and calls[-1][0] == total


# ---- write_safetensors_streaming ----------------------------------------------------------------------

ST_NUMPY = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "U8": np.uint8, "BF16": ml_dtypes.bfloat16}


@settings(max_examples=25)
@given(spec=st.dictionaries(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=9),
                            st.tuples(st.sampled_from(sorted(ST_NUMPY)), st.lists(st.integers(0, 4), max_size=3)),
                            max_size=5),
       metadata=st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3))
def test_streaming_writer_matches_the_safetensors_library(tmp_path_factory, spec, metadata):
    """Any names (unicode too), dtypes, shapes (empty ones too) and string metadata read back through
    safe_open as written; data starts 8-aligned after space padding of less than 8 bytes; the
    returned size is the file's."""
    from safetensors import safe_open

    tensors = {n: np.arange(int(np.prod(shape)), dtype=np.float64).astype(ST_NUMPY[d]).reshape(shape)
               for n, (d, shape) in spec.items()}
    shapes = {n: (d, tuple(shape), tensors[n].nbytes) for n, (d, shape) in spec.items()}
    path = tmp_path_factory.mktemp("st") / "m.safetensors"
    size = he.write_safetensors_streaming(path, list(tensors), tensors.__getitem__, shapes, dict(metadata))
    raw = path.read_bytes()
    assert size == len(raw)
    length = int.from_bytes(raw[:8], "little")
    header = raw[8:8 + length]
    assert (8 + length) % 8 == 0 and len(header) - len(header.rstrip(b" ")) < 8
    assert json.loads(header)["__metadata__"] == metadata
    # compact JSON, as the safetensors library itself writes its header (serde_json::to_string)
    assert header.rstrip(b" ") == json.dumps(json.loads(header), separators=(",", ":"), ensure_ascii=False).encode()
    with safe_open(os.fspath(path), framework="np") as handle:
        assert (handle.metadata() or {}) == metadata
        assert sorted(handle.keys()) == sorted(tensors)
        for name, value in tensors.items():
            got = handle.get_tensor(name)
            assert got.dtype == value.dtype and got.shape == value.shape
            assert got.tobytes() == value.tobytes()


def test_streaming_writer_keeps_non_ascii_names_as_utf8(tmp_path):
    path = tmp_path / "m.safetensors"
    value = np.zeros(2, np.float32)
    he.write_safetensors_streaming(path, ["é"], lambda n: value, {"é": ("F32", (2,), 8)}, {"ß": "ü"})
    raw = path.read_bytes()
    assert "é".encode() in raw and "ü".encode() in raw and b"\\u" not in raw


def test_streaming_writer_refuses_a_tensor_that_changed_size(tmp_path):
    path = tmp_path / "m.safetensors"
    with pytest.raises(ConvertError) as caught:
        he.write_safetensors_streaming(path, ["a"], lambda n: np.zeros(3, np.float32), {"a": ("F32", (2,), 8)}, {})
    assert caught.value.field == "a" and "'a'" in caught.value.message


def test_streaming_writer_syncs_every_byte(tmp_path, monkeypatch):
    """fsync sees the whole file: Python's buffer is flushed first, then the descriptor synced."""
    seen = []
    real = os.fsync
    monkeypatch.setattr(he.os, "fsync", lambda fd: (seen.append(os.fstat(fd).st_size), real(fd))[1])
    path = tmp_path / "m.safetensors"
    value = np.arange(4, dtype=np.float32)
    size = he.write_safetensors_streaming(path, ["a"], lambda n: value, {"a": ("F32", (4,), 16)}, {})
    assert seen == [size]


# ---- _check_safetensors --------------------------------------------------------------------------------

def test_check_safetensors_counts_tensors(tmp_path):
    path = tmp_path / "m.safetensors"
    value = np.zeros(2, np.float32)
    he.write_safetensors_streaming(path, ["a", "b"], lambda n: value, {"a": ("F32", (2,), 8), "b": ("F32", (2,), 8)}, {})
    he._check_safetensors(path, 2)
    for wrong in (1, 3):
        with pytest.raises(ConvertError) as caught:
            he._check_safetensors(path, wrong)
        assert f"wrote 2 tensors, expected {wrong}" in caught.value.message
        assert caught.value.path == os.fspath(path)


def test_check_safetensors_refuses_a_file_that_does_not_load(tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    with pytest.raises(ConvertError) as caught:
        he._check_safetensors(path, 0)
    assert "does not load" in caught.value.message and caught.value.__cause__ is not None
    assert caught.value.path == os.fspath(path)


def test_a_written_file_that_does_not_load_leaves_no_folder(models, tmp_path, monkeypatch):
    def broken(path, names, load, shapes, metadata):
        Path(path).write_bytes(b"garbage!")
        return 8

    monkeypatch.setattr(he, "write_safetensors_streaming", broken)
    with pytest.raises(ConvertError, match="does not load"):
        he.export_safetensors(models["llama"], tmp_path / "hf")
    assert not (tmp_path / "hf").exists()


# ---- generation_config.json and tokenizer files --------------------------------------------------------

def _json(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    document = json.loads(text)
    return document


def test_generation_config_from_metadata_and_tokenizer(models, tmp_path):
    _, metadata = read_apr(models["llama"])
    bos, eos = metadata["tokenizer.bos_token_id"], metadata["tokenizer.eos_token_id"]
    he.export_safetensors(models["llama"], tmp_path / "a")
    text = (tmp_path / "a" / "generation_config.json").read_text()
    assert json.loads(text) == {"bos_token_id": bos, "eos_token_id": eos, "do_sample": False}
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    # stored values win over the tokenizer's ids and the do_sample default
    stored = {"eos_token_id": [eos, 7], "do_sample": True, "temperature": 0.7}
    src = rewrite(models["llama"], tmp_path / "m.apr", metadata={"generation_config": stored})
    he.export_safetensors(src, tmp_path / "b")
    assert _json(tmp_path / "b" / "generation_config.json") == {**stored, "bos_token_id": bos}


def test_generation_config_without_a_tokenizer(models, tmp_path):
    _, metadata = read_apr(models["llama"])
    src = rewrite(models["llama"], tmp_path / "m.apr", drop_metadata=without_tokenizer(metadata),
                  metadata={"generation_config": "not an object"})
    he.export_safetensors(src, tmp_path / "hf")
    assert _json(tmp_path / "hf" / "generation_config.json") == {"do_sample": False}
    assert sorted(os.listdir(tmp_path / "hf")) == sorted(WRITTEN) or \
        set(os.listdir(tmp_path / "hf")) - set(WRITTEN) <= {".apr-output.json"}
    assert not any((tmp_path / "hf" / name).exists() for name in TOKENIZER_FILES)


def test_generation_config_ids_only_when_the_tokenizer_has_them(models, tmp_path):
    _, metadata = read_apr(models["llama"])
    src = rewrite(models["llama"], tmp_path / "m.apr", drop_metadata=["tokenizer.bos_token_id"])
    he.export_safetensors(src, tmp_path / "hf")
    assert _json(tmp_path / "hf" / "generation_config.json") == {
        "eos_token_id": metadata["tokenizer.eos_token_id"], "do_sample": False}
    src = rewrite(models["llama"], tmp_path / "n.apr", drop_metadata=["tokenizer.eos_token_id"])
    he.export_safetensors(src, tmp_path / "hf2")
    assert _json(tmp_path / "hf2" / "generation_config.json") == {
        "bos_token_id": metadata["tokenizer.bos_token_id"], "do_sample": False}


def test_tokenizer_files_rebuild_the_embedded_tokenizer(models, tmp_path):
    from tokenizers import Tokenizer

    _, metadata = read_apr(models["llama"])
    vocabulary = metadata["tokenizer.vocabulary"]
    he.export_safetensors(models["llama"], tmp_path / "hf")
    raw = (tmp_path / "hf" / "tokenizer.json").read_bytes()
    assert "Ġ".encode() in raw and b"\\u0120" not in raw  # UTF-8, not \\u escapes
    tokenizer = Tokenizer.from_file(os.fspath(tmp_path / "hf" / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == len(vocabulary)
    assert [tokenizer.id_to_token(i) for i in range(len(vocabulary))] == vocabulary
    text = (tmp_path / "hf" / "tokenizer_config.json").read_text(encoding="utf-8")
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    assert document == {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": vocabulary[metadata["tokenizer.bos_token_id"]],
        "eos_token": vocabulary[metadata["tokenizer.eos_token_id"]],
        "clean_up_tokenization_spaces": False,
        "chat_template": metadata["chat_template"],
    }


def test_tokenizer_config_without_ids_or_template(models, tmp_path):
    src = rewrite(models["llama"], tmp_path / "m.apr",
                  drop_metadata=["tokenizer.bos_token_id", "tokenizer.eos_token_id", "chat_template"])
    he.export_safetensors(src, tmp_path / "hf")
    assert _json(tmp_path / "hf" / "tokenizer_config.json") == {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": None, "eos_token": None,
        "clean_up_tokenization_spaces": False}


def test_a_non_ascii_chat_template_is_written_as_utf8(models, tmp_path):
    template = "{{ '¿' }}{% for m in messages %}{{ m['content'] }}{% endfor %}"
    src = rewrite(models["llama"], tmp_path / "m.apr", metadata={"chat_template": template})
    he.export_safetensors(src, tmp_path / "hf")
    raw = (tmp_path / "hf" / "tokenizer_config.json").read_bytes()
    assert "¿".encode() in raw and b"\\u00bf" not in raw
    assert json.loads(raw.decode("utf-8"))["chat_template"] == template


def test_a_chat_template_that_is_not_utf8_is_refused_naming_it(models, tmp_path):
    src = rewrite(models["llama"], tmp_path / "m.apr", metadata={"chat_template": "bad \udcff"}, raw=True)
    with pytest.raises(ConvertError) as caught:
        he.export_safetensors(src, tmp_path / "hf")
    assert caught.value.field == "chat_template" and caught.value.path == os.fspath(src)
    assert not (tmp_path / "hf").exists()


def test_tokenizer_files_are_utf8_whatever_the_locale(models, tmp_path, monkeypatch):
    """Under a Latin-1 locale, Path.write_text without an encoding would write Latin-1 bytes; the
    tokenizer files (byte-level BPE tokens are non-ASCII) must be UTF-8, as tokenizers reads them."""
    real = Path.write_text

    def latin1_locale(self, data, encoding=None, errors=None, newline=None):
        return real(self, data, encoding=encoding or "latin-1", errors=errors, newline=newline)

    monkeypatch.setattr(Path, "write_text", latin1_locale)
    template = "{{ '¿' }}"
    src = rewrite(models["llama"], tmp_path / "m.apr", metadata={"chat_template": template})
    he.export_safetensors(src, tmp_path / "hf")
    tokenizer = (tmp_path / "hf" / "tokenizer.json").read_bytes()
    assert "Ġ".encode() in tokenizer
    json.loads(tokenizer.decode("utf-8"))
    config = (tmp_path / "hf" / "tokenizer_config.json").read_bytes()
    assert json.loads(config.decode("utf-8"))["chat_template"] == template


# ---- the output folder ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", WRITTEN + TOKENIZER_FILES)
def test_a_foreign_file_an_export_would_replace_is_refused(models, tmp_path, name):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / name).write_text("mine")
    calls: list[tuple[int, int]] = []
    with pytest.raises(OutputExistsError) as caught:
        he.export_safetensors(models["llama"], folder, force=True, progress=lambda d, t: calls.append((d, t)))
    assert repr(name) in caught.value.message
    assert calls == []  # refused before any tensor was read
    assert sorted(os.listdir(folder)) == [name] and (folder / name).read_text() == "mine"


@pytest.mark.parametrize("name", TOKENIZER_FILES)
def test_foreign_tokenizer_files_stay_when_there_is_no_tokenizer(models, tmp_path, name):
    _, metadata = read_apr(models["llama"])
    src = rewrite(models["llama"], tmp_path / "m.apr", drop_metadata=without_tokenizer(metadata))
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / name).write_text("mine")
    he.export_safetensors(src, folder, force=True)
    assert (folder / name).read_text() == "mine"
    assert all((folder / w).is_file() for w in WRITTEN)


def test_existing_folder_needs_force(models, tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    with pytest.raises(OutputExistsError):
        he.export_safetensors(models["llama"], folder)
    assert os.listdir(folder) == []


# ---- damaged inputs --------------------------------------------------------------------------------------

def _damaged(models, tmp_path) -> Path:
    raw = bytearray(models["llama"].read_bytes())
    raw[len(raw) - 100] ^= 0x01  # a tensor byte near the end, before the 4-byte footer
    path = tmp_path / "damaged.apr"
    path.write_bytes(bytes(raw))
    return path


def test_a_damaged_input_is_refused_and_nothing_written(models, tmp_path):
    src = _damaged(models, tmp_path)
    with pytest.raises(DamagedInputError) as caught:
        he.export_safetensors(src, tmp_path / "hf")
    assert "apr export wrote nothing" in caught.value.message and caught.value.path == os.fspath(src)
    assert sorted(os.listdir(tmp_path)) == ["damaged.apr"]


def test_a_damaged_input_is_carried_over_when_allowed(models, tmp_path):
    src = _damaged(models, tmp_path)
    report = he.export_safetensors(src, tmp_path / "hf", allow_damaged=True)
    assert report.damaged is not None and report.damaged.tensors == report.tensor_count
    assert report.damaged.footer_stored != report.damaged.footer_computed
    intact = he.export_safetensors(models["llama"], tmp_path / "ok")
    assert intact.damaged is None


def _bad_header_checksum(models, tmp_path) -> Path:
    raw = bytearray(models["llama"].read_bytes())
    raw[40] ^= 0x01  # the stored header CRC (§1.2: bytes 40..44); everything else intact
    path = tmp_path / "header.apr"
    path.write_bytes(bytes(raw))
    return path


def test_a_damaged_header_is_refused_as_such(models, tmp_path):
    """Without --allow-damaged the header CRC is checked on open: a checksum error (exit 4), not a
    footer verdict (exit 5) after reading every tensor."""
    from apr.errors import ChecksumError

    src = _bad_header_checksum(models, tmp_path)
    with pytest.raises(ChecksumError) as caught:
        he.export_safetensors(src, tmp_path / "hf")
    assert caught.value.exit_code == 4 and not isinstance(caught.value, DamagedInputError)
    assert sorted(os.listdir(tmp_path)) == ["header.apr"]


def test_a_damaged_header_is_carried_over_when_allowed(models, tmp_path):
    src = _bad_header_checksum(models, tmp_path)
    stored = int.from_bytes(src.read_bytes()[40:44], "little")
    report = he.export_safetensors(src, tmp_path / "hf", allow_damaged=True)
    assert report.damaged is not None and report.damaged.header_stored == stored
    assert report.damaged.header_computed == stored ^ 0x01


@pytest.mark.parametrize(("key", "value"), [("tokenizer.merges", 5), ("tokenizer.bos_token_id", "x")])
def test_a_wrongly_typed_tokenizer_key_is_refused_naming_the_file_and_key(models, tmp_path, key, value):
    from apr.errors import TokenizerError

    src = rewrite(models["llama"], tmp_path / "m.apr", metadata={key: value}, raw=True)
    with pytest.raises(TokenizerError) as caught:
        he.export_safetensors(src, tmp_path / "hf")
    assert caught.value.field == key and caught.value.path == os.fspath(src)
    assert not (tmp_path / "hf").exists()


def test_streaming_writer_holds_a_scalar(tmp_path):
    """A 0-d tensor (shape []) is written as its bytes like any other."""
    from safetensors import safe_open

    path = tmp_path / "m.safetensors"
    value = np.array(2.5, dtype=np.float32)
    he.write_safetensors_streaming(path, ["s"], lambda n: value, {"s": ("F32", (), 4)}, {})
    with safe_open(os.fspath(path), framework="np") as handle:
        got = handle.get_tensor("s")
    assert got.shape == () and got.dtype == np.float32 and float(got) == 2.5
