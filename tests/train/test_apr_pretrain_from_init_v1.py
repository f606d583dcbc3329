"""contracts/apr-pretrain-from-init-v1.yaml: `apr pretrain --init`, refused early or loaded intact."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from apr.errors import ArchitectureMismatchError, UnsupportedArchitectureError
from apr.format import load_file, open_file, save_file
from apr.train.init_checkpoint import load_init_checkpoint

from train_fixtures import TINY_RUN, run_cli

REPO = Path(__file__).resolve().parents[2]


def epoch_ckpt(trained_run: dict, epoch: int) -> Path:
    return Path(trained_run["run_dir"]) / "ckpt" / f"epoch-{epoch:03d}.apr"


def rewrite(src: Path, dst: Path, *, tensors=None, drop=(), metadata_changes=None, metadata_drop=()) -> Path:
    """A copy of ``src`` with tensors or metadata changed (the fixtures of the refusal tests)."""
    with open_file(src) as reader:
        metadata = dict(reader.metadata)
        flags = reader.flags
        all_tensors = {name: np.array(reader.get_tensor(name)) for name in reader.keys()}
    all_tensors.update(tensors or {})
    for name in drop:
        all_tensors.pop(name)
    metadata.update(metadata_changes or {})
    for key in metadata_drop:
        metadata.pop(key, None)
    save_file(all_tensors, dst, metadata, flags)
    return dst


def init_run(tmp_path: Path, dataset_dir: Path, init: Path | str, *extra: str, name: str = "run") -> list[str]:
    return ["pretrain", "--dataset", str(dataset_dir), "--run-dir", str(tmp_path / name), "--init", str(init),
            "--force-under-provisioned", *TINY_RUN, "--json", *extra]


def refused(capsys, argv: list[str], tmp_path: Path, name: str = "run") -> dict:
    """Run a command that must be refused before anything is written; return its error document."""
    code, document = run_cli(argv, capsys)
    assert code != 0, document
    assert not (tmp_path / name).exists(), "a refused run must not create --run-dir"
    return document["error"]


# --- 001 / 002: the flag and the path without it ------------------------------------------------

@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-001")
def test_falsify_apr_pretrain_init_001_flag_parses() -> None:
    from apr.cli.main import build_parser

    parser = build_parser()
    base = ["pretrain", "--dataset", "d", "--run-dir", "r"]
    assert parser.parse_args(base).init is None
    assert parser.parse_args([*base, "--init", "m.apr"]).init == "m.apr"
    assert parser.parse_args(base).mode == "finetune"
    assert parser.parse_args([*base, "--init", "m.apr", "--mode", "from-scratch"]).mode == "from-scratch"


@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-002")
def test_falsify_apr_pretrain_init_002_no_init_trains(trained_run: dict) -> None:
    assert trained_run["status"] == "OK" and trained_run["init"] is None
    assert trained_run["epochs_completed"] == 4 and len(trained_run["checkpoints"]) == 4
    history = trained_run["val_loss_history"]
    assert history[-1] < history[0] < trained_run["init_val_loss"]
    assert all(Path(c).is_file() for c in trained_run["checkpoints"])


# --- 003 / 004 / 005 / 011: refusals before any step ------------------------------------------

@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-003")
def test_falsify_apr_pretrain_init_003_missing_file(tmp_path: Path, dataset_dir: Path, capsys) -> None:
    error = refused(capsys, init_run(tmp_path, dataset_dir, tmp_path / "nonexistent.apr"), tmp_path)
    assert "FALSIFY-APR-PRETRAIN-INIT-003" in error["message"] and error["exit_code"] == 3
    assert error["falsifier"] == "FALSIFY-APR-PRETRAIN-INIT-003"
    error = refused(capsys, init_run(tmp_path, dataset_dir, tmp_path), tmp_path)  # a folder
    assert "FALSIFY-APR-PRETRAIN-INIT-003" in error["message"]


@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-004")
@pytest.mark.parametrize("content", [b"", b"AP", b"GGUF" + bytes(60), bytes(range(256)) * 4, "safetensors"])
def test_falsify_apr_pretrain_init_004_bad_magic(tmp_path: Path, dataset_dir: Path, capsys, content) -> None:
    path = tmp_path / "bad.apr"
    if content == "safetensors":
        from safetensors.numpy import save_file as save_safetensors

        save_safetensors({"w": np.zeros((2, 2), np.float32)}, str(path))
    else:
        path.write_bytes(content)
    error = refused(capsys, init_run(tmp_path, dataset_dir, path), tmp_path)
    assert "FALSIFY-APR-PRETRAIN-INIT-004" in error["message"] and error["exit_code"] != 0


@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-005")
def test_falsify_apr_pretrain_init_005_bogus_metadata(tmp_path: Path, dataset_dir: Path, short_run: dict,
                                                       capsys) -> None:
    src = epoch_ckpt(short_run, 0)
    no_dims = rewrite(src, tmp_path / "nodims.apr", metadata_drop=("hidden_size", "num_heads"))
    error = refused(capsys, init_run(tmp_path, dataset_dir, no_dims), tmp_path)
    assert "FALSIFY-APR-PRETRAIN-INIT-005" in error["message"] and error["exit_code"] == 5
    assert error["field"] in ("hidden_size", "num_heads")
    # valid magic, garbage after it: a corrupted metadata section
    data = bytearray(src.read_bytes())
    with open_file(src) as reader:
        start = reader.header.metadata_offset
    data[start:start + 8] = b"\xff" * 8
    corrupt = tmp_path / "corrupt.apr"
    corrupt.write_bytes(bytes(data))
    error = refused(capsys, init_run(tmp_path, dataset_dir, corrupt), tmp_path)
    assert "FALSIFY-APR-PRETRAIN-INIT-005" in error["message"]


@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-005")
def test_falsify_apr_pretrain_init_005_architecture_differs_from_config(tmp_path: Path, dataset_dir: Path,
                                                                         short_run: dict, capsys) -> None:
    from train_fixtures import TINY_CONFIG

    other = tmp_path / "config.json"
    other.write_text(json.dumps({**TINY_CONFIG, "hidden_size": 32, "intermediate_size": 64}))
    error = refused(capsys, init_run(tmp_path, dataset_dir, epoch_ckpt(short_run, 0), "--config", str(other)),
                    tmp_path)
    assert "FALSIFY-APR-PRETRAIN-INIT-005" in error["message"]
    assert "hidden_size: 64 != 32" in error["message"]


@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-011")
def test_falsify_apr_pretrain_init_011_tensor_shape_or_presence(tmp_path: Path, dataset_dir: Path,
                                                                short_run: dict, capsys) -> None:
    src = epoch_ckpt(short_run, 0)
    q = "model.layers.1.self_attn.q_proj.weight"
    cases = {
        "shape": {"tensors": {q: np.zeros((63, 64), np.float32)}},
        "missing": {"drop": ("model.layers.0.mlp.up_proj.weight",)},
        "extra": {"tensors": {"model.layers.2.mlp.up_proj.weight": np.zeros((128, 64), np.float32)}},
        "nan": {"tensors": {q: np.full((64, 64), np.nan, np.float32)}},
    }
    for name, change in cases.items():
        error = refused(capsys, init_run(tmp_path, dataset_dir, rewrite(src, tmp_path / f"{name}.apr", **change)),
                        tmp_path)
        assert "FALSIFY-APR-PRETRAIN-INIT-011" in error["message"], name
    error = refused(capsys, init_run(tmp_path, dataset_dir, tmp_path / "shape.apr"), tmp_path)
    assert "[63, 64] != expected [64, 64]" in error["message"]


# --- ARCH-MATCH-001: the §86 gate, on names alone --------------------------------------------

def _no_tensor_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from apr.format import AprReader

    def forbidden(self, name):
        raise AssertionError(f"tensor {name!r} was read before INV-INIT-ARCH-MATCH-001 ran")

    for method in ("get_tensor", "get_float32", "get_raw"):
        monkeypatch.setattr(AprReader, method, forbidden)


@pytest.mark.falsifies("FALSIFY-INIT-ARCH-MATCH-001")
@pytest.mark.parametrize("claim", ["llama", "LlamaForCausalLM", "qwen3"])
def test_falsify_init_arch_match_001_rejects_mis_stamped_qwen2(tmp_path: Path, short_run: dict, claim: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    stamped = rewrite(epoch_ckpt(short_run, 0), tmp_path / "wrong.apr", metadata_changes={"architecture": claim})
    _no_tensor_reads(monkeypatch)
    with pytest.raises(ArchitectureMismatchError) as info:
        load_init_checkpoint(stamped)
    message = str(info.value)
    assert "FALSIFY-INIT-ARCH-MATCH-001" in message and "qwen2" in message and "apr stamp" in message
    assert info.value.tensor_family == "qwen2" and info.value.exit_code == 5


@pytest.mark.falsifies("FALSIFY-INIT-ARCH-MATCH-001")
def test_falsify_init_arch_match_001_rejects_qwen2_stamped_llama(tmp_path: Path) -> None:
    from apr.train.checkpoint import checkpoint_metadata, model_tensors
    from apr.train.config import ModelConfig
    from apr.train.model import CausalLM

    config = ModelConfig(family="llama", vocab_size=64, hidden_size=16, num_layers=1, num_heads=2, num_kv_heads=2,
                         intermediate_size=32, head_dim=8)
    metadata, flags = checkpoint_metadata(config, None)
    metadata["architecture"] = "qwen2"
    path = tmp_path / "llama-as-qwen2.apr"
    save_file(model_tensors(CausalLM(config)), path, metadata, flags)
    with pytest.raises(ArchitectureMismatchError, match="FALSIFY-INIT-ARCH-MATCH-001"):
        load_init_checkpoint(path)


@pytest.mark.falsifies("FALSIFY-INIT-ARCH-MATCH-001")
@pytest.mark.parametrize("claim", ["qwen2", "Qwen2ForCausalLM", None])
def test_falsify_init_arch_match_001_no_false_positive(tmp_path: Path, short_run: dict, claim) -> None:
    path = rewrite(epoch_ckpt(short_run, 0), tmp_path / "ok.apr",
                   metadata_changes={} if claim is None else {"architecture": claim},
                   metadata_drop=("architecture",) if claim is None else ())
    assert load_init_checkpoint(path).config.family == "qwen2"


def test_an_unknown_claim_is_refused_by_the_registry_not_guessed(tmp_path: Path, short_run: dict) -> None:
    """An architecture nobody implements is no arch-match false positive, and no licence to run
    the tensors' family either: the registry refuses it, naming it, with the stamp that fixes it."""
    path = rewrite(epoch_ckpt(short_run, 0), tmp_path / "weird.apr",
                   metadata_changes={"architecture": "WeirdNovelArchForCausalLM"})
    with pytest.raises(UnsupportedArchitectureError) as info:
        load_init_checkpoint(path)
    assert not isinstance(info.value, ArchitectureMismatchError)
    assert "WeirdNovelArchForCausalLM" in info.value.message and info.value.exit_code == 5
    assert f"apr stamp {path} --architecture qwen2 " in (info.value.hint or "")


