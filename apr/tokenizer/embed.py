"""A tokenizer as APR metadata keys and back (reference/aprender.md §1.8, §2.3, §6.3).

aprender's keys are written as aprender writes them (``tokenizer.vocabulary``,
``tokenizer.vocab_size``, ``tokenizer.merges`` as ``"a b"`` strings, ``tokenizer.model_type``,
``tokenizer.bos_token_id``, ``tokenizer.eos_token_id``), so its readers find a tokenizer; ours adds
``tokenizer.added_tokens`` and ``tokenizer.pipeline`` so a rebuild gives the same ids as the
original ``tokenizer.json``. A file stamped by aprender (no pipeline) rebuilds as byte-level BPE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apr.errors import TokenizerError
from apr.tokenizer.record import AddedToken, TokenizerRecord

VOCABULARY = "tokenizer.vocabulary"
VOCAB_SIZE = "tokenizer.vocab_size"
MERGES = "tokenizer.merges"
MODEL_TYPE = "tokenizer.model_type"
ADDED_TOKENS = "tokenizer.added_tokens"
BOS_TOKEN_ID = "tokenizer.bos_token_id"
EOS_TOKEN_ID = "tokenizer.eos_token_id"
PIPELINE = "tokenizer.pipeline"


def has_embedded_tokenizer(metadata: Mapping[str, Any]) -> bool:
    """True when the metadata carries a non-empty ``tokenizer.vocabulary`` (PMAT-172's test)."""
    vocabulary = metadata.get(VOCABULARY)
    return isinstance(vocabulary, list) and len(vocabulary) > 0


def record_to_metadata(record: TokenizerRecord) -> dict[str, Any]:
    """The metadata keys that embed ``record`` (to merge into a checkpoint's metadata).

    Example:
        >>> rec = TokenizerRecord(vocabulary=("a", "b", "ab"), merges=("a b",))
        >>> sorted(record_to_metadata(rec))[:3]
        ['tokenizer.added_tokens', 'tokenizer.merges', 'tokenizer.model_type']
    """
    keys: dict[str, Any] = {
        VOCABULARY: list(record.vocabulary),
        VOCAB_SIZE: record.vocab_size,
        MERGES: list(record.merges),
        MODEL_TYPE: record.model_type or "BPE",
        ADDED_TOKENS: [token.to_json() for token in record.added_tokens],
    }
    if record.bos_token_id is not None:
        keys[BOS_TOKEN_ID] = record.bos_token_id
    if record.eos_token_id is not None:
        keys[EOS_TOKEN_ID] = record.eos_token_id
    if record.pipeline is not None:
        keys[PIPELINE] = record.pipeline
    return keys


def record_from_metadata(metadata: Mapping[str, Any], *, path: str | None = None) -> TokenizerRecord:
    """Rebuild a `TokenizerRecord` from a checkpoint's metadata.

    Raises:
        TokenizerError: no embedded tokenizer, or keys of the wrong type.
    """
    if not has_embedded_tokenizer(metadata):
        raise TokenizerError(
            "APR file missing embedded tokenizer (no `tokenizer.vocabulary` in its metadata)",
            path=path, field=VOCABULARY,
            hint=f"apr stamp {path or '<file.apr>'} --tokenizer <tokenizer-dir> -o <stamped.apr>",
        )
    vocabulary = metadata[VOCABULARY]
    if not all(isinstance(token, str) for token in vocabulary):
        raise TokenizerError("`tokenizer.vocabulary` holds a non-string entry", path=path, field=VOCABULARY)
    merges = metadata.get(MERGES) or []
    if not isinstance(merges, list) or not all(isinstance(m, str) and m.count(" ") == 1 for m in merges):
        raise TokenizerError("`tokenizer.merges` must be a list of \"a b\" strings", path=path, field=MERGES)
    added = []
    for entry in metadata.get(ADDED_TOKENS) or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int) or not isinstance(entry.get("content"), str):
            raise TokenizerError(f"bad added token {entry!r}", path=path, field=ADDED_TOKENS)
        added.append(AddedToken(
            id=entry["id"], content=entry["content"], special=bool(entry.get("special", True)),
            single_word=bool(entry.get("single_word", False)), lstrip=bool(entry.get("lstrip", False)),
            rstrip=bool(entry.get("rstrip", False)), normalized=bool(entry.get("normalized", False)),
        ))
    pipeline = metadata.get(PIPELINE)
    if pipeline is not None and not isinstance(pipeline, dict):
        raise TokenizerError("`tokenizer.pipeline` must be an object", path=path, field=PIPELINE)

    def optional_id(key: str) -> int | None:
        value = metadata.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(vocabulary):
            raise TokenizerError(f"`{key}` = {value!r} is not an id in the vocabulary", path=path, field=key)
        return value

    model_type = metadata.get(MODEL_TYPE)
    return TokenizerRecord(
        vocabulary=tuple(vocabulary), merges=tuple(merges),
        model_type=model_type if isinstance(model_type, str) else None, added_tokens=tuple(added),
        bos_token_id=optional_id(BOS_TOKEN_ID), eos_token_id=optional_id(EOS_TOKEN_ID), pipeline=pipeline,
    )
