"""The ``--init`` gate step by step on tiny hand-made checkpoints (no training): each refusal's
FALSIFY id, exit code, field and hint, and the weights it returns when it passes (issue 23)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from apr.errors import (
    EXIT_NOT_FOUND,
    EXIT_VALIDATION,
    ArchitectureMismatchError,
    InitCheckpointError,
    UnsupportedArchitectureError,
)
from apr.format import Flags, save_file
from apr.tokenizer import TokenizerRecord
from apr.train.checkpoint import checkpoint_metadata
from apr.train.config import ModelConfig
from apr.train.init_checkpoint import (
    BAD_MAGIC,
    BAD_METADATA,
    BAD_TENSORS,
    MISSING,
    check_init_path,
    load_init_checkpoint,
)

CONFIG = ModelConfig("llama", vocab_size=10, hidden_size=4, num_layers=1, num_heads=2, num_kv_heads=1,
                     intermediate_size=6, head_dim=2, max_position_embeddings=64)
TOKENIZER = TokenizerRecord(vocabulary=("a", "b", "ab"), merges=("a b",))


def weights(config: ModelConfig = CONFIG, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in config.parameter_shapes().items()}


def write(path: Path, config: ModelConfig = CONFIG, *, tensors: dict | None = None, drop=(), changes=None,
          remove=(), tokenizer: TokenizerRecord | None = None) -> Path:
    metadata, flags = checkpoint_metadata(config, tokenizer)
    metadata.update(changes or {})
    for key in remove:
        metadata.pop(key)
    all_tensors = {**weights(config), **(tensors or {})}
    for name in drop:
        all_tensors.pop(name)
    save_file(all_tensors, path, metadata, flags)
    return path


def refused(path: Path, **kwargs) -> InitCheckpointError:
    with pytest.raises(InitCheckpointError) as info:
        load_init_checkpoint(path, **kwargs)
    error = info.value
    assert error.message.startswith(f"{error.falsifier}: ") and error.path == os.fspath(path)
    return error


def test_falsifier_ids() -> None:
    assert (MISSING, BAD_MAGIC, BAD_METADATA, BAD_TENSORS) == (
        "FALSIFY-APR-PRETRAIN-INIT-003", "FALSIFY-APR-PRETRAIN-INIT-004", "FALSIFY-APR-PRETRAIN-INIT-005",
        "FALSIFY-APR-PRETRAIN-INIT-011")


# --- steps 1-2: the path and the magic ------------------------------------------------------------

@pytest.mark.parametrize("folder", [False, True])
def test_missing_or_folder_exits_3(tmp_path: Path, folder: bool) -> None:
    target = tmp_path / "x.apr"
    if folder:
        target.mkdir()
    with pytest.raises(InitCheckpointError) as info:
        check_init_path(target)
    error = info.value
    what = "is a folder, not a file" if folder else "does not exist or is unreadable"
    assert error.message == f"{MISSING}: --init path {what}: {os.fspath(target)}"
    assert (error.falsifier, error.exit_code, error.field, error.path) == (MISSING, EXIT_NOT_FOUND, "--init",
                                                                          os.fspath(target))
    assert error.hint == "pass an epoch checkpoint, e.g. --init RUN/ckpt/epoch-004.apr"


@pytest.mark.parametrize("content", [b"", b"A", b"APR"])
def test_too_short_for_the_magic(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.apr"
    path.write_bytes(content)
    with pytest.raises(InitCheckpointError) as info:
        check_init_path(path)
    error = info.value
    assert error.message == (f"{BAD_MAGIC}: --init file too short to contain APR magic bytes "
                             f"({len(content)} bytes)")
    assert (error.falsifier, error.exit_code, error.field, error.offset) == (BAD_MAGIC, EXIT_VALIDATION, "--init", 0)
    assert error.hint == "the file is empty or truncated; re-copy it"
    assert error.path == os.fspath(path)


def test_exactly_the_magic_passes_steps_1_and_2(tmp_path: Path) -> None:
    path = tmp_path / "x.apr"
    path.write_bytes(b"APR\x00")
    assert check_init_path(os.fspath(path)) == path
    path.write_bytes(b"APR\x00" + bytes(10))
    assert check_init_path(path) == path


@pytest.mark.parametrize(("magic", "legacy"), [(b"APRN", True), (b"APR1", True), (b"APR2", True),
                                               (b"APR3", False), (b"GGUF", False), (b"apr\x00", False)])
def test_wrong_magic(tmp_path: Path, magic: bytes, legacy: bool) -> None:
    path = tmp_path / "x.apr"
    path.write_bytes(magic + bytes(60))
    with pytest.raises(InitCheckpointError) as info:
        check_init_path(path)
    error = info.value
    assert error.message == (f"{BAD_MAGIC}: --init file is not an APR v2 file (magic={list(magic)}, "
                             f"expected [65, 80, 82, 0])")
    assert error.path == os.fspath(path)
    assert (error.falsifier, error.exit_code, error.field, error.offset) == (BAD_MAGIC, EXIT_VALIDATION, "--init", 0)
    assert error.hint == ("APR v1 files cannot initialise training; re-export the model as APR v2" if legacy else
                          "convert it first: `apr import` for safetensors/GGUF, or pass an `apr pretrain` checkpoint")


# --- the whole gate passing -----------------------------------------------------------------------

def test_a_good_checkpoint_loads_intact(tmp_path: Path) -> None:
    path = write(tmp_path / "x.apr")
    loaded = load_init_checkpoint(os.fspath(path), target=CONFIG)
    assert loaded.path == os.fspath(path) and loaded.config == CONFIG
    expected = weights()
    assert sorted(loaded.tensors) == sorted(expected)
    for name, array in loaded.tensors.items():
        assert array.dtype == np.float32 and array.flags.writeable
        np.testing.assert_array_equal(array, expected[name])
    written = checkpoint_metadata(CONFIG, None)[0]
    assert {key: loaded.metadata.get(key, "absent") for key in written} == written
    assert loaded.tokenizer is None


def test_the_embedded_tokenizer_comes_back(tmp_path: Path) -> None:
    loaded = load_init_checkpoint(write(tmp_path / "x.apr", tokenizer=TOKENIZER))
    assert loaded.tokenizer is not None and loaded.tokenizer.vocabulary == TOKENIZER.vocabulary
    assert loaded.tokenizer.merges == TOKENIZER.merges


def test_half_precision_weights_are_read_as_f32(tmp_path: Path) -> None:
    half = {name: array.astype(np.float16) for name, array in weights().items()}
    loaded = load_init_checkpoint(write(tmp_path / "x.apr", tensors=half))
    for name, array in loaded.tensors.items():
        assert array.dtype == np.float32
        np.testing.assert_array_equal(array, half[name].astype(np.float32))


# --- step 3: header and metadata ------------------------------------------------------------------

def test_unreadable_header(tmp_path: Path) -> None:
    path = tmp_path / "x.apr"
    path.write_bytes(b"APR\x00" + bytes(range(60)))
    error = refused(path)
    assert (error.falsifier, error.exit_code, error.field) == (BAD_METADATA, EXIT_VALIDATION, "--init")
    assert "--init file has APR magic but an unreadable header, index or metadata: " in error.message
    assert error.hint


# --- step 4: the registry and the claim -----------------------------------------------------------

def test_an_unimplemented_architecture_is_the_registrys_refusal(tmp_path: Path) -> None:
    path = write(tmp_path / "x.apr", changes={"architecture": "gpt2", "hf_architecture": "GPT2LMHeadModel",
                                              "hf_model_type": "gpt2", "model_type": "gpt2"})
    with pytest.raises(UnsupportedArchitectureError) as info:
        load_init_checkpoint(path)
    assert info.value.path == os.fspath(path)


def test_a_mis_stamped_claim_is_an_architecture_mismatch(tmp_path: Path) -> None:
    qwen2 = CONFIG.with_(family="qwen2")
    path = write(tmp_path / "x.apr", qwen2, changes={"architecture": "llama", "hf_architecture": "LlamaForCausalLM",
                                                     "hf_model_type": "llama", "model_type": "llama"})
    with pytest.raises(ArchitectureMismatchError) as info:
        load_init_checkpoint(path)
    assert info.value.path == os.fspath(path)


def test_without_an_architecture_claim_the_hf_fields_decide(tmp_path: Path) -> None:
    loaded = load_init_checkpoint(write(tmp_path / "x.apr", remove=("architecture",)))
    assert loaded.config == CONFIG


@pytest.mark.parametrize(("drop", "extra"), [(("model.norm.weight",), {}),
                                             (("model.norm.weight", "model.layers.0.mlp.up_proj.weight"), {}),
                                             (("model.norm.weight",),
                                              {"model.layers.0.self_attn.o_proj.bias": np.ones(4, np.float32)}),
                                             ((), {"model.layers.0.self_attn.o_proj.bias": np.ones(4, np.float32)})])
def test_missing_or_foreign_tensor_names(tmp_path: Path, drop, extra) -> None:
    error = refused(write(tmp_path / "x.apr", drop=drop, tensors=extra))
    assert (error.falsifier, error.exit_code, error.field) == (BAD_TENSORS, EXIT_VALIDATION, "tensors")
    assert error.message.startswith(f"{BAD_TENSORS}: --init tensors do not match the llama architecture: ")
    from apr.arch import REGISTRY
    from apr.arch.schema import schema_problems

    names = [name for name in {**weights(), **extra} if name not in drop]
    assert error.message == (f"{BAD_TENSORS}: --init tensors do not match the llama architecture: "
                             + "; ".join(schema_problems(REGISTRY["llama"].schema, names)))
    assert error.hint == "the file lost or gained tensors; re-export the checkpoint from its source"


# --- steps 5-6: the shape from the metadata, and --config -----------------------------------------

@pytest.mark.parametrize("key", ["hidden_size", "num_layers", "vocab_size"])
def test_missing_dimension(tmp_path: Path, key: str) -> None:
    error = refused(write(tmp_path / "x.apr", remove=(key,)))
    assert (error.falsifier, error.exit_code, error.field) == (BAD_METADATA, EXIT_VALIDATION, key)
    assert error.message.startswith(f"{BAD_METADATA}: --init APR file has missing or invalid architecture metadata "
                                    "(hidden_size, num_heads, num_layers, vocab_size, ...): ")
    assert error.hint == "re-export the checkpoint with its config, or stamp the missing fields"


def test_target_shape_must_match(tmp_path: Path) -> None:
    path = write(tmp_path / "x.apr")
    error = refused(path, target=CONFIG.with_(num_layers=2, intermediate_size=8))
    assert error.message == (f"{BAD_METADATA}: --init architecture does not match --config: "
                             "num_layers: 1 != 2; intermediate_size: 6 != 8")
    assert (error.falsifier, error.exit_code, error.field) == (BAD_METADATA, EXIT_VALIDATION, "--config")
    assert error.hint == "drop --config (the shape comes from the checkpoint) or pass the matching config.json"
    # fields outside the shape (rope_theta) are not a mismatch
    assert load_init_checkpoint(path, target=CONFIG.with_(rope_theta=5.0)).config == CONFIG


# --- step 7: metadata against tensors -------------------------------------------------------------

def test_metadata_dimension_the_tensors_contradict(tmp_path: Path) -> None:
    error = refused(write(tmp_path / "x.apr", changes={"intermediate_size": 8}))
    assert (error.falsifier, error.exit_code, error.field) == (BAD_TENSORS, EXIT_VALIDATION, "intermediate_size")
    assert error.message.startswith(f"{BAD_TENSORS}: --init tensors do not match the architecture in its "
                                    "metadata: metadata disagrees with the tensors: intermediate_size = 8")
    assert error.hint and "apr inspect" in error.hint


def test_one_misshapen_tensor(tmp_path: Path) -> None:
    name = "model.layers.0.mlp.down_proj.weight"
    error = refused(write(tmp_path / "x.apr", tensors={name: np.zeros((4, 5), np.float32)}))
    assert error.message == (f"{BAD_TENSORS}: --init tensors do not match the architecture in its metadata: "
                             f"{name}: shape [4, 5] != expected [4, 6]")
    assert (error.falsifier, error.exit_code, error.field) == (BAD_TENSORS, EXIT_VALIDATION, "tensors")
    assert error.hint == "the metadata dims and the tensors disagree; re-export the checkpoint from its source"


def bad_shapes(count: int) -> dict[str, np.ndarray]:
    """``count`` tensors of layer 0 with one column too many (the names and layer count stay right)."""
    names = [name for name, shape in CONFIG.parameter_shapes().items()
             if name.startswith("model.layers.0.") and len(shape) == 2 and "q_proj" not in name
             and "k_proj" not in name and "gate_proj" not in name]
    names += ["model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight"]
    chosen = names[:count]
    assert len(chosen) == count
    shapes = CONFIG.parameter_shapes()
    return {name: np.zeros(tuple(shapes[name][:-1]) + (shapes[name][-1] + 1,), np.float32) for name in chosen}


@pytest.mark.parametrize("count", [5, 6])
def test_problem_lists_are_cut_after_eight(tmp_path: Path, count: int) -> None:
    # plus as many dtype problems below: the count of problems crosses 8 between the two cases
    tensors = bad_shapes(count)
    quantized = {name: np.zeros(shape, np.int32) for name, shape in CONFIG.parameter_shapes().items()
                 if name not in tensors and name.startswith("model.layers.0.")}
    chosen = dict(list(quantized.items())[:3])
    error = refused(write(tmp_path / "x.apr", tensors={**tensors, **chosen}))
    total = count + 3
    shown = error.message.split(": --init tensors do not match the architecture in its metadata: ", 1)[1]
    parts = shown.split("; ")
    if total > 8:
        assert parts[8] == f"... ({total} in all)" and len(parts) == 9
        parts = parts[:8]
    else:
        assert "in all" not in shown and len(parts) == total
    assert all(part.startswith("model.layers.0.") and part.endswith(("]", "(quantized weights cannot train)"))
               for part in parts)


def test_quantized_weights_cannot_train(tmp_path: Path) -> None:
    name = "model.layers.0.mlp.up_proj.weight"
    error = refused(write(tmp_path / "x.apr", tensors={name: np.zeros((6, 4), np.int32)}))
    assert error.message.endswith(f"{name}: dtype I32 is not F32/F16/BF16 (quantized weights cannot train)")
    assert error.falsifier == BAD_TENSORS and error.field == "tensors"


# --- step 8: the weights themselves --------------------------------------------------------------

@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights(tmp_path: Path, value: float) -> None:
    name = "model.norm.weight"
    array = np.ones(4, np.float32)
    array[2] = value
    error = refused(write(tmp_path / "x.apr", tensors={name: array}))
    assert error.message == f"{BAD_TENSORS}: --init tensors hold NaN or Inf: {name}"
    assert (error.falsifier, error.exit_code, error.field) == (BAD_TENSORS, EXIT_VALIDATION, "tensors")
    assert error.hint == "the checkpoint was written from a diverged run; use an earlier epoch"


def test_non_finite_names_are_cut_after_eight(tmp_path: Path) -> None:
    poisoned = {name: np.full(shape, np.nan, np.float32) for name, shape in CONFIG.parameter_shapes().items()}
    error = refused(write(tmp_path / "x.apr", tensors=poisoned))
    listed = error.message.split("hold NaN or Inf: ", 1)[1].split(", ")
    assert listed == list(CONFIG.parameter_shapes())[:8]


# --- the embedded tokenizer -----------------------------------------------------------------------

def test_malformed_embedded_tokenizer(tmp_path: Path) -> None:
    path = write(tmp_path / "x.apr", tokenizer=TOKENIZER, changes={"tokenizer.merges": 5})
    error = refused(path)
    assert (error.falsifier, error.exit_code, error.field) == (BAD_METADATA, EXIT_VALIDATION, "tokenizer.merges")
    assert error.message.startswith(f"{BAD_METADATA}: --init embedded tokenizer is malformed: ")
    assert error.hint == "re-stamp it: apr stamp FILE --tokenizer DIR -o STAMPED.apr"


def test_flags_of_the_fixture() -> None:  # the helper writes HAS_VOCAB only with a tokenizer
    assert checkpoint_metadata(CONFIG, TOKENIZER)[1] == int(Flags.LAYOUT_ROW_MAJOR | Flags.HAS_VOCAB)


def test_tensor_names_decide_a_tied_head(tmp_path: Path) -> None:
    # the metadata says untied, but there is no lm_head.weight: the tensors win (no INIT-011)
    loaded = load_init_checkpoint(write(tmp_path / "x.apr", changes={"tied_embeddings": False}))
    assert loaded.config.tie_word_embeddings is True and "lm_head.weight" not in loaded.tensors


def test_a_window_the_family_lacks_is_the_registrys_refusal_naming_the_file(tmp_path: Path) -> None:
    qwen2 = CONFIG.with_(family="qwen2")
    path = write(tmp_path / "x.apr", qwen2, changes={"sliding_window": 4})
    with pytest.raises(UnsupportedArchitectureError) as info:
        load_init_checkpoint(path)
    assert info.value.path == os.fspath(path)


def test_without_any_claim_the_tensor_names_decide(tmp_path: Path) -> None:
    path = write(tmp_path / "x.apr", remove=("architecture", "hf_architecture", "hf_model_type", "model_type"))
    assert load_init_checkpoint(path).config == CONFIG


def test_an_unreadable_header_keeps_the_readers_hint(tmp_path: Path) -> None:
    from apr.errors import FormatError
    from apr.format import open_file

    path = tmp_path / "x.apr"
    path.write_bytes(b"APR\x00" + bytes(60))
    with pytest.raises(FormatError) as reader_error:
        open_file(path)
    error = refused(path)
    assert error.hint == reader_error.value.hint and error.hint
    assert error.message.endswith(reader_error.value.message)


def test_an_unreadable_header_without_a_hint_gets_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import apr.format
    from apr.errors import FormatError

    def fail(path, **kwargs):
        raise FormatError("bad index")

    monkeypatch.setattr(apr.format, "open_file", fail)
    path = tmp_path / "x.apr"
    path.write_bytes(b"APR\x00" + bytes(60))
    error = refused(path)
    assert error.hint == "re-export the checkpoint"
    assert error.message == (f"{BAD_METADATA}: --init file has APR magic but an unreadable header, index or "
                             "metadata: bad index")
