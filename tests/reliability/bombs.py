"""Resource bombs: tiny (or sparse) inputs whose headers claim huge sizes, and how to measure them.

Every bomb runs in a fresh child process (``python -m tests.reliability.bombs NAME FOLDER``) under a
2 GiB address-space limit and a time limit, and the parent reads that child's own peak RSS from
``os.wait4``. The child exits 0 when the input was refused with the project's own error (an
`AprError`, or findings for a contract) and non-zero otherwise (3: accepted, 4: another exception,
5: MemoryError). Used by ``tests/reliability/test_resource_limits.py`` and ``bench/bomb_rss.py``.
"""

from __future__ import annotations

import functools
import math
import os
import resource
import signal
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RSS_LIMIT_MIB = 256
_AS_LIMIT = 2 * 1024**3


@dataclass(frozen=True, slots=True)
class Bomb:
    name: str
    claim: str  # what the input lies about
    build: Callable[[Path], None]  # writes the input into a folder
    run: Callable[[Path], object]  # consumes it (in the child)
    known_bug: str | None = None  # why it currently fails (reported, xfail in the suite)


# --- APR ----------------------------------------------------------------------------------------


def _header(count: int, meta_size: int, index_off: int, data_off: int, flags: int = 0x0400) -> bytes:
    head = bytearray(struct.pack("<4sBBHIQIQQI20s", b"APR\x00", 2, 0, flags, count, 64, meta_size,
                                 index_off, data_off, 0, bytes(20)))
    crc = zlib.crc32(bytes(head[:40]) + bytes(head[44:]))
    head[40:44] = struct.pack("<I", crc)
    return bytes(head)


def _sparse(path: Path, prefix: bytes, size: int) -> None:
    with open(path, "wb") as handle:
        handle.write(prefix)
        handle.truncate(size)  # a hole: the claim is real on disk without using the disk


def _apr(folder: Path) -> object:
    from apr.format import open_file

    with open_file(folder / "m.apr") as reader:
        return [reader.get_tensor(name) for name in reader.keys()]


def _metadata_1gb(folder: Path) -> None:
    claim = 1024**3
    _sparse(folder / "m.apr", _header(0, claim, 64 + claim, 64 + claim), 64 + claim + 64)


def _metadata_1gb_small(folder: Path) -> None:
    (folder / "m.apr").write_bytes(_header(0, 1024**3, 64 + 1024**3, 64 + 1024**3) + bytes(64))


def _tensor_count(folder: Path) -> None:
    (folder / "m.apr").write_bytes(_header(2**32 - 1, 2, 128, 192) + b"{}" + bytes(190))


def _index_span(folder: Path) -> None:
    span = 1536 * 1024**2
    _sparse(folder / "m.apr", _header(2**20, 2, 128, 128 + span) + b"{}", 128 + span + 64)


