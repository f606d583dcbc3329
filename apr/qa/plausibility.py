"""metadata_plausibility: the rope_theta / max_position_embeddings / rms_norm_eps rules of §4.2.

Family-aware, as aprender: a qwen2 file with rope_theta 10000 is the "missing config.json" bug
(Bug 210) and produces garbage; llama-family rope_theta must lie in [1e3, 1e7]; others in
[1e2, 1e8]. Pure: metadata in, violations out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_QWEN = {"qwen2", "qwen2.5", "qwen", "qwen3", "qwen3_5", "qwen3.5"}
_LLAMA = {"llama", "llama2", "llama3"}


def plausibility_violations(metadata: Mapping[str, Any]) -> list[str]:
    """Every implausible value, each as one sentence naming the field, the value and the range."""
    arch = str(metadata.get("architecture") or metadata.get("hf_model_type") or "").lower()
    theta = metadata.get("rope_theta")
    problems: list[str] = []
    if theta is None:
        problems.append("rope_theta missing from APR metadata")
    else:
        theta = float(theta)
        if arch in _QWEN and abs(theta - 10000.0) < 1e-6:
            problems.append(
                f"CRITICAL: {arch} with rope_theta={theta} — likely missing config.json (Bug 210); expected ~1000000.0"
            )
        elif arch in _QWEN and theta < 100000.0:
            problems.append(f"rope_theta={theta} for {arch} — expected ~1000000.0 (too low, will produce garbage)")
        elif arch in _LLAMA and not 1000.0 <= theta <= 1e7:
            problems.append(f"rope_theta={theta} for {arch} — expected within [1000, 1e7]")
        elif arch not in _QWEN and arch not in _LLAMA and not 100.0 <= theta <= 1e8:
            problems.append(f"rope_theta={theta} for {arch or 'unknown family'} — expected within [100, 1e8]")
    max_pos = metadata.get("max_position_embeddings")
    if max_pos is not None and not 128 <= int(max_pos) <= 1048576:
        problems.append(f"max_position_embeddings={max_pos} — expected within [128, 1048576]")
    eps = metadata.get("rms_norm_eps")
    if eps is not None and not 0.0 < float(eps) <= 0.01:
        problems.append(f"rms_norm_eps={eps} — expected within (0, 0.01]")
    return problems
