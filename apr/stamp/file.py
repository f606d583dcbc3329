"""`stamp_file`: check everything, plan, then write by the cheapest safe route.

Order (nothing is written until every check has passed — safetensors' rule):

1. the patch is not empty; 2. the output passes the output policy (`apr.format.outputs`: not the
input, a hard link to it or a folder; if it exists, ``force`` was given; its folder exists); 3. the input is a checked APR v2 file with no
interrupted in-place stamp pending (``in_place`` recovers one instead); 4. the plan (new prefix,
footer) is computed; 5. the write: ``in_place`` and the metadata fits → prefix + footer under the
journal; otherwise a streaming rewrite renamed over the destination. Either way the output is
re-read and verified before the stamp reports success; with ``-o`` the input's CRC is checked
while it is copied, so a damaged input is refused (`apr.stamp.rewrite.check_source_crc`).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass, field, replace
from typing import Any

from apr.errors import AprError, AprFileNotFoundError, AprIOError, EmptyPatchError
from apr.format.atomic import remove_stale_temporaries
from apr.format.footer_check import Damage
from apr.format.outputs import check_file_output
from apr.stamp.in_place import locked, patch_in_place
from apr.stamp.journal import os_failure, require_no_pending_journal
from apr.stamp.recovery import recover
from apr.stamp.patch import ProvenancePatch
from apr.stamp.plan import StampPlan, plan_stamp
from apr.stamp.rewrite import CopyCheck, rewrite_to
from apr.stamp.source import Source, read_source

logger = logging.getLogger(__name__)

_FLAGS = ("--license", "--data-source", "--data-license", "--hf-architecture", "--hf-model-type",
          "--architecture", "--tokenizer", "--name", "--description")


@dataclass(frozen=True, slots=True)
class StampResult:
    """What a stamp did.

    Attributes:
        input: the input path; output: where the stamped file is (the input for in-place).
        mode: ``"in-place"`` (prefix and footer rewritten), ``"rewrite"`` (streamed copy) or
            ``"unchanged"`` (in-place, and the file already had exactly these values).
        copy_method: how tensor bytes were copied (``copy_file_range``, ``sendfile``,
            ``read/write``) or ``"none"``.
        tensor_bytes_copied: bytes of the data section copied (0 in place).
        recovered: what the pre-stamp journal recovery did (``"none"`` usually).
    """

    input: str
    output: str
    mode: str
    tensor_count: int
    input_bytes: int
    output_bytes: int
    tensor_bytes_copied: int
    flags: int
    metadata: dict[str, Any] = field(repr=False)
    copy_method: str = "none"
    recovered: str = "none"
    elapsed_ms: float = 0.0
    damaged: Damage | None = None  # -o --allow-damaged: what was carried over from a damaged input


def _check_output(path: str, output: str, force: bool) -> None:
    """``-o`` through the project's output policy (`apr.format.outputs`): never the input itself."""
    check_file_output(output, force=force, inputs=(path,),
                      same_hint=f"to stamp the file itself, use --in-place instead of -o: apr stamp {path} ... --in-place")


def _plan(source: Source, patch: ProvenancePatch) -> StampPlan:
    return plan_stamp(metadata=source.metadata, flags=source.header.flags, entries=source.entries,
                      old_prefix=source.prefix, old_footer=source.footer, file_size=source.size, patch=patch)


def _require_file(path: str) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise AprFileNotFoundError("file not found", path=path, hint="check the path") from None
    except OSError as err:  # EIO, EACCES on a folder on the way: not "not found"
        raise os_failure(err, "cannot stat the file", path, state="nothing was written") from err
    if not stat.S_ISREG(info.st_mode):
        raise AprFileNotFoundError("not a file (a folder or device)", path=path,
                                   hint="pass the path of an .apr file, not a folder")