@pytest.mark.falsifies("FALSIFY-INIT-ARCH-MATCH-001")
def test_falsify_init_arch_match_001_exit_code_through_the_cli(tmp_path: Path, dataset_dir: Path,
                                                               short_run: dict, capsys) -> None:
    stamped = rewrite(epoch_ckpt(short_run, 0), tmp_path / "wrong.apr", metadata_changes={"architecture": "llama"})
    error = refused(capsys, init_run(tmp_path, dataset_dir, stamped), tmp_path)
    assert error["code"] == "architecture-mismatch" and error["exit_code"] == 5
    assert "--architecture qwen2" in error["hint"]


# --- 006 / 009 / 010: the weights arrive intact, alone, deterministically ----------------------

@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-006")
def test_falsify_apr_pretrain_init_006_init_loss_signal(tmp_path: Path, dataset_dir: Path, val_dir: Path,
                                                        trained_run: dict, capsys) -> None:
    scratch = trained_run["init_val_loss"]
    code, report = run_cli(init_run(tmp_path, dataset_dir, epoch_ckpt(trained_run, 3), "--num-steps", "0",
                                    "--val-shard", str(val_dir)), capsys)
    assert code == 0
    assert math.isfinite(report["init_val_loss"])
    assert scratch >= math.log(512) - 1.5
    assert report["init_val_loss"] <= scratch - 1.0, (report["init_val_loss"], scratch)


