"""Find contract files, load each one, and build records from whatever could be read.

Every file is loaded on its own: a file that does not parse yields findings and a `Contract` with
``is_valid=False`` (its falsifier ids salvaged from the raw text), and the next file is loaded as if
nothing happened. That is the whole of "one bad file never hides the others".
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import Any

from falsifiers import compat
from falsifiers.discovery import CONTRACT_SUFFIXES, discover  # re-exported: corpus.discover
from falsifiers.loader import Document, Limits, load_file, salvage_ids
from falsifiers.findings import Finding, Severity
from falsifiers.records import Contract, Falsifier, Invariant, Level, Location, Mutant, Status
from falsifiers.schema import schema_fingerprint, validate_document



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
            mutants=tuple(_mutants(item.get("mutants"))),
        )


def _mutants(items: Any) -> Iterable[Mutant]:
    if not isinstance(items, list):
        return
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            args = item.get("args")
            pairs = tuple(sorted(args.items())) if isinstance(args, dict) else ()
            yield Mutant(item["name"], item.get("target"), item.get("replacement"), item.get("artifact"), pairs)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


__all__ = ["CONTRACT_SUFFIXES", "build_contract", "discover", "load_contract"]
