"""Every error the `apr` package raises on purpose, in one place.

Each class refines a builtin (so ``except ValueError`` in caller code keeps working), carries a
stable kebab-case ``code`` for machines, the exit code aprender uses for the same failure
(``docs/aprender-format.md`` Appendix A), and its facts as attributes (``path``, ``offset``,
``field``, ``hint``) so the CLI renders text or JSON the same way every time and tests assert on
fields rather than prose.

The message always has three parts: what is wrong, where, and how to fix it.

Example::

    >>> err = ChecksumError("header checksum mismatch", path="m.apr", offset=40,
    ...                     hint="re-export the model; the header was modified")
    >>> str(err)
    'm.apr: header checksum mismatch (at byte 40)\\n  fix: re-export the model; the header was modified'
"""

from __future__ import annotations

import errno
import os
import re
from typing import Any, ClassVar

# Exit codes (aprender apr-cli error.rs). Kept here because every error names its own code;
# the CLI's exit_codes module re-exports them with the verdict codes.
EXIT_GENERIC = 1
# aprender exits 2 on a usage error (clap's code); ours is sysexits.h's EX_USAGE instead, because 2
# is the UNKNOWN verdict of `apr contracts verify`, `apr qa` and `apr readiness`, and a CI job must
# tell "the command line was wrong" from "the evidence was incomplete" by the code alone.
EXIT_USAGE = 64
EXIT_NOT_FOUND = 3
EXIT_INVALID_FORMAT = 4
EXIT_VALIDATION = 5
EXIT_MODEL_LOAD = 6
EXIT_IO = 7
EXIT_INFERENCE = 8
EXIT_FEATURE_DISABLED = 9
# aprender's NetworkError and HttpNotFound: `apr publish` is the one command that talks to a server.
EXIT_NETWORK = 10
EXIT_HTTP_NOT_FOUND = 11
# Not in aprender's table nor among the verdict codes (0/1/2): sysexits.h's EX_SOFTWARE, "internal
# software error". Only the CLI's top-level guard uses it, for an exception that is a bug in `apr`.
EXIT_INTERNAL = 70


class AprError(Exception):
    """Root of every deliberate failure in `apr`.

    Args:
        message: what is wrong, in one line.
        path: the file concerned, if any.
        offset: byte offset in that file, if the failure has one.
        field: the metadata field, tensor name or argument concerned.
        hint: how to fix it, ideally a command to paste.
        code: overrides the class's stable code.
    """

    code: str = "apr-error"
    exit_code: int = EXIT_GENERIC
    # Attributes a subclass adds to its ``--json`` error object, after the common keys (a tuple
    # attribute is written as a list: JSON has no tuples).
    json_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        offset: int | None = None,
        field: str | None = None,
        hint: str | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.offset = offset
        self.field = field
        self.hint = hint
        if code is not None:
            self.code = code
        super().__init__(self._render())

    def __str__(self) -> str:
        # Always the rendered message: an OSError subclass would otherwise print "[Errno N] ..."
        # once its errno is set (AprIOError.from_os_error keeps the cause's errno for callers).
        return str(self.args[0]) if self.args else self.message

    def _render(self) -> str:
        where = f"{self.path}: " if self.path else ""
        text = f"{where}{self.message}"
        if self.offset is not None:
            text += f" (at byte {self.offset})"
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text

    def with_path(self, path: str | os.PathLike[str]) -> AprError:
        """Return this error re-rendered with ``path`` (parsers work on bytes, callers know the file)."""
        self.path = os.fspath(path)
        self.args = (self._render(),)
        return self

    def to_dict(self) -> dict[str, Any]:
        """The error as the ``error`` object of a ``--json`` document."""
        return {
            "code": self.code,
            "type": type(self).__name__,
            "message": self.message,
            "path": self.path,
            "offset": self.offset,
            "field": self.field,
            "hint": self.hint,
            "exit_code": self.exit_code,
            **{key: _json_value(getattr(self, key)) for key in self.json_keys},
        }


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


# --- operating-system errors, in words --------------------------------------------------------

_TEMPORARY = re.compile(r"^\.(?P<name>.+?)(?:\.tmp-\d+(?:-.*)?|\.[^.]+\.tmp)$")

