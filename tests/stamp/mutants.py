"""Deliberate faults for contracts/apr-stamp-v1.yaml: each must turn its falsifier's tests red."""

from __future__ import annotations

from typing import Any

from apr.format.header import Flags
from apr.stamp import patch as _patch
from apr.stamp import plan as _plan

_real_apply = _patch.apply_patch


def flags_forgotten(metadata: Any, flags: int, patch: Any) -> tuple[dict[str, Any], int]:
    """apply_patch that drops every input flag but the ones the stamp adds."""
    meta, _ = _real_apply(metadata, flags, patch)
    return meta, int(Flags.LAYOUT_ROW_MAJOR | (Flags.HAS_VOCAB if patch.tokenizer is not None else 0))


def stamp_counter(metadata: Any, flags: int, patch: Any) -> tuple[dict[str, Any], int]:
    """apply_patch that counts stamps in the metadata: stamping twice is not idempotent."""
    meta, new_flags = _real_apply(metadata, flags, patch)
    meta["stamped_times"] = int(meta.get("stamped_times", 0)) + 1
    return meta, new_flags


def drops_description(metadata: Any, flags: int, patch: Any) -> tuple[dict[str, Any], int]:
    """apply_patch that also removes a field the patch does not name (description)."""
    meta, new_flags = _real_apply(metadata, flags, patch)
    if patch.description is None:
        meta.pop("description", None)
    return meta, new_flags


def always_has_any(self: Any) -> bool:
    """ProvenancePatch.has_any that says yes to an empty patch."""
    return True


def accept_any_license(value: str, *, flag: str = "--license") -> str:
    """validate_license that accepts anything as typed."""
    return value


def crc_shift_ignores_length(crc: int, length: int) -> int:
    """crc_shift that forgets to advance over the data section."""
    return crc


def output_never_refused(path: str, output: str, force: bool) -> None:
    """_check_output that lets -o overwrite anything, the input included."""
    return None


_ = _plan


def copy_range_flips_last_byte(src: int, dst: int, src_off: int, dst_off: int, count: int) -> str:
    """copy_range that corrupts the last byte it copies (a tensor byte changes in -o mode)."""
    import os

    from apr.stamp import rewrite as _rewrite

    method = _real_copy_range(src, dst, src_off, dst_off, count)
    if count:
        last = os.pread(dst, 1, dst_off + count - 1)
        os.pwrite(dst, bytes([last[0] ^ 0xFF]), dst_off + count - 1)
    _ = _rewrite
    return method


def journal_without_fsync(target: str, journal: Any) -> str:
    """write_journal that renames the journal into place without making it durable first."""
    from apr.stamp import journal as _journal

    final = _journal.journal_path(target)
    with open(final, "wb") as handle:
        handle.write(journal.to_bytes())
    return final


def _capture_copy_range() -> Any:
    from apr.stamp import rewrite as _rewrite

    return _rewrite.copy_range


_real_copy_range = _capture_copy_range()


def recover_discards_journal(target: Any) -> str:
    """journal.recover that deletes a pending journal without writing the old prefix back."""
    import os

    from apr.stamp import journal as _journal

    target = os.path.abspath(os.fspath(target))
    _journal._remove_stray_temporaries(target)
    if not os.path.exists(_journal.journal_path(target)):
        return "none"
    os.unlink(_journal.journal_path(target))
    return "rolled-back"


def _fits_only_when_smaller(self: Any) -> bool:
    return self.header.data_offset < self.old_data_offset


fits_only_when_smaller = property(_fits_only_when_smaller)
fits_only_when_smaller.__doc__ = "StampPlan.fits_in_place with < for <=: a stamp that fits falls back to a rewrite."


def has_vocab_forgotten(metadata: Any, flags: int, patch: Any) -> tuple[dict[str, Any], int]:
    """apply_patch that embeds the tokenizer but does not set HAS_VOCAB."""
    meta, new_flags = _real_apply(metadata, flags, patch)
    return meta, (new_flags & ~int(Flags.HAS_VOCAB)) | (int(flags) & int(Flags.HAS_VOCAB))


def ignore_pending_journal(args: Any) -> None:
    """The CLI's check for an interrupted stamp, gone: readers take a half-written file as it is."""
    return None
