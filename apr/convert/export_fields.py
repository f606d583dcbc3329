"""Metadata values checked before an export writes them into a format that cannot hold them.

An APR file can carry text that is not valid UTF-8 (a lone surrogate survives JSON's ``\\udfff``
escape) and floats beyond float32; GGUF stores strings as UTF-8 and ``rms_norm_eps`` /
``rope_theta`` as float32, ``tokenizer_config.json`` is UTF-8. Found by the no-traceback
campaign (FALSIFY-RELIABILITY-016): each used to end as an internal error half-way through the
write. Checked up front, so the refusal names the key and nothing is written.
"""

from __future__ import annotations

import math
import os

import numpy as np

from apr.errors import ConvertError


def utf8_text(value: str, *, field: str, path: str | os.PathLike[str]) -> str:
    """``value`` if it encodes as UTF-8; else a ConvertError naming ``field`` and the bad offset."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ConvertError(
            f"metadata {field!r} holds a character that is not valid Unicode text "
            f"(a lone surrogate {value[err.start]!r} at character {err.start}); the export format stores UTF-8",
            path=path, field=field, hint=_fix(field, path)) from None
    return value


def float32_value(value: float, *, field: str, path: str | os.PathLike[str]) -> float:
    """``value`` if it is finite as a float32; else a ConvertError naming ``field``."""
    number = float(value)
    if not math.isfinite(number) or abs(number) > float(np.finfo(np.float32).max):
        raise ConvertError(
            f"metadata {field!r} = {number!r} does not fit a float32, which is how GGUF stores it",
            path=path, field=field, hint=_fix(field, path))
    return number


def _fix(field: str, path: str | os.PathLike[str]) -> str:
    """The command that replaces ``field``: `apr stamp` for the fields it sets, else a re-import."""
    if field in ("name", "description"):
        return f"set a new one: apr stamp {os.fspath(path)} --in-place --{field} '...'"
    return f"the checkpoint's {field!r} is damaged: re-import or re-train {os.fspath(path)} from its source"


__all__ = ["float32_value", "utf8_text"]
