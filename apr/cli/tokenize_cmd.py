"""`apr tokenize TEXT... --tokenizer (DIR|FILE.apr) -o DIR`: text files to token shards.

Each file is read as UTF-8 and encoded piece by piece (memory independent of its size, the ids
those of the whole file: `apr.tokenizer.stream`) with the tokenizer (a Hugging Face folder, or the
one embedded in a checkpoint), followed by the EOS id when the tokenizer has one; the ids go
straight into shards plus ``manifest.json`` (format in `apr.train.shards`). The folder goes
through the output policy (`apr.format.outputs`): an existing one needs ``--force``, which
replaces only what an earlier `apr tokenize` wrote there, and the folder never holds or lies
inside an input.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from apr.errors import AprFileNotFoundError, AprIOError, UsageError

TOKENIZE_COMMAND = "apr tokenize"  # the owner named in the output folder's manifest

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
    parser.add_argument("-f", "--force", action="store_true",
                        help="write into an existing DIR: replaces an earlier dataset there, never other files")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.set_defaults(handler=run, json_input=("text",))  # the JSON envelope's input: the text files


def run(args: argparse.Namespace) -> int:
    from apr.cli.output import emit_result, out
    from apr.format.outputs import check_folder_output, folder_output
    from apr.tokenizer import build_tokenizer, read_tokenizer

    if args.shard_tokens <= 0:
        raise UsageError(f"--shard-tokens must be positive, got {args.shard_tokens}", field="--shard-tokens")
    sources = [Path(p) for p in args.text]
    for source in sources:
        if not source.is_file():
            raise AprFileNotFoundError("text file not found", path=source, field="TEXT")
    output = Path(args.output)
    target = check_folder_output(output, command=TOKENIZE_COMMAND, force=args.force,
                                 inputs=[*sources, args.tokenizer])
    record = read_tokenizer(args.tokenizer)
    tokenizer = build_tokenizer(record)
    eos = None if args.no_eos else record.eos_token_id
    for source in sources:  # every file decodes: checked before anything is written
        _check_utf8(source)
    with folder_output(target) as staging:
        manifest = _write_shards(staging, sources, tokenizer, record, eos=eos, shard_tokens=args.shard_tokens)
    document = {"output": os.fspath(output), **manifest.to_json()}
    if args.json:
        return emit_result("tokenize", document, input=list(args.text))
    else:
        out().print(f"wrote {manifest.num_tokens} tokens in {len(manifest.shards)} shard(s) to {output} "
                    f"(vocab {manifest.vocab_size}, {document['dtype']})", markup=False, highlight=False)
    return 0


def _check_utf8(source: Path) -> None:
    from apr.tokenizer.stream import utf8_error_offset

    try:
        offset = utf8_error_offset(source)
    except OSError as err:
        raise AprIOError(f"cannot read the text file: {err.strerror or err}", path=source, field="TEXT") from err
    if offset is not None:
        raise UsageError("text file is not UTF-8", path=source, offset=offset, field="TEXT",
                         hint="convert it first, e.g. iconv -f LATIN1 -t UTF-8 FILE > FILE.utf8")


def _write_shards(folder: Path, sources: list[Path], tokenizer: Any, record: Any, *, eos: int | None,
                  shard_tokens: int) -> Any:
    """Encode each file piece by piece (`apr.tokenizer.stream`) straight into shards: memory
    follows the piece size, not the corpus (the ids equal those of encoding each file whole)."""
    from apr.tokenizer.stream import encode_text_file
    from apr.train.shards import ShardWriter

    described = []
    with ShardWriter(folder, vocab_size=record.vocab_size, shard_tokens=shard_tokens) as writer:
        for source in sources:
            count = 0
            pieces = encode_text_file(tokenizer, source, record)
            while (ids := _next_piece(pieces, source)) is not None:
                writer.write(ids)
                count += len(ids)
            if eos is not None:
                writer.write([eos])
                count += 1
            described.append({"path": os.fspath(source), "tokens": count})
        return writer.finish(eos_token_id=eos, sources=described)


def _next_piece(pieces: Any, source: Path) -> list[int] | None:
    """The next piece's ids, with a read failure named as the text file's (not the output's)."""
    try:
        return next(pieces, None)
    except UnicodeDecodeError as err:  # the file changed since it was checked
        raise UsageError(f"text file is not UTF-8: {err.reason}", path=source, field="TEXT") from err
    except OSError as err:
        raise AprIOError(f"cannot read the text file: {err.strerror or err}", path=source, field="TEXT") from err

