"""The corpus as the plugin gets it: contract files found, and their linted records cached.

*Finding* (`discover`, `display_paths`): which files are contracts and how their paths are shown;
no YAML here, so the plugin's cache check lists and hashes files without importing a parser.

*Caching* (`lint_cached`): the plugin lints the contracts on every run; on an unchanged tree that
work (YAML, schema, rules) gives the same answer, so the answer is stored in pytest's cache. The
key covers the bytes of every contract file, their paths, the harness's own sources and schema (by
size and modification time), the size limit and `codec_schema` (every stored record's fields and
types, and `CODEC_VERSION`): any change to any of them is a miss and a full lint. Nothing is cached
under ``-p no:cacheprovider``.

*The codec* (`encode`, `decode`): one generic codec for every record of `falsifiers.records`: a
record is the list of its fields' values in declaration order (a fifth of the bytes of a mapping,
and the plugin decodes every record on every run), decoded by each field's annotated type. A new
field, a renamed one or a changed type changes `codec_schema`, hence the key: an old entry is a
miss, never misread.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from falsifiers.errors import ContractNotFoundError
from falsifiers.records import Contract, Corpus, Finding

# --- finding contract files -----------------------------------------------------------------------

CONTRACT_SUFFIXES = (".yaml", ".yml")


def discover(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Contract files under ``paths`` (files as given, folders searched recursively), sorted.

    Hidden files and folders are skipped, and linked folders are not entered (as ``Path.rglob``).
    Raises `ContractNotFoundError` for a path that does not exist: that is a caller's mistake, not a
    finding about a contract.
    """
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            top = os.fspath(path)
            found.extend(Path(top, *parts) for parts in sorted(_walk(top, ())))
        elif path.is_file():
            found.append(path)
        else:
            raise ContractNotFoundError(
                f"no such file or folder: {os.fspath(raw)!r}", path=os.fspath(raw),
                hint="pass a contract file or a folder of them (default: the `contracts` folder "
                "named under [tool.apr-contracts] in pyproject.toml)",
            )
    unique: dict[str, Path] = {}
    for path in found:
        unique.setdefault(os.path.normpath(path), path)
    return list(unique.values())


def _walk(folder: str, parts: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Relative parts of every contract file below ``folder``: one ``scandir`` per folder, no
    ``Path`` per entry (the plugin lists the contracts on every run)."""
    found: list[tuple[str, ...]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir() and not entry.is_symlink():
                found.extend(_walk(entry.path, (*parts, entry.name)))
            elif entry.name.endswith(CONTRACT_SUFFIXES) and entry.is_file():
                found.append((*parts, entry.name))
    return found


def display_path(path: Path, relative_to: str | os.PathLike[str] | None) -> str:
    """``path`` as findings show it: relative to the project root when one is given."""
    if relative_to is None:
        return os.fspath(path)
    return display_paths([path], relative_to)[0]


def display_paths(paths: list[Path], relative_to: str | os.PathLike[str]) -> list[str]:
    """`display_path` for many files under one root: each folder is resolved and made relative
    once, and a file's name is appended unless the file is a link (the plugin does this on every
    run, for every contract)."""
    root = Path(relative_to).resolve()
    folders: dict[str, str | None] = {}  # folder as given -> its display prefix (None: another drive)
    shown = []
    for path in paths:
        folder = os.path.dirname(path)
        if folder not in folders:
            try:
                folders[folder] = Path(os.path.relpath(Path(folder).resolve(), root)).as_posix()
            except ValueError:  # another drive on Windows
                folders[folder] = None
        prefix = folders[folder]
        if os.path.islink(path):  # a linked contract shows where it really lives
            try:
                shown.append(Path(os.path.relpath(path.resolve(), root)).as_posix())
            except ValueError:
                shown.append(os.fspath(path))
        elif prefix is None:
            shown.append(os.fspath(path))
        else:
            shown.append(path.name if prefix == "." else f"{prefix}/{path.name}")
    return shown


# --- caching -----------------------------------------------------------------------------------

CACHE_KEY = "apr-contracts/corpus"
SNAPSHOT_ENV = "APR_CONTRACTS_CORPUS_SNAPSHOT"  # set by `--mutants` for its children: a `write_snapshot` file
_PACKAGE = Path(__file__).parent


def harness_fingerprint() -> str:
    """A fingerprint of the harness's own code and schema: a new harness never trusts an old cache.

    Each source file by name, size and modification time in nanoseconds, as Python decides whether
    a ``.pyc`` is stale: the harness's own files change rarely and are not hashed on every run (the
    contract files, which do change, are hashed in `corpus_key`).
    """
    entries = []
    for folder, suffix in ((_PACKAGE, ".py"), (_PACKAGE / "schema", ".json")):
        with os.scandir(folder) as found:
            entries += [(entry.name, entry.stat()) for entry in found if entry.name.endswith(suffix)]
    text = "".join(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0" for name, stat in sorted(entries))
    return hashlib.sha256(text.encode()).hexdigest()


def corpus_key(files: list[Path], shown: list[str], max_bytes: int) -> str:
    """The cache key for these files as they are now: every file's shown name and bytes, the
    harness, the size limit and the codec's record schema."""
    digest = hashlib.sha256(f"{harness_fingerprint()}\0{max_bytes}\0{codec_schema()}\0".encode())
    for path, name in zip(files, shown, strict=True):
        digest.update(name.encode() + b"\0")
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                data = handle.read() if size <= max_bytes else b""
            digest.update(b"large:%d\0" % size if size > max_bytes else b"%d\0%s" % (len(data), data))
        except OSError as err:
            digest.update(f"unreadable:{err.errno}\0".encode())
    return digest.hexdigest()


