"""Peak RSS of every resource bomb, each consumed in a fresh child (its own VmHWM), against 256 MiB.

Usage::

    .venv/bin/python bench/bomb_rss.py [--json-out FILE]

Prints the outcome (refused / accepted / crashed / out-of-memory / timeout), the child's peak RSS
and time for each bomb of tests/reliability/bombs.py, after the RSS of a child that only imports
the same modules (the floor every bomb pays).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.bombs import BOMBS, RSS_LIMIT_MIB, baseline_rss, measure  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="CPU seconds each bomb child may compute (its wall-clock backstop is 20x that)")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="apr-bombs-"))
    rows = []
    try:
        floor = baseline_rss()
        print(f"{'import-only baseline':28} {'':14} {floor:8.1f} MiB")
        for name, bomb in BOMBS.items():
            result = measure(name, base / name, timeout=args.timeout)
            shutil.rmtree(base / name, ignore_errors=True)
            verdict = "ok" if result.ok else "FAIL"
            print(f"{name:28} {result.outcome:14} {result.peak_rss_mib:8.1f} MiB {result.seconds:6.2f} s  {verdict}"
                  + (f"  (known: {bomb.known_bug})" if bomb.known_bug and not result.ok else ""), flush=True)
            rows.append({"bomb": name, "claim": bomb.claim, "outcome": result.outcome,
                         "peak_rss_mib": result.peak_rss_mib, "seconds": result.seconds, "ok": result.ok,
                         "known_bug": bomb.known_bug})
    finally:
        shutil.rmtree(base, ignore_errors=True)
    summary = {"rss_limit_mib": RSS_LIMIT_MIB, "baseline_mib": floor, "bombs": rows}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if all(r["ok"] or r["known_bug"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
