"""Model cards: write one from a checkpoint (and its training report), and read one back.

Parsing and rendering go through `huggingface_hub`'s ModelCard/ModelCardData, the same code the
Hub uses, so a card that passes here is a card the Hub understands. The Hub spells licenses in
lower case (``apache-2.0``); comparisons with the checkpoint's SPDX id ignore case.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from apr.errors import AprFileNotFoundError, ValidationError

LIBRARY_NAME = "apr"


@dataclass(frozen=True, slots=True)
class CardFacts:
    """What the readiness gate needs from a card."""

    license: str | None
    library_name: str | None
    metrics: tuple[tuple[str, float], ...]


def read_card(path: str | os.PathLike[str]) -> CardFacts:
    """Parse a model card's YAML front matter.

    Raises:
        AprFileNotFoundError: no such file.
        ValidationError: no front matter, or front matter that is not a mapping.
    """
    from huggingface_hub import ModelCard

    target = os.fspath(path)
    if not os.path.isfile(target):
        raise AprFileNotFoundError("model card not found", path=target, hint="write one: apr card CHECKPOINT -o CARD.md")
    try:
        card = ModelCard.load(target, ignore_metadata_errors=False)
    except Exception as err:  # huggingface_hub raises ValueError and friends for bad cards
        raise ValidationError(
            f"model card cannot be parsed: {err}", path=target, hint="regenerate it: apr card CHECKPOINT -o CARD.md"
        ) from err
    data = card.data
    metrics = tuple(
        (r.metric_type, float(r.metric_value))
        for r in (data.eval_results or [])
        if isinstance(r.metric_value, (int, float))
    )
    return CardFacts(license=data.license, library_name=data.library_name, metrics=metrics)


def build_card(checkpoint: str | os.PathLike[str], report: dict[str, Any] | None = None, *,
               training: Any = None) -> str:
    """The text of a model card for ``checkpoint``, with YAML front matter from its metadata.

    Metrics come from the training report (``final_val_loss``) when given, else the file's
    quality score, so ``model-index`` is never empty. ``training`` (a
    `apr.readiness.training_results.TrainingResults`) adds the "Training results" table and curve.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    from apr.format import open_file
    from apr.identity.quality import score_quality

    with open_file(checkpoint) as reader:
        meta = dict(reader.metadata)
        quality = score_quality(checksum_valid=reader.is_checksum_valid, metadata=meta, flags=reader.flags)
    name = meta.get("name") or os.path.splitext(os.path.basename(os.fspath(checkpoint)))[0]
    license_id = meta.get("license")
    dataset = meta.get("data_source") or "unknown"
    results = []
    if report and isinstance(report.get("final_val_loss"), (int, float)):
        results.append(
            EvalResult(task_type="text-generation", dataset_type=dataset, dataset_name=dataset,
                       metric_type="val_loss", metric_value=float(report["final_val_loss"]))
        )
    results.append(
        EvalResult(task_type="text-generation", dataset_type=dataset, dataset_name=dataset,
                   metric_type="apr_quality_score", metric_value=float(quality.score))
    )
    data = ModelCardData(
        license=license_id.lower() if isinstance(license_id, str) else None,
        library_name=LIBRARY_NAME,
        model_name=name,
        tags=[t for t in (meta.get("architecture"), "apr") if t],
        datasets=[dataset] if dataset != "unknown" else None,
        eval_results=results,
    )
    lines = [
        f"# {name}",
        "",
        f"An APR v2 checkpoint ({meta.get('hf_architecture') or meta.get('architecture') or 'unknown architecture'}).",
        "",
        "| field | value |",
        "|---|---|",
    ]
    for key in ("architecture", "hf_architecture", "hidden_size", "num_layers", "num_heads", "vocab_size",
                "license", "data_source", "data_license"):
        lines.append(f"| {key} | {meta.get(key) if meta.get(key) is not None else '(missing)'} |")
    lines += ["", f"Quality score: {quality.score} / 100 (ship-ready: {'yes' if quality.ship_ready else 'no'}).", ""]
    from apr.identity.explain import license_notes

    lines += [f"> Note: {note}." for note in license_notes(meta)] + ([""] if license_notes(meta) else [])
    if training is not None:
        from apr.readiness.training_results import section_lines

        lines += section_lines(training)
    if report:
        lines += ["## Training", "", "```json", json.dumps({k: report.get(k) for k in ("status", "final_val_loss", "epochs_completed") if k in report}, indent=2), "```", ""]
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))
    return str(card.content)


def card_problems(facts: CardFacts, checkpoint_license: str | None) -> list[str]:
    """What keeps a card from passing the readiness gate (empty: it passes)."""
    problems = []
    if not facts.license:
        problems.append("the card has no `license:`")
    elif not checkpoint_license:
        problems.append("the checkpoint has no license to match the card's")
    elif facts.license.casefold() != checkpoint_license.casefold():
        problems.append(f"the card's license {facts.license!r} differs from the checkpoint's {checkpoint_license!r}")
    if not facts.library_name:
        problems.append("the card has no `library_name:`")
    if not facts.metrics:
        problems.append("the card's `model-index` has no metrics")
    return problems
