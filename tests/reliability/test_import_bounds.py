"""Bounds before work for `apr import` (issue 14 §3, contracts/reliability-v1.yaml 010-012).

* 010: dimensions in config.json / GGUF metadata that are absurd, contradict the tensors or imply
  more than 10x the parameters present are refused before anything is written; accepted configs
  import byte for byte as they did without the check.
* 011: only regular files inside the model folder are read: a FIFO, a directory, a device or a
  symlink out, under any side-file name, is refused at once (never waited on); a symlink that stays
  inside is read.
* 012: every wrongly typed GGUF value and every hostile Hugging Face side file ends in the
  project's error (naming the file and key), never another exception.

Expected values come from the inputs (the shapes the builders wrote, the key that was changed),
and "exactly as before" from the same import with the check patched out.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apr.convert.gguf_import import import_gguf
from apr.convert.hf_import import import_hf
from apr.errors import AprError, AprFileNotFoundError, ConvertError
from tests.convert.tiny_hf import build_hf_folder, shapes, train_tokenizer
from tests.reliability.gguf_inputs import tiny_gguf

# The qwen2 model every HF test starts from: (config key, value it was built with).
DIMS = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
        "intermediate_size": 64, "head_dim": 16}
INT_KEYS = (*DIMS, "vocab_size", "max_position_embeddings")
TENSOR_KEYS = (*DIMS, "vocab_size")  # the keys a tensor shape pins down
SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json", "chat_template.jinja", "model.safetensors.index.json",
              "model-00001-of-00002.safetensors", "vocab.json", "merges.txt", "added_tokens.json")
SLOW_OK = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    train_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory, tok_dir):
    """A sharded qwen2 folder (so the index and the shards are side files too)."""
    return build_hf_folder(tmp_path_factory.mktemp("hf") / "model", "qwen2", tokenizer_from=tok_dir,
                           hidden=32, layers=2, heads=2, kv_heads=1, inter=64, shards=2)


@pytest.fixture(scope="module")
def hf_reference(hf_model, tmp_path_factory):
    """The .apr bytes of the untouched folder."""
    out = tmp_path_factory.mktemp("ref") / "m.apr"
    import_hf(hf_model, out)
    return out.read_bytes()


def _digest(folder: Path) -> dict[str, str]:
    return {os.fspath(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@contextlib.contextmanager
def _scratch():
    with tempfile.TemporaryDirectory(prefix="apr-bounds-") as folder:
        yield Path(folder)


def _copy(model: Path, into: Path) -> Path:
    folder = into / "model"
    shutil.copytree(model, folder)
    return folder


def _set_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _refused(run, out: Path) -> AprError:
    """Run an import that must be refused; check nothing was written; return the error."""
    with pytest.raises(AprError) as caught:
        run()
    assert not out.exists() and not any(p.name.startswith(f".{out.name}") for p in out.parent.iterdir())
    return caught.value


class Blocked(Exception):
    """Raised by `deadline` (not an OSError, so no code under test can take it for an I/O error)."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Fail instead of hanging: a blocked ``open`` of a FIFO is interrupted by SIGALRM."""
    def expire(signum, frame):
        raise Blocked(f"blocked for more than {seconds} s (waiting on a FIFO?)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- FALSIFY-RELIABILITY-010: dimensions against the tensors ------------------------------------


@pytest.mark.falsifies("FALSIFY-RELIABILITY-010")
def test_falsify_reliability_010_num_hidden_layers_1e9_is_refused(hf_model, tmp_path, capsys):
    from apr.cli.main import main

    folder = _copy(hf_model, tmp_path)
    _set_config(folder, num_hidden_layers=1e9)
    before = _digest(folder)
    err = _refused(lambda: import_hf(folder, tmp_path / "m.apr"), tmp_path / "m.apr")
    assert isinstance(err, ConvertError) and err.field == "num_hidden_layers"
    assert err.path == os.fspath(folder / "config.json") and err.hint
    assert "1000000000" in err.message and "2 layers" in err.message  # the value and what the tensors say
    assert main(["import", os.fspath(folder), "-o", os.fspath(tmp_path / "m.apr")]) == 5
    stderr = capsys.readouterr().err
    assert "num_hidden_layers" in stderr and "Traceback" not in stderr
    assert _digest(folder) == before and not (tmp_path / "m.apr").exists()


@pytest.mark.falsifies("FALSIFY-RELIABILITY-010")
@pytest.mark.parametrize("value", [2**63, 2**63 - 1, 2**32, 0])
def test_falsify_reliability_010_gguf_block_count_absurd_is_refused(tmp_path, value):
    from gguf import GGUFValueType as T

    path = tiny_gguf(tmp_path / "m.gguf", overrides={"llama.block_count": (value, T.UINT64, None)})
    err = _refused(lambda: import_gguf(path, tmp_path / "m.apr"), tmp_path / "m.apr")
    assert isinstance(err, ConvertError) and err.field == "llama.block_count" and str(value) in err.message


def hostile_numbers(key: str) -> st.SearchStrategy:
    """Huge, negative, zero and wrongly typed JSON values for an integer hyper-parameter."""
    return st.one_of(
        st.integers(min_value=2**24 + 1, max_value=2**70),  # huge, over every ceiling
        st.integers(min_value=2**24 + 1, max_value=2**60).map(float),  # 1e9 as JSON writes it: an integral float
        st.integers(max_value=-1), st.sampled_from([0, 0.0]),
        st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
        st.text(max_size=6), st.booleans(), st.lists(st.integers(0, 64), max_size=3),
        st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    )


@pytest.mark.falsifies("FALSIFY-RELIABILITY-010")
@SLOW_OK
@given(data=st.data(), key=st.sampled_from(INT_KEYS))
def test_falsify_reliability_010_hostile_integer_hyper_parameters_are_refused(hf_model, data, key):
    value = data.draw(hostile_numbers(key), label=key)
    with _scratch() as tmp:
        folder = _copy(hf_model, tmp)
        _set_config(folder, **{key: value})
        err = _refused(lambda: import_hf(folder, tmp / "m.apr"), tmp / "m.apr")
        assert isinstance(err, ConvertError), err
        assert err.field == key and err.path == os.fspath(folder / "config.json"), (err.field, err.path)


@pytest.mark.falsifies("FALSIFY-RELIABILITY-010")
@SLOW_OK
@given(data=st.data(), key=st.sampled_from(TENSOR_KEYS))
def test_falsify_reliability_010_values_contradicting_the_tensors_are_refused(hf_model, data, key):
    true = DIMS.get(key, 0) or json.loads((hf_model / "config.json").read_text())[key]
    value = data.draw(st.integers(1, 4 * true).filter(lambda v: v != true), label=key)
    with _scratch() as tmp:
        folder = _copy(hf_model, tmp)
        _set_config(folder, **{key: value})
        err = _refused(lambda: import_hf(folder, tmp / "m.apr"), tmp / "m.apr")
        assert isinstance(err, ConvertError) and err.field == key, (err.field, err)


@st.composite
def model_dims(draw):
    heads = draw(st.sampled_from([1, 2, 4]))
    return {
        "family": draw(st.sampled_from(["llama", "qwen2", "qwen3"])),
        "heads": heads,
        "kv_heads": draw(st.sampled_from([k for k in (1, 2, 4) if heads % k == 0])),
        "hidden": heads * draw(st.sampled_from([4, 8])),
        "layers": draw(st.integers(1, 3)),
        "inter": draw(st.sampled_from([8, 24])),
        "tied": draw(st.booleans()),
    }


@pytest.mark.falsifies("FALSIFY-RELIABILITY-010")
@SLOW_OK
@given(dims=model_dims())
def test_falsify_reliability_010_accepted_configs_import_exactly_as_before(tok_dir, dims):
    import apr.convert.hf_import as hf_import

    with _scratch() as tmp:
        folder = build_hf_folder(tmp / "model", dims["family"], tokenizer_from=tok_dir, hidden=dims["hidden"],
                                 layers=dims["layers"], heads=dims["heads"], kv_heads=dims["kv_heads"],
                                 inter=dims["inter"], tied=dims["tied"])
        (tmp / "checked").mkdir()
        (tmp / "unchecked").mkdir()
        import_hf(folder, tmp / "checked" / "m.apr")
        real = hf_import.check_dimensions
        hf_import.check_dimensions = lambda *a, **k: None
        try:
            import_hf(folder, tmp / "unchecked" / "m.apr")
        finally:
            hf_import.check_dimensions = real
        assert (tmp / "checked" / "m.apr").read_bytes() == (tmp / "unchecked" / "m.apr").read_bytes()


@pytest.mark.falsifies("FALSIFY-RELIABILITY-010")
@SLOW_OK
@given(dims=model_dims())
def test_falsify_reliability_010_implied_parameters_never_exceed_a_real_model(dims):
    """The ceiling's estimate is a lower bound: the tensors tiny_hf builds for those dimensions
    (an independent count) never hold fewer parameters, so a true config is never refused."""
    from apr.convert.dimensions import implied_parameters
    from apr.format.dtypes import element_count

    head_dim = dims["hidden"] // dims["heads"]
    built = shapes(dims["family"], vocab=50, hidden=dims["hidden"], layers=dims["layers"], heads=dims["heads"],
                   kv_heads=dims["kv_heads"], inter=dims["inter"], head_dim=head_dim, tied=dims["tied"])
    metadata = {"vocab_size": 50, "hidden_size": dims["hidden"], "num_layers": dims["layers"],
                "num_heads": dims["heads"], "num_kv_heads": dims["kv_heads"], "head_dim": head_dim,
                "intermediate_size": dims["inter"]}
    assert 0 < implied_parameters(metadata) <= sum(element_count(s) for s in built.values())


@pytest.mark.falsifies("FALSIFY-RELIABILITY-010")
def test_falsify_reliability_010_ceiling_holds_for_tensor_names_it_cannot_read(tmp_path):
    """Tensors under unknown names: no layer can be counted, so the 10x ceiling is what refuses."""
    from safetensors.numpy import save_file

    import numpy as np

    folder = tmp_path / "odd"
    folder.mkdir()
    save_file({"net.w0": np.zeros((64, 64), np.float32), "net.w1": np.zeros((64, 64), np.float32)},
              os.fspath(folder / "model.safetensors"))
    config = {"model_type": "odd", "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 64,
              "vocab_size": 8}
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 1}))
    import_hf(folder, tmp_path / "ok.apr")  # implies 25,088 parameters, 3x the 8,192 present: accepted
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 20}))  # 60x
    err = _refused(lambda: import_hf(folder, tmp_path / "m.apr"), tmp_path / "m.apr")
    assert isinstance(err, ConvertError) and err.field == "num_hidden_layers"


