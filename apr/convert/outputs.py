"""What `apr import` and `apr export` may write, through the project's one output policy.

The rules live in `apr.format.outputs` (never the input, an existing output needs ``--force``, a
folder output replaces only its own files, nothing half-written replaces anything). This module
says what each conversion *reads*, so that its output can be checked against all of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from apr.format.outputs import check_file_output, check_folder_output, folder_output, recover_folder

# Files an import of a single ``.safetensors`` file reads beside it (a folder source is read whole).
_SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "chat_template.jinja", "model.safetensors.index.json",
               "vocab.json", "merges.txt", "added_tokens.json")


def check_output(path: str | os.PathLike[str], *, force: bool,
                 inputs: Iterable[str | os.PathLike[str] | None] = ()) -> Path:
    """A conversion's file output (`apr.format.outputs.check_file_output`): not one of ``inputs``,
    not inside an input folder; an existing file needs ``force``; its folder exists."""
    return check_file_output(path, force=force, inputs=inputs)


def import_inputs(source: str | os.PathLike[str], tokenizer: str | os.PathLike[str] | None = None) -> tuple[Path, ...]:
    """Everything an import of ``source`` reads: a model folder as a whole (so the output may not lie
    in it), a ``.gguf`` file, or a ``.safetensors`` file with the side files beside it; plus an
    explicit ``--tokenizer`` folder or file."""
    src = Path(source)
    found: list[Path] = [src]
    if src.is_file() and src.suffix.lower() != ".gguf":
        found += [src.parent / name for name in _SIDE_FILES]
    if tokenizer is not None:
        found.append(Path(tokenizer))
    return tuple(found)


__all__ = ["check_folder_output", "check_output", "folder_output", "import_inputs", "recover_folder"]
