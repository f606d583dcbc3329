"""The harness's own tests run pytest inside pytest: pytester, and a project fixture around it."""

from __future__ import annotations

import pytest

from tests.harness.projects import Project

# pytester is enabled by `-p pytester` in pyproject's addopts: `pytest_plugins` is refused in a
# conftest below the root one.


@pytest.fixture
def project(pytester: pytest.Pytester) -> Project:
    """An empty project (pyproject.toml with [tool.apr-contracts], contracts/, tests/) in a temp dir."""
    return Project(pytester)
