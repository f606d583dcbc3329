"""apr/convert/hf_import.py piece by piece (issue 23): what an import reads (safetensors headers,
shards, side files), the metadata and flags it writes, the tied embedding, the refusals (nothing
written), and the report. Oracles: the ``safetensors`` library and numpy for the source tensors,
``json`` of the config.json the test writes, and the header flag bits of docs/aprender-format.md."""

from __future__ import annotations

import itertools
import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apr.convert import hf_import as hi
from apr.convert.targets import ImportQuant
from apr.errors import AprFileNotFoundError, ConvertError, MissingConfigError
from apr.format import open_file
from apr.format.dtypes import DType
from tests.convert.tiny_hf import build_hf_folder, train_tokenizer

HAS_VOCAB, QUANTIZED = 0x0200, 0x0020  # header flag bits (docs/aprender-format.md, AprV2Flags)
CONFIG_FIX = "correct config.json so it describes the weights beside it (or re-download the model)"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    train_tokenizer(folder)
    return folder


def tiny(folder: Path, tokenizer_dir: Path, family: str = "llama", **kwargs) -> Path:
    options = {"hidden": 32, "layers": 2, "heads": 2, "kv_heads": 1, "inter": 64, **kwargs}
    return build_hf_folder(folder, family, tokenizer_from=tokenizer_dir, **options)


def save_st(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> Path:
    from safetensors.numpy import save_file

    save_file(tensors, os.fspath(path), metadata=metadata)
    return path


def config_of(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def write_config(folder: Path, config: dict) -> None:
    (folder / "config.json").write_text(json.dumps(config))


def source_tensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    out = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(os.fspath(file), framework="np") as handle:
            out.update({name: handle.get_tensor(name) for name in handle.keys()})
    return out


def read(path: Path):
    with open_file(path) as reader:
        return ({n: (reader.entry(n).dtype, tuple(reader.entry(n).shape)) for n in reader.keys()},
                dict(reader.metadata), int(reader.flags))


# ---- the report ------------------------------------------------------------------------------------------

def test_report_dict_has_every_field_with_tuples_as_lists():
    report = hi.ImportReport(path="m.apr", source_format="safetensors", tensor_count=3, file_size=10, param_count=7,
                             architecture="llama", hf_architecture="LlamaForCausalLM", has_vocab=True, quantize="q4_k",
                             tied_embeddings=False, fallbacks=("a: rows of 5: F16", "b: rows of 5: F16"),
                             dequantized={"tensors": 1})
    assert report.to_dict() == {
        "path": "m.apr", "source_format": "safetensors", "tensor_count": 3, "file_size": 10, "param_count": 7,
        "architecture": "llama", "hf_architecture": "LlamaForCausalLM", "has_vocab": True, "quantize": "q4_k",
        "tied_embeddings": False, "fallbacks": ["a: rows of 5: F16", "b: rows of 5: F16"],
        "dequantized": {"tensors": 1},
        "fallback_summary": [{"reason": "rows of 5: F16", "count": 2, "tensors": ["a", "b"]}],
    }


def test_report_of_an_import(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir, "qwen2", tied=True)
    out = tmp_path / "m.apr"
    report = hi.import_hf(src, out)
    tensors = source_tensors(src)
    stored, metadata, _flags = read(out)
    assert report.path == os.fspath(out)
    assert report.source_format == "safetensors"
    assert report.tensor_count == len(stored) == len(tensors) + 1  # + the tied lm_head copy
    assert report.file_size == out.stat().st_size
    assert report.param_count == sum(v.size for v in tensors.values()) == metadata["param_count"]
    assert (report.architecture, report.hf_architecture) == ("qwen2", "Qwen2ForCausalLM")
    assert report.has_vocab is True and report.quantize is None and report.tied_embeddings is True
    assert report.fallbacks == () and report.dequantized is None


# ---- read_safetensors_header ----------------------------------------------------------------------------

def test_header_offsets_and_metadata_match_the_file(tmp_path):
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.arange(4, dtype=np.int64),
               "c": np.zeros((1, 2, 3), np.float16)}
    path = save_st(tmp_path / "m.safetensors", tensors, {"format": "pt", "k": "v"})
    found, metadata = hi.read_safetensors_header(path)
    assert metadata == {"format": "pt", "k": "v"}
    raw = path.read_bytes()
    assert sorted(found) == sorted(tensors)
    for name, value in tensors.items():
        t = found[name]
        assert (t.name, t.file, t.shape, t.nbytes) == (name, path, value.shape, value.nbytes)
        assert t.dtype is {np.float32: DType.F32, np.int64: DType.I64, np.float16: DType.F16}[value.dtype.type]
        assert raw[t.begin:t.begin + t.nbytes] == value.tobytes()
        assert hi.read_tensor_bytes(t).tobytes() == value.tobytes()


def test_header_without_metadata_gives_empty_metadata(tmp_path):
    path = save_st(tmp_path / "m.safetensors", {"a": np.zeros(2, np.float32)})
    assert hi.read_safetensors_header(path)[1] == {}


@pytest.mark.parametrize(("numpy_dtype", "dtype"), [
    (np.float32, DType.F32), (np.float16, DType.F16), (np.float64, DType.F64), (np.int64, DType.I64),
    (np.int32, DType.I32), (np.int8, DType.I8), (np.uint8, DType.U8),
])
def test_every_safetensors_dtype_apr_stores(tmp_path, numpy_dtype, dtype):
    path = save_st(tmp_path / "m.safetensors", {"a": np.zeros(3, numpy_dtype)})
    assert hi.read_safetensors_header(path)[0]["a"].dtype is dtype


def test_bf16_header_name(tmp_path):
    import ml_dtypes

    raw = np.zeros(3, ml_dtypes.bfloat16)
    header = json.dumps({"a": {"dtype": "BF16", "shape": [3], "data_offsets": [0, 6]}}).encode()
    header += b" " * (-len(header) % 8)
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + raw.tobytes())
    assert hi.read_safetensors_header(path)[0]["a"].dtype is DType.BF16