def lint_cached(contracts_dir: Path, *, relative_to: Path, max_bytes: int, cache: Any | None) -> Corpus:
    """`lint_paths` over one folder as the plugin needs it, answered from pytest's ``cache`` when
    nothing changed.

    The corpus keeps only the findings that are errors: they are all a verdict uses (an invalid
    contract, the error list under the table); warnings and notes are `apr contracts lint`'s to show,
    and a large corpus has hundreds of them to store and decode on every run. An entry that cannot
    be decoded is a miss: the files are linted again and the entry replaced.
    """
    if cache is None:
        return _lint(contracts_dir, relative_to, max_bytes)
    files = discover([contracts_dir])
    key = corpus_key(files, display_paths(files, relative_to), max_bytes)
    stored = cache.get(CACHE_KEY, None)
    if isinstance(stored, dict) and stored.get("key") == key and isinstance(stored.get("corpus"), str):
        try:
            return decode_corpus(json.loads(stored["corpus"]))
        except (KeyError, TypeError, ValueError, IndexError):
            pass  # a damaged entry is a miss
    corpus = _lint(contracts_dir, relative_to, max_bytes)
    cache.set(CACHE_KEY, _entry(key, corpus))
    return corpus


def write_snapshot(path: Path, corpus: Corpus, contracts_dir: Path, *, relative_to: Path, max_bytes: int) -> None:
    """Store ``corpus`` with the key of the contract files as they are now, for `SnapshotCache`.

    The parent of a ``--mutants`` run writes one, so that its children (which run without pytest's
    cache, so as not to write to it) decode the corpus instead of linting it again: ~0.18 s each.
    """
    files = discover([contracts_dir])
    key = corpus_key(files, display_paths(files, relative_to), max_bytes)
    path.write_text(json.dumps(_entry(key, corpus)), encoding="utf-8")


def _entry(key: str, corpus: Corpus) -> dict[str, str]:
    # Compact JSON text inside pytest's (indented) cache file: a fifth of the bytes to read back.
    return {"key": key, "corpus": json.dumps(encode_corpus(corpus), separators=(",", ":"), ensure_ascii=False)}


