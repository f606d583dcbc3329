"""Build a working `tokenizers.Tokenizer` from a `TokenizerRecord`, and load one from either a
tokenizer folder or an APR checkpoint (so `apr tokenize --tokenizer FILE.apr` and `apr run` need
nothing but the checkpoint)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apr.errors import TokenizerError
from apr.tokenizer.embed import record_from_metadata
from apr.tokenizer.folder import read_tokenizer_dir
from apr.tokenizer.record import TokenizerRecord

if TYPE_CHECKING:  # pragma: no cover
    from tokenizers import Tokenizer

# The pipeline of a GPT-2 style byte-level BPE: what vocab.json + merges.txt folders and
# aprender-stamped checkpoints (which carry no pipeline) mean.
_BYTE_LEVEL_PIPELINE: dict[str, Any] = {
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
              "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False},
}


def tokenizer_json_document(record: TokenizerRecord) -> dict[str, Any]:
    """The tokenizer.json document that ``record`` stands for (what `build_tokenizer` loads)."""
    pipeline = record.pipeline or _BYTE_LEVEL_PIPELINE
    model = dict(pipeline.get("model") or _BYTE_LEVEL_PIPELINE["model"])
    # Added tokens stay in the model vocabulary too: tokenizers gives an added token whose content
    # the model does not know a fresh id at the end, which would renumber it.
    model["vocab"] = {token: index for index, token in enumerate(record.vocabulary)}
    model["merges"] = [merge.split(" ") for merge in record.merges]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [token.to_json() for token in record.added_tokens],
        "normalizer": pipeline.get("normalizer"),
        "pre_tokenizer": pipeline.get("pre_tokenizer"),
        "post_processor": pipeline.get("post_processor"),
        "decoder": pipeline.get("decoder"),
        "model": model,
    }


def build_tokenizer(record: TokenizerRecord) -> Tokenizer:
    """A `tokenizers.Tokenizer` that encodes and decodes as the original did.

    Raises:
        TokenizerError: the record is not a BPE tokenizer, or `tokenizers` rejects it.
    """
    from tokenizers import Tokenizer

    if record.model_type not in (None, "BPE"):
        raise TokenizerError(f"cannot build a {record.model_type!r} tokenizer; only BPE is supported",
                             field="tokenizer.model_type")
    try:
        return Tokenizer.from_str(json.dumps(tokenizer_json_document(record)))
    except Exception as err:  # tokenizers raises a bare Exception on a bad document
        raise TokenizerError(f"the tokenizers library rejected the tokenizer: {err}",
                             hint="re-stamp the checkpoint from the original tokenizer folder") from err


def read_tokenizer(source: str | os.PathLike[str]) -> TokenizerRecord:
    """The tokenizer in a folder, or embedded in an APR checkpoint.

    Raises:
        AprFileNotFoundError: ``source`` does not exist.
        TokenizerError: no usable tokenizer there.
        FormatError: ``source`` is a file but not a readable APR checkpoint.
    """
    path = Path(source)
    if path.is_file():
        from apr.format import open_file

        with open_file(path) as reader:
            return record_from_metadata(reader.metadata, path=os.fspath(path))
    return read_tokenizer_dir(path)
