"""F16 export CPU seconds: apr/convert/gguf_encode.py as of a git revision against this tree's.

Why: the change it measured (issue 19: the F16 error taken on the float16 payload, widened inside
the subtraction, without a float32 copy) must keep the output bytes and the reported error. This
prints, for both versions of ``encode``, the best-of-N CPU seconds of a one-thread
``export_gguf(..., quantize=f16)`` in interleaved rounds, the output's SHA-256 and the error.
Asserts nothing.

Run: ``OMP_NUM_THREADS=1 APR_THREADS=1 .venv/bin/python bench/f16_error_ab.py m.apr
--baseline-rev 110f1cd --workdir /tmp/x --repeat 3``
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

from apr.convert import gguf_encode
from apr.convert.gguf_export import GgufQuant, export_gguf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("apr", type=Path)
    parser.add_argument("--baseline-rev", required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = subprocess.run(["git", "show", f"{args.baseline_rev}:apr/convert/gguf_encode.py"],
                            capture_output=True, text=True, check=True).stdout
    path = args.workdir / "gguf_encode_baseline.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    baseline = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = baseline  # dataclasses look their module up
    spec.loader.exec_module(baseline)
    current = gguf_encode.encode
    versions = {"before": baseline.encode, "after": current}
    best = dict.fromkeys(versions, float("inf"))
    errors: dict[str, object] = {}
    try:
        for _ in range(args.repeat):
            for name, encode in versions.items():
                gguf_encode.encode = encode
                start = time.process_time()
                report = export_gguf(args.apr, args.workdir / f"f16-{name}.gguf", quantize=GgufQuant.F16, force=True)
                best[name] = min(best[name], time.process_time() - start)
                errors[name] = report.quant_error
    finally:
        gguf_encode.encode = current
    for name, seconds in best.items():
        digest = hashlib.sha256((args.workdir / f"f16-{name}.gguf").read_bytes()).hexdigest()[:16]
        print(f"{name:6s} cpu best {seconds:.2f} s  sha256 {digest}  error {errors[name]}")


if __name__ == "__main__":
    main()
