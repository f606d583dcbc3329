"""Contract arch-registry-v1: the registry of architectures implemented exactly, and refusal.

FALSIFY-ARCH-REG-001 is pure (Hypothesis over names and configs); 002-004 build tiny real models
with transformers (skipped without it: `requires: [transformers]`) and take expected values from
transformers, never from our own output.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import apr.arch.resolve as arch_resolve
from tests.arch.hf_models import NOT_IMPLEMENTED as NOT_IMPLEMENTED_MODELS
from apr.arch import IMPLEMENTED, NOT_IMPLEMENTED, REGISTRY
from apr.arch.registry import slug_of
from apr.cli.main import main

# --- FALSIFY-ARCH-REG-001: the registry, as a pure function ------------------------------------


def resolve_architecture(*args, **kwargs):
    """Looked up at each call, so a declared mutant of `apr.arch.resolve` is the one under test."""
    return arch_resolve.resolve_architecture(*args, **kwargs)


def _names(family: str, layers: int, tied: bool) -> list[str]:
    schema = REGISTRY[family].schema
    names = list(schema.global_required) + ([] if tied else ["lm_head.weight"])
    names += [f"model.layers.{i}.{suffix}" for i in range(layers) for suffix in schema.layer_required]
    return names


_FOREIGN = ("pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight", "mlp.experts.0.up_proj.weight",
            "mlp.gate.weight", "self_attn.qkv_proj.weight", "mlp.gate_up_proj.weight", "self_attn.o_proj.bias",
            "self_attn.q_proj.weight", "mlp.up_proj.weight")


@pytest.mark.falsifies("FALSIFY-ARCH-REG-001")
@given(family=st.sampled_from(IMPLEMENTED), layers=st.integers(1, 6), tied=st.booleans(), data=st.data())
def test_falsify_arch_reg_001_schema_decides(family, layers, tied, data):
    names = _names(family, layers, tied)
    clean = resolve_architecture(family, {}, data.draw(st.permutations(names)))
    assert clean.ok and clean.spec.model_type == family
    fault = data.draw(st.sampled_from(["extra", "drop"]))
    if fault == "extra":
        # foreign to this family: Phi-3's fused tensors are llama's strangers, and the reverse
        suffix = data.draw(st.sampled_from([s for s in _FOREIGN
                                            if not REGISTRY[family].schema.knows(f"model.layers.0.{s}")]))
        bad = f"model.layers.{data.draw(st.integers(0, layers - 1))}.{suffix}"
        faulty = names + [bad]
    else:
        bad = data.draw(st.sampled_from([n for n in names if n != "lm_head.weight"]))
        faulty = [n for n in names if n != bad]
    result = resolve_architecture(family, {}, faulty)
    assert not result.ok and result.refusal.architecture == family
    assert any(bad in reason for reason in result.refusal.reasons), result.refusal.reasons


@pytest.mark.falsifies("FALSIFY-ARCH-REG-001")
@given(name=st.sampled_from(sorted(NOT_IMPLEMENTED)) | st.text(min_size=1, max_size=20).filter(
    lambda s: slug_of(s) is None), family=st.sampled_from(IMPLEMENTED))
def test_falsify_arch_reg_001_unimplemented_refused(name, family):
    result = resolve_architecture(name, {}, _names(family, 2, False))  # even with llama-shaped tensors
    assert not result.ok and result.refusal.architecture == name
    assert repr(name) in result.refusal.message


_FLAGS = [
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "llama3"),
    ({"rope_parameters": {"rope_type": "yarn", "factor": 4.0}}, "yarn"),
    ({"rope_scaling": {"type": "linear", "factor": 2.0}}, "linear"),
    ({"use_sliding_window": True, "sliding_window": 8, "max_position_embeddings": 128}, "sliding-window"),
    ({"final_logit_softcapping": 30.0}, "final_logit_softcapping"),
    ({"attn_logit_softcapping": 50.0}, "attn_logit_softcapping"),
    ({"hidden_act": "gelu_pytorch_tanh"}, "gelu_pytorch_tanh"),
    ({"mlp_bias": True}, "mlp_bias"),
]


# the flags a family's own module computes (mistral's window, gemma's GELU)
_HONOURED = {("mistral", "sliding-window"), ("phi3", "sliding-window"), ("gemma", "gelu_pytorch_tanh"),
             ("gemma2", "sliding-window"), ("gemma2", "gelu_pytorch_tanh"), ("gemma2", "final_logit_softcapping"),
             ("gemma2", "attn_logit_softcapping")}


@pytest.mark.falsifies("FALSIFY-ARCH-REG-001")
@given(family=st.sampled_from(IMPLEMENTED), flag=st.sampled_from(_FLAGS))
def test_falsify_arch_reg_001_flags_refused(family, flag):
    settings, word = flag
    if (family, word) in _HONOURED:
        assert resolve_architecture(family, settings).ok
        return
    result = resolve_architecture(family, settings)
    assert not result.ok and any(word in reason for reason in result.refusal.reasons), result


@pytest.mark.falsifies("FALSIFY-ARCH-REG-001")
def test_falsify_arch_reg_001_inactive_windows_accepted():
    # qwen2's default config: a window that use_sliding_window switches off; a window over the context
    assert resolve_architecture("qwen2", {"use_sliding_window": False, "sliding_window": 4096}).ok
    assert resolve_architecture("llama", {"sliding_window": 256, "max_position_embeddings": 128}).ok
    assert resolve_architecture("qwen2", {"attention_bias": True}).ok  # qwen2 has its q/k/v biases
    assert not resolve_architecture("llama", {"attention_bias": True}).ok


# --- transformers-built models -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from tests.convert.tiny_hf import train_tokenizer

    folder = tmp_path_factory.mktemp("tok")
    train_tokenizer(folder)
    return folder


def _vocab(tokenizer_dir) -> int:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(os.fspath(tokenizer_dir / "tokenizer.json")).get_vocab_size()


def _imported(tmp_path, tokenizer_dir, model_type, **overrides):
    pytest.importorskip("transformers")
    from apr.convert.hf_import import import_hf
    from tests.arch.hf_models import build_model, save_model

    model = build_model(model_type, _vocab(tokenizer_dir), **overrides)
    source = save_model(model, tmp_path / f"{model_type}-hf", tokenizer_dir)
    out = tmp_path / f"{model_type}.apr"
    import_hf(source, out)
    return model, source, out


@pytest.mark.falsifies("FALSIFY-ARCH-REG-002")
@pytest.mark.parametrize("model_type", NOT_IMPLEMENTED_MODELS)
def test_falsify_arch_reg_002_commands_refuse(tmp_path, tokenizer_dir, model_type, capsys):
    from apr.errors import UnsupportedArchitectureError
    from apr.train.init_checkpoint import load_init_checkpoint

    _, _, apr_file = _imported(tmp_path, tokenizer_dir, model_type)
    for argv in (["run", os.fspath(apr_file), "Hello", "--max-tokens", "2", "--json"],
                 ["export", os.fspath(apr_file), "--format", "safetensors", "-o", os.fspath(tmp_path / "st"), "--json"],
                 ["export", os.fspath(apr_file), "--format", "gguf", "-o", os.fspath(tmp_path / "m.gguf"), "--json"]):
        capsys.readouterr()
        assert main(argv) == 5, argv
        error = json.loads(capsys.readouterr().out)["error"]
        assert error["type"] == "UnsupportedArchitectureError" and error["architecture"] == model_type, error
        assert model_type in error["message"]
    with pytest.raises(UnsupportedArchitectureError) as refused:
        load_init_checkpoint(apr_file)  # the gate `apr pretrain --init` runs before any step
    assert refused.value.architecture == model_type and refused.value.exit_code == 5
    capsys.readouterr()
    main(["qa", os.fspath(apr_file), "--json", "--skip-throughput", "--skip-format-parity", "--skip-golden-output"])
    gates = {g["name"]: g for g in json.loads(capsys.readouterr().out)["gates"]}
    assert gates["capability_match"]["passed"] is False
    assert model_type in json.dumps(gates["capability_match"])
    for argv in (["inspect", os.fspath(apr_file), "--json"], ["validate", os.fspath(apr_file), "--json"]):
        assert main(argv) == 0, argv
    assert not (tmp_path / "st").exists() and not (tmp_path / "m.gguf").exists()


# --- FALSIFY-ARCH-REG-003: parity with transformers ---------------------------------------------

PARITY_FAMILIES = ("llama", "qwen2", "qwen3", "mistral", "gemma", "phi3", "gemma2")


@pytest.mark.falsifies("FALSIFY-ARCH-REG-003")
@pytest.mark.parametrize("model_type", PARITY_FAMILIES)
def test_falsify_arch_reg_003_logits_equal_transformers(tmp_path, tokenizer_dir, model_type):
    import torch

    from apr.run import load_model
    from apr.train.kv_cache import KVCache

    reference, _, apr_file = _imported(tmp_path, tokenizer_dir, model_type)
    loaded = load_model(apr_file)
    if model_type in ("mistral", "phi3", "gemma2"):
        assert loaded.config.sliding_window == 4 == reference.config.sliding_window
    ids = torch.tensor([[(7 * i + 3) % _vocab(tokenizer_dir) for i in range(12)]])
    with torch.no_grad():
        theirs = reference(ids).logits[0]
        ours = loaded.model(ids)[0]
    assert float((theirs - ours).abs().max()) <= 1e-4
    cache = KVCache(loaded.model, 1, 12)
    with torch.no_grad():
        steps = [loaded.model(ids[:, :5], cache=cache)[0]]
        steps += [loaded.model(ids[:, t:t + 1], cache=cache)[0] for t in range(5, 12)]
    assert float((torch.cat(steps) - theirs).abs().max()) <= 1e-4
    # one training step's loss: the fused, chunked head + cross-entropy against transformers' loss
    with torch.no_grad():
        their_loss = float(reference(ids, labels=ids).loss)
        our_loss = float(loaded.model(ids[:, :-1], ids[:, 1:]))
    assert abs(their_loss - our_loss) <= 1e-4


# --- FALSIFY-ARCH-REG-004: mistral HF -> APR -> HF ------------------------------------------------


@pytest.mark.falsifies("FALSIFY-ARCH-REG-004")
@pytest.mark.parametrize(("model_type", "window"), [("mistral", 4), ("gemma", None), ("phi3", 4), ("gemma2", 4)])
def test_falsify_arch_reg_004_round_trip(tmp_path, tokenizer_dir, model_type, window):
    transformers = pytest.importorskip("transformers")
    import torch
    from safetensors.numpy import load_file

    from apr.convert.hf_export import export_safetensors

    reference, source, apr_file = _imported(tmp_path, tokenizer_dir, model_type, tied=model_type == "gemma")
    export_safetensors(apr_file, tmp_path / "out")
    before, after = load_file(source / "model.safetensors"), load_file(tmp_path / "out" / "model.safetensors")
    assert sorted(before) == sorted(after)
    for name in before:
        assert before[name].dtype == after[name].dtype and before[name].tobytes() == after[name].tobytes(), name
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    original = json.loads((source / "config.json").read_text())
    assert config["model_type"] == model_type and config.get("sliding_window") == window
    for key in ("tie_word_embeddings", "rms_norm_eps", "num_key_value_heads", "attn_logit_softcapping",
                "final_logit_softcapping", "query_pre_attn_scalar", "layer_types"):
        assert config.get(key) == original.get(key), key
    activation = "hidden_activation" if model_type == "gemma2" else "hidden_act"
    assert config[activation] == original[activation]
    assert config["head_dim"] == original.get("head_dim", original["hidden_size"] // original["num_attention_heads"])
    exported = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    assert type(exported).__name__ == type(reference).__name__
    ids = torch.arange(12)[None] % 50 + 5
    with torch.no_grad():
        assert float((exported(ids).logits - reference(ids).logits).abs().max()) <= 1e-4


@pytest.mark.falsifies("FALSIFY-ARCH-REG-005")
def test_falsify_arch_reg_005_gemma_gguf_as_llama_cpp_converts_it(tmp_path, tokenizer_dir):
    """llama.cpp's Gemma converter: architecture gemma, tensors not permuted, norms stored as 1 + w."""
    gguf = pytest.importorskip("gguf")
    from safetensors.numpy import load_file

    from apr.convert.gguf_export import export_gguf

    _, source, apr_file = _imported(tmp_path, tokenizer_dir, "gemma", tied=True)
    export_gguf(apr_file, tmp_path / "m.gguf")
    reader = gguf.GGUFReader(tmp_path / "m.gguf")
    field = reader.fields["general.architecture"]
    assert bytes(field.parts[field.data[0]]).decode() == "gemma"
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    hf = load_file(source / "model.safetensors")
    assert "output.weight" not in tensors  # tied: llama.cpp reads token_embd
    np.testing.assert_array_equal(tensors["blk.0.attn_norm.weight"], hf["model.layers.0.input_layernorm.weight"] + 1)
    np.testing.assert_array_equal(tensors["output_norm.weight"], hf["model.norm.weight"] + 1)
    np.testing.assert_array_equal(tensors["blk.1.ffn_norm.weight"],
                                  hf["model.layers.1.post_attention_layernorm.weight"] + 1)
    np.testing.assert_array_equal(tensors["blk.0.attn_q.weight"], hf["model.layers.0.self_attn.q_proj.weight"])
    np.testing.assert_array_equal(tensors["blk.0.attn_k.weight"], hf["model.layers.0.self_attn.k_proj.weight"])


