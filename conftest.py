"""Repository-wide pytest set-up: Hypothesis profiles.

CI machines are small and noisy, so the ``ci`` profile has no deadline, is derandomized and runs a
fixed example budget: a green run is reproducible and a red one is a real defect, not a timeout.
It is chosen automatically when ``CI`` is set; ``HYPOTHESIS_PROFILE`` overrides.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Under xdist each worker gets its share of the CPUs for torch/OpenMP (set before anything imports
# torch): two workers with a thread per core each oversubscribe a small CI machine several times over.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
if _workers > 1 and not any(v in os.environ for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _workers))

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    max_examples=60,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=60, print_blob=True)
settings.register_profile("thorough", deadline=None, max_examples=1000, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
