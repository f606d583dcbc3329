"""Token shards: a flat array of token ids behind a 32-byte header, and the folder that lists them.

A shard file (``shard-00000.bin``)::

    offset  size  field
    0       8     magic  b"APRTOK1\\0"
    8       4     header_size (u32, 32)
    12      4     itemsize (u32, 2 for uint16 ids, 4 for uint32)
    16      8     num_tokens (u64)
    24      4     vocab_size (u32)
    28      4     reserved (0)
    32      ...   num_tokens little-endian ids

A dataset folder holds the shards plus ``manifest.json`` naming them with their token counts and
SHA-256, the vocabulary size and the EOS id used between documents. Readers memory-map shards
read-only and check every size before trusting it (nanoGPT's ``np.memmap`` of ``train.bin``, with a
header so a shard says what it is).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from apr.errors import AprFileNotFoundError, DatasetError
from apr.format.atomic import atomic_write

SHARD_MAGIC = b"APRTOK1\x00"
HEADER_SIZE = 32
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "apr-token-shards"
_HEADER = struct.Struct("<8sIIQII")


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """One shard as listed in the manifest."""

    file: str
    num_tokens: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a dataset folder holds."""

    vocab_size: int
    itemsize: int
    eos_token_id: int | None
    shards: tuple[ShardInfo, ...]
    sources: tuple[dict[str, Any], ...] = ()

    @property
    def num_tokens(self) -> int:
        return sum(shard.num_tokens for shard in self.shards)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "version": 1,
            "vocab_size": self.vocab_size,
            "dtype": "uint16" if self.itemsize == 2 else "uint32",
            "eos_token_id": self.eos_token_id,
            "num_tokens": self.num_tokens,
            "shards": [{"file": s.file, "num_tokens": s.num_tokens, "sha256": s.sha256} for s in self.shards],
            "sources": list(self.sources),
        }


def itemsize_for_vocab(vocab_size: int) -> int:
    """2 bytes per id while every id fits a uint16, else 4."""
    return 2 if vocab_size <= 1 << 16 else 4


def encode_shard(tokens: np.ndarray, *, vocab_size: int) -> bytes:
    """Header plus ids as bytes (pure; `write_dataset` puts them on disk).

    Raises:
        DatasetError: an id is negative or not below ``vocab_size``.
    """
    tokens = np.asarray(tokens)
    if tokens.size and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise DatasetError(f"token ids must lie in [0, {vocab_size}); got {int(tokens.min())}..{int(tokens.max())}")
    itemsize = itemsize_for_vocab(vocab_size)
    dtype = np.dtype("<u2") if itemsize == 2 else np.dtype("<u4")
    header = _HEADER.pack(SHARD_MAGIC, HEADER_SIZE, itemsize, int(tokens.size), vocab_size, 0)
    return header + tokens.astype(dtype, copy=False).tobytes()


def read_shard(path: str | os.PathLike[str]) -> np.ndarray:
    """Memory-map a shard read-only and return its ids (uint16 or uint32).

    Raises:
        AprFileNotFoundError: no such file.
        DatasetError: bad magic, a header that disagrees with the file size.
    """
    path = Path(path)
    if not path.is_file():
        raise AprFileNotFoundError("token shard not found", path=path, hint="run `apr tokenize` first")
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(HEADER_SIZE)
    if len(head) < HEADER_SIZE or head[:8] != SHARD_MAGIC:
        raise DatasetError("not an APR token shard (bad magic)", path=path, offset=0,
                           hint="make shards with `apr tokenize TEXT... --tokenizer DIR -o OUT`")
    _, header_size, itemsize, count, vocab_size, _ = _HEADER.unpack(head)
    if header_size != HEADER_SIZE or itemsize not in (2, 4):
        raise DatasetError(f"unsupported shard header (header_size={header_size}, itemsize={itemsize})", path=path)
    if size != HEADER_SIZE + count * itemsize:
        raise DatasetError(f"shard header promises {count} tokens ({HEADER_SIZE + count * itemsize} bytes) "
                           f"but the file has {size} bytes", path=path, hint="re-run `apr tokenize`")
    if count == 0:
        return np.zeros(0, dtype=np.uint16 if itemsize == 2 else np.uint32)
    dtype = np.dtype("<u2") if itemsize == 2 else np.dtype("<u4")
    return np.memmap(path, dtype=dtype, mode="r", offset=HEADER_SIZE, shape=(count,))