@pytest.mark.falsifies("FALSIFY-RELIABILITY-010")
@pytest.mark.parametrize(("key", "value"), [("rope_theta", 0), ("rope_theta", -1.0), ("rms_norm_eps", 0),
                                             ("rms_norm_eps", 2.0), ("rms_norm_eps", -1e-6)])
def test_falsify_reliability_010_float_hyper_parameters_out_of_range(hf_model, tmp_path, key, value):
    folder = _copy(hf_model, tmp_path)
    _set_config(folder, **{key: value})
    err = _refused(lambda: import_hf(folder, tmp_path / "m.apr"), tmp_path / "m.apr")
    assert isinstance(err, ConvertError) and err.field == key


GGUF_INT_KEYS = ("llama.block_count", "llama.embedding_length", "llama.attention.head_count",
                 "llama.attention.head_count_kv", "llama.feed_forward_length", "llama.context_length",
                 "llama.attention.key_length", "llama.vocab_size")
GGUF_TRUE = {"llama.block_count": 1, "llama.embedding_length": 8, "llama.attention.head_count": 2,
             "llama.attention.head_count_kv": 1, "llama.feed_forward_length": 16, "llama.attention.key_length": 4,
             "llama.vocab_size": 6}


@pytest.mark.falsifies("FALSIFY-RELIABILITY-010")
@SLOW_OK
@given(data=st.data(), key=st.sampled_from(GGUF_INT_KEYS))
def test_falsify_reliability_010_gguf_absurd_or_contradicting_hyper_parameters(data, key):
    from gguf import GGUFValueType as T

    true = GGUF_TRUE.get(key)
    candidates = [st.integers(2**24 + 1, 2**64 - 1).map(lambda v: (v, T.UINT64)), st.just((0, T.UINT32)),
                  st.integers(-(2**31), -1).map(lambda v: (v, T.INT32))]
    if true is not None:
        candidates.append(st.integers(1, 4 * true).filter(lambda v: v != true).map(lambda v: (v, T.UINT32)))
    value, vtype = data.draw(st.one_of(candidates), label=key)
    # Without attention.key_length, head_dim is embedding_length / head_count: shapes cannot tell a
    # wrong head_count from a wrong head_count_kv (heads 4, kv 2 has the shapes of heads 2, kv 1),
    # so either may be named.
    named = {key, "llama.attention.head_count_kv"} if key == "llama.attention.head_count" else {key}
    with _scratch() as tmp:
        path = tiny_gguf(tmp / "m.gguf", overrides={key: (value, vtype, None)})
        err = _refused(lambda: import_gguf(path, tmp / "m.apr"), tmp / "m.apr")
        assert isinstance(err, ConvertError) and err.field in named and err.path == os.fspath(path), err


