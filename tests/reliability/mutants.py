"""Deliberate faults for contracts/reliability-v1.yaml: each must turn its falsifier's tests red.

``python -m tests.reliability.mutants NAME [pytest args]`` runs pytest with NAME patched in (the
same shape as ``tests/format/mutants.py``). The kill and bomb tests run children that import
`apr` afresh, so for those the patch is also installed in every child through ``APR_MUTANT``:
`install_from_env` runs in the kill zygote and the bomb child when the variable is set.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import struct
import sys
from collections.abc import Iterator
from typing import Any

from tests.reliability import security_scan as _security_scan

HUGE = 2**62
_real_unsafe_calls = _security_scan.unsafe_calls
_real_package_sources = _security_scan.package_sources


def parse_index_without_checks(data: Any, tensor_count: int, *, base_offset: int = 0) -> list:
    """parse_index that trusts every length (struct.error / IndexError escape on bad bytes)."""
    from apr.format.dtypes import dtype_from_code
    from apr.format.tensor_index import TensorEntry

    view, pos, entries = bytes(data), 0, []
    for _ in range(tensor_count):
        (name_len,) = struct.unpack_from("<H", view, pos)
        name = view[pos + 2 : pos + 2 + name_len].decode("utf-8", "replace")
        pos += 2 + name_len
        code, ndim = view[pos], view[pos + 1]
        shape = struct.unpack_from(f"<{ndim}Q", view, pos + 2)
        pos += 2 + 8 * ndim
        offset, size = struct.unpack_from("<QQ", view, pos)
        pos += 16
        entries.append(TensorEntry(name, dtype_from_code(code), tuple(shape), offset, size))
    return entries


@contextlib.contextmanager
def write_in_place(path: Any, *, verify: Any = None, durable: bool = True) -> Iterator[Any]:
    """atomic_write that writes straight onto the target (what nanoGPT's torch.save does)."""
    with open(path, "wb") as handle:
        yield handle


def remove_nothing(path: Any, *, dead_only: bool = False) -> list[str]:
    return []


def inside_without_check(root: Any, name: str) -> Any:
    """apr.tokenizer.folder._inside without the "stays inside the folder" check."""
    candidate = root / name
    return candidate.resolve() if candidate.exists() else None



def config_dtype_evaluated(config: Any) -> dict[str, Any]:
    """metadata_from_hf_config that resolves a string torch_dtype with eval (e.g. "torch.float16"):
    an input's text is executed."""
    from apr.convert.hf_config import metadata_from_hf_config

    dtype = config.get("torch_dtype")
    if isinstance(dtype, str):
        with contextlib.suppress(Exception):
            eval(dtype, {"torch": None})  # the fault this mutant plants
    return metadata_from_hf_config(config)


MUTANTS: dict[str, tuple[str, str]] = {
    "tokenizer-follows-symlinks": ("apr.tokenizer.folder._inside", "inside_without_check"),
    "reader-index-unbounded": ("apr.format.reader.parse_index", "parse_index_without_checks"),
    "atomic-write-in-place": ("apr.format.writer.atomic_write", "write_in_place"),
    "no-stale-cleanup": ("apr.format.atomic.remove_stale_temporaries", "remove_nothing"),
    "metadata-size-unbounded": ("apr.format.reader.MAX_METADATA_SIZE", "HUGE"),
}


def _patch(name: str) -> tuple[Any, str, Any]:
    target, replacement = MUTANTS[name]
    module_name, attr = target.rsplit(".", 1)
    module = importlib.import_module(module_name)
    original = getattr(module, attr)
    setattr(module, attr, globals()[replacement])
    return module, attr, original


@contextlib.contextmanager
def apply(name: str) -> Iterator[None]:
    """Patch mutant ``name`` in for the block (and in children started meanwhile, via APR_MUTANT)."""
    module, attr, original = _patch(name)
    os.environ["APR_MUTANT"] = name
    try:
        yield
    finally:
        setattr(module, attr, original)
        os.environ.pop("APR_MUTANT", None)


def active_mutant() -> str | None:
    """The mutant of this module currently patched into this process (by `apply` or the harness's
    ``--mutants``), so tests that start children can pass it on through ``APR_MUTANT``."""
    for name, (target, replacement) in MUTANTS.items():
        module_name, attr = target.rsplit(".", 1)
        module = sys.modules.get(module_name)
        if module is not None and getattr(module, attr, None) is globals()[replacement]:
            return name
    return os.environ.get("APR_MUTANT")


def child_env() -> dict[str, str]:
    """``os.environ`` for a child process, with ``APR_MUTANT`` set when a mutant is active here."""
    env = dict(os.environ)
    name = active_mutant()
    if name:
        env["APR_MUTANT"] = name
    return env


def install_from_env() -> None:
    """In a child process: apply the mutant named by ``APR_MUTANT``, if any."""
    name = os.environ.get("APR_MUTANT")
    if name:
        _patch(name)
        if name == "no-stale-cleanup":  # atomic_write calls it by its module-global name
            import apr.format.atomic as atomic

            atomic.remove_stale_temporaries = remove_nothing


if __name__ == "__main__":  # python -m tests.reliability.mutants NAME [pytest args...]
    import pytest

    with apply(sys.argv[1]):
        sys.exit(pytest.main(sys.argv[2:]))


def sources_with_pickle(roots: Any = None) -> Any:
    """security_scan.package_sources with one more module in apr/ that unpickles: the package scan must flag it."""
    yield from _real_package_sources() if roots is None else _real_package_sources(roots)
    yield "apr/format/_cache.py", "import pickle\n\ndef load(blob):\n    return pickle.loads(blob)\n"


def scan_blind_to_torch_load(source: str, filename: str) -> list[str]:
    """security_scan.unsafe_calls that no longer reports torch.load without weights_only=True."""
    return [f for f in _real_unsafe_calls(source, filename) if "torch.load" not in f]
