"""``--compat``: read contracts written for aprender's ``pv`` and report their known defects.

Two styles exist in aprender (docs/aprender-format.md §7): the provable-contracts style
(``metadata`` + ``equations`` + ``proof_obligations`` + ``falsification_tests`` with a prose
``test:``) and the ship-gate style (top-level ``contract_id``/``version``/``status``, ``invariants``
with ``description``, ``gates``, falsifiers with ``invariant``/``test_kind``/``site``). A third kind of
file, ``binding.yaml``, maps equations to functions.

Normalisation rewrites a document into the canonical shape that the schema and lint check, and says
what it did: keys pv knows but the harness does not use are listed once per contract (info); keys
neither knows are warnings with a did-you-mean; defects pv never noticed become findings (a prose
``test:`` that binds nothing, a falsifier that names no invariant, a missing ``if_fails``, ids that
collide across files, bindings to equations that do not exist). Nothing here raises.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from falsifiers.loader import Document, PathKey
from falsifiers.records import Finding, Location, Severity
from falsifiers.schema import did_you_mean

STYLE_CANONICAL = "canonical"
STYLE_PV = "pv"
STYLE_SHIP_GATE = "ship-gate"
STYLE_BINDING = "binding-registry"

# Blocks pv or the ship-gate style define and the harness does not check (reported once, as info).
_PV_TOP = {
    "equations", "proof_obligations", "kernel_structure", "simd_dispatch", "enforcement", "kani_harnesses",
    "qa_gate", "verification_summary", "type_invariants", "coq_spec", "five_whys", "gates", "failure_modes",
    "summary", "motivation", "required_fields", "contract_id", "version", "status", "references", "title",
    "created", "updated", "changelog", "parent_spec", "parent_acceptance_criteria", "abstract", "schema",
    "acceptance_criteria", "rejection_criteria", "example_manifest", "entity", "per_step_metrics",
    "per_epoch_artifacts", "convergence", "non_divergence", "hyperparameter_defaults", "lessons_learned",
}
_PV_METADATA = {"kind", "registry", "peer_contracts", "lessons_learned", "enforcement_level", "locked_level"}
_PV_INVARIANT = {"description", "falsifier", "formal", "site", "rationale"}
_PV_FALSIFIER = {
    "test", "test_kind", "site", "expected_exit_code", "expected_stderr_pattern", "expected_stderr_not_pattern",
    "spec_reference", "ship_blocking", "discharge_status", "evidence_discharged_by", "live_discharge",
    "full_discharge_blocks_on", "reference", "falsification_test", "test_harness", "if_test_passes",
    "if_test_compiles", "if_catch_all_exists", "if_test_fails", "name",
}
_CANONICAL_METADATA = ("version", "status", "description", "references", "depends_on", "changelog",
                       "author", "created", "updated", "tags")
_CANONICAL_FALSIFIER = ("id", "invariant", "rule", "prediction", "if_fails", "level", "requires", "pending", "mutants")
_STATUS_ALIASES = {"ACTIVE": "FUNCTIONAL", "DRAFT": "PROPOSED"}
_SHELL_WORDS = {"cargo", "grep", "test", "bash", "sh", "python", "python3", "make", "apr", "pv", "pmat", "jq",
                "rg", "cat", "diff", "pytest"}
_CHANGELOG = re.compile(r"^\s*v?(\d+\.\d+\.\d+)\s*(?:\((\d{4}-\d{2}-\d{2})\))?\s*[:\u2014-]?\s*(.*)$", re.S)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Required keys the pv styles lack by design; their absence is reported by compat, not the schema.
COMPAT_OPTIONAL = frozenset({"changelog", "status", "invariant", "invariants"})


def detect_style(data: Any) -> str:
    """Which of the known contract styles ``data`` is written in."""
    if not isinstance(data, dict):
        return STYLE_CANONICAL
    if "bindings" in data and "falsification_tests" not in data:
        return STYLE_BINDING
    if "contract_id" in data:
        return STYLE_SHIP_GATE
    keys = set(data)
    if keys - {"metadata", "equations", "invariants", "proof_obligations", "falsification_tests"}:
        return STYLE_PV
    falsifiers = data.get("falsification_tests")
    if isinstance(falsifiers, list) and any(isinstance(f, dict) and "test" in f for f in falsifiers):
        return STYLE_PV
    metadata = data.get("metadata")
    if isinstance(metadata, dict) and "status" not in metadata and "invariants" not in data:
        return STYLE_PV
    return STYLE_CANONICAL


def normalize(doc: Document) -> tuple[Document, str]:
    """Rewrite a pv-style document into the canonical shape, adding findings to the copy.

    Returns:
        The canonical document (same path, positions carried over) and the detected style.
        Binding registries come back unchanged; `check_bindings` lints them against the corpus.
    """
    style = detect_style(doc.data)
    if style in (STYLE_CANONICAL, STYLE_BINDING) or not isinstance(doc.data, dict):
        return doc, style
    out = Document(doc.path, doc.sha256, None, dict(doc.positions), dict(doc.key_positions), list(doc.findings), doc.text)
    rewriter = _Rewriter(doc, out)
    out.data = rewriter.contract(doc.data)
    rewriter.flush()
    return out, style


def check_bindings(doc: Document, equations: dict[str, tuple[str, ...] | None]) -> list[Finding]:
    """Lint a pv ``binding.yaml`` against the contracts that were loaded.

    Args:
        doc: the loaded registry.
        equations: contract file name (``softmax-kernel-v1.yaml``) -> its equation names, or ``None``
            when the contract was found but could not be read.

    Returns:
        An error per binding that names an equation its contract does not define (pv never
        checks this direction), and one info finding for bindings to contracts outside the corpus.
    """
    findings: list[Finding] = []
    bindings = doc.data.get("bindings") if isinstance(doc.data, dict) else None
    if not isinstance(bindings, list):
        return [Finding(Severity.ERROR, "binding-registry", "`bindings` is not a list", doc.locate(("bindings",)))]
    outside: Counter[str] = Counter()
    for index, entry in enumerate(bindings):
        if not isinstance(entry, dict):
            continue
        contract = str(entry.get("contract", "")).rsplit("/", 1)[-1]
        equation = entry.get("equation")
        if contract not in equations:
            outside[contract] += 1
            continue
        known = equations[contract]
        if known is None or equation in known:
            continue
        nearest = did_you_mean(str(equation), known)
        findings.append(
            Finding(
                Severity.ERROR,
                "binding-dangling",
                f"binding names equation {equation!r}, which {contract} does not define",
                doc.locate(("bindings", index, "equation")),
                hint=f"did you mean {nearest!r}?" if nearest else f"equations there: {', '.join(known) or 'none'}",
            )
        )
    if outside:
        names = ", ".join(sorted(outside)[:5]) + (" …" if len(outside) > 5 else "")
        findings.append(
            Finding(Severity.INFO, "binding-outside-corpus",
                    f"{sum(outside.values())} binding(s) name {len(outside)} contract(s) not among the linted files "
                    f"({names}); not checked", doc.locate(("bindings",)),
                    hint="lint the whole contracts folder to check them")
        )
    return findings


def classify_test(text: Any) -> str:
    """aprender's PV-VER-002 classes for a ``test:`` value: command, function, pending or prose."""
    if not isinstance(text, str) or not text.strip():
        return "prose"
    stripped = text.strip()
    if stripped.upper().startswith("LIVE-PENDING") or stripped.upper().startswith("PENDING"):
        return "pending"
    first = stripped.split()[0]
    if first in _SHELL_WORDS or "cargo test" in stripped:
        return "command"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_:]*", stripped):
        return "function"
    return "prose"