@pytest.mark.falsifies("FALSIFY-RELIABILITY-010")
def test_falsify_reliability_010_tokenizer_larger_than_the_embedding(tmp_path):
    from gguf import GGUFValueType as T

    path = tiny_gguf(tmp_path / "m.gguf", vocab=6,
                     overrides={"tokenizer.ggml.tokens": (["a", "b", "c", "ab", "<s>", "</s>", "x", "y"], T.ARRAY, T.STRING),
                                "tokenizer.ggml.token_type": ([1] * 8, T.ARRAY, T.INT32),
                                "llama.vocab_size": (6, T.UINT32, None)})
    err = _refused(lambda: import_gguf(path, tmp_path / "m.apr"), tmp_path / "m.apr")
    assert isinstance(err, ConvertError) and "8 tokens" in err.message and "6 rows" in err.message


# --- FALSIFY-RELIABILITY-011: only regular files inside the folder ------------------------------


def _plant(folder: Path, name: str, kind: str, outside: Path) -> None:
    target = folder / name
    real = target.read_bytes() if target.is_file() else b"{}"
    if target.exists() or target.is_symlink():
        target.unlink()
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    elif kind == "symlink-out":
        (outside / name).write_bytes(real)
        target.symlink_to(outside / name)
    elif kind == "symlink-in":
        (folder / "blobs").mkdir(exist_ok=True)
        (folder / "blobs" / name).write_bytes(real)
        target.symlink_to(Path("blobs") / name)


