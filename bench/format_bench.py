"""Benchmark of the APR v2 format layer against its targets (issue 2).

Figures, each against a named peer, printed as a table with the ratio and the target:

1. ``apr inspect --json`` on a 4 GiB file vs on a 4 KiB file: time ratio <= 1.2 (opening must
   not depend on the data size).
2. Reading every tensor of a ~1 GiB model and touching every byte, vs `safetensors.numpy.load_file`
   on the same tensors: peer time / our time >= 1.0.
3. Writing that model with `apr.format.save_file` vs `safetensors.numpy.save_file`: our time /
   peer time <= 1.2, like for like: `save_file(durable=False)` against the peer (neither
   fsyncs), and our default durable write against the peer followed by an fsync of the file and
   its folder.
4. ``apr validate --json`` on the 4 GiB file: peak RSS <= 256 MiB (a fresh child, measured with
   ``getrusage(RUSAGE_CHILDREN)``).

Reads are the best of ``--repeat`` runs on a warm page cache; writes are the best of
``--repeat`` interleaved (ours, peer) pairs, each started after an ``os.sync()``. The script
never asserts: it reports, and ``docs/benchmarks.md`` records the figures with the machine.

Usage::

    .venv/bin/python bench/format_bench.py                     # issue sizes: 4 GiB and 1 GiB
    .venv/bin/python bench/format_bench.py --size-gib 0.25 --model-gib 0.0625 --repeat 2
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GIB = 1 << 30
MIB = 1 << 20
TENSOR_BYTES = 16 * MIB  # the ~1 GiB model is made of 16 MiB tensors, like a small LLM's layers


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the result table."""

    name: str
    ours: float
    peer: float | None
    unit: str
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""


# --- machine -------------------------------------------------------------------------------------


def machine_info() -> dict[str, str]:
    """CPU model, cores, RAM and the versions that matter for these figures."""
    import safetensors

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
    }


# --- helpers -------------------------------------------------------------------------------------


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    """The fastest of ``repeat`` wall-clock runs of ``fn`` (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def interleaved_best(repeat: int, ours: Callable[[], object], peer: Callable[[], object]) -> tuple[float, float]:
    """Fastest wall-clock seconds of ``ours`` and ``peer``, run alternately, each from a synced page cache.

    The fastest, not the median: on this VM a 1 GiB write takes 0.55-0.65 s in most runs and
    1.4-2.5 s in a random third of them, for either writer (host I/O, not the code), so the
    median of a handful of runs is a coin toss and the minimum is the undisturbed figure.
    """
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, bucket in zip((ours, peer), times, strict=True):
            os.sync()
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return min(times[0]), min(times[1])


def touch(array: np.ndarray) -> int:
    """Read every byte of ``array`` (an XOR reduction over 8-byte words; sizes are multiples of 8)."""
    words = np.ascontiguousarray(array).reshape(-1).view(np.uint64)
    return int(np.bitwise_xor.reduce(words)) if words.size else 0


def apr_command() -> list[str]:
    """The `apr` entry point of this interpreter's environment."""
    exe = Path(sys.executable).with_name("apr")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "apr.cli.main"]


def run_quiet(cmd: list[str]) -> int:
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode


def make_model(total_bytes: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A model of ~``total_bytes``: float32 and float16 tensors of up to 16 MiB, random values."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    remaining, layer = total_bytes, 0
    while remaining > 0:
        nbytes = min(TENSOR_BYTES, remaining)
        nbytes -= nbytes % 64
        if nbytes <= 0:
            break
        if layer % 4 == 3:  # a quarter of the tensors in half precision
            values = rng.standard_normal(nbytes // 2, dtype=np.float32).astype(np.float16)
            tensors[f"model.layers.{layer}.mlp.down_proj.weight"] = values.reshape(-1, 256) if values.size % 256 == 0 else values
        else:
            values = rng.standard_normal(nbytes // 4, dtype=np.float32)
            tensors[f"model.layers.{layer}.self_attn.q_proj.weight"] = values.reshape(-1, 256) if values.size % 256 == 0 else values
        remaining -= nbytes
        layer += 1
    return tensors


def write_big_file(path: Path, total_bytes: int) -> None:
    """An APR file of ~``total_bytes`` of zeros in 256 MiB tensors (the values do not matter here)."""
    from apr.format import save_file

    chunk = np.zeros(min(total_bytes, 256 * MIB) // 4, dtype=np.float32)
    count = max(1, total_bytes // chunk.nbytes)
    save_file({f"blk.{i:04d}.weight": chunk for i in range(count)}, path, {"architecture": "llama"})


def write_small_file(path: Path) -> None:
    """An APR file of ~4 KiB: a handful of small tensors."""
    from apr.format import save_file

    rng = np.random.default_rng(1)
    tensors = {f"blk.{i}.weight": rng.standard_normal(128, dtype=np.float32) for i in range(6)}
    save_file(tensors, path, {"architecture": "llama"})


def peak_rss_of(cmd: list[str]) -> tuple[int, int]:
    """(exit code, peak RSS in bytes) of ``cmd`` run in a fresh child of a fresh Python."""
    probe = (
        "import resource, subprocess, sys\n"
        "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode\n"
        "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True, check=True).stdout
    rc, kib = out.split()
    return int(rc), int(kib) * 1024


# --- the four figures ----------------------------------------------------------------------------


def bench_inspect(work: Path, size_gib: float, repeat: int) -> tuple[Row, Path]:
    big, small = work / "big.apr", work / "small.apr"
    write_big_file(big, int(size_gib * GIB))
    write_small_file(small)
    apr = apr_command()
    rc_big = run_quiet([*apr, "inspect", str(big), "--json"])
    rc_small = run_quiet([*apr, "inspect", str(small), "--json"])
    t_big = best_of(repeat, lambda: run_quiet([*apr, "inspect", str(big), "--json"]))
    t_small = best_of(repeat, lambda: run_quiet([*apr, "inspect", str(small), "--json"]))
    ratio = t_big / t_small
    note = f"{big.stat().st_size / GIB:.2f} GiB vs {small.stat().st_size / 1024:.1f} KiB; exit codes {rc_big}/{rc_small}"
    row = Row("apr inspect: big file vs small file", t_big, t_small, "s", ratio, "<= 1.2", ratio <= 1.2, note)
    return row, big


def bench_validate_rss(big: Path) -> Row:
    rc, rss = peak_rss_of([*apr_command(), "validate", str(big), "--json"])
    mib = rss / MIB
    return Row(
        "apr validate: peak RSS on the big file", mib, None, "MiB", None, "<= 256 MiB", mib <= 256,
        f"exit code {rc}",
    )


def bench_read_write(work: Path, model_gib: float, repeat: int) -> list[Row]:
    import safetensors.numpy as stnp

    from apr.format import open_file, save_file

    tensors = make_model(int(model_gib * GIB))
    total = sum(t.nbytes for t in tensors.values())
    ours_path, peer_path = work / "model.apr", work / "model.safetensors"

    def write_ours() -> None:
        save_file(tensors, ours_path)

    def write_ours_nosync() -> None:
        save_file(tensors, ours_path, durable=False)

    def write_peer() -> None:
        stnp.save_file(tensors, str(peer_path))

    def write_peer_fsync() -> None:
        stnp.save_file(tensors, str(peer_path))
        for target, flags in ((peer_path, os.O_RDONLY), (work, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))):
            fd = os.open(target, flags)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    # Writes are timed in interleaved pairs (ours, then the peer), each after an untimed
    # os.sync(): otherwise whichever runs second inherits the first one's gigabyte of dirty
    # pages and the kernel's writeback throttling, and the ratio measures the order, not the
    # writer (a 0.2 s vs 0.6 s swing for the same call on this machine).
    t_write_nosync, t_write_peer = interleaved_best(repeat, write_ours_nosync, write_peer)
    t_write, t_write_peer_sync = interleaved_best(repeat, write_ours, write_peer_fsync)

    def read_ours() -> int:
        acc = 0
        with open_file(ours_path) as reader:
            for name in reader.keys():
                acc ^= touch(reader.get_tensor(name))
        return acc

    def read_peer() -> int:
        acc = 0
        for value in stnp.load_file(str(peer_path)).values():
            acc ^= touch(value)
        return acc

    read_ours(), read_peer()  # warm the page cache for both files
    t_read = best_of(repeat, read_ours)
    t_read_peer = best_of(repeat, read_peer)
    size = f"{len(tensors)} tensors, {total / GIB:.2f} GiB"
    read_ratio = t_read_peer / t_read
    write_ratio = t_write_nosync / t_write_peer
    sync_ratio = t_write / t_write_peer_sync
    return [
        Row("read + touch every tensor (peer/ours)", t_read, t_read_peer, "s", read_ratio, ">= 1.0",
            read_ratio >= 1.0, f"{size}; warm page cache; {total / GIB / t_read:.2f} GiB/s ours"),
        Row("write the same model (ours/peer), neither fsyncs", t_write_nosync, t_write_peer, "s", write_ratio,
            "<= 1.2", write_ratio <= 1.2,
            f"save_file(durable=False): temp file + rename, no fsync; {total / GIB / t_write_nosync:.2f} GiB/s ours"),
        Row("write, both durable (ours default / peer + fsync)", t_write, t_write_peer_sync, "s", sync_ratio,
            "<= 1.2", sync_ratio <= 1.2, "like-for-like durability: fsync of file and folder"),
    ]


# --- report --------------------------------------------------------------------------------------


def render(rows: list[Row], info: dict[str, str], argv: list[str]) -> str:
    def fmt(value: float | None, unit: str) -> str:
        if value is None:
            return "-"
        return f"{value:.1f} {unit}" if unit == "MiB" else f"{value * 1000:.1f} ms" if value < 1 else f"{value:.3f} s"

    lines = [
        "machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        "command: " + " ".join(argv),
        "",
        "| figure | ours | peer | ratio | target | met | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.3f}"
        met = "-" if row.met is None else ("yes" if row.met else "**no**")
        lines.append(
            f"| {row.name} | {fmt(row.ours, row.unit)} | {fmt(row.peer, row.unit)} | {ratio} | {row.target} "
            f"| {met} | {row.note} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=4.0, help="size of the big file for inspect/validate")
    parser.add_argument("--model-gib", type=float, default=1.0, help="size of the model for read/write")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing; the best is kept")
    parser.add_argument("--workdir", type=Path, default=None, help="folder for the temporary files")
    parser.add_argument("--only", choices=("inspect", "readwrite", "all"), default="all")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine_info()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="apr-format-bench-", dir=args.workdir))
    rows: list[Row] = []
    try:
        if args.only in ("readwrite", "all"):
            rows += bench_read_write(work, args.model_gib, args.repeat)
            for leftover in ("model.apr", "model.safetensors"):
                (work / leftover).unlink(missing_ok=True)
        if args.only in ("inspect", "all"):
            row, big = bench_inspect(work, args.size_gib, max(args.repeat, 5))
            rows.append(row)
            rows.append(bench_validate_rss(big))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render(rows, info, [Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