def _scalar(reader, key):
    """A GGUF key's value as gguf-py stores it (a string decoded, a number as a Python number)."""
    import gguf

    field = reader.fields[key]
    value = field.parts[field.data[0]]
    return bytes(value).decode() if field.types[0] == gguf.GGUFValueType.STRING else value.item()


@pytest.mark.falsifies("FALSIFY-ARCH-REG-005")
def test_falsify_arch_reg_005_phi3_gguf_as_llama_cpp_converts_it(tmp_path, tokenizer_dir):
    """llama.cpp's Phi3MiniModel: architecture phi3, fused attn_qkv and ffn_up (gate | up) kept as
    they are, the sliding window and the original context written."""
    gguf = pytest.importorskip("gguf")
    from safetensors.numpy import load_file

    from apr.convert.gguf_export import export_gguf

    _, source, apr_file = _imported(tmp_path, tokenizer_dir, "phi3", tied=False)
    export_gguf(apr_file, tmp_path / "m.gguf")
    reader = gguf.GGUFReader(tmp_path / "m.gguf")

    assert _scalar(reader, "general.architecture") == "phi3"
    assert (_scalar(reader, "phi3.attention.sliding_window"), _scalar(reader, "phi3.rope.scaling.original_context_length"),
            _scalar(reader, "phi3.rope.dimension_count")) == (4, 128, 16)
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    hf = load_file(source / "model.safetensors")
    assert {n for n in tensors if n.startswith("blk.0.")} == {
        f"blk.0.{s}" for s in ("attn_norm.weight", "attn_qkv.weight", "attn_output.weight", "ffn_norm.weight",
                               "ffn_up.weight", "ffn_down.weight")}
    np.testing.assert_array_equal(tensors["blk.1.attn_qkv.weight"], hf["model.layers.1.self_attn.qkv_proj.weight"])
    np.testing.assert_array_equal(tensors["blk.1.ffn_up.weight"], hf["model.layers.1.mlp.gate_up_proj.weight"])
    np.testing.assert_array_equal(tensors["output.weight"], hf["lm_head.weight"])
    np.testing.assert_array_equal(tensors["blk.0.attn_norm.weight"], hf["model.layers.0.input_layernorm.weight"])