@pytest.mark.falsifies("FALSIFY-RELIABILITY-011")
@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink-out"])
@pytest.mark.parametrize("name", SIDE_FILES)
def test_falsify_reliability_011_side_file_that_is_not_a_regular_file_inside_is_refused(
        hf_model, tmp_path, name, kind):
    folder = _copy(hf_model, tmp_path)
    (tmp_path / "outside").mkdir()
    _plant(folder, name, kind, tmp_path / "outside")
    with deadline(10):
        err = _refused(lambda: import_hf(folder, tmp_path / "m.apr"), tmp_path / "m.apr")
    assert isinstance(err, ConvertError), err
    assert name in err.message and err.path is not None and err.path.endswith(name)


@pytest.mark.falsifies("FALSIFY-RELIABILITY-011")
@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "tokenizer_config.json",
                                  "model.safetensors.index.json", "model-00001-of-00002.safetensors"])
def test_falsify_reliability_011_symlink_that_stays_inside_is_read(hf_model, hf_reference, tmp_path, name):
    folder = _copy(hf_model, tmp_path)
    _plant(folder, name, "symlink-in", tmp_path)
    import_hf(folder, tmp_path / "m.apr")
    assert (tmp_path / "m.apr").read_bytes() == hf_reference


@pytest.mark.falsifies("FALSIFY-RELIABILITY-011")
@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_falsify_reliability_011_gguf_and_tokenizer_sources_must_be_regular_files(hf_model, tmp_path, kind):
    if kind == "fifo":
        source = tmp_path / "m.gguf"
        os.mkfifo(source)
    elif kind == "directory":
        source = tmp_path / "m.gguf"
        source.mkdir()
    else:
        source = Path("/dev/zero")
    with deadline(10):
        err = _refused(lambda: import_gguf(source, tmp_path / "m.apr"), tmp_path / "m.apr")
        assert isinstance(err, ConvertError) and "not a regular file" in err.message
        if kind != "directory":  # a --tokenizer folder is a normal use
            err = _refused(lambda: import_hf(hf_model, tmp_path / "m.apr", tokenizer=source), tmp_path / "m.apr")
            assert isinstance(err, ConvertError) and "not a regular file" in err.message


