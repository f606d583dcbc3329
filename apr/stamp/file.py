"""`stamp_file`: check everything, plan, then write by the cheapest safe route.

Order (nothing is written until every check has passed — safetensors' rule):

1. the patch is not empty; 2. the output is not the input (unless ``in_place``) and, if it
exists, ``force`` was given, and its folder exists; 3. the input is a checked APR v2 file with no
interrupted in-place stamp pending (``in_place`` recovers one instead); 4. the plan (new prefix,
footer) is computed; 5. the write: ``in_place`` and the metadata fits → prefix + footer under the
journal; otherwise a streaming rewrite renamed over the destination. Either way the output is
re-read and verified before the stamp reports success.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

from apr.errors import AprFileNotFoundError, EmptyPatchError, OutputExistsError, OutputIsInputError
from apr.format.atomic import remove_stale_temporaries
from apr.stamp.in_place import locked, patch_in_place
from apr.stamp.journal import recover, require_no_pending_journal
from apr.stamp.patch import ProvenancePatch
from apr.stamp.plan import StampPlan, plan_stamp
from apr.stamp.rewrite import rewrite_to
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


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _check_output(path: str, output: str, force: bool) -> None:
    if _same_file(path, output):
        raise OutputIsInputError(
            f"-o names the input file itself ({output!r})", path=path, field="-o",
            hint=f"to stamp the file itself, use --in-place instead of -o: apr stamp {path} ... --in-place",
        )
    if os.path.isdir(output):
        raise OutputExistsError(f"Output '{output}' is a folder.", field="-o",
                                hint="give the path of the file to create, e.g. -o model-stamped.apr")
    if os.path.lexists(output) and not force:
        raise OutputExistsError(f"Output file '{output}' already exists. Use --force to overwrite.", field="-o")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise AprFileNotFoundError(f"output folder does not exist: {folder}", path=output, field="-o",
                                   hint=f"create it first: mkdir -p {folder}")


def _plan(source: Source, patch: ProvenancePatch) -> StampPlan:
    return plan_stamp(metadata=source.metadata, flags=source.header.flags, entries=source.entries,
                      old_prefix=source.prefix, old_footer=source.footer, file_size=source.size, patch=patch)


def _require_file(path: str) -> None:
    if not os.path.exists(path):
        raise AprFileNotFoundError("file not found", path=path, hint="check the path")
    if not os.path.isfile(path):
        raise AprFileNotFoundError("not a file (a folder or device)", path=path,
                                   hint="pass the path of an .apr file, not a folder")


def stamp_file(
    path: str | os.PathLike[str],
    patch: ProvenancePatch,
    *,
    output: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    force: bool = False,
) -> StampResult:
    """Stamp ``patch`` into the APR v2 file ``path``; tensor bytes never change.

    Args:
        path: the input ``.apr`` file.
        patch: the fields to set (licenses already validated, e.g. by `validate_license`).
        output: where to write the stamped copy (``-o``); exclusive with ``in_place``.
        in_place: stamp ``path`` itself (``--in-place``).
        force: allow ``output`` to replace an existing file.

    Returns:
        A `StampResult`.

    Raises:
        EmptyPatchError: the patch sets nothing (nothing written).
        OutputIsInputError, OutputExistsError: a refused destination (nothing written).
        AprFileNotFoundError: missing input, input is a folder, or missing output folder.
        FormatError: the input is not a valid APR v2 file.
        StampJournalError: (``-o``) the input has an interrupted in-place stamp pending.
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
        output = os.fspath(output)
        _check_output(path, output, force)
        require_no_pending_journal(path)
        source = read_source(path)
        plan = _plan(source, patch)
        remove_stale_temporaries(output)
        method = rewrite_to(output, source, plan)
        result = _result(source, plan, output, "rewrite", method, "none")
    elapsed = (time.perf_counter() - started) * 1000
    return replace(result, elapsed_ms=elapsed)


def _stamp_in_place(path: str, patch: ProvenancePatch) -> StampResult:
    with locked(path) as fd:
        recovered = recover(path)
        remove_stale_temporaries(path)  # a killed fallback rewrite of this file
        source = read_source(path, fd)
        plan = _plan(source, patch)
        if plan.prefix == source.prefix and plan.footer == source.footer:
            return _result(source, plan, path, "unchanged", "none", recovered)
        if plan.fits_in_place:
            patch_in_place(fd, source, plan)
            return _result(source, plan, path, "in-place", "none", recovered)
        logger.info("%s: the new metadata does not fit before the data section; rewriting the file", path)
        method = rewrite_to(path, source, plan)
        return _result(source, plan, path, "rewrite", method, recovered)


def _result(source: Source, plan: StampPlan, output: str, mode: str, method: str, recovered: str) -> StampResult:
    return StampResult(
        input=source.path, output=output, mode=mode, tensor_count=len(source.entries), input_bytes=source.size,
        output_bytes=plan.output_size, tensor_bytes_copied=plan.data_length if mode == "rewrite" else 0,
        flags=plan.flags, metadata=plan.metadata, copy_method=method, recovered=recovered,
    )


def recover_file(path: str | os.PathLike[str]) -> str:
    """Undo an interrupted in-place stamp of ``path`` (`apr stamp FILE --recover`); see `recover`."""
    path = os.fspath(path)
    _require_file(path)
    with locked(path):
        outcome = recover(path)
        remove_stale_temporaries(path)
        return outcome


__all__ = ["StampResult", "recover_file", "stamp_file"]
