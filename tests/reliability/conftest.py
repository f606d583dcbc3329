"""Shared fixtures for the reliability suite (issue 8): the kill-harness assets and zygote."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def kill_assets(tmp_path_factory):
    from tests.reliability.kill_harness import build_assets, commands

    base = tmp_path_factory.mktemp("kill")
    return base, commands(build_assets(base / "assets", hidden=64, layers=2))


@pytest.fixture
def kill_setup(kill_assets):
    """Assets, commands and a zygote started inside the test, so a mutant patched in around the
    test (``apr contracts verify --mutants``) reaches the forked commands through APR_MUTANT."""
    from tests.reliability.kill_harness import Zygote

    zygote = Zygote()
    try:
        yield kill_assets[0], kill_assets[1], zygote
    finally:
        zygote.close()