@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-009")
def test_falsify_apr_pretrain_init_009_optimizer_starts_fresh(tmp_path: Path, dataset_dir: Path,
                                                              short_run: dict, capsys) -> None:
    from apr.train.batches import train_batch
    from apr.train.model import CausalLM
    from apr.train.plan import plan_pretrain
    from apr.cli.pretrain_cmd import options_from_args
    from apr.cli.main import build_parser

    init = epoch_ckpt(short_run, 1)
    argv = init_run(tmp_path, dataset_dir, init, "--num-steps", "1", "--lr", "1e-3", "--warmup-steps", "0")
    code, report = run_cli(argv, capsys)
    assert code == 0
    assert report["optimizer_fresh"] == {"state_entries": 0, "scheduler_step": 0}
    assert report["per_step_metrics"][0]["lr"] == 1e-3

    # the same first step, computed independently: init weights + a brand-new AdamW
    plan = plan_pretrain(options_from_args(build_parser().parse_args([*argv[:4], str(tmp_path / "check"), *argv[5:]])))
    model = CausalLM(plan.model_config)
    state = {k: torch.from_numpy(np.array(v)) for k, v in load_file(init).items()}
    state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                  lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    rows = torch.from_numpy(train_batch(plan.split, seed=7, step=0, batch_size=8))
    model(rows[:, :-1], rows[:, 1:]).backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    written = load_file(Path(report["checkpoints"][0]))
    for name, tensor in model.hf_state_dict().items():
        np.testing.assert_allclose(written[name], tensor.detach().numpy(), atol=1e-6, err_msg=name)


