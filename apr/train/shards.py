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

import contextlib
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from apr.errors import AprFileNotFoundError, AprIOError, DatasetError
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


def total_tokens(shards: Iterable[ShardInfo]) -> int:
    """`Manifest.num_tokens`: the tokens of every shard (a plain function, so mutation testing sees it)."""
    return sum(shard.num_tokens for shard in shards)


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
        return total_tokens(self.shards)

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
    _, header_size, itemsize, count, _vocab_size, _ = _HEADER.unpack(head)
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


class ShardWriter:
    """Token ids to shard files as they are produced, so memory never holds more than one call's ids.

    Each shard goes through `atomic_write` (a temporary beside it, renamed when complete, its
    header patched with the final count first); the manifest is written last by `finish`. Used as
    a context manager, a failure removes the shard being written. ``write_dataset`` is the same
    writer fed one array.

    Example:
        >>> with ShardWriter("data", vocab_size=512, shard_tokens=1 << 20) as writer:  # doctest: +SKIP
        ...     writer.write([5, 6, 7])
        ...     manifest = writer.finish(eos_token_id=0)
    """

    def __init__(self, directory: str | os.PathLike[str], *, vocab_size: int, shard_tokens: int) -> None:
        if shard_tokens <= 0:
            raise DatasetError(f"shard size must be positive, got {shard_tokens}")
        self.root = Path(directory)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise AprIOError(f"cannot create the dataset folder: {err.strerror or err}", path=self.root,
                             field="--output", hint="choose a folder you can write to") from err
        self.vocab_size, self.shard_tokens = vocab_size, shard_tokens
        self.itemsize = itemsize_for_vocab(vocab_size)
        self._dtype = np.dtype("<u2") if self.itemsize == 2 else np.dtype("<u4")
        self._shards: list[ShardInfo] = []
        self._stack: contextlib.ExitStack | None = None
        self._handle: Any = None
        self._count = 0

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._stack is not None:  # a shard still open: an error left it, and its temporary goes
            stack, self._stack = self._stack, None
            stack.__exit__(kind, error, traceback)

    def write(self, ids: Sequence[int] | np.ndarray) -> None:
        """Append ``ids`` (checked against the vocabulary), opening new shards as they fill."""
        array = np.asarray(ids)
        if array.size and (int(array.min()) < 0 or int(array.max()) >= self.vocab_size):
            raise DatasetError(f"token ids must lie in [0, {self.vocab_size}); "
                               f"got {int(array.min())}..{int(array.max())}")
        array = array.astype(self._dtype, copy=False).reshape(-1)
        while array.size:
            if self._handle is None:
                self._open()
            take = min(self.shard_tokens - self._count, array.size)
            self._handle.write(array[:take].tobytes())
            self._count += take
            array = array[take:]
            if self._count == self.shard_tokens:
                self._close()

    def finish(self, *, eos_token_id: int | None, sources: Sequence[dict[str, Any]] = ()) -> Manifest:
        """Close the last shard (an empty dataset still gets one, empty) and write the manifest."""
        if self._handle is not None or not self._shards:
            if self._handle is None:
                self._open()
            self._close()
        manifest = Manifest(vocab_size=self.vocab_size, itemsize=self.itemsize, eos_token_id=eos_token_id,
                            shards=tuple(self._shards), sources=tuple(sources))
        with atomic_write(self.root / MANIFEST_NAME) as handle:
            handle.write((json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        return manifest

    def _header(self, count: int) -> bytes:
        return _HEADER.pack(SHARD_MAGIC, HEADER_SIZE, self.itemsize, count, self.vocab_size, 0)

    def _open(self) -> None:
        self._stack = contextlib.ExitStack()
        self._handle = self._stack.enter_context(atomic_write(self.root / f"shard-{len(self._shards):05d}.bin"))
        self._handle.write(self._header(0))  # patched with the count when the shard closes
        self._count = 0

    def _close(self) -> None:
        handle, stack = self._handle, self._stack
        assert handle is not None and stack is not None
        handle.seek(0)
        handle.write(self._header(self._count))
        handle.flush()
        digest = _file_digest(handle.fileno())  # the header is final only now: hash the file as written
        self._stack, self._handle = None, None
        stack.close()  # fsync and rename into place
        self._shards.append(ShardInfo(file=f"shard-{len(self._shards):05d}.bin", num_tokens=self._count,
                                      sha256=digest))


def _file_digest(fd: int, block: int = 8 << 20) -> str:
    """sha256 of an open file's bytes, read with pread (the descriptor atomic_write opened read-write)."""
    digest, offset = hashlib.sha256(), 0
    while chunk := os.pread(fd, block, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


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
    with ShardWriter(directory, vocab_size=vocab_size, shard_tokens=shard_tokens) as writer:
        writer.write(tokens)
        return writer.finish(eos_token_id=eos_token_id, sources=sources)


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

    Every id is checked against the vocabulary size the dataset declares (`check_token_ids`), so
    a shard holding an id its vocabulary does not have is refused before a model is built.

    Raises:
        AprFileNotFoundError / DatasetError: missing folder, manifest or shard; a shard whose
            token count disagrees with the manifest; a token id outside the vocabulary.
    """
    path = Path(path)
    if path.is_file():
        array, vocab_size = read_shard(path), shard_vocab_size(path)
        check_token_ids(array, vocab_size, path=path)
        return [array], vocab_size
    manifest = read_manifest(path)
    arrays = []
    for shard in manifest.shards:
        array = read_shard(path / shard.file)
        if len(array) != shard.num_tokens:
            raise DatasetError(f"{shard.file} holds {len(array)} tokens, the manifest says {shard.num_tokens}",
                               path=path / shard.file, hint="re-run `apr tokenize`")
        check_token_ids(array, manifest.vocab_size, path=path / shard.file)
        arrays.append(array)
    return arrays, manifest.vocab_size


def check_token_ids(ids: np.ndarray, vocab_size: int, *, path: str | os.PathLike[str] | None = None,
                    field: str = "--dataset", block: int = 1 << 24) -> None:
    """Refuse an id outside ``[0, vocab_size)``: at start, not as an index error mid-training.

    Scans in blocks (a memory-mapped shard is not copied), so it costs one read of the data.

    Raises:
        DatasetError: naming the first bad id, its position and the vocabulary size.
    """
    for start in range(0, len(ids), block):
        chunk = np.asarray(ids[start:start + block])
        if chunk.size and (int(chunk.max()) >= vocab_size or int(chunk.min()) < 0):
            position = start + int(np.argmax((chunk >= vocab_size) | (chunk < 0)))
            raise DatasetError(
                f"token id {int(chunk[position - start])} at position {position} is outside the vocabulary "
                f"[0, {vocab_size})", path=path, field=field,
                hint="re-tokenize with the model's tokenizer: apr tokenize TEXT... --tokenizer DIR -o OUT --force")
