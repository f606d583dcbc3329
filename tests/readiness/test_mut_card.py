"""`apr.readiness.card`: the model card `apr card` writes, read back key by key and line by line, and
the card reader's errors and metric filter (issue 23: mutation score of apr/readiness/card.py).

The expected card is derived from the checkpoint's metadata as built here (tests/readiness/builders),
and the quality score from `apr.identity.quality.score_quality` on the same file (the oracle the
card quotes), never from the card under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from apr.errors import AprFileNotFoundError, ValidationError
from apr.readiness.card import LIBRARY_NAME, CardFacts, build_card, card_problems, read_card
from tests.readiness.builders import CONFIG, build_checkpoint


def _quality(path: Path) -> tuple[int, bool]:
    from apr.format import open_file
    from apr.identity.quality import score_quality

    with open_file(path) as reader:
        score = score_quality(checksum_valid=reader.is_checksum_valid, metadata=dict(reader.metadata),
                              flags=reader.flags)
    return score.score, score.ship_ready


def _split(text: str) -> tuple[dict[str, Any], list[str]]:
    assert text.startswith("---\n")
    front, _, body = text[4:].partition("\n---\n")
    return yaml.safe_load(front), body.split("\n")


def test_the_card_of_a_complete_checkpoint_with_a_report(tmp_path: Path) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    score, ship_ready = _quality(path)
    report = {"status": "completed", "final_val_loss": 2.5, "epochs_completed": 3, "not_shown": 1}
    front, body = _split(build_card(path, report))
    assert LIBRARY_NAME == "apr"
    assert front == {
        "datasets": ["python-stdlib"],
        "library_name": "apr",
        "license": "apache-2.0",  # the Hub's spelling of the checkpoint's Apache-2.0
        "tags": ["qwen2", "apr"],
        "model-index": [{"name": "tiny-qwen2", "results": [{
            "task": {"type": "text-generation"},
            "dataset": {"name": "python-stdlib", "type": "python-stdlib"},
            "metrics": [{"type": "val_loss", "value": 2.5}, {"type": "apr_quality_score", "value": float(score)}],
        }]}],
    }
    rows = [f"| {key} | {CONFIG[key] if key != 'vocab_size' else 120} |" for key in (
        "architecture", "hf_architecture", "hidden_size", "num_layers", "num_heads", "vocab_size", "license",
        "data_source", "data_license")]
    training = json.dumps({"status": "completed", "final_val_loss": 2.5, "epochs_completed": 3}, indent=2)
    assert body == [
        "", "# tiny-qwen2", "", "An APR v2 checkpoint (Qwen2ForCausalLM).", "", "| field | value |", "|---|---|",
        *rows, "", f"Quality score: {score} / 100 (ship-ready: {'yes' if ship_ready else 'no'}).", "",
        "## Training", "", "```json", *training.split("\n"), "```", "",
    ]


def test_the_training_results_section_follows_the_identity_it_does_not_replace(tmp_path: Path) -> None:
    """With a run's results the card is the same card plus their section, then the report's."""
    from apr.readiness.training_results import TrainingResults, section_lines

    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    report = {"status": "completed", "final_val_loss": 2.5}
    results = TrainingResults(source="run/metrics.jsonl", rows=(), curve_missing_reason="nothing to plot")
    _, plain = _split(build_card(path, report))
    _, body = _split(build_card(path, report, training=results))
    training_at = plain.index("## Training")
    assert body == plain[:training_at] + section_lines(results) + plain[training_at:]


def test_the_card_of_a_ship_ready_checkpoint_says_yes(tmp_path: Path, tok_meta) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=tok_meta)
    score, ship_ready = _quality(path)
    assert ship_ready  # the builder's checkpoint is publishable
    assert f"Quality score: {score} / 100 (ship-ready: yes)." in build_card(path).split("\n")


def test_the_card_of_a_sparse_checkpoint_without_a_report(tmp_path: Path) -> None:
    path = build_checkpoint(tmp_path / "bare-model.apr", tokenizer=None, overrides={
        "name": None, "license": "My Terms", "data_source": None, "hf_architecture": None, "hidden_size": None})
    score, _ = _quality(path)
    front, body = _split(build_card(path))
    assert front == {
        "library_name": "apr",
        "license": "my terms",
        "tags": ["qwen2", "apr"],
        "model-index": [{"name": "bare-model", "results": [{  # the file name without .apr stands for the name
            "task": {"type": "text-generation"},
            "dataset": {"name": "unknown", "type": "unknown"},  # no datasets: entry for an unknown source
            "metrics": [{"type": "apr_quality_score", "value": float(score)}],
        }]}],
    }
    assert body[:4] == ["", "# bare-model", "", "An APR v2 checkpoint (qwen2)."]  # architecture when no HF class
    assert "| hf_architecture | (missing) |" in body and "| hidden_size | (missing) |" in body
    assert "| data_source | (missing) |" in body and "| license | My Terms |" in body
    note = ("> Note: license 'My Terms' is free text, not an SPDX expression: the Hub and SPDX tools cannot read it "
            "(stamp --license with an SPDX expression or a LicenseRef- id if one applies).")
    assert body[body.index(note) + 1] == ""
    assert "## Training" not in body
    assert body[-2:] == [note, ""]


def test_a_checkpoint_without_architecture_or_license(tmp_path: Path) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None, overrides={
        "architecture": None, "hf_architecture": None, "license": None})
    front, body = _split(build_card(path, {"final_val_loss": "n/a"}))
    assert "license" not in front and front["tags"] == ["apr"]
    # a non-numeric val_loss is not a metric
    assert front["model-index"][0]["results"][0]["metrics"][0]["type"] == "apr_quality_score"
    assert len(front["model-index"][0]["results"][0]["metrics"]) == 1
    assert body[3] == "An APR v2 checkpoint (unknown architecture)."
    assert "| architecture | (missing) |" in body and "| license | (missing) |" in body
    assert body[body.index("```json") + 1:body.index("```")] == ['{', '  "final_val_loss": "n/a"', '}']


def test_an_integer_val_loss_is_a_metric(tmp_path: Path) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    front, _ = _split(build_card(path, {"final_val_loss": 3}))
    assert front["model-index"][0]["results"][0]["metrics"][0] == {"type": "val_loss", "value": 3.0}


def test_a_card_apr_writes_reads_back(tmp_path: Path) -> None:
    path = build_checkpoint(tmp_path / "m.apr", tokenizer=None)
    score, _ = _quality(path)
    card = tmp_path / "CARD.md"
    card.write_text(build_card(path, {"final_val_loss": 2.5}), encoding="utf-8")
    assert read_card(card) == CardFacts("apache-2.0", "apr", (("val_loss", 2.5), ("apr_quality_score", float(score))))


CARD_WITH_TEXT_METRIC = """---
license: mit
library_name: apr
model-index:
- name: m
  results:
  - task:
      type: text-generation
    dataset:
      name: d
      type: d
    metrics:
    - type: accuracy
      value: high
    - type: loss
      value: 2
