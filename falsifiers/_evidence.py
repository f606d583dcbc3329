"""What a bound test's failure says about replaying it: the minimal example, the seed, the blob.

`attach_evidence` puts it on the failed report of a test that claims a falsifier (one marked with
the ``PROPERTY`` user property at collection); the session object reads it when the run ends, and
an xdist worker attaches it before it ships the report. Hypothesis attaches its falsifying example and ``@reproduce_failure`` blob to the exception as notes
(PEP 678), and keeps the seed it generated on the test function. Nothing here imports Hypothesis:
a health check is recognised by the exception's class name, so the plugin stays cheap.
"""

from __future__ import annotations

import re
import sys
from typing import Any

PROPERTY = "falsifier"  # JUnit XML <property name="falsifier" value="FALSIFY-…"/> on every bound test
WORKER_KEY = "apr_contracts"  # what an xdist worker sends its controller in workeroutput

_REPRODUCE = re.compile(r"@reproduce_failure\([^)]*\)")
_SEED = re.compile(r"(@seed\(\d+\)|--hypothesis-seed=\d+)")
_LIMIT = 2000
_EXAMPLE_PREFIXES = ("Falsifying example", "Failing test case", "Falsifying explicit example")


def failure_evidence(item: Any, call: Any, report: Any) -> dict[str, Any]:
    """Plain data (it crosses from xdist workers) describing one failed report of a bound test."""
    exc = call.excinfo.value if call.excinfo is not None else None
    names = {cls.__name__ for cls in type(exc).__mro__} if exc is not None else set()
    notes = [str(n) for n in getattr(exc, "__notes__", []) or []]
    text = "\n".join(notes) + "\n" + "\n".join(content for title, content in report.sections if "ypothesis" in title)
    example = next((n.strip() for n in notes if n.lstrip().startswith(_EXAMPLE_PREFIXES)), None)
    reproduce = _REPRODUCE.search(text)
    return {
        "health_check": "FailedHealthCheck" in names,
        "reason": _first_line(exc) if exc is not None else "failed",
        "example": example[:_LIMIT] if example else None,
        "reproduce": reproduce.group(0)[:_LIMIT] if reproduce else None,
        "seed": _seed(item, text),
    }


def _first_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    first = message[0] if message else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


def _seed(item: Any, text: str) -> str | None:
    found = _SEED.search(text)
    if found:
        return found.group(1)
    forced = item.config.getoption("hypothesis_seed", None) if hasattr(item, "config") else None
    if forced is not None:
        return f"--hypothesis-seed={forced}"
    function = getattr(item, "obj", None)
    generated = getattr(function, "_hypothesis_internal_use_generated_seed", None)
    if generated is not None:
        return f"--hypothesis-seed={generated}"
    explicit = getattr(function, "_hypothesis_internal_use_seed", None)
    if explicit is not None:
        return f"@seed({explicit})"
    if getattr(function, "hypothesis", None) is not None:
        settings = getattr(function, "_hypothesis_internal_use_settings", None)
        if settings is None and "hypothesis" in sys.modules:
            settings = sys.modules["hypothesis"].settings.default
        if settings is not None and getattr(settings, "derandomize", False):
            return "derandomize=True: rerunning replays it"
    return None


def attach_evidence(item: Any, call: Any, report: Any) -> None:
    """Put replay data (Hypothesis example, seed, blob) on a bound test's failed report."""
    if report.failed and any(k == PROPERTY for k, _ in item.user_properties):
        from falsifiers.phases import EVIDENCE_ATTR

        setattr(report, EVIDENCE_ATTR, failure_evidence(item, call, report))
