"""Publish readiness: the seven gates, model cards."""

from apr.readiness.card import build_card, card_problems, read_card
from apr.readiness.gates import ReadinessOptions, ReadinessReport, run_readiness

__all__ = ["ReadinessOptions", "ReadinessReport", "build_card", "card_problems", "read_card", "run_readiness"]
