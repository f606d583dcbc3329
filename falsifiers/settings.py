"""``[tool.apr-contracts]`` in pyproject.toml: where contracts live and which profile judges them.

A *profile* says which UNDETERMINED falsifiers the verdict may tolerate. The built-in ones:

========  ==================  =============  ====================================================
profile   optional-requires   allow-pending  meant for
========  ==================  =============  ====================================================
cpu       [cuda]              true           CI and laptops (the default): a falsifier that needs
                                             CUDA is still listed, as "requires cuda; not required
                                             by profile cpu", never silently dropped
gpu       []                  true           the GPU machine: CUDA falsifiers must run
release   []                  false          publish checks: nothing may be pending or skipped
========  ==================  =============  ====================================================

A table ``[tool.apr-contracts.profiles.NAME]`` adds a profile or overrides a built-in one. Unknown
keys are errors with a did-you-mean, as in contracts.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from falsifiers.errors import SettingsError

if sys.version_info >= (3, 11):  # the project's floor is 3.10, where tomli is the same parser
    import tomllib as _toml
else:  # pragma: no cover - exercised only on 3.10
    import tomli as _toml

PROFILE_ENV = "APR_CONTRACTS_PROFILE"
_KEYS = ("contracts", "tests", "profile", "profiles", "max-bytes")
_PROFILE_KEYS = ("optional-requires", "allow-pending", "description")


@dataclass(frozen=True, slots=True)
class Profile:
    """Which UNDETERMINED outcomes a verdict tolerates (they are still reported)."""

    name: str
    optional_requires: frozenset[str] = frozenset()
    allow_pending: bool = True
    description: str = ""


BUILTIN_PROFILES: dict[str, Profile] = {
    "cpu": Profile("cpu", frozenset({"cuda"}), True, "CI and CPU machines: CUDA falsifiers may stay undetermined"),
    "gpu": Profile("gpu", frozenset(), True, "the GPU machine: CUDA falsifiers must run"),
    "release": Profile("release", frozenset(), False, "publish checks: nothing pending, nothing skipped"),
}


@dataclass(frozen=True, slots=True)
class Settings:
    """The harness settings for one project.

    Attributes:
        root: the folder holding pyproject.toml (paths below are relative to it).
        contracts_dir: where the contract YAML lives.
        tests_dir: where `apr contracts new` writes the bound test.
        profile: the default profile's name.
        profiles: every known profile by name.
        max_bytes: the largest contract file the loader reads.
        configured: whether pyproject.toml has a ``[tool.apr-contracts]`` table.
    """

    root: Path
    contracts_dir: Path
    tests_dir: Path
    profile: str = "cpu"
    profiles: dict[str, Profile] = field(default_factory=lambda: dict(BUILTIN_PROFILES))
    max_bytes: int = 2 * 1024 * 1024
    configured: bool = False

    def resolve_profile(self, name: str | None = None) -> Profile:
        """The profile called ``name`` (else ``$APR_CONTRACTS_PROFILE``, else the default)."""
        chosen = name or os.environ.get(PROFILE_ENV) or self.profile
        if chosen not in self.profiles:
            from falsifiers.schema import did_you_mean  # error path only: see `_check_keys`

            nearest = did_you_mean(chosen, self.profiles)
            raise SettingsError(
                f"unknown profile {chosen!r}",
                hint=(f"did you mean {nearest!r}? " if nearest else "")
                + f"known profiles: {', '.join(sorted(self.profiles))}",
            )
        return self.profiles[chosen]


def find_pyproject(start: str | os.PathLike[str]) -> Path | None:
    """The nearest pyproject.toml at or above ``start``."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(pyproject: str | os.PathLike[str] | None, *, root: str | os.PathLike[str] | None = None) -> Settings:
    """Read ``[tool.apr-contracts]``; without the file or the table, the defaults apply.

    Args:
        pyproject: path to pyproject.toml, or ``None``.
        root: the project folder when there is no pyproject.toml.

    Raises:
        SettingsError: the table has an unknown key, a wrong type or a bad profile.
    """
    base = Path(pyproject).parent if pyproject else Path(root or ".")
    table: dict[str, Any] = {}
    if pyproject and Path(pyproject).is_file():
        try:
            with open(pyproject, "rb") as handle:
                document = _toml.load(handle)
        except (OSError, _toml.TOMLDecodeError) as err:
            raise SettingsError(f"cannot read {os.fspath(pyproject)}: {err}", path=pyproject) from err
        table = document.get("tool", {}).get("apr-contracts", None)
        configured = table is not None
        table = table or {}
    else:
        configured = False
    _check_keys(table, _KEYS, "[tool.apr-contracts]", pyproject)
    contracts = _get(table, "contracts", str, "contracts", pyproject)
    tests = _get(table, "tests", str, "tests", pyproject)
    default = _get(table, "profile", str, "cpu", pyproject)
    max_bytes = _get(table, "max-bytes", int, 2 * 1024 * 1024, pyproject)
    profiles = dict(BUILTIN_PROFILES)
    raw_profiles = _get(table, "profiles", dict, {}, pyproject)
    for name, body in raw_profiles.items():
        if not isinstance(body, dict):
            raise SettingsError(f"[tool.apr-contracts.profiles.{name}] must be a table", path=pyproject)
        _check_keys(body, _PROFILE_KEYS, f"[tool.apr-contracts.profiles.{name}]", pyproject)
        base_profile = profiles.get(name, Profile(name))
        optional = _get(body, "optional-requires", list, sorted(base_profile.optional_requires), pyproject)
        profiles[name] = Profile(
            name,
            frozenset(str(x) for x in optional),
            _get(body, "allow-pending", bool, base_profile.allow_pending, pyproject),
            _get(body, "description", str, base_profile.description, pyproject),
        )
    settings = Settings(
        root=base,
        contracts_dir=(base / contracts),
        tests_dir=(base / tests),
        profile=default,
        profiles=profiles,
        max_bytes=max_bytes,
        configured=configured,
    )
    settings.resolve_profile(default)  # a bad default is an error now, not at the end of a run
    return settings


def _check_keys(table: dict[str, Any], known: tuple[str, ...], where: str, path: Any) -> None:
    for key in table:
        if key not in known:
            # Error path only: falsifiers.schema imports PyYAML (through falsifiers.loader), ~9 ms
            # (python -X importtime, 2026-12-06) that every run would otherwise pay.
            from falsifiers.schema import did_you_mean

            nearest = did_you_mean(key, known)
            raise SettingsError(
                f"unknown key {key!r} in {where}",
                path=path,
                hint=f"did you mean {nearest!r}?" if nearest else f"known keys: {', '.join(known)}",
            )


def _get(table: dict[str, Any], key: str, kind: type, default: Any, path: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise SettingsError(
            f"{key!r} in [tool.apr-contracts] must be a {kind.__name__}, not {type(value).__name__} {value!r}",
            path=path,
        )
    return value


__all__ = ["BUILTIN_PROFILES", "PROFILE_ENV", "Profile", "Settings", "find_pyproject", "load_settings"]