_OS_HINTS: dict[int, str] = {
    errno.ENOSPC: "free space on that disk (df -h {folder}) or write to another folder",
    errno.EDQUOT: "your disk quota is used up: free space (quota -s) or write to another folder",
    errno.EROFS: "the file system is read-only: write to a folder on a writable disk",
    errno.EACCES: "check the permissions of {path} and its folder (ls -ld {folder}), or use another folder",
    errno.EPERM: "check the permissions of {path} and its folder (ls -ld {folder}), or use another folder",
    errno.EIO: "the disk reported an I/O error: check it (dmesg), then retry on a healthy disk",
    errno.EFBIG: "the file would exceed the size limit (ulimit -f, or the file system's): raise it or use another disk",
    errno.ENAMETOOLONG: "use a shorter file name",
    errno.EISDIR: "name a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) and retry",
    errno.ENFILE: "the system has too many open files: close some programs and retry",
    errno.ELOOP: "the path has a symlink loop: check the links on it (ls -l)",
    errno.ENOENT: "check the path",
    errno.EXDEV: "the output must be on the same file system as its folder",
}


def _user_path(error: OSError) -> str | None:
    """The file an ``OSError`` names, or the final file when it names a writer's temporary."""
    if error.filename is None:
        return None
    name = os.fsdecode(error.filename) if isinstance(error.filename, (str, bytes, os.PathLike)) else str(error.filename)
    folder, base = os.path.split(name)
    match = _TEMPORARY.match(base)
    return os.path.join(folder, match.group("name")) if match else name


def _os_reason(error: OSError) -> str:
    """``no space left on device (ENOSPC)``: the OS's words in lower case, with the errno name."""
    words = (error.strerror or str(error) or type(error).__name__).strip()
    words = words[:1].lower() + words[1:]
    name = errno.errorcode.get(error.errno) if isinstance(error.errno, int) else None
    return f"{words} ({name})" if name else words


def _os_hint(error: OSError, path: str | None) -> str:
    folder = os.path.dirname(os.path.abspath(path)) if path else "."
    if not isinstance(error.errno, int):  # a short write reported without an errno (numpy's tofile)
        template = "the disk may be full or failing: check its free space (df -h {folder}), then retry"
    else:
        template = _OS_HINTS.get(error.errno, "check the path and that the disk works, then retry")
    return template.format(path=path or "the file", folder=folder)


# --- files --------------------------------------------------------------------------------------


class AprFileNotFoundError(AprError, FileNotFoundError):
    """The path does not exist, or is not a regular file (a directory, a socket)."""

    code = "file-not-found"
    exit_code = EXIT_NOT_FOUND


class OutputExistsError(AprError, FileExistsError):
    """An output path exists and ``--force`` was not given (aprender's ``refuse_overwrite``)."""

    code = "output-exists"
    exit_code = EXIT_VALIDATION


class AprIOError(AprError, OSError):
    """The operating system refused a read or write (disk full, read-only folder, permissions, EIO).

    Sample: ``out.gguf: cannot write: no space left on device (ENOSPC)\n  fix: free space on that
    disk (df -h /data) or write to another folder``. ``errno`` is the OS error number, if known.
    """

    code = "io-error"
    exit_code = EXIT_IO

    @classmethod
    def from_os_error(cls, error: OSError, *, path: str | os.PathLike[str] | None = None,
                      action: str | None = None, note: str | None = None) -> AprIOError:
        """The three-part error for an ``OSError`` (what, where, how to fix it, by errno).

        Args:
            error: what the OS raised.
            path: the file the user knows (default: the one the OS names; a writer's temporary
                ``.NAME.tmp-…`` is reported as the ``NAME`` it was to become).
            action: what was being done, e.g. ``"write"`` (``cannot write: …``).
            note: appended to the message, e.g. that the previous file is unchanged.

        Example::

            >>> import errno
            >>> e = AprIOError.from_os_error(OSError(errno.EROFS, "Read-only file system", "/m/out.apr"))
            >>> e.path, e.exit_code, e.hint
            ('/m/out.apr', 7, 'the file system is read-only: write to a folder on a writable disk')
        """
        where = os.fspath(path) if path is not None else _user_path(error)
        reason = _os_reason(error)
        message = f"cannot {action}: {reason}" if action else reason
        if note:
            message += f"; {note}"
        io_error = cls(message, path=where, hint=_os_hint(error, where))
        io_error.errno = error.errno  # OSError's own attribute, set from the cause
        io_error.strerror = error.strerror
        return io_error