---
text
"""


def test_read_card_keeps_only_numeric_metrics(tmp_path: Path) -> None:
    card = tmp_path / "CARD.md"
    card.write_text(CARD_WITH_TEXT_METRIC, encoding="utf-8")
    facts = read_card(str(card))
    assert facts == CardFacts("mit", "apr", (("loss", 2.0),))
    assert type(facts.metrics[0][1]) is float


def test_read_card_without_metrics_or_names(tmp_path: Path) -> None:
    card = tmp_path / "CARD.md"
    card.write_text("---\ntags: [x]\n---\ntext\n", encoding="utf-8")
    assert read_card(card) == CardFacts(None, None, ())


def test_read_card_of_a_missing_file_is_not_found_with_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "NOPE.md"
    with pytest.raises(AprFileNotFoundError) as why:
        read_card(missing)
    assert why.value.exit_code == 3
    assert why.value.message == "model card not found" and why.value.path == str(missing)
    assert why.value.hint == "write one: apr card CHECKPOINT -o CARD.md"
    with pytest.raises(AprFileNotFoundError):
        read_card(tmp_path)  # a folder is not a card


def test_read_card_of_a_garbled_card_is_a_validation_error(tmp_path: Path) -> None:
    card = tmp_path / "BAD.md"
    card.write_text("---\nlicense: [unclosed\n---\ntext\n", encoding="utf-8")
    with pytest.raises(ValidationError) as why:
        read_card(card)
    assert why.value.exit_code == 5 and why.value.path == str(card)
    assert why.value.message.startswith("model card cannot be parsed: ")
    assert why.value.hint == "regenerate it: apr card CHECKPOINT -o CARD.md"
    assert why.value.__cause__ is not None


def test_read_card_rejects_invalid_metadata_instead_of_ignoring_it(tmp_path: Path) -> None:
    card = tmp_path / "BAD.md"  # eval results without a metric value: huggingface_hub refuses it when strict
    card.write_text("---\nmodel-index:\n- name: m\n  results:\n  - task:\n      type: t\n    dataset:\n"
                    "      name: d\n      type: d\n    metrics:\n    - type: loss\n---\ntext\n", encoding="utf-8")
    with pytest.raises(ValidationError):
        read_card(card)


@pytest.mark.parametrize(("facts", "license", "problems"), [
    (CardFacts("MIT", "apr", (("l", 1.0),)), "mit", []),
    (CardFacts("", "apr", (("l", 1.0),)), "MIT", ["the card has no `license:`"]),
    (CardFacts("mit", "apr", (("l", 1.0),)), "", ["the checkpoint has no license to match the card's"]),
    (CardFacts("mit", "", (("l", 1.0),)), "MIT", ["the card has no `library_name:`"]),
    (CardFacts("mit", "apr", ()), "MIT", ["the card's `model-index` has no metrics"]),
    (CardFacts("mit-0", "apr", (("l", 1.0),)), "MIT", ["the card's license 'mit-0' differs from the checkpoint's 'MIT'"]),
    (CardFacts(None, None, ()), None, ["the card has no `license:`", "the card has no `library_name:`",
                                       "the card's `model-index` has no metrics"]),
])
def test_card_problems(facts, license, problems) -> None:
    assert card_problems(facts, license) == problems
