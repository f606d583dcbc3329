"""JSON Schema validation of a loaded contract, with findings at ``file:line:col``.

The schema is published (``contracts/schema/contract.schema.json``, and a byte-identical copy in
the package so an installed harness works anywhere), so editors validate as authors type. This
module turns `jsonschema`'s errors into findings that name the field the author wrote, sit on its
line and column, and suggest the nearest known key or value (did you mean ``if_fails``?).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema

from falsifiers.loader import Document, PathKey
from falsifiers.records import Finding, Severity

SCHEMA_RESOURCE = "schema/contract.schema.json"

# Keys that people coming from pv write, with what to do instead.
_KEY_HINTS = {
    "test": "a `test:` string binds nothing; put @pytest.mark.falsifies(\"{id}\") on the test instead",
    "falsification_test": "a prose test binds nothing; put @pytest.mark.falsifies(\"{id}\") on the test instead",
    "test_harness": "a prose test binds nothing; put @pytest.mark.falsifies(\"{id}\") on the test instead",
    "description": "invariants use `statement:` (falsifiers use `rule:`/`prediction:`)",
    "kani_harnesses": "formal back ends are not part of this harness; delete the block",
}


def schema_text() -> str:
    """The packaged schema as text (what `contracts/schema/contract.schema.json` must equal)."""
    # Next to this module, not importlib.resources: that also works for an editable install that
    # was made before the package had its __init__ (a namespace package to importlib).
    return (Path(__file__).parent / SCHEMA_RESOURCE).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def schema_fingerprint() -> str:
    """Changes whenever the schema or this module does: the key under which findings are cached."""
    digest = hashlib.sha256(schema_text().encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def contract_schema() -> dict[str, Any]:
    """The contract schema as a dict (parsed once per process)."""
    return json.loads(schema_text())


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    schema = contract_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_document(
    doc: Document, *, unknown_keys: Severity = Severity.ERROR, optional: frozenset[str] = frozenset()
) -> list[Finding]:
    """Check ``doc.data`` against the contract schema.

    Args:
        doc: a loaded document whose data is not ``None``.
        unknown_keys: the severity of an unknown key (``WARNING`` in ``--compat`` mode).
        optional: required keys whose absence is not reported (``--compat`` reports it itself).

    Returns:
        One finding per problem, sorted by position; empty when the document is valid.
    """
    findings: list[Finding] = []
    for error in _validator().iter_errors(doc.data):
        findings.extend(f for f in _translate(error, doc, unknown_keys) if not _is_optional(f, optional))
    findings.sort(key=lambda f: (f.location.line or 0, f.location.col or 0) if f.location else (0, 0))
    return findings


def _is_optional(finding: Finding, optional: frozenset[str]) -> bool:
    return finding.code == "missing-key" and any(finding.message.endswith(f"`{key}`") for key in optional)


def did_you_mean(word: str, choices: Any) -> str | None:
    """The closest of ``choices`` to ``word``, or ``None`` when nothing is close."""
    options = [str(c) for c in choices]
    folded = {o.lower(): o for o in options}
    if word.lower() in folded:
        return folded[word.lower()]
    match = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return match[0] if match else None


def field_name(path: PathKey) -> str:
    """``("falsification_tests", 2, "level")`` as ``falsification_tests[2].level``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "the document"


# --- translation ----------------------------------------------------------------------------------


def _describe(path: PathKey, doc: Document) -> str:
    """Name the object at ``path`` the way an author thinks of it (its id when it has one)."""
    if not path:
        return "the contract"
    node: Any = doc.data
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return f"`{field_name(path)}`"
    if isinstance(node, dict) and isinstance(node.get("id"), str):
        return f"{node['id']} (`{field_name(path)}`)"
    return f"`{field_name(path)}`"


