"""What changed between two sets of contracts, and whether a falsifier was weakened without a
major version bump (``apr contracts diff OLD NEW``; provable-contracts' ``pv diff``).

A side is a contract file, a folder of them (its top-level ``*.yaml``), or ``git:REV``: the
project's contracts folder at a git revision, read blob by blob with ``git show`` (plumbing only:
no checkout, no hooks, no text conversion; nothing from the repository is executed). Every file
goes through the harness's bounded YAML loader (`falsifiers.loader.load_bytes`).

Falsifiers are matched by id across all contracts, so one that moves to another file is *moved*,
not removed. The lint rule (INV-CONTRACT-DIFF-002): removing a falsifier, or weakening its check
(a mutant removed, a capability added to ``requires``, ``pending`` set, an invariant it attacked
dropped), is an error unless the contract that held it went up a major version. Text changes to
``rule``/``prediction``/``if_fails`` are reported as changes; no tool can tell whether prose got
weaker, so they are a reviewer's call.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from falsifiers import loader
from falsifiers.errors import ContractError, ContractNotFoundError

GIT_PREFIX = "git:"
_REV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/@{}~^-]{0,199}$")  # a revision, never an option
_WATCHED = ("rule", "prediction", "if_fails", "level")  # text fields: reported, never judged


class ContractFormatError(ContractError, ValueError):
    """A side's contract file is not readable YAML of a contract (exit 4, invalid format)."""

    code = "invalid-contract"
    exit_code = 4


@dataclass(frozen=True, slots=True)
class Side:
    """One side's contracts: name -> plain data (as loaded), and where each came from."""

    label: str
    contracts: dict[str, dict[str, Any]]
    paths: dict[str, str]


@dataclass(frozen=True, slots=True)
class Change:
    """One difference. ``kind``: added, removed, changed or moved; ``what``: contract, invariant,
    falsifier or mutant; ``details``: field -> [old, new] for changes."""

    kind: str
    what: str
    id: str
    contract: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "what": self.what, "id": self.id, "contract": self.contract,
                "details": self.details}


@dataclass(frozen=True, slots=True)
class LintError:
    """A weakening without a major version bump: what, where, and how to make it deliberate."""

    contract: str
    falsifier: str
    message: str
    hint: str

    def to_dict(self) -> dict[str, Any]:
        return {"contract": self.contract, "falsifier": self.falsifier, "message": self.message, "hint": self.hint}


@dataclass
class ContractsDiff:
    """Every change between two sides, and the lint errors among them."""

    old: str
    new: str
    changes: list[Change] = field(default_factory=list)
    errors: list[LintError] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"command": "contracts diff", "old": self.old, "new": self.new,
                "changes": [c.to_dict() for c in self.changes], "errors": [e.to_dict() for e in self.errors],
                "ok": not self.errors}


# --- reading a side -------------------------------------------------------------------------------


def read_side(spec: str, *, contracts_dir: str | os.PathLike[str]) -> Side:
    """The contracts ``spec`` names: a file, a folder, or ``git:REV`` (``contracts_dir`` at REV).

    Raises:
        ContractNotFoundError: no such file or folder, or git does not know REV (exit 3).
        ContractFormatError: a file is not a contract (exit 4).
    """
    if spec.startswith(GIT_PREFIX):
        return _read_git(spec, spec[len(GIT_PREFIX):], Path(contracts_dir))
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        return _side(spec, [(os.fspath(p), p.stem, p.read_bytes()) for p in files])
    if path.is_file():
        return _side(spec, [(spec, path.stem, path.read_bytes())])
    raise ContractNotFoundError(f"no contract file or folder {spec!r}", path=spec,
                                hint="give a contract .yaml, a folder of them, or git:REV (e.g. git:HEAD~1)")