@pytest.mark.falsifies("FALSIFY-RELIABILITY-011")
def test_falsify_reliability_011_open_regular_never_blocks_on_a_fifo(tmp_path):
    """The check on the open descriptor alone (the stat→open race: a FIFO swapped in after the
    stat): opened non-blocking, refused by fstat, within a second."""
    from apr.format.inputs import file_inside, open_regular, read_regular

    fifo = tmp_path / "model.safetensors.index.json"
    os.mkfifo(fifo)
    with deadline(5):
        with pytest.raises(ConvertError, match="FIFO"):
            open_regular(fifo, error=ConvertError)
        with pytest.raises(ConvertError, match="FIFO"):
            read_regular(fifo, limit=100, error=ConvertError, follow_symlinks=False)
    with pytest.raises(ConvertError, match="character device"):
        file_inside(Path("/dev"), "null", error=ConvertError)  # a device inside its folder
    with pytest.raises(AprFileNotFoundError):
        file_inside(tmp_path, "absent.json", error=ConvertError, required=True)
    assert file_inside(tmp_path, "absent.json", error=ConvertError) is None


# --- FALSIFY-RELIABILITY-012: wrongly typed GGUF values, hostile HF side files -----------------

# key -> the GGUF value types it may have (the import's contract, written out independently)
_INTS = {"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "UINT64", "INT64"}
GGUF_ACCEPTS = {
    "general.architecture": {"STRING"}, "general.name": {"STRING"},
    **{key: _INTS for key in GGUF_INT_KEYS},
    "llama.rope.freq_base": _INTS | {"FLOAT32", "FLOAT64"},
    "llama.attention.layer_norm_rms_epsilon": _INTS | {"FLOAT32", "FLOAT64"},
    "tokenizer.ggml.model": {"STRING"}, "tokenizer.ggml.pre": {"STRING"}, "tokenizer.chat_template": {"STRING"},
    "tokenizer.ggml.tokens": {"ARRAY[STRING]"}, "tokenizer.ggml.merges": {"ARRAY[STRING]"},
    "tokenizer.ggml.token_type": {f"ARRAY[{t}]" for t in _INTS},
    "tokenizer.ggml.bos_token_id": _INTS, "tokenizer.ggml.eos_token_id": _INTS,
}
_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=6)


@st.composite
def gguf_values(draw):
    """(value, GGUFValueType, sub_type, type name) of any GGUF type, small."""
    from gguf import GGUFValueType as T

    scalars = {
        "UINT8": st.integers(0, 255), "INT8": st.integers(-128, 127), "UINT16": st.integers(0, 2**16 - 1),
        "INT16": st.integers(-(2**15), 2**15 - 1), "UINT32": st.integers(0, 2**32 - 1),
        "INT32": st.integers(-(2**31), 2**31 - 1), "UINT64": st.integers(0, 2**64 - 1),
        "INT64": st.integers(-(2**63), 2**63 - 1), "FLOAT32": st.floats(width=32, allow_nan=False),
        "FLOAT64": st.floats(allow_nan=False), "BOOL": st.booleans(), "STRING": _TEXT,
    }
    name = draw(st.sampled_from(sorted(scalars)))
    if draw(st.booleans()):
        return draw(scalars[name]), T[name], None, name
    items = draw(st.lists(scalars[name], min_size=1, max_size=6))
    return items, T.ARRAY, T[name], f"ARRAY[{name}]"


@pytest.mark.falsifies("FALSIFY-RELIABILITY-012")
@SLOW_OK
@given(key=st.sampled_from(sorted(GGUF_ACCEPTS)), typed=gguf_values())
def test_falsify_reliability_012_every_wrongly_typed_gguf_value_is_the_projects_error(key, typed):
    value, vtype, sub_type, type_name = typed
    with _scratch() as tmp:
        path = tiny_gguf(tmp / "m.gguf", overrides={key: (value, vtype, sub_type)})
        try:
            import_gguf(path, tmp / "m.apr")
        except AprError as err:
            assert err.path == os.fspath(path) and err.hint, err
            if type_name not in GGUF_ACCEPTS[key]:
                assert isinstance(err, ConvertError) and err.field == key, (type_name, err)
            assert not (tmp / "m.apr").exists()
        else:
            assert type_name in GGUF_ACCEPTS[key], f"{key} as {type_name} {value!r} was imported"


def _gguf_case(key, value, vtype, sub=None):
    return pytest.param(key, (value, vtype, sub), id=f"{key}={value!r}"[:60])