def shard_vocab_size(path: str | os.PathLike[str]) -> int:
    with Path(path).open("rb") as handle:
        return _HEADER.unpack(handle.read(HEADER_SIZE))[4]


def write_dataset(
    directory: str | os.PathLike[str],
    tokens: np.ndarray,
    *,
    vocab_size: int,
    eos_token_id: int | None,
    shard_tokens: int,
    sources: Sequence[dict[str, Any]] = (),
) -> Manifest:
    """Split ``tokens`` into shards of at most ``shard_tokens`` ids and write them with a manifest.

    Each file is written atomically; the manifest goes last, so a folder with a manifest is
    complete. The caller checks ``directory`` is free (or ``--force``) before calling.
    """
    if shard_tokens <= 0:
        raise DatasetError(f"shard size must be positive, got {shard_tokens}")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    infos = []
    chunks = [tokens[i:i + shard_tokens] for i in range(0, max(len(tokens), 1), shard_tokens)]
    for index, chunk in enumerate(chunks):
        data = encode_shard(chunk, vocab_size=vocab_size)
        name = f"shard-{index:05d}.bin"
        with atomic_write(root / name) as handle:
            handle.write(data)
        infos.append(ShardInfo(file=name, num_tokens=len(chunk), sha256=hashlib.sha256(data).hexdigest()))
    manifest = Manifest(vocab_size=vocab_size, itemsize=itemsize_for_vocab(vocab_size), eos_token_id=eos_token_id,
                        shards=tuple(infos), sources=tuple(sources))
    with atomic_write(root / MANIFEST_NAME) as handle:
        handle.write((json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    return manifest


def read_manifest(directory: str | os.PathLike[str]) -> Manifest:
    """Read and check ``DIR/manifest.json`` (shard names must stay inside ``DIR``)."""
    root = Path(directory)
    path = root / MANIFEST_NAME
    if not root.exists():
        raise AprFileNotFoundError("dataset folder not found", path=root, hint="run `apr tokenize ... -o DIR` first")
    if not path.is_file():
        raise DatasetError("dataset folder has no manifest.json", path=root,
                           hint="make it with `apr tokenize TEXT... --tokenizer DIR -o OUT`")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetError(f"manifest.json is not valid JSON: {err}", path=path) from err
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise DatasetError(f"manifest.json is not an {MANIFEST_FORMAT!r} manifest", path=path)
    try:
        shards = tuple(ShardInfo(file=str(s["file"]), num_tokens=int(s["num_tokens"]), sha256=str(s["sha256"]))
                       for s in document["shards"])
        vocab_size = int(document["vocab_size"])
    except (KeyError, TypeError, ValueError) as err:
        raise DatasetError(f"manifest.json is missing a field: {err}", path=path) from err
    for shard in shards:
        if Path(shard.file).name != shard.file:
            raise DatasetError(f"shard name {shard.file!r} is not a plain file name", path=path, field="shards")
    eos = document.get("eos_token_id")
    return Manifest(vocab_size=vocab_size, itemsize=itemsize_for_vocab(vocab_size),
                    eos_token_id=eos if isinstance(eos, int) else None, shards=shards,
                    sources=tuple(document.get("sources") or ()))


def open_dataset(path: str | os.PathLike[str]) -> tuple[list[np.ndarray], int]:
    """The shards of a dataset folder (or one shard file) as memory maps, and the vocabulary size.

    Raises:
        AprFileNotFoundError / DatasetError: missing folder, manifest or shard; a shard whose
            token count disagrees with the manifest.
    """
    path = Path(path)
    if path.is_file():
        return [read_shard(path)], shard_vocab_size(path)
    manifest = read_manifest(path)
    arrays = []
    for shard in manifest.shards:
        array = read_shard(path / shard.file)
        if len(array) != shard.num_tokens:
            raise DatasetError(f"{shard.file} holds {len(array)} tokens, the manifest says {shard.num_tokens}",
                               path=path / shard.file, hint="re-run `apr tokenize`")
        arrays.append(array)
    return arrays, manifest.vocab_size
