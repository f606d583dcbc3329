"""YAML bytes to plain data plus the ``line:col`` of every key and value, and findings.

Why not ``yaml.safe_load``: it drops duplicate keys silently (the last one wins), forgets where
each value came from, and happily expands an alias bomb into gigabytes once anything walks the
result. Here libyaml (or PyYAML's pure parser) only *composes* the node graph; a small walker turns
nodes into dicts, lists and scalars while it

* records the position of every value and every mapping key (``Document.positions``),
* rejects duplicate keys, non-scalar keys, merge keys and any tag but the JSON-like core ones,
* bounds the file size, the nesting depth and the alias-expanded node count *before* building,
* keeps timestamps as the text the author wrote (``date: 2026-11-26`` stays a string).

Nothing from the file is executed or evaluated. The loader never raises for bad input: every
problem is a `Finding`, and the document is returned with whatever could be read.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from falsifiers.records import Finding, Location, Severity

# Parse with libyaml where the wheel has it (about 10x faster); the walker below is the same.
_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

PathKey = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_SCALAR = SafeConstructor.__new__(SafeConstructor)  # stateless use of the scalar constructors
_SCALAR_TAGS = {
    _TAG + "str": None,
    _TAG + "null": SafeConstructor.construct_yaml_null,
    _TAG + "bool": SafeConstructor.construct_yaml_bool,
    _TAG + "int": SafeConstructor.construct_yaml_int,
    _TAG + "float": SafeConstructor.construct_yaml_float,
    _TAG + "timestamp": None,  # kept as written: contracts compare dates as text
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied before anything is built. Defaults fit the largest aprender contract ~20x."""

    max_bytes: int = 2 * 1024 * 1024
    max_nodes: int = 200_000  # after alias expansion: a billion-laughs file stops here
    max_depth: int = 64


@dataclass(slots=True)
class Document:
    """One YAML file as plain data, with positions (1-based line, col) and findings."""

    path: str
    sha256: str
    data: Any = None
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    text: str | None = None

    @property
    def has_errors(self) -> bool:
        return any(f.is_error for f in self.findings)

    def locate(self, path: PathKey, *, key: bool = False) -> Location:
        """Where ``path`` is, or its nearest enclosing value that has a position."""
        if key and path in self.key_positions:
            line, col = self.key_positions[path]
            return Location(self.path, line, col)
        probe = tuple(path)
        while True:
            if probe in self.positions:
                line, col = self.positions[probe]
                return Location(self.path, line, col)
            if not probe:
                return Location(self.path, 1, 1)
            probe = probe[:-1]


def load_file(path: str | os.PathLike[str], *, limits: Limits = Limits(), shown: str | None = None) -> Document:
    """Read and load one YAML file; never raises for bad content, only reports it.

    The size is checked from ``stat`` and the read is capped, so a 20 MB file costs nothing.

    Example:
        >>> doc = load_file("contracts/harness-v1.yaml")  # doctest: +SKIP
        >>> doc.locate(("falsification_tests", 0, "id"))  # doctest: +SKIP
        Location(path='contracts/harness-v1.yaml', line=31, col=9)
    """
    shown = shown or os.fspath(path)
    try:
        size = os.stat(path).st_size
        if size > limits.max_bytes:
            return _too_big(shown, size, limits)
        with open(path, "rb") as handle:
            raw = handle.read(limits.max_bytes + 1)
    except OSError as err:
        doc = Document(shown, sha256="")
        reason = err.strerror or type(err).__name__
        doc.findings.append(
            Finding(Severity.ERROR, "unreadable", f"cannot read the file: {reason}", Location(shown),
                    hint="check the path and its permissions")
        )
        return doc
    if len(raw) > limits.max_bytes:  # grew between stat and read
        return _too_big(shown, len(raw), limits)
    return load_bytes(raw, shown, limits=limits)


