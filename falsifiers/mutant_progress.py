"""Progress of the mutant phase (issue 17): a run of 160 mutants took minutes with no sign of life.

On a terminal one status line is rewritten in place (mutants done/total, survivors so far, elapsed);
elsewhere (CI logs) one line per contract is written when its last mutant finishes, so a log shows
progress without a line per mutant.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any


class MutantProgress:
    """``progress`` callback for `falsifiers.mutant_runs.run_mutants`.

    Args:
        contracts: the contract of each planned run (to know when a contract is complete).
        write: writes one line (a terminal reporter's ``write_line``).
        rewrite: on a terminal, replaces the current line (``terminalreporter.rewrite``); ``None``
            off a terminal.
        clock: seconds, for the elapsed time (``time.perf_counter``).
    """

    def __init__(self, contracts: Sequence[str], write: Callable[[str], Any],
                 rewrite: Callable[[str], Any] | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self._left = Counter(contracts)
        self._killed: Counter[str] = Counter()
        self._done: Counter[str] = Counter()
        self._survived = 0
        self._write, self._rewrite, self._clock = write, rewrite, clock
        self._start = clock()

    def __call__(self, result: Any, done: int, total: int) -> None:
        contract = result.contract
        killed = result.status.value == "killed"
        self._done[contract] += 1
        self._killed[contract] += killed
        self._survived += result.status.value == "survived"
        elapsed = self._clock() - self._start
        if self._rewrite is not None:
            self._rewrite(f"mutants: {done}/{total} done, {self._survived} survived, {_clock_text(elapsed)}")
            if done == total:
                self._write("")
        elif self._done[contract] == self._left[contract]:
            self._write(f"mutants: {contract}: {self._killed[contract]}/{self._done[contract]} killed "
                        f"({done}/{total} done, {_clock_text(elapsed)})")


def _clock_text(seconds: float) -> str:
    """``"1m05s"`` / ``"42s"``.

    >>> _clock_text(65.2), _clock_text(42)
    ('1m05s', '42s')
    """
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


__all__ = ["MutantProgress"]
