"""`apr` in a child process with a stand-in for dropout: each training forward draws from the Python,
numpy and torch generators and scales the loss by what it drew.

The trainer itself draws no random number after the model's init (batches are keyed by (seed,
step), the models have no dropout), so without a consumer a resume that forgot the generator states
would go unnoticed. The resume falsifiers install the same consumer in the children they kill and
in the test process that resumes (`rng_drawing_forward`).

Usage: python tests/train/resume_driver.py pretrain ARGS...
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Iterator
from typing import Any


def _drawing(real: Any) -> Any:
    def forward(self: Any, input_ids: Any, targets: Any = None, **kwargs: Any) -> Any:
        import numpy as np
        import torch

        out = real(self, input_ids, targets, **kwargs)
        if targets is not None and self.training:
            drawn = random.random() + float(np.random.random_sample()) + float(torch.rand(()))
            out = out * (1.0 + 0.01 * drawn)
        return out

    return forward


@contextlib.contextmanager
def rng_drawing_forward() -> Iterator[None]:
    """Install the consumer on `CausalLM.forward` for the duration of the block."""
    from apr.train.model import CausalLM

    real = CausalLM.forward
    CausalLM.forward = _drawing(real)  # type: ignore[method-assign]
    try:
        yield
    finally:
        CausalLM.forward = real  # type: ignore[method-assign]


def main() -> int:
    from apr.cli.main import main as apr_main

    with rng_drawing_forward():
        return apr_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
