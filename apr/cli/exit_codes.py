"""Exit codes, in one module (pip's status_codes).

`apr` commands follow aprender's apr-cli (reference/aprender.md Appendix A); verdict commands
(`apr contracts verify`, `apr qa`, `apr readiness`) use GO 0 / NO-GO 1 / UNKNOWN 2.
"""

from apr.errors import (
    EXIT_FEATURE_DISABLED,
    EXIT_GENERIC,
    EXIT_INFERENCE,
    EXIT_INVALID_FORMAT,
    EXIT_IO,
    EXIT_MODEL_LOAD,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    EXIT_VALIDATION,
)

OK = 0
GO = 0
NO_GO = 1
UNKNOWN = 2
INTERRUPTED = 130

__all__ = [
    "EXIT_FEATURE_DISABLED",
    "EXIT_GENERIC",
    "EXIT_INFERENCE",
    "EXIT_INVALID_FORMAT",
    "EXIT_IO",
    "EXIT_MODEL_LOAD",
    "EXIT_NOT_FOUND",
    "EXIT_USAGE",
    "EXIT_VALIDATION",
    "GO",
    "INTERRUPTED",
    "NO_GO",
    "OK",
    "UNKNOWN",
]
