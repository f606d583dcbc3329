"""The artifact-level falsifiers can fail too: ``--artifact --mutants`` on a publishable file, in CI.

The plain ``apr contracts verify --mutants`` run has no ``--artifact``, so the mutants of
``FALSIFY-READY-ART-*`` (a NaN put in a tensor, the license cleared, the architecture swapped...)
are reported ``not-run`` there. This test gives them a file: it builds a checkpoint and card that
`apr readiness` calls GO, runs the artifact falsifiers on it with ``--mutants`` in a child pytest,
and requires a GO verdict with every declared artifact-scope mutant killed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from apr.readiness import build_card
from falsifiers.lint import lint_paths
from tests.readiness.builders import build_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.falsifies("FALSIFY-HARNESS-015")
def test_every_artifact_falsifier_kills_its_mutants_on_a_publishable_file(tmp_path: Path, tok_meta) -> None:
    model = build_checkpoint(tmp_path / "model.apr", tokenizer=tok_meta)
    card = tmp_path / "CARD.md"
    card.write_text(build_card(model), encoding="utf-8")
    receipt = tmp_path / "verdict.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
    # A stand-in token (the gate checks that one is set, never its value or the network), and not the
    # variable the READY-ART-005 mutant reads instead, so that mutant has something to miss.
    env["HF_TOKEN"] = "hf_stand_in_for_ci"
    env.pop("HUGGING_FACE_HUB_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_publish_readiness_artifact.py", f"--artifact={model}",
         f"--model-card={card}", "--mutants", "--mutants-jobs=1", f"--contracts-json={receipt}",
         "-p", "no:cacheprovider", "-q", "--no-header"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert receipt.is_file(), result.stdout[-3000:] + result.stderr[-2000:]
    document = json.loads(receipt.read_text(encoding="utf-8"))
    assert document["verdict"] == "GO", result.stdout[-3000:]
    corpus = lint_paths([ROOT / "contracts"], relative_to=ROOT)
    declared = {(f.id, m.name) for f in corpus.falsifiers.values() if f.id.startswith("FALSIFY-READY-ART-")
                for m in f.mutants}
    status = {(r["falsifier"], r["name"]): r["status"] for r in document["mutants"]["results"]}
    assert declared and set(status) == declared
    assert {k: s for k, s in status.items() if s != "killed"} == {}