@pytest.mark.falsifies("FALSIFY-ARCH-REG-005")
def test_falsify_arch_reg_005_gemma2_gguf_as_llama_cpp_converts_it(tmp_path, tokenizer_dir):
    """llama.cpp's gemma2: sandwich norms under its names (+1), softcaps and window as keys; a model
    llama.cpp would compute differently (query scalar != head_dim) is refused, nothing written."""
    gguf = pytest.importorskip("gguf")
    from safetensors.numpy import load_file

    from apr.convert.gguf_export import export_gguf
    from apr.errors import UnsupportedArchitectureError

    _, source, apr_file = _imported(tmp_path, tokenizer_dir, "gemma2", query_pre_attn_scalar=16)
    export_gguf(apr_file, tmp_path / "m.gguf")
    reader = gguf.GGUFReader(tmp_path / "m.gguf")

    assert _scalar(reader, "general.architecture") == "gemma2"
    assert (_scalar(reader, "gemma2.attn_logit_softcapping"), _scalar(reader, "gemma2.final_logit_softcapping"),
            _scalar(reader, "gemma2.attention.sliding_window")) == (2.0, 3.0, 4)
    tensors = {t.name: np.asarray(t.data) for t in reader.tensors}
    hf = load_file(source / "model.safetensors")
    for ours, theirs in (("attn_norm", "input_layernorm"), ("post_attention_norm", "post_attention_layernorm"),
                         ("ffn_norm", "pre_feedforward_layernorm"), ("post_ffw_norm", "post_feedforward_layernorm")):
        np.testing.assert_array_equal(tensors[f"blk.1.{ours}.weight"], hf[f"model.layers.1.{theirs}.weight"] + 1)
    assert "output.weight" not in tensors
    _, _, scaled = _imported(tmp_path / "scaled", tokenizer_dir, "gemma2")  # query_pre_attn_scalar 24
    with pytest.raises(UnsupportedArchitectureError, match="query_pre_attn_scalar 24 != head_dim 16"):
        export_gguf(scaled, tmp_path / "scaled.gguf")
    assert not (tmp_path / "scaled.gguf").exists()


