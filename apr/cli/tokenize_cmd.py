"""`apr tokenize TEXT... --tokenizer (DIR|FILE.apr) -o DIR`: text files to token shards.

Each file is read as UTF-8, encoded with the tokenizer (a Hugging Face folder, or the one embedded
in a checkpoint), followed by the EOS id when the tokenizer has one, and the ids are written as
shards plus ``manifest.json`` (format in `apr.train.shards`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from apr.errors import AprFileNotFoundError, OutputExistsError, UsageError

DEFAULT_SHARD_TOKENS = 1 << 27  # 128 Mi ids: 256 MiB of uint16 per shard


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tokenize", help="encode text files into token shards for `apr pretrain`",
        description="Encode TEXT files with a tokenizer folder or an APR checkpoint's embedded tokenizer "
                    "and write token shards plus manifest.json to -o DIR.",
    )
    parser.add_argument("text", nargs="+", metavar="TEXT", help="UTF-8 text files to encode, in order")
    parser.add_argument("--tokenizer", required=True, metavar="DIR|FILE.apr",
                        help="folder with tokenizer.json (or vocab.json + merges.txt), or a checkpoint embedding one")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write the shards to")
    parser.add_argument("--shard-tokens", type=int, default=DEFAULT_SHARD_TOKENS, metavar="N",
                        help=f"ids per shard file (default {DEFAULT_SHARD_TOKENS})")
    parser.add_argument("--no-eos", action="store_true", help="do not append the EOS id after each file")
    parser.add_argument("-f", "--force", action="store_true", help="overwrite an existing dataset in DIR")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from apr.cli.output import emit_json, out
    from apr.tokenizer import build_tokenizer, read_tokenizer
    from apr.train.shards import MANIFEST_NAME, write_dataset

    if args.shard_tokens <= 0:
        raise UsageError(f"--shard-tokens must be positive, got {args.shard_tokens}", field="--shard-tokens")
    sources = [Path(p) for p in args.text]
    for source in sources:
        if not source.is_file():
            raise AprFileNotFoundError("text file not found", path=source, field="TEXT")
    output = Path(args.output)
    if (output / MANIFEST_NAME).exists() and not args.force:
        raise OutputExistsError("output folder already holds a dataset", path=output, field="--output",
                                hint="choose another -o DIR, or pass --force")
    if output.exists() and not output.is_dir():
        raise UsageError("-o must be a folder", path=output, field="--output")
    record = read_tokenizer(args.tokenizer)
    tokenizer = build_tokenizer(record)
    eos = None if args.no_eos else record.eos_token_id
    pieces, described = [], []
    for source in sources:
        try:
            text = source.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise UsageError(f"text file is not UTF-8: {err}", path=source, field="TEXT") from err
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        if eos is not None:
            ids.append(eos)
        pieces.append(np.asarray(ids, dtype=np.int64))
        described.append({"path": os.fspath(source), "bytes": source.stat().st_size, "tokens": len(ids)})
    tokens = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    manifest = write_dataset(output, tokens, vocab_size=record.vocab_size, eos_token_id=eos,
                             shard_tokens=args.shard_tokens, sources=[{"path": d["path"], "tokens": d["tokens"]}
                                                                      for d in described])
    document = {"command": "tokenize", "output": os.fspath(output), **manifest.to_json()}
    if args.json:
        emit_json(document)
    else:
        out().print(f"wrote {manifest.num_tokens} tokens in {len(manifest.shards)} shard(s) to {output} "
                    f"(vocab {manifest.vocab_size}, {document['dtype']})", markup=False, highlight=False)
    return 0
