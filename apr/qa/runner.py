"""Run the QA gates on one checkpoint and build the report (the library side of `apr qa`)."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable

from apr.errors import AprFileNotFoundError, UsageError
from apr.format.digest import file_sha256
from apr.qa.gate import GateResult, QaReport
from apr.qa.gates import GATES, QaOptions, _Session, _timed
from apr.qa.throughput import UNIT


def check_thresholds(options: QaOptions) -> None:
    """Refuse a threshold no measurement can be compared with (NaN, infinite, negative).

    Raises:
        UsageError: naming the flag and the value.
    """
    tps = options.assert_tps
    if isinstance(tps, bool) or not isinstance(tps, (int, float)) or not math.isfinite(tps) or tps < 0:
        raise UsageError(f"--assert-tps {tps!r}: the throughput threshold must be a finite number >= 0 "
                         f"({UNIT}, load-independent)", field="--assert-tps", hint="e.g. --assert-tps 10")
    ratio = options.regression_threshold
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio < 1:
        raise UsageError(f"regression threshold {ratio!r}: must be a fraction in [0, 1)",
                         field="regression_threshold", hint="e.g. 0.25 (a drop of more than 25% fails)")


def run_qa(
    path: str | os.PathLike[str],
    options: QaOptions | None = None,
    *,
    min_executed: int = 0,
    on_gate: Callable[[GateResult], None] | None = None,
) -> QaReport:
    """Run every registered gate (minus skipped ones) on ``path``.

    Raises:
        AprFileNotFoundError: no such file. Anything wrong *inside* the file is a failed gate.
        UsageError: a --skip names no gate, or a threshold is not a finite number in range.
    """
    from apr.format import open_file

    options = options or QaOptions()
    target = os.fspath(path)
    if not os.path.isfile(target):
        raise AprFileNotFoundError("file not found" if not os.path.exists(target) else "not a file", path=target)
    names = [name for name, _ in GATES]
    unknown = sorted(options.skip - set(names))
    if unknown:
        raise UsageError(f"unknown gate(s) to skip: {', '.join(unknown)}", hint=f"gates: {', '.join(names)}")
    check_thresholds(options)
    session = _Session(path=target, options=options)
    report = QaReport(model=target, sha256=file_sha256(target), min_executed=min_executed, registered=tuple(names))
    report.system_info = {"python": platform.python_version(), "machine": platform.machine(), "cpu": platform.processor()}
    try:
        with open_file(target, verify_checksum=False) as reader:
            session.metadata = dict(reader.metadata)
            session.tensor_names = reader.keys()
    except Exception as err:  # an unreadable file fails every gate that needs it, with the reason
        from apr.errors import AprError

        if not isinstance(err, AprError):
            raise
        result = GateResult("tensor_contract", False, False, f"file cannot be opened: {err.message}", fix=err.hint)
        report.gates.append(result)
        return report
    for name, gate in GATES:
        if name in options.skip:
            result = GateResult.skip(name, f"Skipped by --skip-{name.replace('_', '-')}")
        else:
            result = _timed(name, gate, session)
        report.gates.append(result)
        if on_gate is not None:
            on_gate(result)
    return report
