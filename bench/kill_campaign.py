"""SIGKILL every writing command at random moments, 200+ trials each, and report what survived.

Usage::

    .venv/bin/python bench/kill_campaign.py --trials 200            # every command
    .venv/bin/python bench/kill_campaign.py --command stamp-in-place --trials 500 --seed 7

See tests/reliability/kill_harness.py for what one trial checks. Prints one line per command and
a JSON summary last (``--json-out FILE`` writes it too). Exit 0 when nothing was lost; stray
temporaries that a later run failed to remove are counted separately (``stray_failures``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.kill_harness import Zygote, build_assets, commands, run_trials  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--command", action="append", help="a command name (repeatable; default: all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=128, help="model width (128: 2.7 MB files)")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="apr-kill-"))
    results = []
    zygote = None
    try:
        assets = build_assets(base / "assets", hidden=args.hidden, layers=4)
        available = commands(assets)
        zygote = Zygote()
        for name in args.command or list(available):
            started = time.monotonic()
            stats = run_trials(zygote, available[name], base / name, args.trials, seed=args.seed)
            result = stats.to_dict() | {"seconds": round(time.monotonic() - started, 1)}
            results.append(result)
            lost = len(stats.failures) - stats.stray_failures
            print(f"{name:20} trials {stats.trials:4}  killed mid-run {stats.killed_mid_run:4}  "
                  f"absent/old/new {stats.output_absent}/{stats.output_old}/{stats.output_new}  "
                  f"strays after kill {stats.strays_after_kill:3}  lost {lost}  strays kept {stats.stray_failures}  "
                  f"({result['seconds']} s)", flush=True)
            for failure in stats.failures[:3]:
                print(f"    {failure}", flush=True)
    finally:
        if zygote is not None:
            zygote.close()
        shutil.rmtree(base, ignore_errors=True)
    summary = {"trials_per_command": args.trials, "seed": args.seed, "commands": results}
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({r["command"]: {"trials": r["trials"], "survived": r["survived"]} for r in results}))
    return 0 if all(len(r["failures"]) == r["stray_failures"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
