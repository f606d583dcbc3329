"""Shared fixtures of the CLI convention tests (contract apr-cli-v1)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _hub_logger_on_a_live_stream():
    """huggingface_hub's logger keeps the stderr of its import (a capsys stream closed after the
    test); later tests would see a 'Logging error' traceback. Point it back at the real stderr."""
    yield
    import logging
    import sys

    for handler in logging.getLogger("huggingface_hub").handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            handler.stream = sys.__stderr__  # not setStream: it flushes the closed stream first
