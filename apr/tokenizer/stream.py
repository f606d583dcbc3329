"""Encode a text file piece by piece, with exactly the ids that encoding it whole gives.

Encoding a whole file at once costs about 190 bytes of memory per byte of text (the library keeps
offsets, token strings and alignments for every token), so `apr tokenize` reads a file in pieces
of about `READ_CHARS` characters and encodes each piece on its own. That is only correct where a
cut cannot change a token, and where that is depends on the tokenizer's pipeline:

* BPE merges never cross a pre-tokenizer piece, so a cut must fall on a piece boundary that the
  whole text and the cut text agree on. The GPT-2 byte-level regex (``\\s+(?!\\S)`` keeps a
  whitespace run's last character for the next piece) agrees just *before* the last newline of a
  whitespace run that is followed by a letter, digit or ASCII punctuation (not a digit after a
  Digits pre-tokenizer, nor the first character of an added token: either ends the run's piece
  there); the Qwen2 and Llama 3 split regexes
  (``\\s*[\\r\\n]+`` takes a run of newlines whole) agree just *after* such a run. NFC and NFD
  normalization never join across a newline.
* Nothing may depend on where the text starts: no ``add_prefix_space``, no Metaspace or
  ``Prepend`` normalizer (each would add a marker at every piece), no BPE dropout.
* No added token may contain a newline or strip the whitespace around it, so none can span a cut.

`split_rule` recognises those pipelines; any other encodes each file whole, as before, and says
so in a warning. ``tests/reliability/test_runtime_bounds.py`` checks the equality on generated
text for every recognised pipeline.
"""

from __future__ import annotations

import codecs
import functools
import logging
import os
import string
import unicodedata
from collections.abc import Callable, Iterator
from typing import IO, Any

from apr.tokenizer.build import tokenizer_json_document
from apr.tokenizer.record import TokenizerRecord

log = logging.getLogger(__name__)

READ_CHARS = 1 << 16
"""Characters read at a time; a piece is cut at the last safe place in what has been read (the
library needs about 190 bytes per character encoded at once, so about 12 MiB per piece)."""

QWEN2_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_LOCAL_NORMALIZERS = ("NFC", "NFD")
_PUNCTUATION = frozenset(string.punctuation)

CutRule = Callable[[str], int]


def _starts_piece(char: str) -> bool:
    """A character every recognised regex starts a piece with after a newline: a letter, a digit
    or ASCII punctuation, and not a combining mark (NFC could join it to what precedes)."""
    return (char.isalnum() or char in _PUNCTUATION) and not unicodedata.combining(char)


def _last_newline_before(text: str, starts: Callable[[str], bool], *, lowest: int) -> int:
    """Index of the last ``\n`` (at ``lowest`` or after) whose next character passes ``starts``; -1 if none."""
    index = text.rfind("\n", 0, len(text) - 1)
    while index >= lowest:
        if starts(text[index + 1]):
            return index
        index = text.rfind("\n", 0, index)
    return -1


def cut_before_newline(text: str, *, avoid: frozenset[str] = frozenset(), digits_split: bool = False) -> int:
    r"""GPT-2 regex: the index of the last ``\n`` followed by a piece start (0: none yet).

    ``\s+(?!\S)`` ends a whitespace run's piece one character early when a word follows, so the
    run's last newline begins the next piece whether or not the text continues. Where the run
    itself ends a piece it is taken whole, so the next character must not be one that can begin
    an added token (``avoid``: added tokens are split off first) nor, after a Digits
    pre-tokenizer (``digits_split``), a number.
    """
    def starts(char: str) -> bool:
        return _starts_piece(char) and char not in avoid and not (digits_split and char.isnumeric())

    return max(_last_newline_before(text, starts, lowest=1), 0)


def cut_after_newline(text: str) -> int:
    r"""Qwen2 / Llama 3 regex: the index just past the last ``\n`` followed by a piece start.

    ``\s*[\r\n]+`` and ``[^\s\p{L}\p{N}]+[\r\n]*`` take a run of newlines whole, so the piece
    after it starts at the first character that is not whitespace.
    """
    return _last_newline_before(text, _starts_piece, lowest=0) + 1


