"""The seeded inputs whose Q4_K/Q6_K bytes were cross-checked against ggml's C reference
(quantize_row_q4_K_ref / quantize_row_q6_K_ref from ggml-org/ggml src/ggml-quants.c @ 5136ed0,
compiled with gcc 12 -O2 -ffp-contract=off) on 2026-11-26: every byte equal for all ten."""

from __future__ import annotations

import numpy as np


def kquant_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    cases = {
        "n002": rng.normal(0, 0.02, (512, 1024)), "u11": rng.uniform(-1, 1, (64, 256)),
        "t3": rng.standard_t(3, (128, 512)), "zeros": np.zeros((4, 256)), "u01": rng.uniform(0, 1, (16, 512)),
        "const": np.full((2, 256), 0.5), "neg": -rng.uniform(0, 1, (8, 256)),
        "sparse": rng.normal(0, 1, (32, 256)) * (rng.uniform(size=(32, 256)) < 0.05),
        "big": rng.normal(0, 100, (8, 256)), "tiny": rng.normal(0, 1e-6, (8, 256)),
    }
    return {name: value.astype(np.float32) for name, value in cases.items()}