@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-010")
def test_falsify_apr_pretrain_init_010_load_is_idempotent(tmp_path: Path, dataset_dir: Path, short_run: dict,
                                                          capsys) -> None:
    init = epoch_ckpt(short_run, 2)
    outputs = []
    for name in ("first", "second"):
        code, report = run_cli(init_run(tmp_path, dataset_dir, init, "--num-steps", "0", name=name), capsys)
        assert code == 0 and report["status"] == "OK"
        outputs.append(Path(report["checkpoints"][0]))
    assert outputs[0].name == "init.apr"
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    original, emitted = load_file(init), load_file(outputs[0])
    assert original.keys() == emitted.keys()
    for name in original:
        assert np.array_equal(original[name], emitted[name]), name


# --- 007 / 008: surfaces and the contract itself ----------------------------------------------

@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-007")
def test_falsify_apr_pretrain_init_007_every_flag_documented() -> None:
    from apr.cli.main import build_parser

    parser = build_parser()
    pretrain = next(a for a in parser._subparsers._actions if a.dest == "command").choices["pretrain"]  # type: ignore[union-attr]
    flags = {s for action in pretrain._actions for s in action.option_strings if s.startswith("--") and s != "--help"}
    assert "--init" in flags and "--force-under-provisioned" in flags
    page = (REPO / "docs" / "training.md").read_text(encoding="utf-8")
    missing = sorted(f for f in flags if f"`{f}" not in page)
    assert not missing, f"flags missing from docs/training.md: {missing}"
    assert "--init" in pretrain.format_help()


@pytest.mark.falsifies("FALSIFY-APR-PRETRAIN-INIT-008")
@pytest.mark.parametrize("name", ["apr-pretrain-from-init-v1", "chinchilla-gate-v1", "training-v1"])
def test_falsify_apr_pretrain_init_008_contracts_validate(name: str) -> None:
    # Through the project's own linter (schema, corpus rules, version/changelog agreement) over
    # the whole corpus, as `apr contracts lint` reads it: the contract must be machine-checkable
    # by the tool that grades it, not only by a bare jsonschema call.
    from falsifiers.lint import lint_paths

    corpus = lint_paths([REPO / "contracts"], relative_to=REPO)
    shown = f"contracts/{name}.yaml"
    contract = next(c for c in corpus.contracts if c.path == shown)
    errors = [f.render() for f in corpus.findings
              if f.is_error and f.location is not None and f.location.path == shown]
    assert not errors, errors
    assert contract.is_valid and contract.falsifiers, contract