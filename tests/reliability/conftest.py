"""Shared fixtures for the reliability suite (issue 8): the kill-harness assets and zygote."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def kill_setup(tmp_path_factory):
    from tests.reliability.kill_harness import Zygote, build_assets, commands

    base = tmp_path_factory.mktemp("kill")
    assets = build_assets(base / "assets", hidden=64, layers=2)
    zygote = Zygote()
    try:
        yield base, commands(assets), zygote
    finally:
        zygote.close()
