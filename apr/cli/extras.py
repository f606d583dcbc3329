"""Optional parts of the package, by job (issue 17), and the check a command makes before it runs.

``pip install apr-contracts`` gives the format, identity, stamp, inspect/validate, import/export,
card and the contract harness; the ``train`` extra adds PyTorch for what executes a model (pretrain,
run, qa, readiness, demo). A command names the extras it needs in its parser defaults
(``needs_extras``); `require_extras` refuses it with the pip command when one is missing, before any
work, instead of an ImportError half-way.
"""

from __future__ import annotations

import importlib.util

from apr.errors import MissingExtraError

# extra -> (the module that proves it is installed, what it provides)
EXTRAS: dict[str, tuple[str, str]] = {
    "train": ("torch", "PyTorch, which runs and trains models"),
    "hf": ("transformers", "Hugging Face transformers"),
    "tensorboard": ("tensorboard", "TensorBoard (the event files torch.utils.tensorboard writes)"),
    "plot": ("matplotlib", "matplotlib, which draws the loss curve"),
}
# extra -> what to install before it, where pip alone would pick the wrong build
_BEFORE: dict[str, str] = {
    "train": " (for a CPU-only PyTorch first: pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)",
}


def missing_extras(extras: tuple[str, ...]) -> list[str]:
    """The extras among ``extras`` whose module cannot be found (found, not imported: cheap)."""
    return [extra for extra in extras if importlib.util.find_spec(EXTRAS[extra][0]) is None]


def require_extras(command: str, extras: tuple[str, ...]) -> None:
    """Raise `MissingExtraError` naming the first missing extra of ``command`` and how to add it."""
    for extra in missing_extras(extras):
        module, provides = EXTRAS[extra]
        raise MissingExtraError(
            f"apr {command} needs {provides} (the {module!r} module is not installed)",
            field=extra,
            hint=f"pip install 'apr-contracts[{extra}]'{_BEFORE.get(extra, '')}")


__all__ = ["EXTRAS", "missing_extras", "require_extras"]