class _Rewriter:
    """Builds the canonical document and its findings; keeps the code of each mapping in one place."""

    def __init__(self, src: Document, out: Document) -> None:
        self.src = src
        self.out = out
        self.ignored: Counter[str] = Counter()

    def warn(self, code: str, message: str, path: PathKey, hint: str | None = None, *, key: bool = False,
             severity: Severity = Severity.WARNING) -> None:
        # located in the rewrite: it has every position of the source plus those of the keys moved
        # into `metadata` (a ship-gate `status:` is reported where it is, not at line 1)
        self.out.findings.append(Finding(severity, code, message, self.out.locate(path, key=key), hint=hint))

    def move(self, old: PathKey, new: PathKey) -> None:
        """Carry the position of ``old`` over to ``new`` (for keys that change place)."""
        if old in self.src.positions:
            self.out.positions[new] = self.src.positions[old]
        if old in self.src.key_positions:
            self.out.key_positions[new] = self.src.key_positions[old]

    def unknown(self, key: str, path: PathKey, known: tuple[str, ...] | set[str], where: str) -> None:
        nearest = did_you_mean(key, list(known))
        hint = f"did you mean `{nearest}`?" if nearest else None
        self.warn("unknown-key", f"unknown key `{key}` in {where} (ignored in compat mode)", path, hint, key=True)

    def flush(self) -> None:
        if self.ignored:
            listed = ", ".join(f"{k} ({n})" if n > 1 else k for k, n in sorted(self.ignored.items()))
            self.out.findings.append(
                Finding(Severity.INFO, "compat-ignored", f"pv keys the harness does not check were ignored: {listed}",
                        Location(self.src.path, 1, 1))
            )

    # --- the three parts the harness reads ------------------------------------------------------

    def contract(self, data: dict[str, Any]) -> dict[str, Any]:
        for key in data:
            if key in ("metadata", "invariants", "falsification_tests"):
                continue
            if key in _PV_TOP:
                self.ignored[key] += 1
            else:
                self.unknown(key, (key,), tuple(_PV_TOP) + ("metadata", "invariants", "falsification_tests"),
                             "the contract")
        out: dict[str, Any] = {"metadata": self.metadata(data)}
        invariants = data.get("invariants")
        if isinstance(invariants, list):
            out["invariants"] = [self.invariant(i, item) for i, item in enumerate(invariants)]
        elif invariants is not None:
            out["invariants"] = invariants  # the schema reports the wrong type
        tests = data.get("falsification_tests")
        if isinstance(tests, list):
            out["falsification_tests"] = [self.falsifier(i, item) for i, item in enumerate(tests)]
        elif tests is not None:
            out["falsification_tests"] = tests
        return out

    def metadata(self, data: dict[str, Any]) -> dict[str, Any]:
        source = found if isinstance(found := data.get("metadata"), dict) else {}
        meta: dict[str, Any] = {}
        for key, value in source.items():
            if key in _CANONICAL_METADATA:
                meta[key] = value
            elif key in _PV_METADATA or key in _PV_TOP:
                self.ignored[f"metadata.{key}"] += 1
            else:
                self.unknown(key, ("metadata", key), _CANONICAL_METADATA, "metadata")
        for key in ("version", "status", "references", "changelog", "created", "updated"):
            if key not in meta and key in data:  # ship-gate style keeps these at the top
                meta[key] = data[key]
                self.move((key,), ("metadata", key))
        for key in ("created", "updated"):
            if key in meta and not (isinstance(meta[key], str) and _DATE.match(meta[key])):
                self.ignored[f"metadata.{key}"] += 1
                del meta[key]
        if "description" not in meta:
            for key in ("summary", "abstract", "title"):
                if isinstance(data.get(key), str):
                    meta["description"] = data[key]
                    self.move((key,), ("metadata", "description"))
                    break
        if isinstance(meta.get("references"), dict):  # ship-gate style: {parent_spec: ..., external: {...}}
            self.ignored["references (a mapping)"] += 1
            meta["references"] = [f"{k}: {v}" for k, v in meta["references"].items()]
        if isinstance(meta.get("references"), list):
            meta["references"] = [r if isinstance(r, str) else str(r) for r in meta["references"]]
        if isinstance(meta.get("depends_on"), list):
            meta["depends_on"] = [re.sub(r"\.ya?ml$", "", str(d).rsplit("/", 1)[-1]) for d in meta["depends_on"]]
        status = meta.get("status")
        if status in _STATUS_ALIASES:
            self.warn("compat-status", f"status {status!r} is not in the lifecycle; read as {_STATUS_ALIASES[status]}",
                      ("metadata", "status"), "use PROPOSED, PARTIAL_ALGORITHM_LEVEL, FUNCTIONAL or DISCHARGED")
            meta["status"] = _STATUS_ALIASES[status]
        elif status is None:
            self.warn("compat-status", "no status; read as PROPOSED", ("metadata",), "add `status: PROPOSED`",
                      severity=Severity.INFO)
            meta["status"] = "PROPOSED"
        if "changelog" in meta:
            meta["changelog"] = self.changelog(meta["changelog"])
        return meta

    def changelog(self, entries: Any) -> Any:
        if not isinstance(entries, list):
            return entries
        out = []
        for index, entry in enumerate(entries):
            if isinstance(entry, dict) and len(entry) == 1 and _CHANGELOG.match(str(next(iter(entry)))):
                key, value = next(iter(entry.items()))  # "- v1.1.0 (date): text" reads as a mapping in YAML
                entry = f"{key}: {value}"
            if isinstance(entry, str):
                match = _CHANGELOG.match(entry)
                if match:
                    out.append({"version": match.group(1), "date": match.group(2) or "0000-00-00",
                                "changes": match.group(3).strip() or entry})
                    if not match.group(2):
                        self.warn("compat-changelog", "changelog entry has no (YYYY-MM-DD) date",
                                  ("metadata", "changelog", index))
                    continue
                self.warn("compat-changelog", "changelog entry does not start with a version", ("metadata", "changelog", index),
                          'write `{version: "1.2.0", date: "YYYY-MM-DD", changes: "..."}`')
                continue
            if isinstance(entry, dict) and "change" in entry and "changes" not in entry:
                entry = {**{k: v for k, v in entry.items() if k != "change"}, "changes": entry["change"]}
            out.append(entry)
        return out

    def invariant(self, index: int, item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        path: PathKey = ("invariants", index)
        out: dict[str, Any] = {}
        for key, value in item.items():
            if key in ("id", "statement", "formal", "rationale"):
                out[key] = value
            elif key == "description" and "statement" not in item:
                out["statement"] = value
                self.move(path + (key,), path + ("statement",))
            elif key == "falsifier":
                self.warn("prose-falsifier", f"invariant {item.get('id', '?')}: `falsifier:` is prose and binds nothing",
                          path + (key,), "declare it under falsification_tests and bind a test with "
                          "@pytest.mark.falsifies", key=True)
            elif key in _PV_INVARIANT:
                self.ignored[f"invariants[].{key}"] += 1
            else:
                self.unknown(key, path + (key,), ("id", "statement", "formal", "rationale"), f"invariant {item.get('id', index)}")
        return out

    def falsifier(self, index: int, item: Any) -> Any:
        if not isinstance(item, dict):
            return item
        path: PathKey = ("falsification_tests", index)
        ident = item.get("id", f"#{index}")
        out: dict[str, Any] = {}
        for key, value in item.items():
            if key in _CANONICAL_FALSIFIER:
                out[key] = value
            elif key in ("test", "falsification_test", "test_harness", "command"):
                self._prose_test(ident, key, value, path + (key,), out)
            elif key in _PV_FALSIFIER:
                self.ignored[f"falsification_tests[].{key}"] += 1
            else:
                self.unknown(key, path + (key,), _CANONICAL_FALSIFIER, f"falsifier {ident}")
        if "invariant" not in out:
            self.warn("no-invariant", f"falsifier {ident} names no invariant: it attacks nothing the contract promises",
                      path, "add `invariant: INV-…-NNN` (declare the invariant under `invariants:`)")
        return out

    def _prose_test(self, ident: Any, key: str, value: Any, path: PathKey, out: dict[str, Any]) -> None:
        kind = classify_test(value)
        fix = f'bind a pytest test with @pytest.mark.falsifies("{ident}")'
        if kind == "pending":
            out.setdefault("pending", str(value).strip())
            self.warn("pending-test", f"falsifier {ident}: `{key}:` says {str(value).strip()[:60]!r}; read as pending",
                      path, fix, severity=Severity.INFO)
        elif kind == "command":
            self.warn("test-command", f"falsifier {ident}: `{key}:` is a shell command the harness never runs",
                      path, fix)
        elif kind == "function":
            self.warn("test-name", f"falsifier {ident}: `{key}:` names {value!r} but nothing checks that it exists "
                      "or that it ran", path, fix)
        else:
            self.warn("prose-test", f"falsifier {ident}: `{key}:` is prose that binds nothing "
                      f"({str(value).strip()[:50]!r})", path, fix)


__all__ = ["COMPAT_OPTIONAL", "check_bindings", "classify_test", "detect_style", "normalize"]