def split_rule(record: TokenizerRecord) -> tuple[CutRule | None, str]:
    """The cut rule for ``record``'s pipeline, or None and the reason it has none."""
    document = tokenizer_json_document(record)
    for token in record.added_tokens:
        if "\n" in token.content or token.lstrip or token.rstrip:
            return None, f"added token {token.content!r} holds a newline or strips whitespace"
    model = document.get("model") or {}
    if model.get("dropout") not in (None, 0, 0.0):
        return None, "BPE dropout makes encodings random"
    if not _local_normalizer(document.get("normalizer")):
        return None, f"normalizer {_kind(document.get('normalizer'))} is not NFC or NFD"
    avoid = frozenset(token.content[:1] for token in record.added_tokens if token.content)
    rule = _pre_tokenizer_rule(document.get("pre_tokenizer"), avoid)
    if rule is None:
        return None, f"pre-tokenizer {_kind(document.get('pre_tokenizer'))} is not one whose pieces are known"
    return rule, ""


def _kind(section: Any) -> str:
    return repr(section.get("type")) if isinstance(section, dict) else repr(section)


def _local_normalizer(section: Any) -> bool:
    if section is None:
        return True
    if not isinstance(section, dict):
        return False
    if section.get("type") == "Sequence":
        parts = section.get("normalizers")
        return isinstance(parts, list) and all(_local_normalizer(part) for part in parts)
    return section.get("type") in _LOCAL_NORMALIZERS


def _byte_level(section: Any, *, use_regex: bool) -> bool:
    return (isinstance(section, dict) and section.get("type") == "ByteLevel"
            and section.get("add_prefix_space") is False and section.get("use_regex", True) is use_regex)


def _pre_tokenizer_rule(section: Any, avoid: frozenset[str]) -> CutRule | None:
    if _byte_level(section, use_regex=True):
        return functools.partial(cut_before_newline, avoid=avoid)
    if not (isinstance(section, dict) and section.get("type") == "Sequence"):
        return None
    parts = section.get("pretokenizers")
    if not (isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, dict) for p in parts)):
        return None
    first, second = parts
    if first.get("type") == "Digits" and _byte_level(second, use_regex=True):
        return functools.partial(cut_before_newline, avoid=avoid, digits_split=True)
    pattern = first.get("pattern")
    if (first.get("type") == "Split" and isinstance(pattern, dict)
            and pattern.get("Regex") in (QWEN2_REGEX, LLAMA3_REGEX)
            and first.get("behavior") == "Isolated" and first.get("invert") is False
            and _byte_level(second, use_regex=False)):
        return cut_after_newline
    return None


def text_pieces(handle: IO[str], cut: CutRule | None, *, read_chars: int = READ_CHARS) -> Iterator[str]:
    """The text of ``handle`` in pieces cut by ``cut`` (the whole text when ``cut`` is None).

    Only the newest block (and the character before it) is searched: what was read before holds
    no cut, or it would have been yielded. Memory follows ``read_chars`` plus the longest stretch
    without a safe cut, not the file.
    """
    if cut is None:
        yield handle.read()
        return
    parts: list[str] = []
    while block := handle.read(read_chars):
        before = parts[-1][-1] if parts and parts[-1] else ""
        at = cut(before + block) - len(before)
        if at >= 0 and (at > 0 or parts):
            yield "".join(parts) + block[:at]
            parts = [block[at:]]
        else:
            parts.append(block)
    tail = "".join(parts)
    if tail:
        yield tail


def encode_text_file(tokenizer: Any, path: str | os.PathLike[str], record: TokenizerRecord, *,
                     read_chars: int = READ_CHARS) -> Iterator[list[int]]:
    """Yield the ids of ``path`` (UTF-8, universal newlines as ``Path.read_text``) piece by piece.

    Concatenated, they equal ``tokenizer.encode(Path(path).read_text("utf-8"), add_special_tokens=False).ids``.

    Raises:
        UnicodeDecodeError: the file is not UTF-8 (`utf8_error_offset` finds where).
        OSError: the file cannot be read.
    """
    cut, reason = split_rule(record)
    if cut is None:
        log.warning("%s: encoding the file whole (memory grows with its size): %s", os.fspath(path), reason)
    with open(path, encoding="utf-8", newline=None) as handle:
        for piece in text_pieces(handle, cut, read_chars=read_chars):
            yield tokenizer.encode(piece, add_special_tokens=False).ids


def utf8_error_offset(path: str | os.PathLike[str], *, block: int = 1 << 20) -> int | None:
    """The byte offset of the first invalid UTF-8 sequence in ``path`` (None if it is valid)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    done = 0
    with open(path, "rb") as handle:
        while True:
            data = handle.read(block)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(data, final=not data)
            except UnicodeDecodeError as err:
                return done - pending + err.start
            if not data:
                return None
            done += len(data)


__all__ = [
    "LLAMA3_REGEX",
    "QWEN2_REGEX",
    "READ_CHARS",
    "cut_after_newline",
    "cut_before_newline",
    "encode_text_file",
    "split_rule",
    "text_pieces",
    "utf8_error_offset",
]
