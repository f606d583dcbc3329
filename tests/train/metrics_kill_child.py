"""A child process for FALSIFY-METRICS-001's real SIGKILLs (run as ``python -m tests.train.metrics_kill_child``).

``writer PATH``: append rows to PATH forever, printing each row's step on stdout once `write`
returned (the parent kills it at a random moment and expects at least those rows).
``pretrain ARGV...``: `apr pretrain ARGV` in this process.

A code mutant the parent test runs under (``APR_CONTRACTS_MUTANT``) is installed first: this child
is not a pytest, so it does not inherit the fault by itself.
"""

from __future__ import annotations

import itertools
import sys


def _rows_forever(path: str) -> None:
    from apr.train import metrics_log

    writer = metrics_log.MetricsLogWriter(path)  # looked up on the module: a mutant replaces it
    for step in itertools.count(1):
        writer.write(metrics_log.MetricRecord(step=step, epoch=step // 100, train_loss=1.0 + 1.0 / step,
                                              val_loss=None if step % 7 else 2.0, lr=1e-3, grad_norm=0.5,
                                              tokens_per_sec=1000.0, tokens_seen=512 * step, wall_s=step * 0.01))
        sys.stdout.write(f"{step}\n")
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    from falsifiers.mutation import install_inherited_mutant

    install_inherited_mutant()
    if argv[0] == "writer":
        _rows_forever(argv[1])
        return 0
    from apr.cli.main import main as apr_main

    return apr_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
