"""Repository-wide pytest set-up: Hypothesis profiles, and each xdist worker's share of the CPUs.

CI machines are small and noisy, so the ``ci`` profile has no deadline, is derandomized and runs a
fixed example budget: a green run is reproducible and a red one is a real defect, not a timeout.
It is chosen automatically when ``CI`` is set; ``HYPOTHESIS_PROFILE`` overrides.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

import falsifiers.lint  # noqa: F401  (imported for its side effect, see below)
from falsifiers.mutant_runs import thread_env

# `falsifiers.lint` (hence `yaml` and its C extension `yaml._yaml`, and jsonschema) is imported here,
# before any test: the pytester fixture restores `sys.modules` after each test, dropping what the
# test imported first, and a C extension cannot be loaded twice: the second `import yaml` gets the
# old `_yaml`, whose composer builds nodes of the first import's classes and leaves their tags unset,
# so every contract read as empty or failed. With a cold cache the plugin's own lint imported these
# before the tests; with a warm `.pytest_cache` (the plugin skips its lint) four CLI tests failed.

# Under xdist each worker gets its share of the CPUs for torch/OpenMP (set before anything imports
# torch): two workers with a thread per core each oversubscribe a small CI machine several times over.
# The same rule as for mutant children (unless the user set a thread count). Not under mutmut's
# forced-fail check (MUTANT_UNDER_TEST=fail, docs/testing.md): there every mutated function raises, so
# mutating falsifiers/mutant_runs.py made this import-time call fail the conftest itself (exit 4,
# which mutmut reads as a broken test command and stops) instead of failing a test.
if os.environ.get("MUTANT_UNDER_TEST") != "fail":
    os.environ.update(thread_env(os.environ, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)))

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


def pytest_configure(config) -> None:
    """Under mutmut's coverage run (scripts/mutation.sh) the active "mutant" is ``stats``: mutmut
    keeps it in-process and mirrors it into ``MUTANT_UNDER_TEST``. A child process (a CLI run, a
    child pytest in a temporary project) inherits the variable, tries to record its calls against a
    mutmut configuration it cannot find outside ``mutants/`` and fails ("Could not figure out where
    the code to mutate is"), which stopped the whole run; its calls could never reach mutmut's
    table anyway. Dropping the mirror lets children run the plain code while the in-process
    trampolines keep reading mutmut's own copy. A real mutant's name is left alone: children must
    run the mutant too."""
    if os.environ.get("MUTANT_UNDER_TEST") == "stats":
        del os.environ["MUTANT_UNDER_TEST"]
