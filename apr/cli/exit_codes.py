"""Exit codes, in one module (pip's status_codes).

`apr` commands follow aprender's apr-cli (docs/aprender-format.md Appendix A): 0 ok, 1 generic,
3 not found, 4 invalid format, 5 validation failed, 6 model load, 7 I/O (disk full,
read-only folder, permissions), 8 inference, 9 feature disabled, 10 network (`apr publish`: the Hub
unreachable or refusing), 11 HTTP not found (no such Hub repository or branch). Verdict commands (`apr contracts
verify`, `apr qa`, `apr readiness`) use GO 0 / NO-GO 1 / UNKNOWN 2. A usage error (a mistyped flag or
command, a missing argument) is 64, sysexits.h's EX_USAGE, where aprender uses 2: ours would be
the UNKNOWN verdict's code. Ctrl-C is 130.

`INTERNAL_ERROR` (70, sysexits.h's EX_SOFTWARE; used by neither table) means a bug in `apr`: an
exception no error class describes reached the top-level guard (`apr.cli.guard`). The message says
so and asks for a bug report; the traceback is printed only with ``-v`` or ``APR_DEBUG=1``.
"""

from apr.errors import (
    EXIT_FEATURE_DISABLED,
    EXIT_GENERIC,
    EXIT_HTTP_NOT_FOUND,
    EXIT_INFERENCE,
    EXIT_INTERNAL,
    EXIT_INVALID_FORMAT,
    EXIT_IO,
    EXIT_MODEL_LOAD,
    EXIT_NETWORK,
    EXIT_NOT_FOUND,
    EXIT_USAGE,
    EXIT_VALIDATION,
)

OK = 0
GO = 0
NO_GO = 1
UNKNOWN = 2
INTERRUPTED = 130
INTERNAL_ERROR = EXIT_INTERNAL

# Every code an `apr` command may exit with; anything else is a bug (checked by the no-traceback tests).
DOCUMENTED: frozenset[int] = frozenset({
    OK, NO_GO, UNKNOWN, EXIT_GENERIC, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_INVALID_FORMAT, EXIT_VALIDATION,
    EXIT_MODEL_LOAD, EXIT_IO, EXIT_INFERENCE, EXIT_FEATURE_DISABLED, EXIT_NETWORK, EXIT_HTTP_NOT_FOUND,
    INTERRUPTED, INTERNAL_ERROR,
})

__all__ = [
    "DOCUMENTED",
    "EXIT_FEATURE_DISABLED",
    "EXIT_GENERIC",
    "EXIT_HTTP_NOT_FOUND",
    "EXIT_INFERENCE",
    "EXIT_INTERNAL",
    "EXIT_INVALID_FORMAT",
    "EXIT_IO",
    "EXIT_MODEL_LOAD",
    "EXIT_NETWORK",
    "EXIT_NOT_FOUND",
    "EXIT_USAGE",
    "EXIT_VALIDATION",
    "GO",
    "INTERNAL_ERROR",
    "INTERRUPTED",
    "NO_GO",
    "OK",
    "UNKNOWN",
]