def test_unsupported_dtypes_are_counted_and_the_first_eight_named(tmp_path):
    tensors = {f"t{i:02d}": np.zeros(2, np.bool_) for i in range(10)}
    tensors["ok"] = np.zeros(2, np.float32)
    path = save_st(tmp_path / "m.safetensors", tensors)
    with pytest.raises(ConvertError) as caught:
        hi.read_safetensors_header(path)
    message = caught.value.message
    assert message.startswith("10 tensor(s) have dtypes APR cannot store: ")
    assert all(f"'t{i:02d}' (BOOL)" in message for i in range(8))
    assert message.endswith(", ".join(f"'t{i:02d}' (BOOL)" for i in range(8)))
    assert "'t08'" not in message and "'t09'" not in message and "'ok'" not in message
    assert caught.value.path == os.fspath(path)
    assert "float32/float16/bfloat16" in caught.value.hint


@pytest.mark.parametrize("content", [b"version https://git-lfs.github.com/spec/v1\n", b"", b"\x10" + b"\x00" * 7 + b"{}"])
def test_not_a_safetensors_file(tmp_path, content):
    path = tmp_path / "m.safetensors"
    path.write_bytes(content)
    with pytest.raises(ConvertError) as caught:
        hi.read_safetensors_header(path)
    assert caught.value.message.startswith("not a valid safetensors file: ")
    assert "header too large" in caught.value.hint and caught.value.path == os.fspath(path)
    assert caught.value.__cause__ is not None


def test_header_limit_is_the_libraries_and_inclusive(tmp_path, monkeypatch):
    """The bound is safetensors' own MAX_HEADER_SIZE (100 MB); a header of exactly the bound is read."""
    assert hi._MAX_HEADER == 100_000_000
    path = save_st(tmp_path / "m.safetensors", {"a": np.zeros(2, np.float32)})
    length = struct.unpack("<Q", path.read_bytes()[:8])[0]
    monkeypatch.setattr(hi, "_MAX_HEADER", length)
    assert list(hi.read_safetensors_header(path)[0]) == ["a"]
    monkeypatch.setattr(hi, "_MAX_HEADER", length - 1)
    with pytest.raises(ConvertError) as caught:
        hi.read_safetensors_header(path)
    assert f"{length} bytes" in caught.value.message and caught.value.path == os.fspath(path)


def test_safetensors_view_is_the_open_descriptor(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"x")
    with open(path, "rb") as handle:
        assert hi._safetensors_view(handle, path) == f"/proc/self/fd/{handle.fileno()}"
        monkeypatch.setattr(hi.os.path, "exists", lambda p: False)  # no /proc (not Linux)
        assert hi._safetensors_view(handle, path) == os.fspath(path)


# ---- read_tensor_bytes / produce_payload ------------------------------------------------------------------

def test_truncated_tensor_is_refused(tmp_path):
    path = save_st(tmp_path / "m.safetensors", {"a": np.arange(64, dtype=np.float32)})
    tensor = hi.read_safetensors_header(path)[0]["a"]
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ConvertError) as caught:
        hi.read_tensor_bytes(tensor)
    assert "file ended inside tensor 'a'" in caught.value.message and caught.value.path == os.fspath(path)