def _reproducers():
    from gguf import GGUFValueType as T

    return [
        _gguf_case("general.architecture", 7, T.UINT32),
        _gguf_case("llama.context_length", "4096", T.STRING),
        _gguf_case("llama.context_length", [4096, 1], T.ARRAY, T.UINT32),
        _gguf_case("llama.block_count", "1", T.STRING),
        _gguf_case("llama.embedding_length", 8.0, T.FLOAT32),
        _gguf_case("llama.attention.head_count", "2", T.STRING),
        _gguf_case("llama.attention.head_count", [2, 2], T.ARRAY, T.UINT32),
        _gguf_case("llama.attention.head_count", 0, T.UINT32),
        _gguf_case("llama.rope.freq_base", "x", T.STRING),
        _gguf_case("llama.attention.layer_norm_rms_epsilon", [1e-6], T.ARRAY, T.FLOAT32),
        _gguf_case("tokenizer.ggml.tokens", [1, 2, 3, 4, 5, 6], T.ARRAY, T.INT32),
        _gguf_case("tokenizer.ggml.tokens", "abc", T.STRING),
        _gguf_case("tokenizer.ggml.token_type", [1.0, 1.0, 1.0, 1.0, 3.0, 3.0], T.ARRAY, T.FLOAT32),
        _gguf_case("tokenizer.ggml.bos_token_id", "4", T.STRING),
        _gguf_case("tokenizer.ggml.bos_token_id", -1, T.INT32),
        _gguf_case("tokenizer.ggml.bos_token_id", 6, T.UINT32),
        _gguf_case("tokenizer.ggml.merges", [1], T.ARRAY, T.INT32),
    ]


@pytest.mark.falsifies("FALSIFY-RELIABILITY-012")
@pytest.mark.parametrize(("key", "typed"), _reproducers())
def test_falsify_reliability_012_gguf_reproducers(tmp_path, key, typed):
    path = tiny_gguf(tmp_path / "m.gguf", overrides={key: typed})
    err = _refused(lambda: import_gguf(path, tmp_path / "m.apr"), tmp_path / "m.apr")
    assert isinstance(err, ConvertError) and err.field == key and err.path == os.fspath(path) and err.hint


@pytest.mark.falsifies("FALSIFY-RELIABILITY-012")
def test_falsify_reliability_012_lone_surrogate_in_a_gguf_string_is_refused(tmp_path, capsys):
    from gguf import GGUFValueType as T

    from apr.cli.main import main

    path = tiny_gguf(tmp_path / "m.gguf", overrides={"general.name": ("QQZ", T.STRING, None)})
    data = path.read_bytes()
    assert data.count(b"QQZ") == 1
    path.write_bytes(data.replace(b"QQZ", "\ud800".encode("utf-8", "surrogatepass")))
    err = _refused(lambda: import_gguf(path, tmp_path / "m.apr"), tmp_path / "m.apr")
    assert isinstance(err, ConvertError) and err.field == "general.name" and err.path == os.fspath(path)
    assert main(["import", os.fspath(path), "-o", os.fspath(tmp_path / "m.apr")]) == 5
    assert "Traceback" not in capsys.readouterr().err


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
# side file -> the keys the import checks (a wrong type there must be refused, naming the key)
HF_CHECKED = {
    "model.safetensors.index.json": ("weight_map",),
    "generation_config.json": ("eos_token_id", "bos_token_id", "pad_token_id", "temperature", "top_k", "top_p",
                               "max_length", "do_sample"),
    "tokenizer_config.json": ("chat_template", "eos_token", "bos_token"),
    "config.json": ("bos_token_id", "eos_token_id", "hidden_size", "num_hidden_layers"),
}


