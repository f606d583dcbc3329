"""License values for `apr stamp --license/--data-license`: SPDX expressions, checked.

Accepted: any expression of SPDX license ids (the full list shipped with ``license-expression``,
deprecated ids such as ``GPL-2.0`` included) joined by ``AND``/``OR``/``WITH`` and parentheses,
e.g. ``Apache-2.0 OR MIT``; ``LicenseRef-<id>`` for a license that is not on the list (SPDX's own
mechanism); and, for compatibility with files aprender stamps, the Hugging Face Hub license ids
aprender's allow-list has beyond SPDX: ``llama2``, ``llama3``, ``llama3.1``, ``gemma``.

Rejected, with a did-you-mean over the SPDX ids where one is close: everything else, including
``""``, ``unknown``, ``TBD``, ``proprietary``, ``whatever``, ``Apache2``, ``MIT License``, the
list's loose aliases (``GPL`` alone names no version) and aprender's ``custom`` (a license nobody
can look up; use ``LicenseRef-<name>``).

The stored value is the canonical rendering (``mit or apache-2.0`` → ``MIT OR Apache-2.0``), so
stamping the same license twice gives the same bytes.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping
from typing import Any

from apr.errors import LicenseError

HF_HUB_LICENSES: tuple[str, ...] = ("llama2", "llama3", "llama3.1", "gemma")
_PLACEHOLDERS = frozenset({"", "unknown", "tbd", "todo", "proprietary", "none", "noassertion", "custom", "n/a", "other"})
_OPERATORS = frozenset({"and", "or", "with"})
_TOKEN = re.compile(r"[()]|[^\s()]+")
_LICENSE_REF = re.compile(r"^LicenseRef-[A-Za-z0-9.\-]+$")
_SPDX_ID_SHAPE = re.compile(r"^[A-Za-z0-9.+\-]+$")


@functools.lru_cache(maxsize=1)
def _licensing():
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@functools.lru_cache(maxsize=1)
def _spdx_ids() -> dict[str, str]:
    """lower-case id -> canonical id: current SPDX keys plus deprecated SPDX ids (``GPL-2.0``)."""
    return _spdx_id_table(_licensing().known_symbols)


def _spdx_id_table(known_symbols: Mapping[str, Any]) -> dict[str, str]:
    """The table of `_spdx_ids` from license-expression's ``known_symbols`` (uncached, so tests and
    mutation testing see the rules): every key, and each alias shaped like an SPDX id (letters,
    digits, ``.+-``, with a ``-`` or ``+``; not a ``LicenseRef-``). A key always wins its lower-case
    spelling; of two aliases with the same spelling, the first seen wins."""
    ids: dict[str, str] = {}
    for key, symbol in known_symbols.items():
        ids[key.lower()] = key
        for alias in symbol.aliases:
            looks_like_id = _SPDX_ID_SHAPE.match(alias) and ("-" in alias or "+" in alias)
            if looks_like_id and not alias.startswith("LicenseRef-"):
                ids.setdefault(alias.lower(), key)
    return ids


def spdx_license_ids(*, exceptions: bool = False) -> list[str]:
    """Every license id accepted (canonical spelling); ``exceptions=True``: the ``WITH`` exception ids."""
    return sorted(k for k, s in _licensing().known_symbols.items() if bool(s.is_exception) == exceptions)


def suggest_license(value: str) -> str | None:
    """The closest SPDX id to ``value`` (case-insensitive), or None."""
    ids = _spdx_ids()
    probe = re.sub(r"\s*\blicen[cs]e\b\s*", " ", value.strip().lower()).strip().replace(" ", "-")
    close = difflib.get_close_matches(probe, list(ids), n=1, cutoff=0.6)
    return ids[close[0]] if close else None


def validate_license(value: str, *, flag: str = "--license") -> str:
    """Check ``value`` as a license expression and return its canonical form.

    Args:
        value: what the user typed.
        flag: the flag it came from, named in the error.

    Returns:
        The canonical expression, e.g. ``"Apache-2.0 OR MIT"``.

    Raises:
        LicenseError: not an SPDX expression; carries ``value`` and ``suggestion``.

    Example:
        >>> validate_license("apache-2.0 or mit")
        'Apache-2.0 OR MIT'
    """
    text = value.strip()
    if text.lower() in {h.lower() for h in HF_HUB_LICENSES}:
        return text.lower()
    if text.lower() in _PLACEHOLDERS:
        raise _error(value, flag, "is a placeholder, not a license", None)
    tokens = _TOKEN.findall(text)
    symbols = [t for t in tokens if t not in "()" and t.lower() not in _OPERATORS]
    ids = _spdx_ids()
    refs = [t for t in symbols if _LICENSE_REF.match(t) and t.lower() not in ids]
    unknown = [t for t in symbols if t.lower() not in ids and t not in refs]
    if unknown:
        suggestion = (suggest_license(text) if len(symbols) > 1 else None) or suggest_license(unknown[0])
        raise _error(value, flag, f"names {unknown[0]!r}, which is not an SPDX license id", suggestion)
    for ref, key in _aliased_refs(refs):
        why = f"names {ref!r}, which the SPDX license list already has as an alias of {key!r}"
        raise _error(value, flag, why, key)
    licensing = _licensing()
    if refs:
        from license_expression import LicenseSymbol, Licensing

        licensing = Licensing(list(licensing.known_symbols.values()) + [LicenseSymbol(r) for r in set(refs)])
    try:  # license-expression sets normalized_expression exactly when it reports no error
        info = licensing.validate(text)
        errors, normalized = info.errors, info.normalized_expression
    except Exception:  # noqa: BLE001 - license-expression itself trips on some malformed input ("MIT AND")
        errors, normalized = ["incomplete expression"], None
    if errors:
        raise _error(value, flag, f"is not a valid SPDX expression ({errors[0]})", suggest_license(text))
    return str(normalized)


def _aliased_refs(refs: list[str]) -> list[tuple[str, str]]:
    """The ``LicenseRef-`` names that license-expression already knows as an alias of another id
    (``LicenseRef-AGPL`` is ``AGPL-3.0-or-later``), each with that id. Declaring one anew as a
    symbol of its own would collide with the alias (license-expression refuses the symbol table),
    and storing the alias would hide which license it means: the caller is told the id instead."""
    licensing = _licensing()
    return [(ref, key) for ref in refs if (key := licensing.parse(ref).key) != ref]


def _error(value: str, flag: str, why: str, suggestion: str | None) -> LicenseError:
    hint = f"did you mean {suggestion!r}? e.g. `{flag} {suggestion}`" if suggestion else (
        f"pass an SPDX id such as `{flag} Apache-2.0`, an expression such as `{flag} \"Apache-2.0 OR MIT\"`, "
        f"or `{flag} LicenseRef-<name>` for a license not on the SPDX list (https://spdx.org/licenses/)"
    )
    return LicenseError(
        f"{flag} {value!r} {why}; a license the Hugging Face Hub and `apr validate-manifest` cannot "
        "look up is not a license",
        field=flag,
        hint=hint,
        value=value,
        suggestion=suggestion,
    )


def validate_data_license(value: str, *, strict: bool = False) -> str:
    """``--data-license``: an SPDX expression (stored in canonical form) or, unless ``strict``, free
    text describing the data's terms, stored verbatim as aprender does (a corpus mixed from many
    sources often has no single SPDX expression: "Apache-2.0 / permissive-aggregate").

    Blank text and placeholders ("unknown", "TBD", "none", ...) describe nothing and are refused
    either way; `is_spdx_expression` tells the free text apart for `inspect --explain` and the card.

    Raises:
        LicenseError: blank, a placeholder, or (``strict``) not an SPDX expression.

    Example:
        >>> validate_data_license("apache-2.0"), validate_data_license("Apache-2.0 / permissive-aggregate")
        ('Apache-2.0', 'Apache-2.0 / permissive-aggregate')
    """
    try:
        return validate_license(value, flag="--data-license")
    except LicenseError:
        if strict or not value.strip() or value.strip().lower() in _PLACEHOLDERS:
            raise
        return value


def is_spdx_expression(value: str) -> bool:
    """Whether ``value`` is an SPDX expression `validate_license` accepts (a Hub id included)."""
    try:
        validate_license(value)
    except LicenseError:
        return False
    return True


__all__ = ["HF_HUB_LICENSES", "is_spdx_expression", "spdx_license_ids", "suggest_license", "validate_data_license",
           "validate_license"]
