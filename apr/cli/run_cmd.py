"""`apr run FILE "prompt" [--max-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
[--device D] [--chat] [--json]`: generate with the checkpoint's embedded tokenizer.

Tokens stream to stdout as they are produced; timing goes to stderr. A file without an embedded
tokenizer is refused before any weight is read (PMAT-172, exit 6).
"""

from __future__ import annotations

import argparse
import sys
import time

from apr.cli.output import emit_result, err


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="generate text from an .apr model with its embedded tokenizer")
    p.add_argument("file", help="the .apr file")
    p.add_argument("prompt", help="the prompt text")
    p.add_argument("--max-tokens", type=int, default=128, metavar="N", help="tokens to generate at most (default 128)")
    p.add_argument("--temperature", type=float, default=0.0, metavar="T", help="0 (default) is greedy and deterministic")
    p.add_argument("--top-k", type=int, default=0, metavar="K", help="sample from the K most likely tokens (0: all)")
    p.add_argument("--top-p", type=float, default=1.0, metavar="P", help="nucleus sampling mass (default 1.0: off)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="sampling seed (default 0)")
    p.add_argument("--device", default="cpu", metavar="D", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of streaming")
    p.set_defaults(handler=run, reads_checkpoints=("file",), needs_extras=("train",))


def run(args: argparse.Namespace) -> int:
    from apr.errors import InferenceError
    from apr.run.generate import SamplingConfig

    sampling = SamplingConfig(max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                              top_p=args.top_p, seed=args.seed)
    from apr.run import generate_text, load_model
    from apr.train.device import resolve_device

    try:
        device = str(resolve_device(args.device))
    except Exception as error:  # resolve_device raises UsageError for missing CUDA
        raise InferenceError(str(error), field="--device", hint="use --device cpu") from error
    loaded = load_model(args.file, device=device)
    started = time.perf_counter()
    pieces: list[str] = []
    for delta in generate_text(loaded, args.prompt, sampling, chat=args.chat):
        pieces.append(delta)
        if not args.json:
            sys.stdout.write(delta)
            sys.stdout.flush()
    elapsed = time.perf_counter() - started
    text = "".join(pieces)
    count = len(loaded.tokenizer.encode(text, add_special_tokens=False).ids) if text else 0
    if args.json:
        return emit_result("run", {"prompt": args.prompt, "text": text, "chat": args.chat,
                   "tokens": count, "seconds": round(elapsed, 3), "device": device,
                   "sampling": {"max_tokens": sampling.max_tokens, "temperature": sampling.temperature,
                                "top_k": sampling.top_k, "top_p": sampling.top_p, "seed": sampling.seed}},
                           input=args.file)
    else:
        sys.stdout.write("\n")
        rate = count / elapsed if elapsed > 0 else 0.0
        err().print(f"{count} tokens in {elapsed:.2f}s ({rate:.1f} tok/s)", markup=False, highlight=False)
    return 0
