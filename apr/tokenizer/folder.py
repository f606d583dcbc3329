"""Read a Hugging Face tokenizer folder into a `TokenizerRecord` (docs/aprender-format.md §2.5).

``tokenizer.json`` first, else ``vocab.json`` (+ ``merges.txt``, + ``added_tokens.json``). Unlike
aprender's stamp path, added tokens are kept, non-integer ids are an error rather than silently
dropped, and no file outside the folder is ever read: a name is resolved and must stay inside the
resolved folder, so ``..`` tricks and symlinks pointing elsewhere are refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from apr.errors import AprFileNotFoundError, TokenizerError
from apr.format.inputs import file_inside, read_regular
from apr.tokenizer.record import AddedToken, TokenizerRecord

# Files above this size are refused before reading (the largest real tokenizer.json are ~20 MB).
_MAX_FILE_BYTES = 64 * 1024 * 1024  # real tokenizer.json files are under 20 MB
_EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>", "<|im_end|>")
_BOS_CANDIDATES = ("<s>", "<|begin_of_text|>", "<bos>")
_PIPELINE_KEYS = ("normalizer", "pre_tokenizer", "post_processor", "decoder")
_MODEL_OPTION_KEYS = (
    "dropout",
    "unk_token",
    "continuing_subword_prefix",
    "end_of_word_suffix",
    "fuse_unk",
    "byte_fallback",
    "ignore_merges",
)


def read_tokenizer_dir(directory: str | os.PathLike[str]) -> TokenizerRecord:
    """Read the tokenizer in ``directory``.

    Args:
        directory: a folder holding ``tokenizer.json``, or ``vocab.json`` and ``merges.txt``.

    Returns:
        The tokenizer as a record; ``pipeline`` is set only for ``tokenizer.json``.

    Raises:
        AprFileNotFoundError: the folder does not exist or is not a folder.
        TokenizerError: no tokenizer files, malformed JSON, no ``model.vocab``, a non-integer or
            duplicate id, an empty vocabulary, or a file that resolves outside the folder.

    Example:
        >>> record = read_tokenizer_dir("tokenizer/")  # doctest: +SKIP
        >>> record.vocabulary[:2]  # doctest: +SKIP
        ('<|endoftext|>', '!')
    """
    root = Path(directory)
    if not root.exists():
        raise AprFileNotFoundError(
            "tokenizer folder does not exist", path=root, field="--tokenizer",
            hint="pass the folder that holds tokenizer.json (or vocab.json + merges.txt)",
        )
    if not root.is_dir():
        raise AprFileNotFoundError(
            "--tokenizer must be a folder (or an .apr checkpoint with an embedded tokenizer)",
            path=root, field="--tokenizer",
            hint="pass the folder that holds tokenizer.json, not the file itself",
        )
    root = root.resolve()
    tokenizer_json = _inside(root, "tokenizer.json")
    if tokenizer_json is not None:
        return _from_tokenizer_json(root, tokenizer_json)
    vocab_json = _inside(root, "vocab.json")
    if vocab_json is not None:
        return _from_vocab_and_merges(root, vocab_json)
    raise TokenizerError(
        "neither tokenizer.json nor vocab.json found in the tokenizer folder",
        path=root, field="--tokenizer",
        hint="save the tokenizer there first, e.g. `tokenizer.save_pretrained(DIR)` in transformers",
    )


def _inside(root: Path, name: str) -> Path | None:
    """``root/name``'s real path if it exists as a regular file inside ``root`` (None if absent).

    The checks every model-folder reader shares (`apr.format.inputs.file_inside`): a name or link
    that resolves outside the folder, a FIFO, a device or a folder is refused, never read.
    """
    return file_inside(root, name, error=TokenizerError, label="the tokenizer folder")


def _read_text(path: Path) -> str:
    """A resolved file's text: refused over the size limit before reading, or when it is no longer
    a regular file (a FIFO swapped in after `_inside` is refused instead of blocking)."""
    data = read_regular(path, limit=_MAX_FILE_BYTES, error=TokenizerError, follow_symlinks=False)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TokenizerError(f"{path.name} is not UTF-8: {err}", path=path) from err


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except RecursionError:
        raise TokenizerError(f"{path.name} nests too deeply to parse", path=path,
                             hint="re-save the tokenizer with the `tokenizers` library") from None
    except json.JSONDecodeError as err:
        raise TokenizerError(
            f"{path.name} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})",
            path=path, hint="re-save the tokenizer with the `tokenizers` library",
        ) from err


def _vocab_ids(vocab: Any, path: Path, where: str) -> dict[str, int]:
    if not isinstance(vocab, dict):
        raise TokenizerError(
            f"{where} must be a JSON object {{token: id}}, got {type(vocab).__name__}",
            path=path, field=where,
            hint="only BPE tokenizers (byte-level, as Llama-3/Qwen/GPT-2 use) can be embedded",
        )
    if not vocab:
        raise TokenizerError(f"{where} is empty", path=path, field=where)
    bad = [token for token, index in vocab.items() if isinstance(index, bool) or not isinstance(index, int) or index < 0]
    if bad:
        shown = ", ".join(f"{t!r}: {vocab[t]!r}" for t in bad[:5])
        raise TokenizerError(
            f"{where} has {len(bad)} entr{'y' if len(bad) == 1 else 'ies'} whose id is not a non-negative integer ({shown})",
            path=path, field=where, hint="every vocabulary id must be an integer 0..vocab_size-1",
        )
    return dict(vocab)


_MAX_UNUSED_IDS = 4096


def _vocabulary_list(ids: dict[str, int], added: list[AddedToken], path: Path) -> tuple[str, ...]:
    by_id: dict[int, str] = {}
    for token, index in ids.items():
        if index in by_id:
            raise TokenizerError(
                f"id {index} is given to both {by_id[index]!r} and {token!r}", path=path, field="model.vocab"
            )
        by_id[index] = token
    for extra in added:  # added tokens overlay the model vocabulary (aprender's import does too)
        by_id[extra.id] = extra.content
    size = max(by_id) + 1
    unused = size - len(by_id)
    if unused > max(_MAX_UNUSED_IDS, len(by_id)):
        # Gaps are filled with placeholders; a lying id must not make us allocate millions of them.
        raise TokenizerError(
            f"token ids run up to {size - 1} but only {len(by_id)} ids are used ({unused} unused slots)",
            path=path, field="model.vocab", hint="ids must be (nearly) contiguous from 0; check the file",
        )
    return tuple(by_id.get(i, f"<|apr_unused_{i}|>") for i in range(size))


def _merges(raw: Any, path: Path) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise TokenizerError("model.merges must be a list", path=path, field="model.merges")
    merges: list[str] = []
    for position, merge in enumerate(raw):
        if isinstance(merge, str):
            parts = merge.split(" ")
        elif isinstance(merge, list) and len(merge) == 2 and all(isinstance(p, str) for p in merge):
            parts = list(merge)
        else:
            raise TokenizerError(f"merge #{position} is neither \"a b\" nor [\"a\", \"b\"]: {merge!r}",
                                 path=path, field="model.merges")
        if len(parts) != 2 or any(" " in p or not p for p in parts):
            raise TokenizerError(
                f"merge #{position} {merge!r} cannot be written as one \"a b\" string (a part holds a space)",
                path=path, field="model.merges",
                hint="only byte-level BPE merges (spaces encoded as 'Ġ') can be embedded",
            )
        merges.append(f"{parts[0]} {parts[1]}")
    return tuple(merges)


def _added_tokens(raw: Any, path: Path) -> list[AddedToken]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TokenizerError("added_tokens must be a list", path=path, field="added_tokens")
    tokens = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
            raise TokenizerError(f"added token {entry!r} has no string `content`", path=path, field="added_tokens")
        index = entry.get("id")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise TokenizerError(f"added token {entry['content']!r} has a non-integer id {index!r}",
                                 path=path, field="added_tokens")
        tokens.append(AddedToken(
            id=index, content=entry["content"], special=bool(entry.get("special", True)),
            single_word=bool(entry.get("single_word", False)), lstrip=bool(entry.get("lstrip", False)),
            rstrip=bool(entry.get("rstrip", False)), normalized=bool(entry.get("normalized", False)),
        ))
    return tokens


def _special_ids(root: Path, vocabulary: tuple[str, ...], added: list[AddedToken]) -> tuple[int | None, int | None]:
    """BOS/EOS ids: tokenizer_config.json names them; else guessed from special added tokens."""
    ids = {token: index for index, token in enumerate(vocabulary)}
    config_path = _inside(root, "tokenizer_config.json")
    named: dict[str, str] = {}
    if config_path is not None:
        config = _read_json(config_path)
        if isinstance(config, dict):
            for key in ("bos_token", "eos_token"):
                value = config.get(key)
                if isinstance(value, dict):
                    value = value.get("content")
                if isinstance(value, str) and value in ids:
                    named[key] = value
    specials = [t.content for t in added if t.special]

    def pick(key: str, candidates: tuple[str, ...]) -> int | None:
        if key in named:
            return ids[named[key]]
        for candidate in candidates:
            # a special token whose id another token took is not in the vocabulary: skip it
            if candidate in specials and candidate in ids:
                return ids[candidate]
        return None

    return pick("bos_token", _BOS_CANDIDATES), pick("eos_token", _EOS_CANDIDATES)


def _from_tokenizer_json(root: Path, path: Path) -> TokenizerRecord:
    document = _read_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("model"), dict):
        raise TokenizerError("tokenizer.json has no `model` object", path=path, field="model")
    model = document["model"]
    model_type = model.get("type")
    if "vocab" not in model:
        raise TokenizerError("tokenizer.json has no `model.vocab`", path=path, field="model.vocab",
                             hint="the file may be truncated; re-save it with the `tokenizers` library")
    if model_type not in (None, "BPE"):
        raise TokenizerError(
            f"tokenizer.json model type {model_type!r} is not supported (only BPE)", path=path, field="model.type",
            hint="use a byte-level BPE tokenizer (GPT-2, Llama-3, Qwen families)",
        )
    ids = _vocab_ids(model["vocab"], path, "model.vocab")
    added = _added_tokens(document.get("added_tokens"), path)
    vocabulary = _vocabulary_list(ids, added, path)
    merges = _merges(model.get("merges"), path)
    pipeline: dict[str, Any] = {key: document.get(key) for key in _PIPELINE_KEYS}
    pipeline["model"] = {"type": "BPE", **{k: model[k] for k in _MODEL_OPTION_KEYS if k in model}}
    bos, eos = _special_ids(root, vocabulary, added)
    return TokenizerRecord(
        vocabulary=vocabulary, merges=merges, model_type="BPE", added_tokens=tuple(added),
        bos_token_id=bos, eos_token_id=eos, pipeline=pipeline,
    )


def _from_vocab_and_merges(root: Path, vocab_path: Path) -> TokenizerRecord:
    ids = _vocab_ids(_read_json(vocab_path), vocab_path, "vocab.json")
    added: list[AddedToken] = []
    added_path = _inside(root, "added_tokens.json")
    if added_path is not None:  # slow-tokenizer layout: {content: id}
        raw = _vocab_ids(_read_json(added_path), added_path, "added_tokens.json")
        added = [AddedToken(id=index, content=token) for token, index in sorted(raw.items(), key=lambda kv: kv[1])]
    merges: tuple[str, ...] = ()
    merges_path = _inside(root, "merges.txt")
    if merges_path is not None:
        lines = _read_text(merges_path).splitlines()
        merges = _merges([line for line in lines if line.strip() and not line.startswith("#")], merges_path)
    vocabulary = _vocabulary_list(ids, added, vocab_path)
    bos, eos = _special_ids(root, vocabulary, added)
    return TokenizerRecord(
        vocabulary=vocabulary, merges=merges, model_type="BPE" if merges else None,
        added_tokens=tuple(added), bos_token_id=bos, eos_token_id=eos, pipeline=None,
    )
