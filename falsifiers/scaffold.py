"""``apr contracts new NAME``: a contract with one invariant and one falsifier, and its bound test.

The test fails until someone writes it, so a fresh contract keeps the verdict at NO-GO instead of
adding a promise nobody checks. Everything is checked before anything is written (the name, both
target files, the ids against the corpus); then each file goes through a temporary file, fsync and
rename (not `apr.format.atomic`: `falsifiers` does not import `apr`, see `session._write_json`).
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from falsifiers.errors import ContractIOError, ContractNameError, ScaffoldExistsError

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-.][a-z0-9]+)*$")
_VERSION_SUFFIX = re.compile(r"-v\d+$")


@dataclass(frozen=True, slots=True)
class Scaffold:
    """The two files `apr contracts new` would write, fully rendered."""

    name: str
    contract_path: Path
    test_path: Path
    invariant_id: str
    falsifier_id: str
    contract_text: str
    test_text: str


def id_prefix(name: str) -> str:
    """``apr-stamp-v1`` -> ``APR-STAMP`` (the version suffix is not part of an id)."""
    return re.sub(r"[^A-Z0-9]+", "-", _VERSION_SUFFIX.sub("", name).upper()).strip("-")


def plan_scaffold(
    name: str,
    *,
    contracts_dir: Path,
    tests_dir: Path,
    taken_ids: set[str] | frozenset[str] = frozenset(),
    today: str,
    force: bool = False,
) -> Scaffold:
    """Render the files for contract ``name``; raise before anything is written if it cannot be done.

    Raises:
        ContractNameError: ``name`` is not a lower-case file stem.
        ScaffoldExistsError: a target file exists (and ``force`` is false) or an id is taken.
    """
    if not _NAME.fullmatch(name):  # not `match`: its `$` also matches before a final newline
        raise ContractNameError(
            f"{name!r} is not a contract name",
            hint="use lower case words joined by '-', ending in a version, e.g. `apr contracts new apr-stamp-v1`",
        )
    prefix = id_prefix(name)
    invariant_id, falsifier_id = f"INV-{prefix}-001", f"FALSIFY-{prefix}-001"
    contract_path = contracts_dir / f"{name}.yaml"
    test_path = tests_dir / f"test_{re.sub(r'[^a-z0-9]+', '_', name)}.py"
    for path in (contract_path, test_path):
        if path.exists() and not force:
            raise ScaffoldExistsError(f"{path} already exists; nothing was written", path=path,
                                      hint="pick another name, or pass --force to overwrite both files")
    for ident in (invariant_id, falsifier_id):
        if ident in taken_ids:
            raise ScaffoldExistsError(f"the id {ident} is already declared by another contract; nothing was written",
                                      hint="pick a name whose prefix is not in use")
    schema = contracts_dir / "schema" / "contract.schema.json"
    if not schema.is_file():
        schema = Path(__file__).parent / "schema" / "contract.schema.json"
    modeline = Path(os.path.relpath(schema.resolve(), contracts_dir.resolve())).as_posix()
    contract_text = _CONTRACT.format(modeline=modeline, name=name, today=today, inv=invariant_id, fal=falsifier_id)
    function = "test_" + falsifier_id.lower().replace("-", "_")
    test_text = _TEST.format(name=name, fal=falsifier_id, inv=invariant_id, function=function,
                             contract=contract_path.as_posix())
    return Scaffold(name, contract_path, test_path, invariant_id, falsifier_id, contract_text, test_text)


def write_scaffold(scaffold: Scaffold) -> None:
    """Write both files or neither: each to a temporary file (fsync), then both renamed into place.

    A disk that fills up or a read-only folder fails while staging, before any rename; if the
    second rename fails, the first file is removed again when it is new. No temporary is left.

    Raises:
        ContractIOError: the OS refused (exit 7); the message names the file, the errno and a fix.
    """
    staged: list[tuple[str, Path]] = []
    created: list[Path] = []
    path = scaffold.contract_path
    try:
        for path, text in ((scaffold.contract_path, scaffold.contract_text), (scaffold.test_path, scaffold.test_text)):
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            staged.append((temporary, path))
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
        for temporary, path in staged:
            is_new = not path.exists()
            os.replace(temporary, path)
            if is_new:
                created.append(path)
    except BaseException as err:  # not only OSError: an interrupt or an unencodable text must not leak either
        for leftover in [temporary for temporary, _ in staged if os.path.exists(temporary)] + [
                os.fspath(p) for p in created]:
            try:
                os.unlink(leftover)
            except OSError:
                pass
        if not isinstance(err, OSError):
            raise
        code = errno.errorcode.get(err.errno) if err.errno is not None else None
        reason = f"{err.strerror or err}" + (f" ({code})" if code else "")
        raise ContractIOError(
            f"cannot write: {reason}; nothing was written", path=path,
            hint=f"check that {path.parent} is writable and its disk has free space (df -h {path.parent}), then rerun",
        ) from err


_CONTRACT = """\
# yaml-language-server: $schema={modeline}
metadata:
  version: 0.1.0
  status: PROPOSED
  description: "TODO: what {name} promises, in one line"
  references: []
  depends_on: []
  changelog:
    - {{version: 0.1.0, date: "{today}", changes: "drafted with `apr contracts new`"}}
invariants:
  - id: {inv}
    statement: "TODO: the promise, worded so that a test could show it false"
falsification_tests:
  - id: {fal}
    invariant: {inv}
    rule: "TODO: the rule the test applies"
    prediction: "TODO: what the test observes while the promise holds"
    if_fails: "TODO: what a failure would mean, and where to look"
    level: algorithm
    requires: []
"""

_TEST = '''\
"""Evidence for {contract} (drafted by `apr contracts new {name}`)."""

import pytest


@pytest.mark.falsifies("{fal}")
def {function}() -> None:
    # Replace the body with a check that fails whenever {inv} is broken.
    pytest.fail("{fal} has no test yet: write it in this file (the verdict stays NO-GO until then)")
'''

__all__ = ["Scaffold", "id_prefix", "plan_scaffold", "write_scaffold"]
