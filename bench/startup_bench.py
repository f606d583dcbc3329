"""Start-up cost of `apr` commands against ``python -c "import numpy"`` (issue 17, part 3).

Each command runs as a fresh process on a 4 KiB checkpoint, interleaved with the peer so both see
the same machine load; the figure is the best of ``--repeat`` runs (start-up is a floor, and the
best run is the one least disturbed by other work). Prints a table with the ratio against the peer
(target: `apr inspect` <= 1.5x). Never asserts; docs/benchmarks.md records the figures.

Usage::

    .venv/bin/python bench/startup_bench.py [--repeat 15] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from apr.format import save_file

APR = [sys.executable, "-m", "apr.cli.main"]


def _seconds(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = folder / "m.apr"
        save_file({"w": np.zeros((16, 48), np.float32)}, model, {"name": "m", "architecture": "llama"})
        commands = {
            "python -c 'import numpy' (peer)": [sys.executable, "-c", "import numpy"],
            "apr inspect": [*APR, "inspect", str(model)],
            "apr inspect --json": [*APR, "inspect", str(model), "--json"],
            "apr validate": [*APR, "validate", str(model)],
            "apr stamp -o": [*APR, "stamp", str(model), "-o", str(folder / "s.apr"), "--name", "x", "-f"],
        }
        best = {name: float("inf") for name in commands}
        for _ in range(args.repeat):
            for name, argv in commands.items():
                best[name] = min(best[name], _seconds(argv, folder))
        size = model.stat().st_size
    peer = best["python -c 'import numpy' (peer)"]
    rows = [{"command": name, "seconds": round(s, 4), "ratio": round(s / peer, 3)} for name, s in best.items()]
    if args.json:
        print(json.dumps({"file_bytes": size, "repeat": args.repeat, "rows": rows}))
        return 0
    print(f"checkpoint: {size} bytes; best of {args.repeat} fresh processes each, interleaved")
    print(f"{'command':<34} {'seconds':>8} {'x peer':>7}")
    for row in rows:
        print(f"{row['command']:<34} {row['seconds']:>8.3f} {row['ratio']:>7.2f}")
    print("target: apr inspect <= 1.50 x peer")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
