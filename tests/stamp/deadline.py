"""A deadline for a call under test: an endless loop (say, a copy whose offset stops advancing) fails
the test instead of hanging the suite, so mutation testing counts it as found, not as a timeout."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest


def within(seconds: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a daemon thread; its result, or what it raised; fail if still running after ``seconds``."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = err

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} still running after {seconds} s (an endless loop?)")
    if "error" in box:
        raise box["error"]
    return box.get("value")
