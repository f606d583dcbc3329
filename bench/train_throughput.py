"""Training throughput of `apr.train` against Hugging Face transformers, same model, same data.

A Qwen2.5-0.5B-shaped model (hidden 896, 24 layers, 14 heads, 2 KV heads, intermediate 4864,
vocab 151936, tied), batch 16 x 1024, bf16 autocast, AdamW, gradient clipping at 1.0:

* ours: `apr.train.model.CausalLM` with the fused chunked linear + cross-entropy loss (no full
  logits), the decoder stack under ``torch.compile``, fused AdamW, SDPA flash attention;
* peer: ``transformers.Qwen2ForCausalLM`` (attn_implementation="sdpa") under ``torch.compile``,
  full logits upcast to fp32 for the loss (what its ``ForCausalLMLoss`` does), AdamW (foreach).

Both start from the same weights and see the same batches. Reported: tokens/s, MFU against the
989 TFLOP/s bf16 dense peak of an H100/H200 (6*N + 12*layers*hidden*seq FLOPs per token), the
ratio ours/peer, and the first-batch losses (which must agree within 1e-2: exit 1 otherwise).
Timings are printed, never asserted (bench/ convention).

    python bench/train_throughput.py --device cuda                 # the real figures (GPU)
    python bench/train_throughput.py --tiny --device cpu           # a smoke run, seconds
    python bench/train_throughput.py --device cuda --json > bench-out/train.json
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from apr.train.config import ModelConfig
from apr.train.device import autocast, configure_backends
from apr.train.model import CausalLM, flops_per_token

PEAK_FLOPS = 989e12  # H100/H200 SXM bf16 dense
QWEN25_05B = ModelConfig(family="qwen2", vocab_size=151936, hidden_size=896, num_layers=24, num_heads=14,
                         num_kv_heads=2, intermediate_size=4864, head_dim=64, max_position_embeddings=32768,
                         rope_theta=1_000_000.0, rms_norm_eps=1e-6, tie_word_embeddings=True)
TINY = ModelConfig(family="qwen2", vocab_size=512, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2,
                   intermediate_size=128, head_dim=16, max_position_embeddings=256, tie_word_embeddings=True)


@dataclass
class Result:
    name: str
    tokens_per_sec: float
    step_ms: float
    first_loss: float
    last_loss: float
    peak_mem_gb: float | None


def batches(config: ModelConfig, batch: int, seq: int, count: int, seed: int = 0) -> list[torch.Tensor]:
    """Token windows shared by both models (uniform ids: throughput does not depend on the text)."""
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.integers(0, config.vocab_size, size=(batch, seq + 1))) for _ in range(count)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_training(name: str, loss_fn, params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer,
                  data: list[torch.Tensor], warmup: int, device: torch.device) -> Result:
    """Run warmup steps (compilation happens there), then time the rest; one loop for both models."""
    losses: list[float] = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = None
    for index, rows in enumerate(data):
        if index == warmup:
            sync(device)
            start = time.perf_counter()
        rows = rows.to(device, non_blocking=True)
        with autocast(device):
            loss = loss_fn(rows[:, :-1], rows[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if index == 0 or index == len(data) - 1:
            losses.append(float(loss.detach()))
    sync(device)
    elapsed = time.perf_counter() - (start or time.perf_counter())
    timed = len(data) - warmup
    tokens = timed * data[0].shape[0] * (data[0].shape[1] - 1)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return Result(name, tokens / elapsed if elapsed > 0 else math.nan, 1000 * elapsed / max(timed, 1),
                  losses[0], losses[-1], peak)


def run_ours(config: ModelConfig, state: dict[str, torch.Tensor], data: list[torch.Tensor], args: argparse.Namespace,
             device: torch.device) -> Result:
    model = CausalLM(config)
    model.load_state_dict(state)
    model.to(device).train()
    if args.compile:
        model.model = torch.compile(model.model)  # the decoder stack; the fused loss stays eager (big matmuls)
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01, **fused)
    step = functools.partial(model, loss_chunk_rows=args.loss_chunk_rows)  # gone with `del` below
    result = time_training("apr.train", step,
                           list(model.parameters()), optimizer, data, args.warmup, device)
    del model, optimizer, step
    return result


def run_transformers(config: ModelConfig, state: dict[str, torch.Tensor], data: list[torch.Tensor],
                     args: argparse.Namespace, device: torch.device) -> Result | None:
    try:
        import transformers
    except ImportError:
        return None
    hf_config = transformers.AutoConfig.for_model(**config.to_hf_config())
    model = transformers.Qwen2ForCausalLM._from_config(hf_config, attn_implementation="sdpa")
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    model.to(device).train()
    forward = torch.compile(model) if args.compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.01)

    def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = forward(input_ids=x).logits  # (B, T, V)
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))

    result = time_training(f"transformers {transformers.__version__}", loss_fn, list(model.parameters()),
                           optimizer, data, args.warmup, device)
    del model, optimizer
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="a 115k-parameter model, batch 4 x 64 (smoke test)")
    parser.add_argument("--batch", type=int, help="sequences per step (default 16; tiny 4)")
    parser.add_argument("--seq", type=int, help="tokens per sequence (default 1024; tiny 64)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20; tiny 5)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 5; tiny 1)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="torch.compile both models (default: on for CUDA, off for CPU)")
    parser.add_argument("--loss-chunk-rows", type=int, default=4096, help="rows per fused-loss chunk")
    parser.add_argument("--no-hf", action="store_true", help="skip the transformers peer")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    config = TINY if args.tiny else QWEN25_05B
    args.batch = args.batch or (4 if args.tiny else 16)
    args.seq = args.seq or (64 if args.tiny else 1024)
    args.steps = args.steps if args.steps is not None else (5 if args.tiny else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 5)
    args.compile = args.compile if args.compile is not None else device.type == "cuda"
    configure_backends(device)

    torch.manual_seed(0)
    state = {k: v.clone() for k, v in CausalLM(config).state_dict().items()}  # one set of weights for both
    data = batches(config, args.batch, args.seq, args.warmup + args.steps)
    ours = run_ours(config, state, data, args, device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    peer = None if args.no_hf else run_transformers(config, state, data, args, device)

    fpt = flops_per_token(config, args.seq)
    document = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "model": {"shape": "tiny" if args.tiny else "Qwen2.5-0.5B", "params": config.param_count},
        "batch": args.batch, "seq": args.seq, "timed_steps": args.steps, "compile": args.compile,
        "flops_per_token": fpt, "peak_flops": PEAK_FLOPS,
        "runs": [],
    }
    for result in filter(None, (ours, peer)):
        document["runs"].append({**result.__dict__, "mfu": result.tokens_per_sec * fpt / PEAK_FLOPS})
    ok = True
    if peer is not None:
        document["speedup"] = ours.tokens_per_sec / peer.tokens_per_sec
        document["first_loss_abs_diff"] = abs(ours.first_loss - peer.first_loss)
        ok = document["first_loss_abs_diff"] <= 1e-2
        document["first_loss_agrees"] = ok
    else:
        document["peer"] = "skipped (--no-hf, or transformers not installed: pip install -e .[hf])"
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(f"{document['model']['shape']} ({config.param_count / 1e6:.1f}M params), batch {args.batch} x "
              f"{args.seq}, {document['device']}, compile={args.compile}")
        for run in document["runs"]:
            mem = f", peak {run['peak_mem_gb']:.1f} GiB" if run["peak_mem_gb"] is not None else ""
            print(f"  {run['name']:<24} {run['tokens_per_sec']:>12,.0f} tok/s  {run['step_ms']:8.1f} ms/step  "
                  f"MFU {100 * run['mfu']:5.1f}%  loss {run['first_loss']:.4f} -> {run['last_loss']:.4f}{mem}")
        if peer is not None:
            print(f"  ratio apr.train / transformers: {document['speedup']:.2f}x; first-batch loss |diff| "
                  f"{document['first_loss_abs_diff']:.2e} ({'agrees' if ok else 'DISAGREES'} within 1e-2)")
        else:
            print(f"  peer: {document['peer']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