def _translate(error: Any, doc: Document, unknown_keys: Severity) -> list[Finding]:
    path: PathKey = tuple(error.absolute_path)
    kind = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        return _unknown_keys(error, path, doc, unknown_keys)
    if kind == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        # jsonschema reports one error per missing key, worded "'key' is a required property".
        missing = [k for k in missing if str(error.message).startswith(repr(k))] or missing[:1]
        return [
            Finding(
                Severity.ERROR,
                "missing-key",
                f"{_describe(path, doc)} is missing the required key `{key}`",
                doc.locate(path),
                hint=_missing_hint(key, error.instance),
            )
            for key in missing
        ]
    where = doc.locate(path)
    name = f"`{field_name(path)}`"
    value = error.instance
    if kind == "enum":
        nearest = did_you_mean(str(value), error.validator_value)
        choices = ", ".join(str(v) for v in error.validator_value)
        hint = f"did you mean {nearest!r}?" if nearest else f"use one of: {choices}"
        return [Finding(Severity.ERROR, "bad-value", f"{name} is {value!r}; expected one of {choices}", where, hint=hint)]
    if kind == "type":
        expected = error.validator_value
        article = "an" if str(expected)[:1] in "aeiou" else "a"
        hint = "quote the value" if expected == "string" else f"write {article} {expected}"
        if expected == "string" and isinstance(value, float | int) and path and path[-1] == "version":
            hint = f'quote it and give three parts: version: "{value}.0"' if isinstance(value, float) else (
                f'quote it and give three parts: version: "{value}.0.0"'
            )
        return [
            Finding(Severity.ERROR, "wrong-type",
                    f"{name} must be {article} {expected}, not {type(value).__name__} {_short(value)}", where, hint=hint)
        ]
    if kind == "pattern":
        expected = _expected(schema)
        code = "id-format" if (path and path[-1] in ("id", "invariant")) or (len(path) > 1 and path[-2] == "invariant") else "bad-value"
        return [Finding(Severity.ERROR, code, f"{name} is {value!r}, which is not {expected}", where,
                        hint=_pattern_hint(value, expected))]
    if kind in ("minLength", "minItems"):
        return [Finding(Severity.ERROR, "empty", f"{name} is empty", where, hint="write something, or remove the key")]
    if kind == "uniqueItems":
        return [Finding(Severity.ERROR, "duplicate-item", f"{name} lists the same item twice", where,
                        hint="remove the repeated item")]
    if kind in ("anyOf", "oneOf"):
        expected = schema.get("x-expected") or error.message
        return [Finding(Severity.ERROR, "bad-value", f"{name} must be {expected}", where,
                        hint=f"got {value!r}" if not isinstance(value, dict | list) else None)]
    return [Finding(Severity.ERROR, "schema", f"{name}: {error.message}", where)]


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _expected(schema: dict[str, Any]) -> str:
    if "x-expected" in schema:
        return schema["x-expected"]
    # A $ref'd definition carries the wording; jsonschema reports the inner schema.
    for definition in contract_schema()["$defs"].values():
        if definition.get("pattern") == schema.get("pattern") and "x-expected" in definition:
            return definition["x-expected"]
    return f"matched by the pattern {schema.get('pattern')!r}"


def _pattern_hint(value: Any, expected: str) -> str | None:
    if isinstance(value, str) and value[:4] in ("FALS", "INV-") and "NNN" in expected:
        parts = value.upper().replace("_", "-").split("-")
        if len(parts) < 3:
            return f"add a prefix naming the contract, e.g. '{parts[0]}-APR-FORMAT-{parts[-1].zfill(3)[-3:]}'"
        if parts[-1].isdigit():
            parts[-1] = parts[-1].zfill(3)[-3:]
            return f"e.g. {'-'.join(parts)!r} (upper case, three-digit number)"
    return None


def _missing_hint(key: str, instance: Any) -> str | None:
    if key == "if_fails":
        return "say what a failure would mean (`if_fails: \"the reader accepts a bad CRC\"`)"
    if key == "invariant":
        return "name the invariant this falsifier attacks, e.g. `invariant: INV-…-001`"
    if key == "changelog":
        version = instance.get("version", "1.0.0") if isinstance(instance, dict) else "1.0.0"
        return f'add `changelog: [{{version: "{version}", date: "YYYY-MM-DD", changes: "..."}}]`'
    if key == "falsification_tests":
        return "nothing can refute this contract: add falsifiers (`apr contracts new` shows the shape)"
    if key == "status":
        return "add `status: PROPOSED` (or PARTIAL_ALGORITHM_LEVEL, FUNCTIONAL, DISCHARGED)"
    return None


def _unknown_keys(error: Any, path: PathKey, doc: Document, severity: Severity) -> list[Finding]:
    allowed = list(error.schema.get("properties", {}))
    owner = error.instance
    findings = []
    for key in owner:
        if key in allowed:
            continue
        nearest = did_you_mean(key, allowed)
        hint = f"did you mean `{nearest}`?" if nearest else f"known keys here: {', '.join(allowed)}"
        if key in _KEY_HINTS:
            hint = _KEY_HINTS[key].format(id=owner.get("id", "FALSIFY-…"))
        findings.append(
            Finding(
                severity,
                "unknown-key",
                f"unknown key `{key}` in {_describe(path, doc)}",
                doc.locate(path + (key,), key=True),
                hint=hint,
            )
        )
    return findings


__all__ = ["contract_schema", "did_you_mean", "field_name", "schema_fingerprint", "schema_text", "validate_document"]