def load_bytes(raw: bytes, path: str, *, limits: Limits = Limits()) -> Document:
    """Load YAML from bytes; ``path`` is used only in findings."""
    doc = Document(path, sha256=hashlib.sha256(raw).hexdigest())
    if len(raw) > limits.max_bytes:
        return _too_big(path, len(raw), limits)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        doc.findings.append(
            Finding(Severity.ERROR, "not-utf8", f"byte {raw[err.start]:#04x} is not valid UTF-8",
                    Location(path, line, col), hint="save the file as UTF-8")
        )
        return doc
    doc.text = text
    node = _compose(text, doc)
    if node is None:
        if not doc.findings:
            doc.findings.append(
                Finding(Severity.ERROR, "empty", "the file holds no YAML document", Location(path, 1, 1),
                        hint="start from `apr contracts new NAME`")
            )
        return doc
    expanded = _expanded_size(node, limits, doc)
    if expanded is None:
        return doc
    doc.data = _Walker(doc).build(node, ())
    return doc


def salvage_ids(text: str | None, prefix: str = "FALSIFY") -> list[tuple[str, int]]:
    """Ids that look declared (``id: FALSIFY-…``) in text that could not be loaded, with lines.

    Used only for broken files, so a test claiming an id from a broken contract is reported as
    "contract invalid", not as claiming an id that does not exist.
    """
    if not text:
        return []
    pattern = re.compile(rf"\bid\s*:\s*['\"]?({prefix}-[A-Za-z0-9][A-Za-z0-9_.-]*)")
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = pattern.search(line)
        if match:
            found.append((match.group(1).rstrip(".-"), number))
    return found


# --- internals ----------------------------------------------------------------------------------


def _too_big(path: str, size: int, limits: Limits) -> Document:
    doc = Document(path, sha256="")
    doc.findings.append(
        Finding(
            Severity.ERROR,
            "file-too-large",
            f"the file is {size:,} bytes; a contract may be at most {limits.max_bytes:,} bytes",
            Location(path),
            hint="split it into several contracts (depends_on links them), "
            "or raise `max-bytes` under [tool.apr-contracts] in pyproject.toml",
        )
    )
    return doc


def _compose(text: str, doc: Document) -> Node | None:
    loader = _BaseLoader(text)
    try:
        return loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        doc.findings.append(_syntax_finding(err, doc.path, text))
    except yaml.YAMLError as err:  # ReaderError: a control character, with a character index
        position = getattr(err, "position", 0) or 0
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        reason = getattr(err, "reason", None) or "unreadable character"
        character = getattr(err, "character", None)
        code_point = ord(character) if isinstance(character, str) else int(character or 0)
        shown = f"U+{code_point:04X}"
        doc.findings.append(
            Finding(Severity.ERROR, "yaml-syntax", f"YAML cannot read character {shown}: {reason}",
                    Location(doc.path, line, col), hint="remove the character or write it as an escape in a quoted string")
        )
    finally:
        loader.dispose()
    return None


def _syntax_finding(err: yaml.MarkedYAMLError, path: str, text: str) -> Finding:
    mark = err.problem_mark or err.context_mark
    location = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
    problem = (err.problem or "invalid YAML").strip()
    context = (err.context or "").strip()
    message = f"YAML syntax: {problem}" + (f" ({context})" if context else "")
    hint = "fix the YAML at that position; `yamllint` shows more detail"
    at_tab = mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t"
    if at_tab or "'\\t'" in problem:
        message = "YAML syntax: a tab character where YAML allows only spaces"
        hint = "indent with spaces, never tabs (YAML forbids tabs for indentation)"
    elif "expected a single document" in problem or "but found another document" in context + problem:
        message = "the file holds more than one YAML document (`---`)"
        hint = "one contract per file: move the second document into its own file"
    elif "found duplicate anchor" in context + problem:
        hint = "give each anchor (&name) a unique name"
    elif "found undefined alias" in context + problem:
        hint = "define the anchor (&name) before using the alias (*name)"
    return Finding(Severity.ERROR, "yaml-syntax", message, location, hint=hint)


