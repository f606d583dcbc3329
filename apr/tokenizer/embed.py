"""A tokenizer as APR metadata keys and back (docs/aprender-format.md §1.8, §2.3, §6.3).

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
    """Rebuild a `TokenizerRecord` from a checkpoint's metadata, every key's type checked.

    Metadata is data from a file: each ``tokenizer.*`` key must have the type and range this
    module writes, and any other value is refused here, naming the key, instead of failing later
    inside a command (``tokenizer.added_tokens: 5`` would otherwise crash eight of them).

    Raises:
        TokenizerError: no embedded tokenizer, or a key of the wrong type or out of range.
    """
    vocabulary = metadata.get(VOCABULARY)
    if vocabulary is not None and not isinstance(vocabulary, list):
        raise _wrong(VOCABULARY, vocabulary, "a list of strings", path)
    if vocabulary is None or not has_embedded_tokenizer(metadata):
        raise TokenizerError(
            "APR file missing embedded tokenizer (no `tokenizer.vocabulary` in its metadata)",
            path=path, field=VOCABULARY,
            hint=f"apr stamp {path or '<file.apr>'} --tokenizer <tokenizer-dir> -o <stamped.apr>",
        )
    bad = next((index for index, token in enumerate(vocabulary) if not isinstance(token, str)), None)
    if bad is not None:
        raise TokenizerError(f"`tokenizer.vocabulary` holds a non-string entry at id {bad}: {vocabulary[bad]!r}",
                             path=path, field=VOCABULARY)
    merges = metadata.get(MERGES)
    merges = [] if merges is None else merges
    if not isinstance(merges, list) or not all(isinstance(m, str) and m.count(" ") == 1 for m in merges):
        raise TokenizerError("`tokenizer.merges` must be a list of \"a b\" strings", path=path, field=MERGES)
    model_type = metadata.get(MODEL_TYPE)
    if model_type is not None and not isinstance(model_type, str):
        raise _wrong(MODEL_TYPE, model_type, "a string such as \"BPE\"", path)
    size = metadata.get(VOCAB_SIZE)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise _wrong(VOCAB_SIZE, size, "a non-negative integer", path)
    pipeline = metadata.get(PIPELINE)
    if pipeline is not None:
        _check_pipeline(pipeline, path)
    return TokenizerRecord(
        vocabulary=tuple(vocabulary), merges=tuple(merges), model_type=model_type,
        added_tokens=_added_tokens(metadata.get(ADDED_TOKENS), len(vocabulary), path),
        bos_token_id=_optional_id(metadata, BOS_TOKEN_ID, len(vocabulary), path),
        eos_token_id=_optional_id(metadata, EOS_TOKEN_ID, len(vocabulary), path), pipeline=pipeline,
    )


_FLAGS = ("special", "single_word", "lstrip", "rstrip", "normalized")
_PIPELINE_SECTIONS = ("normalizer", "pre_tokenizer", "post_processor", "decoder", "model")


def _wrong(key: str, value: Any, expected: str, path: str | None) -> TokenizerError:
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return TokenizerError(f"`{key}` must be {expected}, got {type(value).__name__} {shown}", path=path, field=key,
                          hint="re-stamp the tokenizer: apr stamp FILE --tokenizer <tokenizer-dir> -o STAMPED.apr")


def _is_id(value: Any, size: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size


def _optional_id(metadata: Mapping[str, Any], key: str, size: int, path: str | None) -> int | None:
    value = metadata.get(key)
    if value is None:
        return None
    if not _is_id(value, size):
        raise TokenizerError(f"`{key}` = {value!r} is not an id in the vocabulary (0..{size - 1})", path=path,
                             field=key)
    return value


def _added_tokens(entries: Any, size: int, path: str | None) -> tuple[AddedToken, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise _wrong(ADDED_TOKENS, entries, "a list of {\"id\", \"content\", ...} objects", path)
    added = []
    for entry in entries:
        if not isinstance(entry, dict) or not _is_id(entry.get("id"), size) \
                or not isinstance(entry.get("content"), str) \
                or any(not isinstance(entry.get(flag, False), bool) for flag in _FLAGS):
            shown = repr(entry) if len(repr(entry)) <= 80 else repr(entry)[:77] + "..."
            raise TokenizerError(f"bad added token {shown}: needs an integer id in 0..{size - 1}, a string content "
                                 f"and true/false flags", path=path, field=ADDED_TOKENS)
        added.append(AddedToken(id=entry["id"], content=entry["content"], special=entry.get("special", True),
                                single_word=entry.get("single_word", False), lstrip=entry.get("lstrip", False),
                                rstrip=entry.get("rstrip", False), normalized=entry.get("normalized", False)))
    return tuple(added)


def _check_pipeline(pipeline: Any, path: str | None) -> None:
    if not isinstance(pipeline, dict):
        raise _wrong(PIPELINE, pipeline, "an object", path)
    for section in _PIPELINE_SECTIONS:
        value = pipeline.get(section)
        if value is not None and not isinstance(value, dict):
            raise _wrong(f"{PIPELINE}.{section}", value, "an object or null", path)