def _entry(name: bytes, code: int, dims: list[int], offset: int, size: int) -> bytes:
    return (struct.pack("<H", len(name)) + name + bytes((code, len(dims)))
            + b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<QQ", offset, size))


def _one_entry_file(entry: bytes, payload: bytes = b"") -> bytes:
    meta = b"{}" + bytes(62)
    index = entry + bytes(-len(entry) % 64)
    data = payload + bytes(-len(payload) % 64)
    body = _header(1, 2, 128, 128 + len(index)) + meta + index + data
    return body + struct.pack("<I", zlib.crc32(body))


def _ndim(folder: Path) -> None:
    entry = struct.pack("<H", 1) + b"w" + bytes((0, 255)) + struct.pack("<Q", 2**40) * 255 + struct.pack("<QQ", 0, 0)
    (folder / "m.apr").write_bytes(_one_entry_file(entry))


def _huge_dims(folder: Path) -> None:
    (folder / "m.apr").write_bytes(_one_entry_file(_entry(b"w", 0, [2**62, 2**62, 0], 0, 0)))


def _huge_shape_small_size(folder: Path) -> None:
    (folder / "m.apr").write_bytes(_one_entry_file(_entry(b"w", 0, [2**31, 2**31], 0, 16), bytes(16)))


def _deep_metadata(folder: Path) -> None:
    meta = b"[" * 200_000 + b"]" * 200_000
    pad = bytes(-len(meta) % 64)
    body = _header(0, len(meta), 64 + len(meta) + len(pad), 64 + len(meta) + len(pad)) + meta + pad
    (folder / "m.apr").write_bytes(body + struct.pack("<I", zlib.crc32(body)))


def _dense_metadata(folder: Path) -> None:
    meta = b'{"a":[' + b"0," * (30 * 1024**2 - 4) + b'0]}'  # 60 MiB, under the 64 MiB metadata limit
    pad = bytes(-len(meta) % 64)
    body = _header(0, len(meta), 64 + len(meta) + len(pad), 64 + len(meta) + len(pad)) + meta + pad
    (folder / "m.apr").write_bytes(body + struct.pack("<I", zlib.crc32(body)))


# --- JSON inputs: config.json, tokenizer folder -------------------------------------------------


def _config(folder: Path) -> object:
    from apr.convert.hf_config import metadata_from_hf_config, read_config_json

    return metadata_from_hf_config(read_config_json(folder / "config.json"))


def _tokenizer(folder: Path) -> object:
    from apr.tokenizer import read_tokenizer_dir

    return read_tokenizer_dir(folder / "tok")


def _deep_config(folder: Path) -> None:
    (folder / "config.json").write_bytes(b"[" * 200_000 + b"]" * 200_000)


def _deep_tokenizer(folder: Path) -> None:
    (folder / "tok").mkdir()
    (folder / "tok" / "tokenizer.json").write_bytes(b'{"model": {"vocab": ' + b"[" * 200_000 + b"]" * 200_000 + b"}}")


def _vocab_id(folder: Path) -> None:
    (folder / "tok").mkdir()
    (folder / "tok" / "vocab.json").write_text('{"a": 0, "b": 50000000}')


# --- contract YAML ------------------------------------------------------------------------------


def _yaml(folder: Path) -> object:
    from falsifiers.loader import load_file

    doc = load_file(folder / "c.yaml")
    if not doc.has_errors:
        return doc
    raise _Refused([f.code for f in doc.findings][:3])


class _Refused(Exception):
    """A contract refused with findings (the loader never raises)."""


def _laughs(folder: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    (folder / "c.yaml").write_text("\n".join(lines) + "\n")


def _deep_yaml(folder: Path) -> None:
    (folder / "c.yaml").write_bytes(b"a: " + b"[" * 200_000 + b"]" * 200_000 + b"\n")


def _huge_yaml(folder: Path) -> None:
    _sparse(folder / "c.yaml", b"a: b\n", 1024**3)


# --- GGUF / safetensors -------------------------------------------------------------------------


def _gguf(folder: Path) -> object:
    from apr.convert.gguf_import import import_gguf

    return import_gguf(folder / "m.gguf", folder / "out.apr")


def _gguf_counts(folder: Path) -> None:
    (folder / "m.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**62, 2**62) + bytes(64))


def _gguf_array(folder: Path) -> None:
    kv = struct.pack("<Q", 3) + b"abc" + struct.pack("<I", 9) + struct.pack("<IQ", 4, 2**40)
    (folder / "m.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv + bytes(64))


def _gguf_string(folder: Path) -> None:
    kv = struct.pack("<Q", 3) + b"abc" + struct.pack("<I", 8) + struct.pack("<Q", 2**40)
    (folder / "m.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv + bytes(64))


def _safetensors(folder: Path) -> object:
    from apr.convert.hf_import import read_safetensors_header

    return read_safetensors_header(folder / "model.safetensors")


def _st_header(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 2**40) + b'{"a":1}')


BOMBS: dict[str, Bomb] = {b.name: b for b in (
    Bomb("apr-metadata-1gib-sparse", "metadata_size 1 GiB, file really 1 GiB (sparse)", _metadata_1gb, _apr),
    Bomb("apr-metadata-1gib-claim", "metadata_size 1 GiB in a 128-byte file", _metadata_1gb_small, _apr),
    Bomb("apr-tensor-count", "tensor_count 2^32-1 in a 256-byte file", _tensor_count, _apr),
    Bomb("apr-index-span", "tensor index of 1.5 GiB, 2^20 tensors (sparse file)", _index_span, _apr),
    Bomb("apr-ndim-255", "one tensor with ndim 255", _ndim, _apr),
    Bomb("apr-dims-2^124", "zero-size tensor with dims 2^62 x 2^62 x 0", _huge_dims, _apr),
    Bomb("apr-shape-2^62-elements", "16-byte payload claiming 2^31 x 2^31 floats", _huge_shape_small_size, _apr),
    Bomb("apr-metadata-deep-json", "metadata JSON nested 200,000 deep", _deep_metadata, _apr),
    Bomb("apr-metadata-60mib-dense", "60 MiB metadata of 31M JSON numbers (under the size limit)",
         _dense_metadata, _apr),
    Bomb("config-deep-json", "config.json nested 200,000 deep", _deep_config, _config),
    Bomb("tokenizer-deep-json", "tokenizer.json nested 200,000 deep", _deep_tokenizer, _tokenizer),
    Bomb("tokenizer-vocab-id-5e7", "30-byte vocab.json with id 50,000,000", _vocab_id, _tokenizer),
    Bomb("yaml-billion-laughs", "9 levels of 9 aliases (387M nodes)", _laughs, _yaml),
    Bomb("yaml-deep-nesting", "flow sequence nested 200,000 deep", _deep_yaml, _yaml),
    Bomb("yaml-1gib-file", "1 GiB contract file (sparse)", _huge_yaml, _yaml),
    Bomb("gguf-counts-2^62", "tensor and KV counts 2^62", _gguf_counts, _gguf),
    Bomb("gguf-array-2^40", "one KV array of 2^40 uint32 in a 100-byte file", _gguf_array, _gguf),
    Bomb("gguf-string-2^40", "one KV string of 2^40 bytes", _gguf_string, _gguf),
    Bomb("safetensors-header-2^40", "safetensors header length 2^40", _st_header, _safetensors),
)}


# --- child / parent -----------------------------------------------------------------------------


HWM_ENV = "APR_BOMB_HWM"  # where a child writes its own peak RSS (VmHWM, KiB) as it exits


def own_peak_rss_kib() -> int | None:
    """This process's peak RSS since its exec (``VmHWM``), or None off Linux.

    Why not ``wait4``'s ``ru_maxrss``: Linux carries the pre-exec address space's high-water mark
    into it, and a child forked (``preexec_fn``) from a large pytest worker starts out "using" the
    worker's whole RSS (313 MiB after a test imported torch); every bomb then measured the same.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _write_peak() -> None:
    path, peak = os.environ.get(HWM_ENV), own_peak_rss_kib()
    if path and peak is not None:
        Path(path).write_text(str(peak))


def wait_or_kill(proc: subprocess.Popen, started: float, timeout: float, poll: float = 0.01) -> tuple[int, Any, bool]:
    """Wait for ``proc`` (killing it ``timeout`` s after ``started``); (wait status, rusage, timed out)."""
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return status, usage, False
        if time.monotonic() - started > timeout:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            return status, usage, True
        time.sleep(poll)


def _child(name: str, folder: Path) -> int:
    import atexit

    from apr.errors import AprError, AprFileNotFoundError
    from tests.reliability.mutants import install_from_env

    atexit.register(_write_peak)
    install_from_env()
    try:
        BOMBS[name].run(folder)
    except AprFileNotFoundError as err:  # the bomb was not even reached: a harness mistake
        sys.stderr.write(f"{type(err).__name__}: {err}\n")
        return 4
    except (AprError, _Refused) as err:
        sys.stderr.write(f"refused: {type(err).__name__}: {str(err)[:160]}\n")
        return 0
    except MemoryError:
        return 5
    except BaseException as err:  # noqa: BLE001
        sys.stderr.write(f"{type(err).__name__}: {str(err)[:200]}\n")
        return 4
    return 3


@dataclass(frozen=True, slots=True)
class BombResult:
    name: str
    outcome: str  # refused | accepted | crashed | out-of-memory | timeout | killed
    peak_rss_mib: float
    seconds: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == "refused" and self.peak_rss_mib <= RSS_LIMIT_MIB


def _limits(cpu_seconds: int | None = None) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_AS_LIMIT, _AS_LIMIT))
    if cpu_seconds is not None:  # SIGXCPU at the soft limit, SIGKILL one second later
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))


# A bomb's time budget is CPU seconds (RLIMIT_CPU), not wall seconds: on a loaded machine a child
# that needs 2 s of CPU can take 10 s of wall time, and a verdict must not depend on the load. The
# wall clock only catches a child that blocks without computing, after this many times the budget.
_WALL_FACTOR = 20


def run_limited(argv: list[str], *, env: dict[str, str] | None, timeout: float
                ) -> tuple[subprocess.Popen, int, Any, bool]:
    """Run ``argv`` under the address-space limit and a CPU budget of ``timeout`` seconds:
    (process, wait status, rusage, whether it ran out of its budget or of the wall clock)."""
    started = time.monotonic()
    budget = math.ceil(timeout)
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, preexec_fn=functools.partial(_limits, budget),
                            stderr=subprocess.PIPE)
    status, usage, timed_out = wait_or_kill(proc, started, timeout * _WALL_FACTOR)
    if os.WIFSIGNALED(status):  # SIGXCPU: the soft limit (rusage may show a little less than it);
        # SIGKILL past the budget: the hard limit, a second later (an OOM kill comes earlier)
        signum = os.WTERMSIG(status)
        timed_out = timed_out or signum == signal.SIGXCPU or (
            signum == signal.SIGKILL and usage.ru_utime + usage.ru_stime >= budget)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc, status, usage, timed_out


def measure(name: str, folder: Path, timeout: float = 30.0) -> BombResult:
    """Build bomb ``name`` in ``folder`` and run it in a fresh, limited child; peak RSS from wait4.

    ``timeout`` is the child's CPU time budget (a bomb that computes past it is a ``timeout``); a
    child that has not ended after ``_WALL_FACTOR`` times that in wall time is killed as well.
    """
    folder.mkdir(parents=True, exist_ok=True)
    BOMBS[name].build(folder)
    from tests.reliability.mutants import child_env

    peak_file = folder / ".peak-rss-kib"
    peak_file.unlink(missing_ok=True)
    env = dict(child_env(), PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env[HWM_ENV] = os.fspath(peak_file)
    started = time.monotonic()
    proc, status, usage, timed_out = run_limited([sys.executable, "-m", "tests.reliability.bombs", name,
                                                  os.fspath(folder)], env=env, timeout=timeout)
    detail = proc.stderr.read().decode(errors="replace").strip()[-300:] if proc.stderr else ""
    seconds = time.monotonic() - started
    # the child's own high-water mark; wait4's figure (KiB on Linux) only if it could not write one
    rss = (int(peak_file.read_text()) if peak_file.is_file() else usage.ru_maxrss) / 1024
    if timed_out:
        outcome = "timeout"
    elif os.WIFSIGNALED(status):
        outcome = "killed"
    else:
        outcome = {0: "refused", 3: "accepted", 4: "crashed", 5: "out-of-memory"}.get(os.WEXITSTATUS(status), "crashed")
    return BombResult(name, outcome, round(rss, 1), round(seconds, 2), detail)


def baseline_rss(timeout: float = 30.0) -> float:
    """Peak RSS of a child that imports what the bombs import and does nothing else."""
    code = ("import apr.format, apr.convert.hf_import, apr.convert.gguf_import, apr.tokenizer, falsifiers.loader\n"
            "from tests.reliability.bombs import own_peak_rss_kib\nprint(own_peak_rss_kib())")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, preexec_fn=_limits, capture_output=True, text=True,
                          timeout=timeout, check=True)
    return round(int(done.stdout.split()[-1]) / 1024, 1)


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1], Path(sys.argv[2])))


__all__ = ["BOMBS", "RSS_LIMIT_MIB", "Bomb", "BombResult", "baseline_rss", "measure"]