# --- format -------------------------------------------------------------------------------------


class FormatError(AprError, ValueError):
    """The bytes are not a well-formed APR v2 file."""

    code = "invalid-format"
    exit_code = EXIT_INVALID_FORMAT


class TruncatedError(FormatError):
    """The file ends before a section its header promises."""

    code = "truncated"


class WrongFormatError(FormatError):
    """The file is another format (GGUF, safetensors, APR v1); the hint says how to convert it."""

    code = "wrong-format"

    def __init__(self, message: str, *, detected: str, **kwargs: Any) -> None:
        self.detected = detected
        super().__init__(message, **kwargs)


class HeaderError(FormatError):
    """A header field is impossible (offsets out of order or past the end, forbidden flags)."""

    code = "invalid-header"


class ChecksumError(FormatError):
    """The header CRC or the footer CRC does not match the bytes."""

    code = "checksum-mismatch"


class DamagedInputError(ChecksumError):
    """A command that copies an APR file (`apr export`, `apr stamp -o`) found its footer CRC wrong
    while reading it: the input is damaged, so nothing was written (``--allow-damaged`` salvages).
    Exit 5, as `apr validate` gives for the same file."""

    code = "damaged-input"
    exit_code = EXIT_VALIDATION


class MetadataError(FormatError):
    """The metadata section is not a valid JSON object, or a typed field has the wrong type."""

    code = "invalid-metadata"


class TensorIndexError(FormatError):
    """The tensor index is malformed: bad dtype, ndim > 8, unsorted or duplicate names, bad UTF-8."""

    code = "invalid-tensor-index"


class TensorDataError(FormatError):
    """A tensor's payload is inconsistent with its dtype and shape, misaligned or overlapping."""

    code = "invalid-tensor-data"


class ResourceLimitError(FormatError):
    """A header or index claims a size beyond the reader's limits; nothing was allocated for it."""

    code = "resource-limit"


# --- identity -----------------------------------------------------------------------------------


class ArchitectureMismatchError(AprError, ValueError):
    """INV-INIT-ARCH-MATCH-001: the architecture claim contradicts the tensor names."""

    code = "architecture-mismatch"
    exit_code = EXIT_VALIDATION

    def __init__(
        self, message: str, *, claimed_family: str, tensor_family: str, salvage: str, **kwargs: Any
    ) -> None:
        self.claimed_family = claimed_family
        self.tensor_family = tensor_family
        self.salvage = salvage
        super().__init__(message, **kwargs)


# --- caller mistakes ----------------------------------------------------------------------------


class TensorInputError(AprError, TypeError):
    """``save_file`` was given something it cannot store (wrong type, dtype, name or metadata)."""

    code = "invalid-input"
    exit_code = EXIT_VALIDATION


class UsageError(AprError, ValueError):
    """A command-line argument is invalid; the message names the flag."""

    code = "usage"
    exit_code = EXIT_USAGE


class ValidationError(AprError, ValueError):
    """A well-formed file failed a check (``apr validate``, a gate)."""

    code = "validation-failed"
    exit_code = EXIT_VALIDATION


# --- training -----------------------------------------------------------------------------------


class TokenizerError(AprError, ValueError):
    """A tokenizer folder or an embedded tokenizer is unusable (no files, no ``model.vocab``,
    non-integer ids, a path escaping the folder, a checkpoint without ``tokenizer.*`` keys)."""

    code = "invalid-tokenizer"
    exit_code = EXIT_VALIDATION


class DatasetError(AprError, ValueError):
    """A token-shard folder or shard file is malformed, empty or too small for the run."""

    code = "invalid-dataset"
    exit_code = EXIT_INVALID_FORMAT


class ModelConfigError(AprError, ValueError):
    """A model shape (``config.json`` or APR metadata) is missing a field, is inconsistent, or asks
    for a feature the trainer does not implement (rope scaling, sliding window, MLP bias)."""

    code = "invalid-model-config"
    exit_code = EXIT_VALIDATION