# --- every implemented family trains: `apr pretrain --init` from its import ----------------------


@pytest.mark.parametrize("model_type", PARITY_FAMILIES)
def test_every_implemented_family_trains_from_its_import(tmp_path, tokenizer_dir, model_type, capsys):
    """The maths the parity tests pin is the maths that trains: two steps from the imported file,
    a checkpoint of the same architecture (its identity and its config keys) and a finite loss."""
    from apr.format import open_file
    from apr.train.config import ModelConfig

    _, _, apr_file = _imported(tmp_path, tokenizer_dir, model_type)
    (tmp_path / "corpus.txt").write_text("the quick brown fox jumps over the lazy dog. " * 200)
    assert main(["tokenize", os.fspath(tmp_path / "corpus.txt"), "--tokenizer", os.fspath(apr_file),
                 "-o", os.fspath(tmp_path / "data")]) == 0
    capsys.readouterr()
    code = main(["pretrain", "--dataset", os.fspath(tmp_path / "data"), "--init", os.fspath(apr_file),
                 "--run-dir", os.fspath(tmp_path / "run"), "--num-steps", "2", "--seq-length", "16",
                 "--batch-size", "2", "--force-under-provisioned", "--json"])
    assert code == 0, capsys.readouterr()
    with open_file(apr_file) as source, open_file(tmp_path / "run" / "ckpt" / "epoch-000.apr") as trained:
        assert trained.metadata["architecture"] == model_type
        config = ModelConfig.from_metadata(source.metadata, source.keys())
        tied_copy = {"lm_head.weight"} if config.tie_word_embeddings else set()  # save_pretrained may keep one
        assert set(trained.keys()) - tied_copy == set(source.keys()) - tied_copy
        # the same model, field by field: activation, windows, softcaps, layer types, dimensions
        assert ModelConfig.from_metadata(trained.metadata, trained.keys()) == config
