"""Per-epoch checkpoint bookkeeping, key by key: paths, metadata and flags, the sidecar, and the two
digests (issue 23). Pure functions on tiny inputs; nothing is trained."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from apr.format import Flags, open_file
from apr.format.digest import file_sha256
from apr.tokenizer import TokenizerRecord
from apr.train.checkpoint import (
    CKPT_DIRNAME,
    EPOCH_FIELDS,
    INHERITED_KEYS,
    checkpoint_dir,
    checkpoint_metadata,
    epoch_checkpoint_path,
    init_checkpoint_path,
    model_tensors,
    optimizer_state_sha,
    sidecar_path,
    write_checkpoint,
    write_sidecar,
)
from apr.train.config import ModelConfig

CONFIG = ModelConfig("qwen2", vocab_size=10, hidden_size=4, num_layers=1, num_heads=2, num_kv_heads=1,
                     intermediate_size=6, head_dim=2)
TOKENIZER = TokenizerRecord(vocabulary=("a", "b", "ab"), merges=("a b",))


def test_layout(tmp_path: Path) -> None:
    assert CKPT_DIRNAME == "ckpt"
    assert checkpoint_dir(os.fspath(tmp_path)) == tmp_path / "ckpt"
    assert epoch_checkpoint_path(tmp_path, 4) == tmp_path / "ckpt" / "epoch-004.apr"
    assert epoch_checkpoint_path(tmp_path, 1234) == tmp_path / "ckpt" / "epoch-1234.apr"
    assert init_checkpoint_path(tmp_path) == tmp_path / "ckpt" / "init.apr"
    assert sidecar_path(tmp_path / "ckpt" / "epoch-004.apr") == tmp_path / "ckpt" / "epoch-004.metadata.json"
    assert sidecar_path("a.apr.apr") == Path("a.apr.metadata.json")  # only the last suffix goes


def test_field_lists() -> None:
    assert INHERITED_KEYS == ("license", "data_source", "data_license", "name", "description", "author", "source",
                              "original_format", "source_metadata")
    assert EPOCH_FIELDS == ("epoch", "train_loss", "val_loss", "train_ppl", "val_ppl", "optimizer_state_sha",
                            "wall_seconds", "tokens_seen", "grad_norm_max")


def test_metadata_of_a_fresh_run_key_by_key() -> None:
    metadata, flags = checkpoint_metadata(CONFIG, None)
    assert metadata == {"model_type": "qwen2", "name": "qwen2-pretrain", "license": None, "data_source": None,
                        "data_license": None, **CONFIG.to_metadata()}
    assert list(metadata)[:5] == ["model_type", "name", "license", "data_source", "data_license"]
    assert flags == int(Flags.LAYOUT_ROW_MAJOR)


def test_inherited_keys_are_carried_and_others_are_not() -> None:
    inherited = {"license": "apache-2.0", "data_source": "wiki", "data_license": "cc-by-sa", "name": "base",
                 "description": "d", "author": "me", "source": "hf://x", "original_format": "safetensors",
                 "source_metadata": {"k": 1}, "training": {"epoch": 9}, "hidden_size": 999, "secret": "x",
                 "architecture": "llama"}
    metadata, _ = checkpoint_metadata(CONFIG, None, inherited=inherited)
    for key in INHERITED_KEYS:
        assert metadata[key] == inherited[key]
    assert "secret" not in metadata and "training" not in metadata
    assert metadata["hidden_size"] == 4 and metadata["architecture"] == "qwen2"  # identity from the config


def test_absent_or_null_inherited_values_are_not_written() -> None:
    metadata, _ = checkpoint_metadata(CONFIG, None, inherited={"author": None, "name": "", "license": "mit"})
    assert "author" not in metadata and "description" not in metadata
    assert metadata["name"] == "qwen2-pretrain"  # an empty name is no name
    assert metadata["license"] == "mit"


def test_tokenizer_sets_has_vocab_and_embeds() -> None:
    metadata, flags = checkpoint_metadata(CONFIG, TOKENIZER)
    assert flags == int(Flags.LAYOUT_ROW_MAJOR) | int(Flags.HAS_VOCAB)
    assert metadata["tokenizer.vocabulary"] == ["a", "b", "ab"] and metadata["tokenizer.merges"] == ["a b"]


@pytest.mark.parametrize("training", [None, {}])
def test_no_training_facts_no_key(training) -> None:
    assert "training" not in checkpoint_metadata(CONFIG, None, training=training)[0]


def test_training_facts_are_a_copy() -> None:
    facts = {"epoch": 2, "step": 20, "seed": 7}
    metadata, _ = checkpoint_metadata(CONFIG, None, training=facts)
    assert metadata["training"] == facts and metadata["training"] is not facts


class Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(3, 2, dtype=torch.float64)


class WithHf(Tiny):
    def hf_state_dict(self) -> dict[str, torch.Tensor]:
        return {"model.w": self.linear.weight}


def test_model_tensors_are_f32_copies() -> None:
    model = Tiny()
    tensors = model_tensors(model)
    assert sorted(tensors) == ["linear.bias", "linear.weight"]
    assert tensors["linear.weight"].dtype == np.float32
    np.testing.assert_array_equal(tensors["linear.weight"], model.linear.weight.detach().float().numpy())
    tensors["linear.weight"][:] = 5
    assert not torch.all(model.linear.weight == 5)
    assert list(model_tensors(WithHf())) == ["model.w"]  # Hugging Face names when the model has them


def test_write_checkpoint_makes_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "run" / "ckpt" / "epoch-001.apr"
    metadata, flags = checkpoint_metadata(CONFIG, TOKENIZER)
    tensors = {"model.norm.weight": np.arange(4, dtype=np.float32)}
    write_checkpoint(path, tensors, metadata, flags)
    with open_file(path) as reader:
        assert reader.flags & int(Flags.HAS_VOCAB)
        assert reader.metadata["name"] == "qwen2-pretrain"
        np.testing.assert_array_equal(np.array(reader.get_tensor("model.norm.weight")), tensors["model.norm.weight"])


def test_sidecar_writes_nulls_for_non_finite_floats(tmp_path: Path) -> None:
    path = tmp_path / "epoch-001.metadata.json"
    write_sidecar(path, {"epoch": 1, "val_loss": math.nan, "train_ppl": math.inf, "grad_norm_max": -math.inf,
                         "train_loss": 2.5, "tokens_seen": 0, "ok": True})
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"epoch": 1, "val_loss": None, "train_ppl": None, "grad_norm_max": None,
                                "train_loss": 2.5, "tokens_seen": 0, "ok": True}
    assert text.endswith("}\n") and text.startswith('{\n  "epoch": 1,')


def test_optimizer_sha_is_the_documented_digest() -> None:
    weight = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    optimizer = torch.optim.AdamW([weight], lr=0.1)
    empty = hashlib.sha256().hexdigest()
    assert optimizer_state_sha(optimizer) == empty  # no step: no state
    weight.grad = torch.tensor([0.5, -0.5])
    optimizer.step()
    state = optimizer.state_dict()["state"]
    oracle = hashlib.sha256()
    for key in sorted(state[0]):
        value = state[0][key]
        oracle.update(f"0.{key}".encode())
        oracle.update(value.numpy().tobytes() if torch.is_tensor(value) else repr(value).encode())
    assert optimizer_state_sha(optimizer) == oracle.hexdigest()


def test_optimizer_sha_covers_non_tensor_values_and_every_index() -> None:
    class Fake:
        def __init__(self, state):
            self._state = state

        def state_dict(self):
            return {"state": self._state}

    one = optimizer_state_sha(Fake({0: {"step": 3}}))
    assert one == hashlib.sha256(b"0.step" + b"3").hexdigest()
    assert optimizer_state_sha(Fake({1: {"b": 2, "a": 1}, 0: {"c": 0}})) == hashlib.sha256(
        b"0.c0" + b"1.a1" + b"1.b2").hexdigest()


def test_file_sha256_over_several_blocks(tmp_path: Path) -> None:
    data = bytes(range(256)) * ((3 << 20) // 256 + 7)  # past three 1 MiB blocks
    path = tmp_path / "f"
    path.write_bytes(data)
    assert file_sha256(os.fspath(path)) == hashlib.sha256(data).hexdigest()
    path.write_bytes(b"")
    assert file_sha256(path) == hashlib.sha256(b"").hexdigest()


def test_write_checkpoint_into_an_existing_folder(tmp_path: Path) -> None:
    metadata, flags = checkpoint_metadata(CONFIG, None)
    tensors = {"model.norm.weight": np.zeros(4, dtype=np.float32)}
    write_checkpoint(tmp_path / "ckpt" / "epoch-001.apr", tensors, metadata, flags)
    write_checkpoint(tmp_path / "ckpt" / "epoch-002.apr", tensors, metadata, flags)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["epoch-001.apr", "epoch-002.apr"]


def test_sidecar_refuses_a_nested_non_finite_value(tmp_path: Path) -> None:
    # only top-level floats become null; anything deeper must not be written as invalid JSON (NaN)
    with pytest.raises(ValueError):
        write_sidecar(tmp_path / "s.json", {"history": [1.0, math.nan]})


class Recorder(torch.Tensor):
    """A tensor that records where it is asked to move (the device a GPU run would leave it on)."""

    moves: ClassVar[list[tuple]] = []

    def to(self, *args, **kwargs):
        Recorder.moves.append(args)
        return torch.Tensor.to(self.as_subclass(torch.Tensor), *args, **kwargs)


def test_model_tensors_and_optimizer_state_are_moved_to_the_cpu() -> None:
    class Model(torch.nn.Module):
        def hf_state_dict(self):
            return {"w": torch.tensor([1.0, 2.0], dtype=torch.float64).as_subclass(Recorder)}

    class Optimizer:
        def state_dict(self):
            return {"state": {0: {"exp_avg": torch.tensor([3.0]).as_subclass(Recorder)}}}

    Recorder.moves = []
    assert model_tensors(Model())["w"].dtype == np.float32
    assert Recorder.moves == [("cpu", torch.float32)]
    Recorder.moves = []
    expected = hashlib.sha256(b"0.exp_avg" + np.array([3.0], dtype=np.float32).tobytes()).hexdigest()
    assert optimizer_state_sha(Optimizer()) == expected
    assert Recorder.moves == [("cpu",)]
