"""A linted corpus kept in pytest's cache, keyed by every contract file's hash and the harness itself.

The plugin lints the contracts on every run; on an unchanged tree that work (YAML, schema, rules)
gives the same answer, so the answer is stored. The key covers the bytes of every contract file,
their paths, the harness's own sources and schema (by size and modification time) and the size
limit: any change to any of them is a miss and a full lint. Nothing is cached under
``-p no:cacheprovider``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from falsifiers.discovery import discover, display_paths

if TYPE_CHECKING:  # pragma: no cover
    from falsifiers.records import Contract, Corpus, Location

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
    """The cache key for these files as they are now: every file's shown name and bytes."""
    digest = hashlib.sha256(f"{harness_fingerprint()}\0{max_bytes}\0".encode())
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


def encode(corpus: Corpus) -> dict[str, Any]:
    """A corpus as JSON-ready data."""
    return {
        "contracts": [_contract(c) for c in corpus.contracts],
        "findings": [f.to_dict() for f in corpus.findings],
    }


def decode(data: dict[str, Any]) -> Corpus:
    """The inverse of `encode`."""
    from falsifiers.records import Corpus, Falsifier, Invariant

    contracts = tuple([_load_contract(c) for c in data["contracts"]])
    findings: tuple[Any, ...] = ()
    if data["findings"]:  # usually none: only errors are cached
        from falsifiers.findings import Finding

        findings = tuple(Finding.from_dict(f) for f in data["findings"])
    falsifiers: dict[str, Falsifier] = {}
    invariants: dict[str, Invariant] = {}
    for contract in contracts:
        for falsifier in contract.falsifiers:
            falsifiers.setdefault(falsifier.id, falsifier)
        for invariant in contract.invariants:
            invariants.setdefault(invariant.id, invariant)
    return Corpus(contracts, findings, falsifiers, invariants)


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
            return decode(json.loads(stored["corpus"]))
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
    return {"key": key, "corpus": json.dumps(encode(corpus), separators=(",", ":"), ensure_ascii=False)}


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
    from dataclasses import replace

    from falsifiers.lint import lint_paths
    from falsifiers.loader import Limits

    corpus = lint_paths([contracts_dir], limits=Limits(max_bytes=max_bytes), relative_to=relative_to)
    return replace(corpus, findings=tuple(f for f in corpus.findings if f.is_error))


def _location(loc: Location) -> list[Any]:
    return [loc.path, loc.line, loc.col]


def _contract(c: Contract) -> dict[str, Any]:
    return {
        "name": c.name, "path": c.path, "sha256": c.sha256, "version": c.version,
        "status": c.status.value if c.status else None, "description": c.description,
        "depends_on": list(c.depends_on), "valid": c.is_valid, "location": _location(c.location),
        "references": list(c.references), "equations": list(c.equations), "style": c.style,
        "invariants": [[i.id, i.statement, _location(i.location)] for i in c.invariants],
        "falsifiers": [  # positional, like the invariants: the plugin decodes every one on every run
            [f.id, list(f.invariants), f.rule, f.prediction, f.if_fails, _location(f.location), f.level.value,
             list(f.requires), f.pending,
             [[m.name, m.target, m.replacement, m.artifact, [list(p) for p in m.args]] for m in f.mutants]]
            for f in c.falsifiers
        ],
    }


def _load_contract(d: dict[str, Any]) -> Contract:
    from falsifiers.records import Contract, Falsifier, Invariant, Level, Location, Mutant, Status

    levels = {level.value: level for level in Level}  # a dict lookup: Level(value) costs ~1 us per call
    name = d["name"]
    falsifiers = []
    for ident, invariants, rule, prediction, if_fails, loc, level, requires, pending, mutants in d["falsifiers"]:
        declared = tuple(Mutant(m[0], m[1], m[2], m[3], tuple(map(tuple, m[4]))) for m in mutants) if mutants else ()
        falsifiers.append(Falsifier(ident, name, tuple(invariants), rule, prediction, if_fails, Location(*loc),
                                    levels[level], tuple(requires), pending, declared))
    return Contract(
        name=name, path=d["path"], sha256=d["sha256"], version=d["version"],
        status=Status(d["status"]) if d["status"] else None, description=d["description"],
        depends_on=tuple(d["depends_on"]),
        invariants=tuple([Invariant(i, s, name, Location(*loc)) for i, s, loc in d["invariants"]]),
        falsifiers=tuple(falsifiers),
        is_valid=d["valid"], location=Location(*d["location"]), references=tuple(d["references"]),
        equations=tuple(d["equations"]), style=d["style"],
    )


__all__ = ["CACHE_KEY", "SNAPSHOT_ENV", "SnapshotCache", "corpus_key", "decode", "encode", "harness_fingerprint",
           "lint_cached", "write_snapshot"]