class SnapshotCache:
    """A read-only stand-in for pytest's cache that holds one snapshot (`write_snapshot`).

    `lint_cached` still checks its key against the contract files, so a snapshot that no longer
    matches them is a miss and a full lint; writes are dropped.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def get(self, key: str, default: Any) -> Any:
        if key != CACHE_KEY:
            return default
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return default

    def set(self, key: str, value: Any) -> None:
        return None


def _lint(contracts_dir: Path, relative_to: Path, max_bytes: int) -> Corpus:
    # Imported on a miss only: linting imports PyYAML (~9 ms) and jsonschema (~30 ms; python -X
    # importtime, 2026-12-06), which a warm run, answered from the cache, never needs.
    from falsifiers.lint import lint_paths
    from falsifiers.loader import Limits

    corpus = lint_paths([contracts_dir], limits=Limits(max_bytes=max_bytes), relative_to=relative_to)
    return dataclasses.replace(corpus, findings=tuple(f for f in corpus.findings if f.is_error))


# --- the codec --------------------------------------------------------------------------------------

CODEC_VERSION = 1  # bump when what a field means changes while its name and type stay the same


def codec_schema(roots: Sequence[type] = (Contract, Finding)) -> str:
    """Every record class reachable from ``roots``, with its fields' names and annotated types."""
    seen: dict[str, str] = {}
    pending = list(roots)
    while pending:
        cls = pending.pop()
        if cls.__name__ in seen:
            continue
        hints = typing.get_type_hints(cls)
        seen[cls.__name__] = ",".join(f"{f.name}:{f.type}" for f in dataclasses.fields(cls))
        for f in dataclasses.fields(cls):
            pending += [t for t in _types_in(hints[f.name]) if isinstance(t, type) and dataclasses.is_dataclass(t)]
    return f"{CODEC_VERSION};" + ";".join(f"{name}({text})" for name, text in sorted(seen.items()))


def _types_in(hint: Any) -> list[Any]:
    return [hint, *(t for arg in typing.get_args(hint) for t in _types_in(arg))]


def encode(value: Any) -> Any:
    """A record (or a tuple, dict, enum or scalar holding records) as JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [encode(getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [encode(item) for item in value]
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    return value


def decode(hint: Any, data: Any) -> Any:
    """The inverse of `encode`, for a value of the annotated type ``hint`` (``tuple[Contract, ...]``)."""
    return _decoder(hint)(data)


def _same(value: Any) -> Any:
    return value


_DECODERS: dict[Any, Callable[[Any], Any]] = {}


def _decoder(hint: Any) -> Callable[[Any], Any]:
    """How to decode one annotated type, built once per type (the plugin decodes every record on every run)."""
    found = _DECODERS.get(hint)
    if found is None:
        found = _DECODERS[hint] = _build_decoder(hint)
    return found


def _build_decoder(hint: Any) -> Callable[[Any], Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        record = hint
        hints = typing.get_type_hints(record)
        parts = [_decoder(hints[f.name]) for f in dataclasses.fields(record)]
        return lambda row: record(*[part(item) for part, item in zip(parts, row, strict=True)])
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {member.value: member for member in hint}.__getitem__  # a dict: Enum(value) costs ~1 us a call
    if origin in (typing.Union, types.UnionType):
        others = [a for a in args if a is not type(None)]
        if len(others) != 1:
            raise TypeError(f"the corpus codec reads only X | None unions, not {hint}")
        inner = _decoder(others[0])
        return lambda value: None if value is None else inner(value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            item = _decoder(args[0])
            if item is _same:
                return tuple
            return lambda values: tuple([item(v) for v in values])
        parts = [_decoder(a) for a in args]
        return lambda values: tuple([part(v) for part, v in zip(parts, values, strict=True)])
    if origin is dict:
        value_of = _decoder(args[1])
        return lambda mapping: {key: value_of(item) for key, item in mapping.items()}
    if hint in (str, int, float, bool, Any):
        return _same
    raise TypeError(f"the corpus codec cannot read {hint!r}")


def encode_corpus(corpus: Corpus) -> dict[str, Any]:
    """A corpus as JSON-ready data: its contracts and findings (the lookup tables are rebuilt)."""
    return {"contracts": encode(corpus.contracts), "findings": encode(corpus.findings)}


def decode_corpus(data: dict[str, Any]) -> Corpus:
    """The inverse of `encode_corpus`."""
    return Corpus.of(decode(tuple[Contract, ...], data["contracts"]), decode(tuple[Finding, ...], data["findings"]))


__all__ = ["CACHE_KEY", "CODEC_VERSION", "CONTRACT_SUFFIXES", "SNAPSHOT_ENV", "SnapshotCache", "codec_schema",
           "corpus_key", "decode", "decode_corpus", "discover", "display_path", "display_paths", "encode",
           "encode_corpus", "harness_fingerprint", "lint_cached", "write_snapshot"]
