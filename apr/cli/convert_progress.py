"""A transient rich progress bar on stderr for `apr import` / `apr export` (quiet with --json)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from apr.cli.output import err


@contextlib.contextmanager
def progress_bar(label: str, *, show: bool, unit_bytes: bool = True) -> Iterator[Callable[[int, int], None] | None]:
    """Yield a ``progress(done, total)`` callback drawing a bar on stderr, or None when not shown."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TransferSpeedColumn

    columns = [TextColumn(label), BarColumn()]
    columns += [DownloadColumn(), TransferSpeedColumn()] if unit_bytes else [MofNCompleteColumn()]
    with Progress(*columns, console=err(), transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update