def _git(args: list[str], cwd: Path) -> bytes:
    """Run one read-only git plumbing command (no hooks, no fsmonitor, no pager, no text filters)."""
    command = ["git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "--no-pager", *args]
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, check=False, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ContractNotFoundError(f"cannot run git: {err}", path=cwd, hint="install git, or compare folders") from None
    if done.returncode != 0:
        raise ContractNotFoundError(f"git {args[0]} failed: {done.stderr.decode('utf-8', 'replace').strip()}",
                                    path=cwd, hint="check the revision with `git log --oneline`")
    return done.stdout


def _read_git(spec: str, rev: str, contracts_dir: Path) -> Side:
    if not _REV.fullmatch(rev):  # not `match`: its `$` also matches before a final newline
        raise ContractNotFoundError(f"{spec!r} does not name a git revision", path=spec,
                                    hint="e.g. git:HEAD~1, git:main, git:v1.2.0 or a commit hash")
    folder = contracts_dir.resolve()
    if not folder.is_dir():
        raise ContractNotFoundError(f"no contracts folder at {folder}", path=folder,
                                    hint="run from the project, or compare two folders")
    top = Path(_git(["rev-parse", "--show-toplevel"], folder).decode().strip())
    relative = folder.relative_to(top.resolve()).as_posix()
    _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"], top)
    listing = _git(["ls-tree", "-z", "--name-only", "--end-of-options", rev, f"{relative}/"], top)
    names = sorted(n for n in listing.decode("utf-8", "replace").split("\0") if n.endswith((".yaml", ".yml")))
    blobs = [(f"{rev}:{name}", PurePosixPath(name).stem,
              _git(["show", "--no-textconv", "--end-of-options", f"{rev}:{name}"], top)) for name in names]
    return _side(spec, blobs)


def _side(label: str, files: list[tuple[str, str, bytes]]) -> Side:
    """``files``: (the path as shown, the contract's name: its file's stem, the bytes)."""
    contracts: dict[str, dict[str, Any]] = {}
    paths: dict[str, str] = {}
    for shown, name, raw in files:
        doc = loader.load_bytes(raw, shown)  # on the module: a declared mutant patches it
        if doc.has_errors or not isinstance(doc.data, Mapping) or not isinstance(doc.data.get("metadata"), Mapping):
            first = next((f.message for f in doc.findings if f.is_error), "no `metadata` mapping")
            raise ContractFormatError(f"not a contract: {first}", path=shown,
                                      hint=f"check it with `apr contracts lint {shown}`")
        contracts[name] = dict(doc.data)
        paths[name] = shown
    return Side(label, contracts, paths)


# --- comparing --------------------------------------------------------------------------------------


def major(version: Any) -> int | None:
    """The major number of a ``MAJOR.MINOR.PATCH`` version (None when it is not one).

    >>> major("2.0.1"), major("1.10.0"), major("draft"), major(None)
    (2, 1, None, None)
    """
    match = re.match(r"^(\d+)\.\d+\.\d+", version) if isinstance(version, str) else None
    return int(match.group(1)) if match else None


def _version(data: Mapping[str, Any] | None) -> Any:
    meta = data.get("metadata") if data is not None else None
    return meta.get("version") if isinstance(meta, Mapping) else None


def _items(data: Mapping[str, Any], key: str) -> dict[str, dict[str, Any]]:
    items = data.get(key)
    if not isinstance(items, list):
        return {}
    return {str(i["id"]): dict(i) for i in items if isinstance(i, Mapping) and "id" in i}


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _mutants(falsifier: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(m["name"]): dict(m) for m in _listed(falsifier.get("mutants")) if isinstance(m, Mapping) and "name" in m}


def weakenings(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """How ``new`` checks less than ``old`` (the same falsifier in two versions).

    >>> weakenings({"mutants": [{"name": "m"}], "requires": []}, {"mutants": [], "requires": ["cuda"]})
    ["mutant 'm' removed", "now requires 'cuda'"]
    """
    found = [f"mutant {name!r} removed" for name in _mutants(old) if name not in _mutants(new)]
    found += [f"now requires {cap!r}" for cap in _listed(new.get("requires")) if cap not in _listed(old.get("requires"))]
    if new.get("pending") and not old.get("pending"):
        found.append("now pending (no test runs it)")
    found += [f"no longer attacks {inv}" for inv in _listed(old.get("invariant"))
              if inv not in _listed(new.get("invariant"))]
    return found


def diff_sides(old: Side, new: Side) -> ContractsDiff:
    """Compare two sides (see the module docstring for the lint rule)."""
    result = ContractsDiff(old.label, new.label)
    old_owner = {fid: name for name, data in old.contracts.items() for fid in _items(data, "falsification_tests")}
    new_owner = {fid: name for name, data in new.contracts.items() for fid in _items(data, "falsification_tests")}

    def bumped(contract: str) -> bool:
        before = major(_version(old.contracts.get(contract)))
        after = major(_version(new.contracts.get(contract)))
        return before is not None and after is not None and after > before

    for name in sorted(set(old.contracts) | set(new.contracts)):
        a, b = old.contracts.get(name), new.contracts.get(name)
        if a is None or b is None:
            kind = "added" if a is None else "removed"
            result.changes.append(Change(kind, "contract", name, name, {"version": _version(a or b)}))
        elif _version(a) != _version(b):
            result.changes.append(Change("changed", "contract", name, name, {"version": [_version(a), _version(b)]}))
        inv_a, inv_b = _items(a or {}, "invariants"), _items(b or {}, "invariants")
        for iid in sorted(set(inv_a) | set(inv_b)):
            if iid not in inv_a:
                result.changes.append(Change("added", "invariant", iid, name))
            elif iid not in inv_b:
                result.changes.append(Change("removed", "invariant", iid, name))
            elif inv_a[iid].get("statement") != inv_b[iid].get("statement"):
                result.changes.append(Change("changed", "invariant", iid, name,
                                             {"statement": [inv_a[iid].get("statement"), inv_b[iid].get("statement")]}))

    old_f = {fid: _items(old.contracts[c], "falsification_tests")[fid] for fid, c in old_owner.items()}
    new_f = {fid: _items(new.contracts[c], "falsification_tests")[fid] for fid, c in new_owner.items()}
    for fid in sorted(set(old_f) | set(new_f)):
        if fid not in old_f:
            result.changes.append(Change("added", "falsifier", fid, new_owner[fid],
                                         {"mutants": sorted(_mutants(new_f[fid]))}))
            continue
        contract = old_owner[fid]
        if fid not in new_f:
            result.changes.append(Change("removed", "falsifier", fid, contract))
            if not bumped(contract):
                result.errors.append(_error(contract, fid, "falsifier removed", old.contracts, new.contracts))
            continue
        a, b = old_f[fid], new_f[fid]
        details: dict[str, Any] = {k: [a.get(k), b.get(k)] for k in (*_WATCHED, "requires", "pending", "invariant")
                                   if a.get(k) != b.get(k)}
        if new_owner[fid] != contract:
            result.changes.append(Change("moved", "falsifier", fid, new_owner[fid], {"from": contract}))
        if details:
            result.changes.append(Change("changed", "falsifier", fid, new_owner[fid], details))
        muts_a, muts_b = _mutants(a), _mutants(b)
        for mname in sorted(set(muts_a) | set(muts_b)):
            if mname not in muts_a:
                result.changes.append(Change("added", "mutant", f"{fid}/{mname}", new_owner[fid]))
            elif mname not in muts_b:
                result.changes.append(Change("removed", "mutant", f"{fid}/{mname}", new_owner[fid]))
            elif muts_a[mname] != muts_b[mname]:
                result.changes.append(Change("changed", "mutant", f"{fid}/{mname}", new_owner[fid],
                                             {k: [muts_a[mname].get(k), muts_b[mname].get(k)]
                                              for k in sorted(set(muts_a[mname]) | set(muts_b[mname]))
                                              if muts_a[mname].get(k) != muts_b[mname].get(k)}))
        weaker = weakenings(a, b)
        owner = new_owner[fid]
        if weaker and not (bumped(contract) or bumped(owner)):
            result.errors.append(_error(owner, fid, "check weakened: " + "; ".join(weaker), old.contracts,
                                        new.contracts))
    return result


def _error(contract: str, fid: str, what: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> LintError:
    before, after = _version(old.get(contract)), _version(new.get(contract))
    now = "the contract was removed" if contract not in new else f"version {before} -> {after}"
    target = f"{(major(before) or 0) + 1}.0.0"
    return LintError(contract, fid, f"{fid}: {what} without a major version bump ({now})",
                     f"bump {contract}'s metadata.version to {target} and say why in its changelog, "
                     "or restore the falsifier")


def diff_contracts(old: str, new: str, *, contracts_dir: str | os.PathLike[str]) -> ContractsDiff:
    """``apr contracts diff OLD NEW``: read both sides, then compare them.

    Example:
        >>> diff_contracts("git:HEAD~1", "contracts", contracts_dir="contracts").errors  # doctest: +SKIP
        []
    """
    return diff_sides(read_side(old, contracts_dir=contracts_dir), read_side(new, contracts_dir=contracts_dir))


def render_text(result: ContractsDiff) -> str:
    """The diff as lines a person reads: ``+`` added, ``-`` removed, ``~`` changed, ``>`` moved."""
    marks = {"added": "+", "removed": "-", "changed": "~", "moved": ">"}
    lines = [f"apr contracts diff {result.old} {result.new}"]
    for change in result.changes:
        where = "" if change.what == "contract" else f" ({change.contract})"
        extra = ""
        if change.kind == "changed":
            extra = ": " + "; ".join(f"{k} {_short(v[0])} -> {_short(v[1])}" if isinstance(v, list) and len(v) == 2
                                     else f"{k} {_short(v)}" for k, v in change.details.items())
        elif change.kind == "moved":
            extra = f" from {change.details['from']}"
        lines.append(f"  {marks[change.kind]} {change.what} {change.id}{where}{extra}")
    for error in result.errors:
        lines.append(f"error: {error.message}")
        lines.append(f"  fix: {error.hint}")
    counts = {k: sum(1 for c in result.changes if c.kind == k) for k in marks}
    lines.append(f"{len(result.changes)} change(s) ({counts['added']} added, {counts['removed']} removed, "
                 f"{counts['changed']} changed, {counts['moved']} moved), {len(result.errors)} lint error(s)")
    return "\n".join(lines)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


__all__ = ["Change", "ContractFormatError", "ContractsDiff", "LintError", "Side", "diff_contracts", "diff_sides",
           "major", "read_side", "render_text", "weakenings"]