class UnsupportedArchitectureError(ModelConfigError):
    """The architecture is not one the runtime implements exactly (`apr.arch.REGISTRY`), or the
    config asks for a feature its module does not implement (a rope scaling type, a sliding window,
    softcapping), or its tensors do not fit the family's schema. ``architecture`` names it and
    ``reasons`` lists what is missing or unsupported. `apr inspect`, `validate` and `stamp` still
    work on such a file; `run`, `pretrain --init`, `qa` and `export` refuse it."""

    code = "unsupported-architecture"
    json_keys = ("architecture", "reasons")
    exit_code = EXIT_VALIDATION

    def __init__(self, message: str, *, architecture: str, reasons: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.architecture = architecture
        self.reasons = tuple(reasons)
        super().__init__(message, **kwargs)


class InitCheckpointError(AprError, ValueError):
    """``apr pretrain --init FILE`` was refused before any training step (apr-pretrain-from-init-v1).

    ``falsifier`` is the FALSIFY id whose prediction this refusal is, also quoted in the message,
    e.g. ``FALSIFY-APR-PRETRAIN-INIT-003`` for a missing file (exit 3) or ``-005`` for bogus
    architecture metadata (exit 5).
    """

    code = "init-checkpoint"
    json_keys = ("falsifier",)
    exit_code = EXIT_VALIDATION

    def __init__(self, message: str, *, falsifier: str, exit_code: int | None = None, **kwargs: Any) -> None:
        self.falsifier = falsifier
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(message, **kwargs)


class ChinchillaGateError(ValidationError):
    """chinchilla-gate-v1: with ``--init``, the planned tokens D are under 20x the parameters N.

    Carries ``ratio`` (D/N) and ``suggested_steps`` (the smallest ``--num-steps`` that passes).
    """

    code = "chinchilla-gate"

    def __init__(self, message: str, *, ratio: float, suggested_steps: int, **kwargs: Any) -> None:
        self.ratio = ratio
        self.suggested_steps = suggested_steps
        super().__init__(message, **kwargs)


class ResumeError(ValidationError):
    """``apr pretrain --resume`` was refused before any step: the training state does not belong to
    its checkpoint (sha256), or the run asked for differs from the run saved (model config, dataset,
    world size, schedule). ``differences`` lists every mismatch, ``"name: saved != asked"``."""

    code = "resume-refused"
    json_keys = ("differences",)

    def __init__(self, message: str, *, differences: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.differences = tuple(differences)
        super().__init__(message, **kwargs)


class TrainingAbortedError(AprError, RuntimeError):
    """A training guard fired: ``reason`` is ``DIVERGENCE`` (GATE-TRAIN-005) or
    ``NUMERICAL_INSTABILITY`` (GATE-TRAIN-007); the diverged weights were not checkpointed."""

    code = "training-aborted"
    exit_code = EXIT_GENERIC

    def __init__(self, message: str, *, reason: str, step: int | None = None,
                 epoch: int | None = None, **kwargs: Any) -> None:
        self.reason = reason
        self.step = step
        self.epoch = epoch
        super().__init__(message, **kwargs)


# --- stamp --------------------------------------------------------------------------------------


class EmptyPatchError(ValidationError):
    """`apr stamp` was given no field to set; nothing is written (aprender's ``has_any`` gate)."""

    code = "empty-patch"


class LicenseError(ValidationError):
    """A ``--license``/``--data-license`` value is not an SPDX expression; ``suggestion`` is the
    closest SPDX id, if any. Sample: ``--license 'Apache2' is not ...  fix: did you mean 'Apache-2.0'?``"""

    code = "invalid-license"

    def __init__(self, message: str, *, value: str, suggestion: str | None = None, **kwargs: Any) -> None:
        self.value = value
        self.suggestion = suggestion
        super().__init__(message, **kwargs)


class OutputIsInputError(AprError, ValueError):
    """``-o`` names the input file itself without ``--in-place``; the hint says to use ``--in-place``."""

    code = "output-is-input"
    exit_code = EXIT_VALIDATION


class StampJournalError(AprError, RuntimeError):
    """An interrupted ``apr stamp --in-place`` left its undo journal next to the file, so the file may
    be half-written; the hint is the command that restores it (``apr stamp FILE --recover``)."""

    code = "stamp-interrupted"
    exit_code = EXIT_VALIDATION


class StampBusyError(AprError, BlockingIOError):
    """Another ``apr stamp --in-place`` holds the file's lock; run one stamp at a time."""

    code = "stamp-busy"
    exit_code = EXIT_VALIDATION


class StampVerificationError(AprError, RuntimeError):
    """The stamped output, re-read before it replaced anything, differs from what was planned (a bug
    or a failing disk); the input is untouched."""

    code = "stamp-verification-failed"
    exit_code = EXIT_GENERIC


# --- convert ------------------------------------------------------------------------------------


class ConvertError(AprError, ValueError):
    """`apr import` / `apr export` cannot convert this model: an unsupported family, tensor, dtype
    or layout, or a source folder that breaks a rule (a file escaping the folder, a bad index).
    ``field`` names the tensor or config key."""

    code = "convert-failed"
    exit_code = EXIT_VALIDATION


class MissingConfigError(ConvertError, FileNotFoundError):
    """GH-223: a Hugging Face source without ``config.json`` and no ``--allow-no-config``."""

    code = "missing-config"


class MissingTokenizerError(TokenizerError):
    """PMAT-172: a checkpoint without an embedded tokenizer was given to inference (`apr run`)."""

    code = "missing-embedded-tokenizer"
    exit_code = EXIT_MODEL_LOAD


class InferenceError(AprError, RuntimeError):
    """`apr run` could not generate: a bad sampling argument for this model, a device that is not
    available, or a prompt longer than the model's context."""

    code = "inference-failed"
    exit_code = EXIT_INFERENCE


# --- the Hub ------------------------------------------------------------------------------------


class HubError(AprError, ConnectionError):
    """`apr publish` could not commit to the Hugging Face Hub: the network failed, or the Hub refused
    the request (an invalid token, no write access, a server error). Exit 10, aprender's
    NetworkError. The staging folder is kept, so a rerun retries. ``status`` is the HTTP status, if
    the Hub answered."""

    code = "network-error"
    json_keys = ("status",)
    exit_code = EXIT_NETWORK

    def __init__(self, message: str, *, status: int | None = None, **kwargs: Any) -> None:
        self.status = status
        super().__init__(message, **kwargs)


class HubNotFoundError(HubError):
    """The Hub has no such repository, branch or namespace (HTTP 404). Exit 11, aprender's
    HttpNotFound."""

    code = "http-not-found"
    exit_code = EXIT_HTTP_NOT_FOUND


# --- bugs ---------------------------------------------------------------------------------------


class MissingExtraError(AprError, ImportError):
    """The command needs an optional part of the package that is not installed (issue 17): e.g.
    `apr pretrain`, `run`, `qa` and `readiness` need PyTorch, the ``train`` extra. Exit 9, aprender's
    "feature disabled"; the hint is the pip command."""

    code = "missing-extra"
    exit_code = EXIT_FEATURE_DISABLED


class InternalError(AprError, RuntimeError):
    """An exception that none of the classes above describes reached the command line: a bug in
    `apr`, never a verdict on the input. The CLI's top-level guard wraps it (exit 70) with a
    bug-report hint; ``exception`` is the original type's name and ``location`` the innermost
    ``file:line`` inside the package. Sample: ``internal error: KeyError: 'x' (at apr/run/load.py:88)``.
    """

    code = "internal-error"
    json_keys = ("exception", "location")
    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, exception: str, location: str | None, **kwargs: Any) -> None:
        self.exception = exception
        self.location = location
        super().__init__(message, **kwargs)


__all__ = [
    "MissingExtraError",
    "AprError",
    "AprFileNotFoundError",
    "AprIOError",
    "ArchitectureMismatchError",
    "UnsupportedArchitectureError",
    "ChecksumError",
    "DamagedInputError",
    "FormatError",
    "HeaderError",
    "HubError",
    "HubNotFoundError",
    "MetadataError",
    "OutputExistsError",
    "ResourceLimitError",
    "TensorDataError",
    "TensorIndexError",
    "TensorInputError",
    "TruncatedError",
    "UsageError",
    "ValidationError",
    "WrongFormatError",
    # training
    "ChinchillaGateError",
    "DatasetError",
    "InitCheckpointError",
    "ModelConfigError",
    "TokenizerError",
    "TrainingAbortedError",
    # stamp
    "EmptyPatchError",
    "LicenseError",
    "OutputIsInputError",
    "StampBusyError",
    "StampJournalError",
    "StampVerificationError",
    # convert
    "ConvertError",
    "InferenceError",
    "MissingConfigError",
    "MissingTokenizerError",
    # bugs
    "EXIT_INTERNAL",
    "InternalError",
]