def _valid(name: str, key: str, value, original) -> bool:
    """Whether ``value`` is an acceptable type for ``key`` (the test's own statement of the rules)."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if name == "model.safetensors.index.json":  # {tensor: shard name}; a missing shard is "not found"
        return isinstance(value, dict) and bool(value) and all(isinstance(v, str) and v for v in value.values())
    if key in ("eos_token_id", "bos_token_id", "pad_token_id"):
        return value is None or is_int or (isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value))
    if key in ("temperature", "top_p"):
        return value is None or is_int or isinstance(value, float)
    if key in ("top_k", "max_length"):
        return value is None or (is_int and value >= 0)
    if key == "do_sample":
        return value is None or isinstance(value, bool)
    if key == "chat_template":  # one template, or transformers' list of named ones
        return value is None or isinstance(value, str) or (isinstance(value, list) and all(
            isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("template"), str)
            for t in value))
    if key in ("eos_token", "bos_token"):  # a token, or an AddedToken dict
        content = value.get("content") if isinstance(value, dict) else value
        return content is None or isinstance(content, str)
    # config dimensions: null means "not stated"; only the value the model was built with agrees
    return value is None or (not isinstance(value, bool) and isinstance(value, (int, float)) and value == original)


@pytest.mark.falsifies("FALSIFY-RELIABILITY-012")
@SLOW_OK
@given(name=st.sampled_from(sorted(HF_CHECKED)), data=st.data(), value=_JSON)
def test_falsify_reliability_012_hostile_hf_side_file_values_are_the_projects_error(hf_model, name, data, value):
    key = data.draw(st.sampled_from(HF_CHECKED[name] + (None,)), label="key (None: the whole document)")
    with _scratch() as tmp:
        folder = _copy(hf_model, tmp)
        path = folder / name
        document = json.loads(path.read_text()) if path.exists() else {}
        original = document.get(key) if key is not None else None
        document = value if key is None else {**document, key: value}
        path.write_text(json.dumps(document))
        # must refuse: a checked key of the wrong type, or a whole document that is not an object
        wrong = (not isinstance(value, dict)) if key is None else not _valid(name, key, value, original)
        try:
            import_hf(folder, tmp / "m.apr")
        except AprError as err:
            assert not (tmp / "m.apr").exists()
            if wrong:
                assert isinstance(err, ConvertError) and err.path == os.fspath(path), err
        else:
            assert not wrong, f"{name} {key}={value!r} was imported"


@pytest.mark.falsifies("FALSIFY-RELIABILITY-012")
@pytest.mark.parametrize(("name", "content", "field"), [
    ("model.safetensors.index.json", {"weight_map": {"a": 1}}, "weight_map.a"),
    ("model.safetensors.index.json", {"weight_map": [1]}, "weight_map"),
    ("model.safetensors.index.json", "[" * 100_000, "model.safetensors.index.json"),
    ("generation_config.json", {"eos_token_id": "x"}, "eos_token_id"),
    ("generation_config.json", {"eos_token_id": 10**6}, "eos_token_id"),
    ("generation_config.json", {"temperature": "hot"}, "temperature"),
    ("generation_config.json", '{"x": "\\ud800"}', "x"),
    ("tokenizer_config.json", {"chat_template": 5}, "chat_template"),
    ("tokenizer_config.json", {"chat_template": [1]}, "chat_template[0]"),
    ("tokenizer_config.json", {"eos_token": {"content": 5}}, "eos_token"),
    ("tokenizer_config.json", b'{"chat_template": "\xff"}', "tokenizer_config.json"),
    ("chat_template.jinja", b"\xff\xfe{{ x }}", "chat_template.jinja"),
    ("config.json", '{"model_type": "\\udc00"}', "model_type"),
    ("config.json", {"num_attention_heads": "2"}, "num_attention_heads"),
])
def test_falsify_reliability_012_hf_side_file_reproducers(hf_model, tmp_path, capsys, name, content, field):
    from apr.cli.main import main

    folder = _copy(hf_model, tmp_path)
    path = folder / name
    if name == "chat_template.jinja":
        _set_tokenizer_config(folder, chat_template=None)
    if isinstance(content, dict):
        base = json.loads(path.read_text()) if path.exists() else {}
        content = json.dumps({**base, **content})
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    err = _refused(lambda: import_hf(folder, tmp_path / "m.apr"), tmp_path / "m.apr")
    assert isinstance(err, ConvertError) and err.field == field and err.path == os.fspath(path), err
    assert main(["import", os.fspath(folder), "-o", os.fspath(tmp_path / "m.apr")]) == 5
    assert "Traceback" not in capsys.readouterr().err


def _set_tokenizer_config(folder: Path, **changes) -> None:
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.update(changes)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def test_chat_template_list_takes_the_default(hf_model, tmp_path):
    from apr.format import open_file

    folder = _copy(hf_model, tmp_path)
    _set_tokenizer_config(folder, chat_template=[{"name": "tool_use", "template": "T"},
                                                 {"name": "default", "template": "D"}])
    import_hf(folder, tmp_path / "m.apr")
    with open_file(tmp_path / "m.apr") as reader:
        assert reader.metadata["chat_template"] == "D"
