"""``apr contracts lint``: every contract loaded on its own and built into records, then rules across the corpus.

Per-file problems (YAML, duplicate keys, schema) come from `falsifiers.loader` and
`falsifiers.schema`; `load_contract` builds one file's records. The rules
here need every contract at once, which is exactly what pv never had:

* ``duplicate-id``: an invariant or falsifier id declared twice anywhere (both places named);
* ``unknown-invariant``: a falsifier attacks an invariant nobody declares (nearest id suggested);
* ``unfalsified-invariant``: an invariant no falsifier attacks;
* ``unknown-dependency`` / ``dependency-cycle``: ``depends_on`` must resolve, without cycles;
* ``version-changelog``: ``metadata.version`` must equal the newest changelog entry's version;
* ``discharged-pending``: a DISCHARGED contract cannot have pending falsifiers;
* ``duplicate-contract``: two files with the same stem (the contract's name);
* ``mutant-namespace`` / ``mutant-unresolved`` (with ``resolve_mutants``): a code mutant whose
  target or replacement reaches outside the project at any step, or does not resolve
  (`falsifiers.mutation`). Resolving imports the project's modules, so it is asked for
  (`apr contracts lint` does); the plugin's cached lint only checks the first segment, and
  ``--mutants`` resolves every mutant in scope before running any.

*One file* (`load_contract`, `build_contract`): find contract files, load each one, and build records from whatever could be read.

Every file is loaded on its own: a file that does not parse yields findings and a `Contract` with
``is_valid=False`` (its falsifier ids salvaged from the raw text), and the next file is loaded as if
nothing happened. That is the whole of "one bad file never hides the others".
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from collections.abc import Iterable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

from falsifiers import compat
from falsifiers.artifact import MUTATORS
from falsifiers.corpus import discover, display_paths
from falsifiers.loader import Document, Limits, load_file, salvage_ids
from falsifiers.mutation import ALLOWED_NAMESPACES, UNCHECKED, ProjectImporter, mutant_problem, namespace_problem
from falsifiers.records import Contract, Corpus, Falsifier, Finding, Invariant, Level, Location, Mutant, Severity, Status
from falsifiers.schema import did_you_mean, schema_fingerprint, validate_document

# --- one file: load it, build its records ---------------------------------------------------------


def load_contract(
    path: str | os.PathLike[str],
    *,
    compat_mode: bool = False,
    limits: Limits = Limits(),
    shown: str | None = None,
    schema_cache: MutableMapping[str, Any] | None = None,
) -> tuple[Document, Contract]:
    """Load, (in compat mode) normalise, schema-check and build one contract.

    Args:
        path: the file to read.
        compat_mode: read aprender's pv styles.
        limits: size, depth and alias bounds.
        shown: the path to print in findings (default: ``path`` as given).
        schema_cache: file hash -> schema findings, reused when the bytes (and the schema and
            the harness version) are unchanged; the plugin keeps it in pytest's cache.

    Returns:
        The document (with every finding about this file) and the contract record.
    """
    doc = load_file(path, limits=limits, shown=shown)
    style = compat.STYLE_CANONICAL
    equations = _equation_names(doc.data)
    if doc.data is not None:
        if compat_mode:
            doc, style = compat.normalize(doc)
        if style != compat.STYLE_BINDING:
            if isinstance(doc.data, dict):
                key = f"{doc.sha256}:{doc.path}:{int(compat_mode)}:{schema_fingerprint()}"
                if schema_cache is not None and key in schema_cache:
                    doc.findings.extend(Finding.from_dict(f) for f in schema_cache[key])
                else:
                    found = validate_document(
                        doc,
                        unknown_keys=Severity.WARNING if compat_mode else Severity.ERROR,
                        optional=compat.COMPAT_OPTIONAL if compat_mode else frozenset(),
                    )
                    doc.findings.extend(found)
                    if schema_cache is not None:
                        schema_cache[key] = [f.to_dict() for f in found]
            else:
                doc.findings.append(
                    Finding(Severity.ERROR, "not-a-mapping",
                            f"a contract is a mapping of keys, not a {type(doc.data).__name__}",
                            doc.locate(()), hint="start from `apr contracts new NAME`")
                )
    return doc, build_contract(doc, style=style, equations=equations)


def build_contract(doc: Document, *, style: str = compat.STYLE_CANONICAL, equations: Iterable[str] = ()) -> Contract:
    """Records from a loaded document, defensively: anything malformed is skipped, never raised on.

    The schema has already reported every malformed piece; this only has to not crash on them.
    """
    name = Path(doc.path).stem
    data = doc.data if isinstance(doc.data, dict) else {}
    meta = found if isinstance(found := data.get("metadata"), dict) else {}
    invariants = tuple(_invariants(doc, name, data.get("invariants")))
    falsifiers = tuple(_falsifiers(doc, name, data.get("falsification_tests")))
    if doc.data is None:  # unreadable: keep the ids that look declared, so claims find a home
        falsifiers = tuple(
            Falsifier(ident, name, (), "", "", "", Location(doc.path, line, 1))
            for ident, line in salvage_ids(doc.text)
        )
    status = meta.get("status")
    return Contract(
        name=name,
        path=doc.path,
        sha256=doc.sha256,
        version=meta.get("version") if isinstance(meta.get("version"), str) else None,
        status=Status(status) if status in Status._value2member_map_ else None,
        description=text if isinstance(text := meta.get("description"), str) else "",
        depends_on=tuple(d for d in meta.get("depends_on", ()) or () if isinstance(d, str))
        if isinstance(meta.get("depends_on", ()), list) else (),
        invariants=invariants,
        falsifiers=falsifiers,
        is_valid=not doc.has_errors and style != compat.STYLE_BINDING,
        location=Location(doc.path, 1, 1),
        references=tuple(r for r in meta.get("references", ()) or () if isinstance(r, str))
        if isinstance(meta.get("references", ()), list) else (),
        equations=tuple(equations),
        style=style,
    )


def _equation_names(data: Any) -> tuple[str, ...]:
    if isinstance(data, dict) and isinstance(data.get("equations"), dict):
        return tuple(str(k) for k in data["equations"])
    return ()


def _invariants(doc: Document, contract: str, items: Any) -> Iterable[Invariant]:
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            statement = item.get("statement")
            yield Invariant(item["id"], statement if isinstance(statement, str) else "", contract,
                            doc.locate(("invariants", index, "id")))


def _falsifiers(doc: Document, contract: str, items: Any) -> Iterable[Falsifier]:
    if not isinstance(items, list):
        return
    for index, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("id"), str)):
            continue
        attacked = item.get("invariant")
        if isinstance(attacked, str):
            invariants: tuple[str, ...] = (attacked,)
        elif isinstance(attacked, list):
            invariants = tuple(i for i in attacked if isinstance(i, str))
        else:
            invariants = ()
        level = item.get("level", "algorithm")
        requires = item.get("requires", [])
        pending = item.get("pending")
        yield Falsifier(
            id=item["id"],
            contract=contract,
            invariants=invariants,
            rule=_text(item.get("rule")),
            prediction=_text(item.get("prediction")),
            if_fails=_text(item.get("if_fails")),
            location=doc.locate(("falsification_tests", index, "id")),
            level=Level(level) if isinstance(level, str) and level in Level._value2member_map_ else Level.ALGORITHM,
            requires=tuple(r for r in requires if isinstance(r, str)) if isinstance(requires, list) else (),
            pending=pending.strip() if isinstance(pending, str) and pending.strip() else None,
            mutants=tuple(_declared_mutants(item.get("mutants"))),
        )


def _declared_mutants(items: Any) -> Iterable[Mutant]:
    if not isinstance(items, list):
        return
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            args = item.get("args")
            pairs = tuple(sorted(args.items())) if isinstance(args, dict) else ()
            yield Mutant(item["name"], item.get("target"), item.get("replacement"), item.get("artifact"), pairs)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


# --- rules across the corpus -----------------------------------------------------------------------

KNOWN_CAPABILITIES = frozenset({"cuda", "network", "posix", "hf-token"})
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?")


def _is_sibling_contract(folder: Path, name: object) -> bool:
    """Whether ``folder/NAME.yaml`` exists; a name no file system accepts (too long, NUL) is not one."""
    if not isinstance(name, str):
        return False
    try:
        return any((folder / f"{name}{suffix}").is_file() for suffix in (".yaml", ".yml"))
    except (OSError, ValueError):
        return False


def lint_paths(
    paths: Sequence[str | os.PathLike[str]],
    *,
    compat_mode: bool = False,
    limits: Limits = Limits(),
    relative_to: str | os.PathLike[str] | None = None,
    schema_cache: MutableMapping[str, Any] | None = None,
    resolve_mutants: str | os.PathLike[str] | None = None,
    known_capabilities: frozenset[str] = frozenset(),
) -> Corpus:
    """Load every contract under ``paths`` and check them, singly and together.

    Args:
        paths: contract files and folders (searched recursively).
        compat_mode: read aprender's pv styles; unknown keys become warnings.
        limits: size, depth and alias bounds for each file.
        relative_to: show paths in findings relative to this folder (the project root).
        schema_cache: reuse schema findings for unchanged files (see `load_contract`).
        resolve_mutants: the project root (the folder of pyproject.toml): resolve every code
            mutant's target and replacement, importing the project's own modules from there as
            pytest would; each one that does not resolve or leaves the project is an error.
            ``None``: only the first segment of each name is checked (nothing is imported).
        known_capabilities: capabilities the project's profiles already name (their
            ``optional-requires``): a falsifier requiring one gets no "capability" note.

    Returns:
        A `Corpus` with every contract (valid or not) and every finding, sorted by place.

    Raises:
        ContractNotFoundError: a path does not exist.

    Example:
        >>> corpus = lint_paths(["contracts"])  # doctest: +SKIP
        >>> [f.render() for f in corpus.findings if f.is_error]  # doctest: +SKIP
        []
    """
    files = discover(paths)
    docs: list[Document] = []
    contracts: list[Contract] = []
    names = display_paths(files, relative_to) if relative_to is not None else [os.fspath(f) for f in files]
    for path, shown in zip(files, names, strict=True):
        doc, contract = load_contract(path, compat_mode=compat_mode, limits=limits, shown=shown,
                                      schema_cache=schema_cache)
        docs.append(doc)
        contracts.append(contract)
    findings = [f for doc in docs for f in doc.findings]
    real = [c for c in contracts if c.style != compat.STYLE_BINDING]
    findings.extend(check_corpus(real, docs, known_capabilities=known_capabilities))
    if resolve_mutants is not None:
        findings.extend(check_mutant_resolution(real, resolve_mutants))
    if compat_mode:
        by_file = {Path(c.path).name: (c.equations if c.is_valid or c.equations else None) for c in real}
        for doc, contract in zip(docs, contracts, strict=True):
            if contract.style == compat.STYLE_BINDING:
                findings.extend(compat.check_bindings(doc, by_file))
    if not files:
        shown = ", ".join(os.fspath(p) for p in paths)
        findings.append(Finding(Severity.WARNING, "no-contracts", f"no contract files (*.yaml) under {shown}",
                                hint="create one with `apr contracts new NAME`"))
    # A contract that gained an error from a corpus rule is no longer valid either.
    broken = {f.location.path for f in findings if f.is_error and f.location is not None}
    contracts = [_replace_valid(c, c.path not in broken and c.is_valid) for c in contracts]
    findings.sort(key=_order)
    return Corpus.of(contracts, findings)


def check_corpus(contracts: Sequence[Contract], docs: Sequence[Document] = (), *,
                 known_capabilities: frozenset[str] = frozenset()) -> list[Finding]:
    """The cross-file rules, over records only (pure; ``docs`` adds changelog positions;
    ``known_capabilities`` as in `lint_paths`)."""
    doc_by_path = {doc.path: doc for doc in docs}
    findings: list[Finding] = []
    findings += _duplicate_names(contracts)
    findings += _duplicate_ids(contracts)
    findings += _invariant_links(contracts)
    findings += _dependencies(contracts, doc_by_path)
    for contract in contracts:
        findings += _version_rules(contract, doc_by_path.get(contract.path))
        findings += _capabilities(contract, KNOWN_CAPABILITIES | known_capabilities)
        findings += _mutants(contract)
    return findings


# --- rules ----------------------------------------------------------------------------------------


def _duplicate_names(contracts: Sequence[Contract]) -> list[Finding]:
    seen: dict[str, Contract] = {}
    findings = []
    for contract in contracts:
        if contract.name in seen:
            first = seen[contract.name]
            findings.append(
                Finding(Severity.ERROR, "duplicate-contract",
                        f"two files define the contract {contract.name!r} (a contract's name is its file stem)",
                        contract.location, hint="rename one of the files", related=(first.location,))
            )
        else:
            seen[contract.name] = contract
    return findings


def _duplicate_ids(contracts: Sequence[Contract]) -> list[Finding]:
    seen: dict[str, Location] = {}
    findings = []
    for contract in contracts:
        entries = [(i.id, i.location, "invariant") for i in contract.invariants]
        entries += [(f.id, f.location, "falsifier") for f in contract.falsifiers]
        for ident, location, kind in entries:
            if ident in seen:
                first = seen[ident]
                findings.append(
                    Finding(
                        Severity.ERROR,
                        "duplicate-id",
                        f"{kind} id {ident} is declared twice: here and at {first}; ids must be unique "
                        "across all contracts",
                        location,
                        hint="give one of them a new number (ids are never reused, so evidence cannot be confused)",
                        related=(first,),
                    )
                )
            else:
                seen[ident] = location
    return findings


def _invariant_links(contracts: Sequence[Contract]) -> list[Finding]:
    declared = {i.id: i for c in contracts for i in c.invariants}
    attacked: set[str] = set()
    findings = []
    for contract in contracts:
        for falsifier in contract.falsifiers:
            for ident in falsifier.invariants:
                attacked.add(ident)
                if ident in declared:
                    continue
                nearest = did_you_mean(ident, declared)
                findings.append(
                    Finding(
                        Severity.ERROR,
                        "unknown-invariant",
                        f"falsifier {falsifier.id} names invariant {ident}, which does not exist"
                        + (f" (did you mean {nearest}?)" if nearest else ""),
                        falsifier.location,
                        hint=f"use {nearest}, declared at {declared[nearest].location}" if nearest
                        else "declare it under `invariants:` or fix the id",
                        related=(declared[nearest].location,) if nearest else (),
                    )
                )
    for contract in contracts:
        if contract.style in (compat.STYLE_PV,):
            continue  # pv contracts have no invariants section to check
        for invariant in contract.invariants:
            if invariant.id not in attacked:
                findings.append(
                    Finding(
                        Severity.ERROR,
                        "unfalsified-invariant",
                        f"invariant {invariant.id} has no falsifier: nothing could ever show it is broken",
                        invariant.location,
                        hint=f"add a falsification_tests entry with `invariant: {invariant.id}` "
                        "(mark it `pending: \"reason\"` until its test exists)",
                    )
                )
    return findings


def _dependencies(contracts: Sequence[Contract], docs: dict[str, Document]) -> list[Finding]:
    names = {c.name: c for c in contracts}
    findings = []
    graph: dict[str, list[str]] = {}
    for contract in contracts:
        edges = []
        doc = docs.get(contract.path)
        for index, name in enumerate(contract.depends_on):
            if name in names:
                edges.append(name)
                continue
            sibling = _is_sibling_contract(Path(contract.path).parent, name)
            if sibling:
                continue  # exists beside it but was not linted this time
            nearest = did_you_mean(name, [n for n in names if n != contract.name])
            where = doc.locate(("metadata", "depends_on", index)) if doc else contract.location
            findings.append(
                Finding(Severity.ERROR, "unknown-dependency",
                        f"{contract.name} depends on {name!r}, which is not a contract here",
                        where,
                        hint=f"did you mean {nearest!r}?" if nearest else "use a contract's file stem")
            )
        graph[contract.name] = edges
    for cycle in _cycles(graph):
        first = names[cycle[0]]
        findings.append(
            Finding(Severity.ERROR, "dependency-cycle", "depends_on forms a cycle: " + " -> ".join(cycle + [cycle[0]]),
                    first.location, hint="remove one of the depends_on entries in the cycle",
                    related=tuple(names[n].location for n in cycle[1:]))
        )
    return findings


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Each cycle once (iterative DFS, so a long chain cannot overflow the stack).

    The walk is bounded: each node is entered once and resumed once per edge, nodes + edges steps
    in all, so a fault in the colouring ends with a wrong answer instead of looping until memory
    runs out (which a test process cannot report as a failure).
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    cycles: list[list[str]] = []
    steps = len(graph) + sum(len(edges) for edges in graph.values())
    for start in sorted(graph):
        if colour[start] != white:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack and steps > 0:
            steps -= 1
            node, index = stack.pop()
            if index == 0:
                colour[node] = grey
                path.append(node)
            edges = graph.get(node, [])
            if index < len(edges):
                stack.append((node, index + 1))
                nxt = edges[index]
                if colour.get(nxt, black) == white:
                    stack.append((nxt, 0))
                elif colour.get(nxt) == grey:
                    cycles.append(path[path.index(nxt):])
            else:
                colour[node] = black
                path.pop()
    return cycles


def semver_key(version: object) -> tuple[int, int, int, int, str] | None:
    """Sort key for a semantic version (a pre-release sorts before its release), or ``None``."""
    match = _SEMVER.match(version) if isinstance(version, str) else None
    if not match:
        return None
    major, minor, patch, pre = match.groups()
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")


def _version_rules(contract: Contract, doc: Document | None) -> list[Finding]:
    findings = []
    if doc is not None and isinstance(doc.data, dict) and contract.version:
        meta = doc.data.get("metadata") or {}
        entries = meta.get("changelog") if isinstance(meta, dict) else None
        if isinstance(entries, list):
            dated = [(semver_key(e["version"]), i, e["version"]) for i, e in enumerate(entries)
                     if isinstance(e, dict) and isinstance(e.get("version"), str)]
            dated = [d for d in dated if d[0] is not None]
            if dated:
                _, index, newest = max(dated)
                if newest != contract.version:
                    findings.append(
                        Finding(
                            Severity.ERROR,
                            "version-changelog",
                            f"metadata.version is {contract.version} but the newest changelog entry is {newest}",
                            doc.locate(("metadata", "version")),
                            hint=f"bump metadata.version to {newest}, or add a changelog entry for "
                            f"{contract.version}",
                            related=(doc.locate(("metadata", "changelog", index)),),
                        )
                    )
                versions = [d[2] for d in dated]
                for version in sorted({v for v in versions if versions.count(v) > 1}):
                    findings.append(
                        Finding(Severity.WARNING, "changelog-duplicate", f"the changelog lists version {version} twice",
                                doc.locate(("metadata", "changelog")), hint="merge the two entries")
                    )
    if contract.status is Status.DISCHARGED:
        for falsifier in contract.falsifiers:
            if falsifier.pending:
                findings.append(
                    Finding(Severity.ERROR, "discharged-pending",
                            f"the contract is DISCHARGED but falsifier {falsifier.id} is still pending",
                            falsifier.location, hint="bind its test, or lower the status to FUNCTIONAL")
                )
    return findings


def _capabilities(contract: Contract, known: frozenset[str]) -> list[Finding]:
    """A note for each required capability neither built in nor named by a profile of the project."""
    findings = []
    for falsifier in contract.falsifiers:
        for capability in falsifier.requires:
            if capability not in known:
                nearest = did_you_mean(capability, known)
                findings.append(
                    Finding(Severity.INFO, "capability",
                            f"falsifier {falsifier.id} requires {capability!r}: where its tests cannot run, it is "
                            "UNDETERMINED, and only a profile listing it under optional-requires tolerates that",
                            falsifier.location,
                            hint=f"did you mean {nearest!r}?" if nearest
                            else "add it to [tool.apr-contracts.profiles.cpu] optional-requires if CI may lack it")
                )
    return findings


def _mutants(contract: Contract) -> list[Finding]:
    """Issue 9: every falsifier declares a mutant its tests kill; nothing outside the project is imported."""
    findings = []
    for falsifier in contract.falsifiers:
        if not falsifier.mutants and not falsifier.pending and contract.style == "canonical":
            findings.append(
                Finding(Severity.WARNING, "no-mutant",
                        f"falsifier {falsifier.id} declares no mutant: nothing shows its tests can fail",
                        falsifier.location,
                        hint="add `mutants: [{name: ..., target: apr.MODULE.NAME, replacement: "
                        "\"tests.PKG.mutants:FUNCTION\"}]` and check it with `apr contracts verify --mutants`")
            )
        for mutant in falsifier.mutants:
            problem = namespace_problem(mutant)
            if problem:
                findings.append(
                    Finding(Severity.ERROR, "mutant-namespace", f"falsifier {falsifier.id}: {problem}",
                            falsifier.location,
                            hint="only attributes of the project's own packages are imported ("
                            + ", ".join(n + "." for n in ALLOWED_NAMESPACES) + "); nothing else is ever run")
                )
            if mutant.artifact and mutant.artifact not in MUTATORS:
                nearest = did_you_mean(mutant.artifact, MUTATORS)
                findings.append(
                    Finding(Severity.ERROR, "unknown-mutator",
                            f"falsifier {falsifier.id}: mutant {mutant.name!r} names no built-in artifact mutator "
                            f"{mutant.artifact!r}", falsifier.location,
                            hint=(f"did you mean {nearest!r}? " if nearest else "")
                            + f"built-in: {', '.join(sorted(MUTATORS))}")
                )
    return findings


def check_mutant_resolution(contracts: Sequence[Contract], root: str | os.PathLike[str]) -> list[Finding]:
    """An error for each code mutant that does not resolve, or reaches outside the project at any step.

    A mutant whose module imports a third-party package missing from this environment (a lean
    install without the test extra: the tests import ``hypothesis``) is a warning,
    ``mutant-unchecked``, not an error: nothing is known to be wrong with it, and `verify`, which
    needs those packages to run the tests anyway, resolves every mutant it runs. One warning per
    missing package (at its first mutant, counting the others), not one per mutant.

    Mutants already refused by the first-segment check (``mutant-namespace`` of `check_corpus`)
    are not imported at all. Modules are imported as pytest would from ``root`` (see
    `falsifiers.mutation.ProjectImporter`); nothing outside the project is imported.
    """
    findings: list[Finding] = []
    unchecked: dict[str, tuple[Finding, int]] = {}  # hint (names the package) -> first finding, count
    with ProjectImporter(root).active() as importer:
        for contract in contracts:
            for falsifier in contract.falsifiers:
                for mutant in falsifier.mutants:
                    if mutant.artifact or namespace_problem(mutant):
                        continue
                    problem = mutant_problem(mutant, importer=importer)
                    if problem is None:
                        continue
                    message = f"falsifier {falsifier.id}: {problem.message}"
                    if problem.code != UNCHECKED:
                        findings.append(Finding(Severity.ERROR, problem.code, message, falsifier.location,
                                                hint=problem.hint))
                        continue
                    first, count = unchecked.get(problem.hint, (None, 0))
                    unchecked[problem.hint] = (first or Finding(Severity.WARNING, UNCHECKED, message,
                                                                falsifier.location, hint=problem.hint), count + 1)
    for first, count in unchecked.values():
        others = f" (and {count - 1} more mutant{'s' if count > 2 else ''} for the same reason)" if count > 1 else ""
        findings.append(replace(first, message=first.message + others))
    return findings


def _order(finding: Finding) -> tuple[str, int, int, str]:
    loc = finding.location
    return (loc.path if loc else "", (loc.line or 0) if loc else 0, (loc.col or 0) if loc else 0, finding.code)


def _replace_valid(contract: Contract, valid: bool) -> Contract:
    if contract.is_valid == valid:
        return contract
    return replace(contract, is_valid=valid)


__all__ = ["KNOWN_CAPABILITIES", "build_contract", "check_corpus", "check_mutant_resolution", "lint_paths",
           "load_contract", "semver_key"]