def test_tensor_read_in_pieces(tmp_path, monkeypatch):
    """readinto may return fewer bytes than asked: the rest is read, none lost."""
    import contextlib

    value = np.arange(300, dtype=np.float32)
    path = save_st(tmp_path / "m.safetensors", {"a": value})
    tensor = hi.read_safetensors_header(path)[0]["a"]
    real_open = hi.open_regular

    class Short:
        def __init__(self, handle):
            self.handle = handle

        def seek(self, offset):
            return self.handle.seek(offset)

        def readinto(self, view):
            return self.handle.readinto(view[:100])

    @contextlib.contextmanager
    def short_open(*args, **kwargs):
        with real_open(*args, **kwargs) as handle:
            yield Short(handle)

    monkeypatch.setattr(hi, "open_regular", short_open)
    got = hi.read_tensor_bytes(tensor)
    assert got.dtype == np.uint8 and got.tobytes() == value.tobytes()


def test_produce_payload_passthrough_and_conversion():
    from apr.convert.targets import Target

    values = np.arange(8, dtype=np.float32) / 3
    raw = np.frombuffer(values.tobytes(), np.uint8)
    assert hi.produce_payload(raw, DType.F32, (8,), Target(DType.F32, passthrough=True)) is raw
    got = hi.produce_payload(raw, DType.F32, (2, 4), Target(DType.F16, passthrough=False))
    assert got.dtype == np.float16 and got.shape == (2, 4)
    assert np.array_equal(got, values.astype(np.float16).reshape(2, 4))


# ---- the source ---------------------------------------------------------------------------------------------

def test_missing_source(tmp_path):
    with pytest.raises(AprFileNotFoundError) as caught:
        hi.import_hf(tmp_path / "nope", tmp_path / "m.apr")
    assert caught.value.path == os.fspath(tmp_path / "nope") and ".gguf" in caught.value.hint


def test_unreadable_source_is_a_convert_error(tmp_path):
    source = tmp_path / ("x" * 300)  # ENAMETOOLONG: an OSError other than "not found"
    with pytest.raises(ConvertError) as caught:
        hi._source_kind(source)
    assert caught.value.message.startswith("cannot look at the source: ")
    assert os.strerror(36) in caught.value.message


def test_a_fifo_source_is_refused(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConvertError) as caught:
        hi.import_hf(fifo, tmp_path / "m.apr")
    assert "not a model folder or a regular file" in caught.value.message
    assert ".safetensors" in caught.value.hint and caught.value.path == os.fspath(fifo)
    assert not (tmp_path / "m.apr").exists()


def test_source_kinds(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    assert hi._source_kind(tmp_path) == "folder"
    assert hi._source_kind(tmp_path / "f") == "file"


def test_one_safetensors_file_reads_its_folders_config_and_tokenizer(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    (src / "model.safetensors").rename(src / "weights.safetensors")
    report = hi.import_hf(src / "weights.safetensors", tmp_path / "m.apr")
    _, metadata, flags = read(tmp_path / "m.apr")
    assert report.has_vocab and flags & HAS_VOCAB
    assert metadata["hidden_size"] == 32 and metadata["hf_architecture"] == "LlamaForCausalLM"


@pytest.mark.parametrize("name", ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                  "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt",
                                  "added_tokens.json"])
def test_one_file_beside_a_side_file_that_is_a_folder_is_refused(tmp_path, tokenizer_dir, name):
    """Each file read beside a lone .safetensors is checked first: a folder in its place is refused by name."""
    src = tiny(tmp_path / "src", tokenizer_dir)
    (src / "model.safetensors").rename(tmp_path / "weights.safetensors")
    for file in list(src.iterdir()):
        file.unlink()
    (tmp_path / "weights.safetensors").rename(src / "weights.safetensors")
    (src / name).mkdir()
    with pytest.raises(ConvertError) as caught:
        hi.collect_safetensors(src / "weights.safetensors")
    assert caught.value.path == os.fspath(src / name)


def test_a_folder_without_weights(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(AprFileNotFoundError) as caught:
        hi.import_hf(tmp_path / "src", tmp_path / "m.apr")
    assert "no model.safetensors or model.safetensors.index.json" in caught.value.message
    assert ".bin" in caught.value.hint and caught.value.path == os.fspath(tmp_path / "src")


def test_shards_are_read_from_the_index_with_their_metadata(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir, shards=3)
    expected = source_tensors(src)
    root, tensors, metadata = hi.collect_safetensors(src)
    assert root == src and sorted(tensors) == sorted(expected)
    assert len({t.file for t in tensors.values()}) == 3
    assert metadata == {"format": "pt"}
    hi.import_hf(src, tmp_path / "m.apr")
    with open_file(tmp_path / "m.apr") as reader:
        for name, value in expected.items():
            assert np.array_equal(np.asarray(reader.get_tensor(name)), value), name


def test_shard_metadata_is_merged(tmp_path):
    save_st(tmp_path / "a.safetensors", {"x": np.zeros(2, np.float32)}, {"format": "pt", "one": "1"})
    save_st(tmp_path / "b.safetensors", {"y": np.zeros(2, np.float32)}, {"two": "2"})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}))
    _root, tensors, metadata = hi.collect_safetensors(tmp_path)
    assert sorted(tensors) == ["x", "y"] and metadata == {"format": "pt", "one": "1", "two": "2"}


