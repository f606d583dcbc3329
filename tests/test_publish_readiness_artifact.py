"""Artifact-level falsifiers of contracts/publish-readiness-v1.yaml: each readiness gate on one given file.

These tests are about the file given with ``--artifact`` (and ``--model-card``), through the
``apr_artifact`` fixture: without one they skip ("no --artifact given") and the harness lists them
as not required. ``apr contracts verify --artifact model.apr --model-card CARD.md`` runs only them;
the gates are the very functions `apr readiness` runs, so both give the same verdict.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from apr.readiness.gates import GATES, ReadinessOptions


def _gate(name: str, artifact: Any, options: ReadinessOptions | None = None) -> None:
    """Run one readiness gate on the artifact; fail with the gate's message and its fix."""
    from apr.errors import AprError
    from apr.format import open_file

    options = options or ReadinessOptions(model_card=artifact.model_card)
    gate = dict(GATES)[name]
    try:
        with open_file(artifact.path, verify_checksum=False) as reader:
            meta = dict(reader.metadata)
        result = gate(artifact.path, options, meta)
    except AprError as err:  # run_readiness turns these into a failed gate: so do we
        pytest.fail(f"gate {name} on {artifact.path}: {err.message}" + (f"\n  fix: {err.hint}" if err.hint else ""),
                    pytrace=False)
    if result.skipped:
        pytest.skip(f"gate {name}: {result.message}")
    if not result.passed:
        pytest.fail(f"gate {name} on {artifact.path} (sha256 {artifact.sha256[:16]}…): {result.message}"
                    + (f"\n  fix: {result.fix}" if result.fix else ""), pytrace=False)


@pytest.mark.falsifies("FALSIFY-READY-ART-001")
def test_falsify_ready_art_001_validate(apr_artifact) -> None:
    _gate("validate", apr_artifact)


@pytest.mark.falsifies("FALSIFY-READY-ART-002")
def test_falsify_ready_art_002_quality(apr_artifact) -> None:
    _gate("quality", apr_artifact)


@pytest.mark.falsifies("FALSIFY-READY-ART-003")
def test_falsify_ready_art_003_qa(apr_artifact) -> None:
    _gate("qa", apr_artifact)


@pytest.mark.falsifies("FALSIFY-READY-ART-004")
def test_falsify_ready_art_004_model_card(apr_artifact) -> None:
    _gate("model_card", apr_artifact)


@pytest.mark.falsifies("FALSIFY-READY-ART-005")
def test_falsify_ready_art_005_hf_token(apr_artifact) -> None:
    if not os.environ.get("HF_TOKEN"):
        pytest.skip("requires hf-token: HF_TOKEN is not set")
    _gate("hf_token", apr_artifact, ReadinessOptions(model_card=apr_artifact.model_card, require_token=True))


@pytest.mark.falsifies("FALSIFY-READY-ART-006")
def test_falsify_ready_art_006_smoke_run(apr_artifact) -> None:
    _gate("smoke_run", apr_artifact)


@pytest.mark.falsifies("FALSIFY-READY-ART-007")
def test_falsify_ready_art_007_export(apr_artifact) -> None:
    _gate("export", apr_artifact)