def _expanded_size(root: Node, limits: Limits, doc: Document) -> int | None:
    """Count nodes as if every alias were expanded, in time linear in the *distinct* nodes."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _Recursive(node)
        if depth > limits.max_depth:
            raise _TooDeep(node)
        active.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            for child in node.value:
                total += size(child, depth + 1)
                if total > limits.max_nodes:
                    break
        elif isinstance(node, MappingNode):
            for knode, vnode in node.value:
                total += size(knode, depth + 1) + size(vnode, depth + 1)
                if total > limits.max_nodes:
                    break
        active.discard(key)
        sizes[key] = total
        return total

    try:
        total = size(root, 0)
    except _Recursive as stop:
        mark = stop.node.start_mark
        doc.findings.append(
            Finding(Severity.ERROR, "recursive-alias", "an alias refers to the collection that contains it",
                    Location(doc.path, mark.line + 1, mark.column + 1), hint="remove the self-referencing alias")
        )
        return None
    except _TooDeep as stop:
        mark = stop.node.start_mark
        doc.findings.append(
            Finding(Severity.ERROR, "too-deep", f"nesting deeper than {limits.max_depth} levels",
                    Location(doc.path, mark.line + 1, mark.column + 1), hint="flatten the structure")
        )
        return None
    if total > limits.max_nodes:
        doc.findings.append(
            Finding(
                Severity.ERROR,
                "alias-bomb",
                f"aliases expand the document to more than {limits.max_nodes:,} values "
                "(a 'billion laughs' file); it was not expanded",
                Location(doc.path, 1, 1),
                hint="write values out instead of nesting aliases (*name) of aliases",
            )
        )
        return None
    return total


class _Recursive(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


class _TooDeep(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


class _Walker:
    """Nodes to plain values, recording positions and reporting what a contract may not contain.

    It needs no limits of its own: `_expanded_size` has already bounded the depth and the
    alias-expanded size of the node graph it walks.
    """

    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def _loc(self, node: Node) -> Location:
        return Location(self.doc.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, path: PathKey) -> Any:
        self.doc.positions[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, ScalarNode):
            return self._scalar(node)
        if isinstance(node, SequenceNode):
            if node.tag != _TAG + "seq":
                self._bad_tag(node)
            return [self.build(child, path + (index,)) for index, child in enumerate(node.value)]
        if isinstance(node, MappingNode):
            if node.tag != _TAG + "map":
                self._bad_tag(node)
            return self._mapping(node, path)
        return None  # pragma: no cover - the composer makes only these three kinds

    def _mapping(self, node: MappingNode, path: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, ScalarNode):
                self.doc.findings.append(
                    Finding(Severity.ERROR, "complex-key", "a mapping key must be a plain string",
                            self._loc(knode), hint="use a plain word as the key")
                )
                continue
            if knode.tag == _TAG + "merge":
                self.doc.findings.append(
                    Finding(Severity.ERROR, "merge-key", "merge keys (`<<: *anchor`) are not allowed in contracts",
                            self._loc(knode), hint="write the keys out; a contract should read top to bottom")
                )
                continue
            key = str(knode.value)
            here = path + (key,)
            if key in out:
                first_line, first_col = self.doc.key_positions[here]
                self.doc.findings.append(
                    Finding(
                        Severity.ERROR,
                        "duplicate-key",
                        f"duplicate key {key!r}: it is already set at line {first_line}; "
                        "plain YAML loaders would silently keep only the last one",
                        self._loc(knode),
                        hint=f"remove one of the two {key!r} entries (or merge their content)",
                        related=(Location(self.doc.path, first_line, first_col),),
                    )
                )
                continue
            self.doc.key_positions[here] = (knode.start_mark.line + 1, knode.start_mark.column + 1)
            out[key] = self.build(vnode, here)
        return out

    def _scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag not in _SCALAR_TAGS:
            self._bad_tag(node)
            return node.value
        construct = _SCALAR_TAGS[tag]
        if construct is None:
            return node.value
        try:
            return construct(_SCALAR, node)
        # LookupError: PyYAML's constructors raise KeyError for `!!bool maybe` and IndexError for
        # `!!int ''` / `!!float ''`; a value that does not parse as its tag stays the text written
        except (ValueError, TypeError, LookupError, yaml.YAMLError):
            return node.value

    def _bad_tag(self, node: Node) -> None:
        self.doc.findings.append(
            Finding(
                Severity.ERROR,
                "yaml-tag",
                f"the tag {node.tag.replace(_TAG, '!!')!r} is not allowed; contracts hold only strings, numbers, "
                "booleans, null, lists and mappings",
                self._loc(node),
                hint="remove the tag (`!name` / `!!type`) and write the value plainly",
            )
        )


__all__ = ["Document", "Limits", "load_bytes", "load_file", "salvage_ids"]