def stamp_file(
    path: str | os.PathLike[str],
    patch: ProvenancePatch,
    *,
    output: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    force: bool = False,
    allow_damaged: bool = False,
) -> StampResult:
    """Stamp ``patch`` into the APR v2 file ``path``; tensor bytes never change.

    Args:
        path: the input ``.apr`` file.
        patch: the fields to set (licenses already validated, e.g. by `validate_license`).
        output: where to write the stamped copy (``-o``); exclusive with ``in_place``.
        in_place: stamp ``path`` itself (``--in-place``).
        force: allow ``output`` to replace an existing file.
        allow_damaged: (``-o``) copy an input whose footer CRC is wrong instead of refusing it; the
            result's ``damaged`` says what was carried over.

    Returns:
        A `StampResult`.

    Raises:
        EmptyPatchError: the patch sets nothing (nothing written).
        OutputIsInputError, OutputExistsError: a refused destination (nothing written).
        AprFileNotFoundError: missing input, input is a folder, or missing output folder.
        FormatError: the input is not a valid APR v2 file.
        StampJournalError: (``-o``) the input has an interrupted in-place stamp pending; (``in_place``)
            its journal cannot be applied (untrusted, old format, corrupt, or the file was replaced since).
        DamagedInputError: (``-o``) the input's footer CRC does not match its bytes; nothing written.
        StampBusyError: another in-place stamp holds the file.
        AprIOError: a write failed (disk full...): the input is untouched, no output appears.

    Example:
        >>> stamp_file("m.apr", ProvenancePatch(license="Apache-2.0"), in_place=True).mode  # doctest: +SKIP
        'in-place'
    """
    started = time.perf_counter()
    path = os.fspath(path)
    if not patch.has_any():
        raise EmptyPatchError(
            "apr stamp: at least one of " + ", ".join(_FLAGS) + " must be specified — refusing to rewrite "
            "without changes",
            path=path, hint="add the field to set, e.g. --license Apache-2.0",
        )
    if (output is None) == (not in_place):
        raise ValueError("give exactly one of output= and in_place=True")
    _require_file(path)
    if in_place:
        result = _stamp_in_place(path, patch)
    else:
        assert output is not None  # exactly one of the two, checked above
        output = os.fspath(output)
        _check_output(path, output, force)
        require_no_pending_journal(path)
        source = read_source(path)
        plan = _plan(source, patch)
        remove_stale_temporaries(output)
        check = CopyCheck(allow_damaged=allow_damaged)
        method = rewrite_to(output, source, plan, check=check)
        result = replace(_result(source, plan, output, "rewrite", method, "none"), damaged=check.damage)
    elapsed = (time.perf_counter() - started) * 1000
    return replace(result, elapsed_ms=elapsed)


def _remove_rewrite_strays(real: str) -> None:
    """Remove what a killed fallback rewrite of ``real`` left (best effort: a stray is hidden and harmless)."""
    try:
        remove_stale_temporaries(real)
    except OSError as err:
        logger.warning("%s: could not remove stray temporaries: %s", real, err.strerror or err)


def _not_written(err: OSError, path: str, what: str) -> AprIOError:
    """``err`` (raw, or an `AprIOError` from the reader) restated with the file's state: unchanged."""
    if isinstance(err, AprIOError):
        return AprIOError(f"{err.message}; the file was not changed", path=err.path or path, hint=err.hint)
    return os_failure(err, what, path, state="the file was not changed")


def _stamp_in_place(path: str, patch: ProvenancePatch) -> StampResult:
    # Through a symlink (a Hugging Face snapshot), the real file is stamped: its journal sits beside
    # it and a fallback rewrite replaces it, not the link.
    real = os.path.realpath(path)
    try:
        with locked(path) as fd:
            recovered = recover(path)
            if recovered == "rolled-back":
                logger.warning("%s: an interrupted in-place stamp was rolled back first; the file was as before it",
                               path)
            _remove_rewrite_strays(real)
            try:
                source = read_source(path, fd)
            except OSError as err:  # AprIOError included: said before anything was written
                raise _not_written(err, path, "cannot read the file") from err
            plan = _plan(source, patch)
            # the same prefix gives the same footer (`footer_after_prefix_change` of an unchanged prefix)
            if plan.prefix == source.prefix:
                return _result(source, plan, path, "unchanged", "none", recovered)
            if plan.fits_in_place:
                patch_in_place(fd, source, plan)
                return _result(source, plan, path, "in-place", "none", recovered)
            logger.info("%s: the new metadata does not fit before the data section; rewriting the file", path)
            method = rewrite_to(real, source, plan)
            return _result(source, plan, path, "rewrite", method, recovered)
    except OSError as err:
        # The journaled window and the rewrite report their own failures; an OSError from anywhere
        # else (reading, locking) happened before the file was written.
        if isinstance(err, AprError):
            raise
        raise _not_written(err, path, "in-place stamp failed") from err


def _result(source: Source, plan: StampPlan, output: str, mode: str, method: str, recovered: str) -> StampResult:
    return StampResult(
        input=source.path, output=output, mode=mode, tensor_count=len(source.entries), input_bytes=source.size,
        output_bytes=plan.output_size, tensor_bytes_copied=plan.data_length if mode == "rewrite" else 0,
        flags=plan.flags, metadata=plan.metadata, copy_method=method, recovered=recovered,
    )


def recover_file(path: str | os.PathLike[str]) -> str:
    """Undo an interrupted in-place stamp of ``path`` (`apr stamp FILE --recover`); see `apr.stamp.recovery`.

    Raises:
        StampJournalError: the journal is untrusted, old-format, corrupt or not this file's (nothing written).
        StampBusyError: a stamp holds the file. AprIOError: the OS refused; the journal is kept.
    """
    path = os.fspath(path)
    _require_file(path)
    try:
        with locked(path):
            outcome = recover(path)
            _remove_rewrite_strays(os.path.realpath(path))
            return outcome
    except OSError as err:
        if isinstance(err, AprError):
            raise
        raise os_failure(err, "recovery failed", path, state="nothing was written") from err


__all__ = ["StampResult", "recover_file", "stamp_file"]
