"""The AST scan behind FALSIFY-RELIABILITY-005: banned imports and unsafe loads in apr/ and falsifiers/.

A module of its own (not inside the test file) so the scan is importable and its parts can be
replaced by the falsifier's mutants: the tests call ``security_scan.unsafe_calls`` and
``security_scan.package_sources`` through the module, at call time.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("apr", "falsifiers")
_BANNED_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "joblib"}


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value
    return None


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def unsafe_calls(source: str, filename: str) -> list[str]:
    """Every pickle-family import and unsafe deserialisation/evaluation call in ``source``."""
    found = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if a.name.split(".")[0] in _BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _BANNED_MODULES:
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.rsplit(".", 1)[-1]
            if name in ("eval", "exec", "builtins.eval", "builtins.exec", "__import__",
                        "marshal.loads", "marshal.load", "yaml.unsafe_load", "yaml.full_load", "torch.jit.load"):
                found.append(f"{where}: {name}(...)")
            elif name == "yaml.load" or (last == "load" and name.startswith("yaml")):
                loader = _kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
                if loader is None or "Safe" not in _dotted(loader):
                    found.append(f"{where}: yaml.load without a SafeLoader")
            elif name == "torch.load" or (last == "load" and name.endswith("torch.load")):
                flag = _kw(node, "weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    found.append(f"{where}: torch.load without weights_only=True")
            elif last == "load" and name.split(".")[0] in ("np", "numpy"):
                flag = _kw(node, "allow_pickle")
                if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                    found.append(f"{where}: numpy.load with allow_pickle")
            elif name in ("subprocess.run", "subprocess.Popen", "os.system", "subprocess.call",
                          "subprocess.check_output", "subprocess.check_call") and _kw(node, "shell") is not None:
                found.append(f"{where}: {name}(shell=...)")
    return found


def package_sources(roots: tuple[str, ...] = SCANNED) -> Iterator[tuple[str, str]]:
    """(path relative to the repository, source text) of every .py file under ``roots``."""
    for root in roots:
        for path in sorted((ROOT / root).rglob("*.py")):
            yield os.fspath(path.relative_to(ROOT)), path.read_text(encoding="utf-8")


def scan_package_files(roots: tuple[str, ...] = SCANNED) -> list[str]:
    """Every finding of `unsafe_calls` over the packages; empty when they are clean."""
    return [finding for name, source in package_sources(roots) for finding in unsafe_calls(source, name)]