def test_a_tensor_in_two_shards_is_refused(tmp_path):
    save_st(tmp_path / "a.safetensors", {"x": np.zeros(2, np.float32), "w": np.zeros(1, np.float32)})
    save_st(tmp_path / "b.safetensors", {"y": np.zeros(2, np.float32), "w": np.zeros(1, np.float32)})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}))
    with pytest.raises(ConvertError) as caught:
        hi.collect_safetensors(tmp_path)
    assert caught.value.field == "w" and "'w' appears in two shards" in caught.value.message
    assert caught.value.path == os.fspath(tmp_path / "b.safetensors")


def test_a_missing_shard_is_not_found(tmp_path):
    save_st(tmp_path / "a.safetensors", {"x": np.zeros(2, np.float32)})
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}))
    with pytest.raises(AprFileNotFoundError):
        hi.collect_safetensors(tmp_path)


# ---- config.json --------------------------------------------------------------------------------------------

def test_no_config_is_refused_naming_the_flag(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    (src / "config.json").unlink()
    with pytest.raises(MissingConfigError) as caught:
        hi.import_hf(src, tmp_path / "m.apr")
    assert caught.value.field == "config.json" and "--allow-no-config" in caught.value.hint
    assert "config.json" in caught.value.message
    assert caught.value.path == os.fspath(src)
    assert not (tmp_path / "m.apr").exists()


def test_allow_no_config_reads_dimensions_from_the_tensors(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir, layers=3)
    vocab = config_of(src)["vocab_size"]
    (src / "config.json").unlink()
    report = hi.import_hf(src, tmp_path / "m.apr", allow_no_config=True)
    _, metadata, _ = read(tmp_path / "m.apr")
    assert metadata["architecture"] == "llama" == report.architecture  # evidence from the names
    assert "hf_architecture" not in metadata and report.hf_architecture is None
    assert (metadata["vocab_size"], metadata["hidden_size"], metadata["num_layers"], metadata["intermediate_size"]) \
        == (vocab, 32, 3, 64)
    assert "source_dtype" not in metadata


def test_allow_no_config_with_unknown_names_sets_no_architecture(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    save_st(src / "model.safetensors", {"encoder.block.weight": np.zeros((4, 4), np.float32)})
    report = hi.import_hf(src, tmp_path / "m.apr", allow_no_config=True)
    _, metadata, flags = read(tmp_path / "m.apr")
    assert "architecture" not in metadata and report.architecture is None
    assert not flags & HAS_VOCAB and report.has_vocab is False and not report.tied_embeddings


@pytest.mark.parametrize(("tensors", "expected"), [
    ({"model.embed_tokens.weight": (10, 4)}, {"vocab_size": 10, "hidden_size": 4}),
    ({"transformer.wte.weight": (11, 5)}, {"vocab_size": 11, "hidden_size": 5}),
    ({"wte.weight": (12, 6)}, {"vocab_size": 12, "hidden_size": 6}),
    ({"token_embd.weight": (13, 7)}, {"vocab_size": 13, "hidden_size": 7}),
    ({"model.embed_tokens.weight": (10,)}, {}),                   # not 2-D: no dimensions
    ({"model.embed_tokens.weight": (10, 4), "wte.weight": (3, 2)}, {"vocab_size": 10, "hidden_size": 4}),
    ({"model.layers.0.x": (1,), "model.layers.4.x": (1,), "model.layers.2.x": (1,)}, {"num_layers": 5}),
    ({"model.layers.x.y": (1,), "model.norm.weight": (1,), "layers.3.x": (1,)}, {}),
    ({"model.layers.0.mlp.gate_proj.weight": (9, 4)}, {"num_layers": 1, "intermediate_size": 9}),
    ({"model.layers.1.mlp.gate_proj.weight": (9, 4)}, {"num_layers": 2}),
])
def test_shapes_from_tensors(tensors, expected):
    sources = {n: hi.SourceTensor(n, Path("x"), DType.F32, shape, 0, 0) for n, shape in tensors.items()}
    assert hi._shapes_from_tensors(sources) == expected


def test_config_contradicting_the_tensors_is_refused_in_its_own_spelling(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    config = config_of(src)
    config["n_embd"] = config.pop("hidden_size") * 2   # GPT-2's spelling of hidden_size
    write_config(src, config)
    with pytest.raises(ConvertError) as caught:
        hi.import_hf(src, tmp_path / "m.apr")
    assert caught.value.message.startswith("config.json does not describe the tensors beside it")
    assert caught.value.field == "n_embd"
    assert caught.value.path == os.fspath(src / "config.json") and caught.value.hint == CONFIG_FIX
    assert not (tmp_path / "m.apr").exists()


def test_tensor_names_contradicting_themselves_without_config(tmp_path):
    """Without config.json the dimensions come from the names: the message says so, at the folder."""
    src = tmp_path / "src"
    src.mkdir()
    save_st(src / "model.safetensors", {"model.embed_tokens.weight": np.zeros((8, 4), np.float32),
                                        "model.layers.0.mlp.gate_proj.weight": np.zeros((6, 4), np.float32),
                                        "model.layers.0.mlp.up_proj.weight": np.zeros((7, 4), np.float32)})
    with pytest.raises(ConvertError) as caught:
        hi.import_hf(src, tmp_path / "m.apr", allow_no_config=True)
    assert caught.value.message.startswith("the tensor names does not describe the tensors beside it")
    assert caught.value.path == os.fspath(src) and caught.value.hint == CONFIG_FIX
    assert caught.value.field == "intermediate_size"


def test_a_config_error_is_given_the_config_path(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    config = config_of(src)
    config["hidden_size"] = "wide"
    write_config(src, config)
    with pytest.raises(ConvertError) as caught:
        hi.import_hf(src, tmp_path / "m.apr")
    assert caught.value.path == os.fspath(src / "config.json")


def test_a_config_error_with_its_own_path_keeps_it(tmp_path, tokenizer_dir, monkeypatch):
    src = tiny(tmp_path / "src", tokenizer_dir)

    def refuse(config):
        raise ConvertError("no", path="elsewhere.json")

    monkeypatch.setattr(hi, "metadata_from_hf_config", refuse)
    with pytest.raises(ConvertError) as caught:
        hi.import_hf(src, tmp_path / "m.apr")
    assert caught.value.path == "elsewhere.json"


def test_a_tokenizer_larger_than_the_embedding_is_refused(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    vocab = config_of(src)["vocab_size"]
    small = tiny(tmp_path / "small", tokenizer_dir, vocab=vocab - 1)
    with pytest.raises(ConvertError) as caught:
        hi.import_hf(small, tmp_path / "m.apr")
    assert caught.value.field == "vocab_size" and caught.value.path == os.fspath(small / "config.json")
    assert f"the tokenizer from {os.fspath(small)} has {vocab} tokens" in caught.value.message
    assert "--tokenizer DIR" in caught.value.hint
    with pytest.raises(ConvertError) as caught:
        hi.import_hf(small, tmp_path / "m.apr", tokenizer=src / "tokenizer.json")
    assert f"the tokenizer from {os.fspath(src / 'tokenizer.json')} has" in caught.value.message
    assert not (tmp_path / "m.apr").exists()


# ---- what is written --------------------------------------------------------------------------------------------

def test_skipped_buffers_and_an_empty_model(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    tensors = source_tensors(src)
    tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = np.ones(8, np.float32)
    save_st(src / "model.safetensors", tensors, {"format": "pt"})
    hi.import_hf(src, tmp_path / "m.apr")
    stored, metadata, _ = read(tmp_path / "m.apr")
    assert not any(n.endswith("inv_freq") for n in stored)
    assert metadata["param_count"] == sum(v.size for n, v in tensors.items() if not n.endswith("inv_freq"))
    only = tmp_path / "only"
    only.mkdir()
    save_st(only / "model.safetensors", {"model.rotary_emb.inv_freq": np.ones(8, np.float32)})
    with pytest.raises(ConvertError) as caught:
        hi.import_hf(only, tmp_path / "n.apr", allow_no_config=True)
    assert caught.value.message == "the model has no tensors" and caught.value.path == os.fspath(only)


def test_metadata_an_import_writes(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir, dtype="float16")
    (src / "generation_config.json").write_text(json.dumps({"do_sample": True, "temperature": 0.5}))
    save_st(src / "model.safetensors", {k: v for k, v in source_tensors(src).items()}, {"format": "pt", "who": "me"})
    out = tmp_path / "named.apr"
    hi.import_hf(src, out)
    stored, metadata, flags = read(out)
    tensors = source_tensors(src)
    assert metadata["name"] == "named"
    assert metadata["original_format"] == "safetensors"
    assert metadata["param_count"] == sum(v.size for v in tensors.values())
    assert metadata["total_size"] == sum(v.nbytes for v in tensors.values())
    assert metadata["source_metadata"] == {"format": "pt", "who": "me"}
    assert metadata["source_dtype"] == "float16"
    assert metadata["generation_config"] == {"do_sample": True, "temperature": 0.5}
    assert "tied_embeddings" not in metadata and "quantization" not in metadata
    assert flags & (HAS_VOCAB | QUANTIZED) == HAS_VOCAB
    assert all(dtype is DType.F16 for dtype, _ in stored.values())


def test_no_safetensors_metadata_and_no_generation_config(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    save_st(src / "model.safetensors", source_tensors(src))
    hi.import_hf(src, tmp_path / "m.apr")
    _, metadata, _ = read(tmp_path / "m.apr")
    assert "source_metadata" not in metadata and "generation_config" not in metadata


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("torch_dtype", "bfloat16", "bfloat16"),
    ("dtype", "float16", "float16"),       # transformers 5 spells it dtype
    ("torch_dtype", 16, None),            # not a string: not recorded
])
def test_source_dtype_from_either_spelling(tmp_path, tokenizer_dir, key, value, expected):
    src = tiny(tmp_path / "src", tokenizer_dir)
    config = config_of(src)
    config.pop("torch_dtype")
    config[key] = value
    write_config(src, config)
    hi.import_hf(src, tmp_path / "m.apr")
    assert read(tmp_path / "m.apr")[1].get("source_dtype") == expected


def test_torch_dtype_wins_over_dtype(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    write_config(src, {**config_of(src), "torch_dtype": "bfloat16", "dtype": "float16"})
    hi.import_hf(src, tmp_path / "m.apr")
    assert read(tmp_path / "m.apr")[1]["source_dtype"] == "bfloat16"


@pytest.mark.parametrize("embed", ["model.embed_tokens.weight", "transformer.wte.weight"])
def test_tied_embeddings_get_an_lm_head_copy(tmp_path, embed):
    src = tmp_path / "src"
    src.mkdir()
    value = np.arange(24, dtype=np.float32).reshape(6, 4)
    save_st(src / "model.safetensors", {embed: value, "other.weight": np.zeros((2, 2), np.float32)})
    report = hi.import_hf(src, tmp_path / "m.apr", allow_no_config=True)
    _, metadata, _ = read(tmp_path / "m.apr")
    assert report.tied_embeddings is True and metadata["tied_embeddings"] is True
    assert report.tensor_count == 3
    assert metadata["param_count"] == 24 + 4  # the copy is not a parameter
    with open_file(tmp_path / "m.apr") as reader:
        assert np.array_equal(np.asarray(reader.get_tensor("lm_head.weight")), value)


def test_no_embedding_means_no_tie(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    save_st(src / "model.safetensors", {"other.weight": np.zeros((2, 2), np.float32)})
    report = hi.import_hf(src, tmp_path / "m.apr", allow_no_config=True)
    stored, metadata, _ = read(tmp_path / "m.apr")
    assert report.tied_embeddings is False and "tied_embeddings" not in metadata
    assert list(stored) == ["other.weight"]


def test_an_existing_lm_head_is_not_replaced(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir, tied=False)
    report = hi.import_hf(src, tmp_path / "m.apr")
    _, metadata, _ = read(tmp_path / "m.apr")
    assert report.tied_embeddings is False and "tied_embeddings" not in metadata
    with open_file(tmp_path / "m.apr") as reader:
        assert np.array_equal(np.asarray(reader.get_tensor("lm_head.weight")),
                              source_tensors(src)["lm_head.weight"])


@pytest.mark.parametrize(("quant", "quantized_flag"), [
    (ImportQuant.F16, False), (ImportQuant.BF16, False), (ImportQuant.Q8, True), (ImportQuant.Q4, True),
    (ImportQuant.Q4_K, True),
])
def test_quantized_import_flags_record_and_fallbacks(tmp_path, tokenizer_dir, quant, quantized_flag):
    """hidden 32: Q4_K rows of 32 values fall back to F16, each named in the report."""
    src = tiny(tmp_path / "src", tokenizer_dir)
    report = hi.import_hf(src, tmp_path / "m.apr", quantize=quant)
    stored, metadata, flags = read(tmp_path / "m.apr")
    assert flags & (HAS_VOCAB | QUANTIZED) == HAS_VOCAB | (QUANTIZED if quantized_flag else 0)
    assert metadata["quantization"] == quant.quantization_record
    assert report.quantize == quant.value
    expected_fallbacks = [f"{name}: rows of {shape[-1]} values are not a multiple of 256: stored F16, not Q4_K"
                          for name, (_dtype, shape) in stored.items() if len(shape) == 2] \
        if quant is ImportQuant.Q4_K else []
    assert sorted(report.fallbacks) == sorted(expected_fallbacks)
    assert metadata["total_size"] == sum(
        __import__("apr.format.dtypes", fromlist=["expected_nbytes"]).expected_nbytes(d, s) for d, s in stored.values())


def test_progress_reports_bytes_written(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    calls: list[tuple[int, int]] = []
    hi.import_hf(src, tmp_path / "m.apr", progress=lambda done, total: calls.append((done, total)))
    stored, metadata, _ = read(tmp_path / "m.apr")
    assert len(calls) == len(stored)
    assert all(total == metadata["total_size"] for _, total in calls)
    assert calls[-1][0] == metadata["total_size"]
    assert all(a[0] < b[0] for a, b in itertools.pairwise(calls))


def test_the_written_file_is_checked_before_it_lands(tmp_path, tokenizer_dir, monkeypatch):
    src = tiny(tmp_path / "src", tokenizer_dir)
    hi._verify_written(len(read_count := source_tensors(src)))  # builds the checker only
    real = hi._verify_written
    monkeypatch.setattr(hi, "_verify_written", lambda n: real(n + 1))
    with pytest.raises(ConvertError) as caught:
        hi.import_hf(src, tmp_path / "m.apr")
    assert f"wrote {len(read_count)} tensors, expected {len(read_count) + 1}" in caught.value.message
    assert not (tmp_path / "m.apr").exists()


def test_verify_written_passes_a_good_file(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    hi.import_hf(src, tmp_path / "m.apr")
    count = len(read(tmp_path / "m.apr")[0])
    hi._verify_written(count)(os.fspath(tmp_path / "m.apr"))
    with pytest.raises(ConvertError) as caught:
        hi._verify_written(count - 1)(os.fspath(tmp_path / "m.apr"))
    assert caught.value.path == os.fspath(tmp_path / "m.apr")


@settings(max_examples=10, deadline=None)
@given(dtype=st.sampled_from(["float32", "float16", "bfloat16"]), tied=st.booleans())
def test_tensors_pass_through_byte_exact(tmp_path_factory, tokenizer_dir, dtype, tied):
    folder = tmp_path_factory.mktemp("pass")
    src = tiny(folder / "src", tokenizer_dir, dtype=dtype, tied=tied)
    hi.import_hf(src, folder / "m.apr")
    expected = source_tensors(src) if dtype != "bfloat16" else None
    with open_file(folder / "m.apr") as reader:
        for name, value in hi.collect_safetensors(src)[1].items():
            raw = hi.read_tensor_bytes(value).tobytes()
            assert bytes(reader.get_raw(name)) == raw, name
            if expected is not None:
                assert raw == expected[name].tobytes()


def test_the_embedded_tokenizer_is_the_folders(tmp_path, tokenizer_dir):
    """tokenizer.vocabulary is tokenizer.json's vocabulary in id order (the tokenizers library's word)."""
    from tokenizers import Tokenizer

    src = tiny(tmp_path / "src", tokenizer_dir)
    hi.import_hf(src, tmp_path / "m.apr")
    _, metadata, _ = read(tmp_path / "m.apr")
    vocab = Tokenizer.from_file(os.fspath(src / "tokenizer.json")).get_vocab()
    assert metadata["tokenizer.vocabulary"] == sorted(vocab, key=vocab.__getitem__)


def test_a_generation_config_id_past_the_embedding_is_refused(tmp_path, tokenizer_dir):
    src = tiny(tmp_path / "src", tokenizer_dir)
    vocab = config_of(src)["vocab_size"]
    (src / "generation_config.json").write_text(json.dumps({"eos_token_id": vocab}))
    with pytest.raises(ConvertError) as caught:
        hi.import_hf(src, tmp_path / "m.apr")
    assert f"0 … {vocab - 1}" in caught.value.message
    assert not (tmp_path / "m.apr").exists()
    (src / "generation_config.json").write_text(json.dumps({"eos_token_id": vocab - 1}))
    hi.import_hf(src, tmp_path / "m.apr")
    assert read(tmp_path / "m.apr")[1]["generation_config"] == {"eos_token_id": vocab - 1}


def test_an_existing_output_needs_force_and_never_an_input(tmp_path, tokenizer_dir):
    from apr.errors import OutputExistsError, OutputIsInputError

    src = tiny(tmp_path / "src", tokenizer_dir)
    out = tmp_path / "m.apr"
    out.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        hi.import_hf(src, out)
    assert out.read_bytes() == b"keep"
    hi.import_hf(src, out, force=True)
    assert read(out)[1]["hidden_size"] == 32
    tokenizer = tmp_path / "tok.json"
    tokenizer.write_bytes((src / "tokenizer.json").read_bytes())
    with pytest.raises(OutputIsInputError):
        hi.import_hf(src, tokenizer, tokenizer=tokenizer, force=True)
    with pytest.raises(OutputIsInputError):
        hi.import_hf(src / "model.safetensors", src / "model.safetensors", force=True)
    assert tokenizer.read_bytes() == (src / "tokenizer.json").read_bytes()


def test_a_tokenizer_override_is_embedded(tmp_path, tokenizer_dir):
    """--tokenizer names another tokenizer.json: its vocabulary is the one embedded."""
    src = tiny(tmp_path / "src", tokenizer_dir)
    other = tmp_path / "other"
    from tests.convert.tiny_hf import train_tokenizer as train

    train(other, vocab_size=300)
    hi.import_hf(src, tmp_path / "m.apr", tokenizer=other / "tokenizer.json")
    _, metadata, _ = read(tmp_path / "m.apr")
    vocab = json.loads((other / "tokenizer.json").read_text())["model"]["vocab"]
    assert metadata["tokenizer.vocabulary"][:len(vocab)] == sorted(vocab, key=vocab.__getitem__)
    assert len(metadata["tokenizer.vocabulary"]) < config_of(src)["vocab_size"]


@pytest.mark.parametrize("kind", ["fifo", "folder"])
def test_a_shard_replaced_by_a_non_file_is_a_convert_error(tmp_path, kind):
    """Between the header read and the tensor read the file may be swapped: a FIFO is never waited on."""
    path = tmp_path / "m.safetensors"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    tensor = hi.SourceTensor("a", path, DType.F32, (2,), 8, 8)
    with pytest.raises(ConvertError) as caught:
        hi.read_tensor_bytes(tensor)
    assert caught.value.path == os.fspath(path)


def test_produce_payload_dequantizes_a_packed_source():
    """A packed source (a GGUF K-quant) converted to another dtype goes through its float values."""
    from apr.convert.targets import Target, convert_values

    shape = (2, 256)
    values = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    packed = convert_values(values, shape, DType.Q4_K)
    got = hi.produce_payload(packed.data, DType.Q4_K, shape, Target(DType.F16, passthrough=False))
    assert got.dtype == np.float16 and got.shape == shape
    assert np.array_equal(got, packed.dequantize().astype(np.float16))


def test_a_shard_swapped_for_a_symlink_is_refused(tmp_path):
    """Tensor bytes are read without following a symlink (the folder was checked; a swapped-in link
    could point anywhere)."""
    real = save_st(tmp_path / "real.safetensors", {"a": np.arange(2, dtype=np.float32)})
    tensor = hi.read_safetensors_header(real)[0]["a"]
    link = tmp_path / "link.safetensors"
    link.symlink_to(real)
    with pytest.raises(ConvertError) as caught:
        hi.read_tensor_bytes(hi.SourceTensor("a", link, tensor.dtype, tensor.shape, tensor.begin, tensor.nbytes))
    assert caught.value.path == os.fspath(link)
    assert hi.read_tensor_bytes(tensor).tobytes() == np.arange(2, dtype=np.float32).tobytes()


@pytest.mark.parametrize("kind", ["fifo", "folder", "symlink"])
def test_a_header_of_a_non_file_is_refused(tmp_path, kind):
    real = save_st(tmp_path / "real.safetensors", {"a": np.arange(2, dtype=np.float32)})
    path = tmp_path / "m.safetensors"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path.symlink_to(real)
    with pytest.raises(ConvertError) as caught:
        hi.read_safetensors_header(path)
    assert caught.value.path == os.fspath(path)


def test_header_is_read_by_name_where_there_is_no_proc(tmp_path, monkeypatch):
    """Without /proc (not Linux) the safetensors library opens the file by its name."""
    path = save_st(tmp_path / "m.safetensors", {"a": np.arange(2, dtype=np.float32)}, {"k": "v"})
    real_exists = os.path.exists
    monkeypatch.setattr(hi.os.path, "exists", lambda p: False if str(p).startswith("/proc/") else real_exists(p))
    tensors, metadata = hi.read_safetensors_header(path)
    assert list(tensors) == ["a"] and metadata == {"k": "v"}
