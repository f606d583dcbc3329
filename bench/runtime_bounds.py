"""Bounds before work at run time (issue 14): peak RSS of the reproducers, each in a fresh child.

Usage::

    .venv/bin/python bench/runtime_bounds.py [--text-mib 1 8] [--json-out FILE]

Prints, for a tiny qwen2 checkpoint (hidden 32, 2 layers):

* each huge-claim reproducer (``num_layers`` 1e9 and 2^63, ``vocab_size`` / ``hidden_size`` 2^40
  through run, qa, GGUF export and pretrain; a ``--config`` of 1e9 layers): exit code, peak RSS of
  its child (os.wait4, 4 GiB address-space limit) and seconds;
* ``apr tokenize`` of generated text of each size, streamed (as now) against the peer, the same
  command with the file encoded whole (the code before issue 14, patched in through
  ``APR_CONTRACTS_MUTANT``): peak RSS, bytes of RSS per byte of text above the smallest run, ratio;
* each chat-template bomb: what stopped it, seconds, and how much this process grew.

It never asserts: the suite's FALSIFY-RELIABILITY-013/014 tests do.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.runtime_probe import measure  # noqa: E402

WHOLE_FILE = json.dumps({"name": "tokenize-whole-file", "target": "apr.tokenizer.stream.split_rule",
                         "replacement": "tests.reliability.mutants_runtime:no_safe_split", "paths": [str(ROOT)]})
CONFIG = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 512, "hidden_size": 64,
          "num_hidden_layers": 10**9, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128}
BOMBS = {
    "'x' * 2e9": "{{ 'x' * 2000000000 }}",
    "nested range loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "output flood": "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
}


def _model(base: Path) -> tuple[Path, Path]:
    import numpy as np

    from apr.convert.hf_import import import_hf
    from apr.format import open_file, save_file
    from tests.convert.tiny_hf import build_hf_folder, train_tokenizer

    train_tokenizer(base / "tok")
    import_hf(build_hf_folder(base / "hf", "qwen2", tokenizer_from=base / "tok", hidden=32, layers=2, heads=4,
                              kv_heads=2, inter=64), base / "m.apr")
    with open_file(base / "m.apr") as reader:
        metadata = dict(reader.metadata)
        tensors = {n: np.array(reader.get_tensor(n)) for n in reader.keys()}
    for name, change in (("layers1e9", {"num_layers": 10**9}), ("layers2e63", {"num_layers": 2**63}),
                         ("vocab2e40", {"vocab_size": 2**40}), ("hidden2e40", {"hidden_size": 2**40})):
        save_file(tensors, base / f"{name}.apr", {**metadata, **change})
    return base / "m.apr", base / "tok"


def _text(path: Path, size: int) -> None:
    import random

    rng = random.Random(size)
    words = (ROOT / "README.md").read_text(encoding="utf-8").split()
    with path.open("w", encoding="utf-8") as handle:
        written = 0
        while written < size:
            line = " ".join(rng.choice(words) for _ in range(rng.randint(0, 15))) + "\n"
            handle.write(line)
            written += len(line.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text-mib", type=float, nargs="+", default=[1.0, 8.0])
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="apr-runtime-bounds-"))
    report: dict[str, list[dict]] = {"claims": [], "tokenize": [], "chat": []}
    try:
        _, tok = _model(base)
        (base / "huge.json").write_text(json.dumps(CONFIG))
        (base / "out").mkdir()
        claims = {
            "run num_layers 1e9": ["run", base / "layers1e9.apr", "hi"],
            "run num_layers 2^63": ["run", base / "layers2e63.apr", "hi"],
            "run vocab_size 2^40": ["run", base / "vocab2e40.apr", "hi"],
            "run hidden_size 2^40": ["run", base / "hidden2e40.apr", "hi"],
            "qa num_layers 1e9": ["qa", base / "layers1e9.apr"],
            "export gguf vocab_size 2^40": ["export", base / "vocab2e40.apr", "--format", "gguf", "-o",
                                            base / "out" / "v.gguf"],
            "pretrain --init num_layers 1e9": ["pretrain", "--dataset", base / "none", "--run-dir", base / "out" / "r",
                                               "--init", base / "layers1e9.apr"],
            "pretrain --config 1e9 layers": ["pretrain", "--dataset", base / "none", "--run-dir", base / "out" / "s",
                                             "--config", base / "huge.json"],
        }
        print(f"{'reproducer':34} {'exit':>4} {'peak RSS':>10} {'seconds':>8}")
        for name, argv_ in claims.items():
            result = measure([[str(a) for a in argv_]], timeout=300)
            code = result.codes[0] if result.codes else result.outcome
            print(f"{name:34} {code!s:>4} {result.peak_rss_mib:7.1f} MiB {result.seconds:8.2f}", flush=True)
            report["claims"].append({"reproducer": name, "exit": code, "peak_rss_mib": result.peak_rss_mib,
                                     "seconds": result.seconds})

        print(f"\n{'tokenize':12} {'streamed':>12} {'whole file':>12} {'ratio':>6}")
        floor: dict[str, float] = {}
        for mib in sorted(args.text_mib):
            text = base / f"text-{mib}.txt"
            _text(text, int(mib * 2**20))
            row: dict[str, float | str] = {"text_mib": mib}
            for label, env in (("streamed", None), ("whole", {"APR_CONTRACTS_MUTANT": WHOLE_FILE})):
                out = base / f"data-{label}-{mib}"
                result = measure([["tokenize", str(text), "--tokenizer", str(tok), "-o", str(out)]], timeout=600,
                                 env=env)
                shutil.rmtree(out, ignore_errors=True)
                row[label] = result.peak_rss_mib if result.codes == [0] else f"{result.outcome} {result.codes}"
                row[f"{label}_seconds"] = result.seconds
            print(f"{mib:8.1f} MiB {row['streamed']!s:>8} MiB {row['whole']!s:>8} MiB "
                  f"{row['whole'] / row['streamed'] if isinstance(row['whole'], float) else float('nan'):6.2f}",
                  flush=True)
            for label in ("streamed", "whole"):
                if isinstance(row[label], float):
                    floor.setdefault(label, (row[label], mib))
                    first, first_mib = floor[label]
                    if mib > first_mib:
                        row[f"{label}_bytes_per_byte"] = round((row[label] - first) / (mib - first_mib), 1)
            report["tokenize"].append(row)
        for label in ("streamed", "whole"):
            slopes = [r[f"{label}_bytes_per_byte"] for r in report["tokenize"] if f"{label}_bytes_per_byte" in r]
            if slopes:
                print(f"  {label}: {slopes[-1]} bytes of peak RSS per byte of text above the smallest")

        from apr.errors import InferenceError
        from apr.run.chat import render_chat

        print(f"\n{'chat template':22} {'stopped by':52} {'seconds':>8} {'grew':>8}")
        for name, template in BOMBS.items():
            before, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.monotonic()
            try:
                render_chat(template, [{"role": "user", "content": "hi"}])
                outcome = "rendered"
            except InferenceError as err:
                outcome = err.message.split(": ", 1)[-1][:52]
            seconds = time.monotonic() - started
            grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
            print(f"{name:22} {outcome:52} {seconds:8.2f} {grew:5.1f} MiB", flush=True)
            report["chat"].append({"template": name, "outcome": outcome, "seconds": round(seconds, 2),
                                   "grew_mib": round(grew, 1)})
    finally:
        shutil.rmtree(base, ignore_errors=True)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
