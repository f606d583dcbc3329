"""Where a command writes: one policy for every output, a file or a folder (issue 14).

Every command that writes (`apr export`, `import`, `stamp -o`, `tokenize`, `pretrain`, `card`,
`demo`, `contracts new`) checks its output here before it reads anything heavy, so the rules
are the same everywhere:

1. **An output is never its own input.** `refuse_overlap` refuses an output that is an input
   (the same real path, symlinks followed, or the same inode: a hard link), that lies inside an
   input folder, or that contains an input.
2. **An existing output needs ``--force``** (`check_file_output`, `check_folder_output`).
3. **A folder output replaces only what its command wrote.** Each folder written through
   `folder_output` carries a manifest, ``.apr-output.json``, naming the command and every file
   with its size and sha256, so that a rerun recognises "a previous output of the same command".
   Anything else in the folder is *foreign*: a file not listed, a listed file whose bytes changed
   since, or a folder. Foreign files are never deleted or replaced: without ``--force`` a folder
   holding any is refused, with ``--force`` the command writes beside them and still refuses if
   one of its files would replace a foreign one. A previous file of the same command that the new
   run does not produce is removed (it was ours, and left alone it would mix two runs).
4. **Nothing half-written replaces anything.** A new folder is built in a temporary folder beside
   it (``.NAME.tmp-PID-…``) and renamed into place. An existing folder receives the new files by a
   *commit*: the temporary folder is renamed to ``.NAME.commit-PID-…`` (the commit point), then
   its files are moved in one by one, the manifest last. A run killed before the commit point
   leaves the folder as it was; the next run that writes it removes the dead writer's temporary
   (`apr.format.atomic.remove_stale_temporaries`) and completes a dead writer's commit
   (`recover_folder`), so a kill never leaves two runs mixed for longer than that.

This module holds the rules; the manifest is `apr.format.output_manifest`, the staging and commit
`apr.format.folder_commit` (their public names are re-exported here).

Folder outputs the policy knows: ``apr export --format safetensors`` (flat files), ``apr tokenize``
(flat files) and ``apr demo`` (a tree: its manifest lists relative paths).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from apr.errors import AprFileNotFoundError, OutputExistsError, OutputIsInputError
from apr.format.folder_commit import LEGACY_SWAP_COMMAND, apply_commit, folder_output, recover_folder, remove_previous
from apr.format.output_manifest import (
    MANIFEST_NAME,
    FileRecord,
    file_record,
    is_internal,
    is_ours,
    is_within,
    read_manifest,
    record_tree,
    walk,
)

PathLike = str | os.PathLike[str]


# --- 1. an output is never its own input ------------------------------------------------------


def _identity(path: PathLike) -> tuple[int, int] | None:
    """``(device, inode)`` of what ``path`` names (symlinks followed), or None if nothing is there."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def _spellings(path: PathLike) -> tuple[Path, Path]:
    """The absolute path as given (lexically normalised) and the real path (symlinks followed)."""
    return Path(os.path.abspath(os.fspath(path))), Path(os.path.realpath(os.fspath(path)))


STDOUT = "-"


def refuse_stdout(output: PathLike, *, flag: str = "-o") -> None:
    """Refuse ``-`` (standard output) where a command writes a folder or cannot stream (exit 64).

    Example:
        >>> refuse_stdout("-", flag="--run-dir")
        Traceback (most recent call last):
        ...
        apr.errors.UsageError: --run-dir - (standard output) is not possible here: this output is a folder or a file renamed into place
          fix: give a path: a file for a single file (apr stamp, card, export --format gguf stream with -o -), a folder otherwise
    """
    if os.fspath(output) == STDOUT:
        from apr.errors import UsageError

        raise UsageError(f"{flag} - (standard output) is not possible here: this output is a folder or a file "
                         "renamed into place", field=flag,
                         hint="give a path: a file for a single file (apr stamp, card, export --format gguf stream "
                         "with -o -), a folder otherwise")


def refuse_overlap(output: PathLike, inputs: Iterable[PathLike | None], *, flag: str = "-o",
                   same_hint: str | None = None) -> None:
    """Refuse an ``output`` that is, contains or lies inside one of ``inputs``.

    Both the path as given and its real path are compared, so an output reached through a symlink
    is caught, and two paths naming one inode (a hard link) are the same file. ``same_hint`` replaces
    the fix shown when the output is the input itself (`apr stamp` points to ``--in-place``).

    An output spelled ``-`` means standard output by convention; a command that can stream swaps
    it for a temporary file before it gets here (`apr.cli.stdout_output`), so here it is refused:
    no file named ``-`` is ever created.

    Raises:
        UsageError: ``output`` is ``-`` (exit 64).
        OutputIsInputError: naming the input and the relation (exit 5); nothing was written.

    Example:
        >>> refuse_overlap("out.gguf", ["model.apr"])  # fine: unrelated paths
    """
    refuse_stdout(output, flag=flag)
    out_id = _identity(output)
    same = same_hint or "write to another path; the command never replaces what it reads"
    for source in inputs:
        if source is None:
            continue
        shown = os.fspath(source)
        if out_id is not None and out_id == _identity(source):
            (out_given, out_real), (in_given, in_real) = _spellings(output), _spellings(source)
            how = (" (a hard link to it)" if out_real != in_real
                   else " (through a symlink)" if out_given != in_given else "")
            raise OutputIsInputError(f"{flag} {os.fspath(output)!r} is the input {shown!r} itself{how}",
                                     path=os.fspath(output), field=flag, hint=same)
        for out in dict.fromkeys(_spellings(output)):  # deduplicated, in order: as given, then real
            for inp in dict.fromkeys(_spellings(source)):
                if out == inp:
                    raise OutputIsInputError(
                        f"{flag} {os.fspath(output)!r} is the input {shown!r} itself", path=os.fspath(output),
                        field=flag, hint=same)
                if is_within(inp, out):
                    raise OutputIsInputError(
                        f"{flag} {os.fspath(output)!r} contains the input {shown!r}", path=os.fspath(output),
                        field=flag, hint="choose an output that does not hold the input, e.g. a new folder: "
                        f"{flag} {Path(shown).parent / (Path(shown).stem + '-out')}")
                if is_within(out, inp):
                    raise OutputIsInputError(
                        f"{flag} {os.fspath(output)!r} lies inside the input folder {shown!r}",
                        path=os.fspath(output), field=flag,
                        hint=f"write beside it instead, e.g. {flag} {Path(shown).parent / out.name}")



# --- 2. file outputs ----------------------------------------------------------------------------


def check_file_output(
    path: PathLike,
    *,
    force: bool,
    inputs: Iterable[PathLike | None] = (),
    flag: str = "-o",
    parent_must_exist: bool = True,
    same_hint: str | None = None,
) -> Path:
    """Check a single-file output before any work; return its absolute path.

    Raises:
        OutputIsInputError: the output is, contains or lies inside an input (exit 5).
        OutputExistsError: a folder is there, or a file is there and not ``force`` (exit 5).
        AprFileNotFoundError: the folder it goes into does not exist (exit 3).
    """
    target = Path(os.path.abspath(os.fspath(path)))
    refuse_overlap(path, inputs, flag=flag, same_hint=same_hint)
    if target.is_dir():
        raise OutputExistsError(f"Output '{os.fspath(path)}' is a folder.", path=target, field=flag,
                                hint=f"give the path of the file to create, e.g. {flag} {target / 'out'}")
    if os.path.lexists(target) and not force:
        raise OutputExistsError(f"Output file '{os.fspath(path)}' already exists. Use --force to overwrite.",
                                path=target, field=flag, hint="pass --force to replace it, or choose another path")
    if parent_must_exist and not target.parent.is_dir():
        raise AprFileNotFoundError(f"output folder does not exist: {target.parent}", path=target, field=flag,
                                   hint=f"create it first: mkdir -p {target.parent}")
    return target



# --- 3. folder outputs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FolderTarget:
    """A checked folder output (from `check_folder_output`).

    Attributes:
        path: the folder (absolute).
        command: who writes it, e.g. ``"apr export --format safetensors"``.
        existed: the folder was there before this run.
        previous: the files a previous run of ``command`` wrote that are still exactly as written.
        foreign: every other entry in the folder (never touched).
        input_ids: ``(device, inode)`` of the inputs: no file that is an input gets replaced.
    """

    path: Path
    command: str
    existed: bool
    previous: dict[str, FileRecord] = field(default_factory=dict)
    foreign: tuple[str, ...] = ()
    input_ids: frozenset[tuple[int, int]] = frozenset()

    def refuse_collisions(self, names: Iterable[str]) -> None:
        """Refuse, before any work, when one of ``names`` (what the run will write) is foreign."""
        for name in names:
            dest = self.path / name
            if not os.path.lexists(dest):
                continue
            if os.path.isdir(dest) and not os.path.islink(dest):
                raise OutputExistsError(
                    f"the output folder holds a folder named {name!r}, where {self.command} writes a file",
                    path=dest, hint="move it away, or choose another output folder")
            if _identity(dest) in self.input_ids:
                raise OutputIsInputError(f"{name!r} in the output folder is an input of this command",
                                         path=dest, hint="choose another output folder")
            if name not in self.previous:
                raise OutputExistsError(
                    f"the output folder holds {name!r}, which {self.command} did not write; it is never replaced",
                    path=dest, hint="move that file away, or choose another output folder")


def _describe(names: tuple[str, ...]) -> str:
    shown = ", ".join(repr(n) for n in names[:5])
    return f"{len(names)} entr{'y' if len(names) == 1 else 'ies'} ({shown}{', ...' if len(names) > 5 else ''})"


def check_folder_output(
    path: PathLike,
    *,
    command: str,
    force: bool,
    inputs: Iterable[PathLike | None] = (),
    flag: str = "-o",
) -> FolderTarget:
    """Check a folder output before any work.

    First completes or removes what a killed earlier writer of this folder left (`recover_folder`),
    then reads the folder's manifest to tell a previous output of ``command`` from foreign files.

    Raises:
        OutputIsInputError: the folder is, contains or lies inside an input.
        OutputExistsError: the folder exists and not ``force`` (the message says whether it holds a
            previous output of ``command`` or foreign files); a file is there; it holds the output
            of another command.
        AprFileNotFoundError: the folder it goes into does not exist.
    """
    target = Path(os.path.abspath(os.fspath(path)))
    input_list = [p for p in inputs if p is not None]
    refuse_overlap(path, input_list, flag=flag)
    ids = frozenset(i for i in (_identity(p) for p in input_list) if i is not None)
    if not target.parent.is_dir():
        raise AprFileNotFoundError(f"output folder does not exist: {target.parent}", path=target, field=flag,
                                   hint=f"create it first: mkdir -p {target.parent}")
    recover_folder(target)
    if not os.path.lexists(target):
        return FolderTarget(target, command, existed=False, input_ids=ids)
    if not target.is_dir():
        raise OutputExistsError(f"output exists and is a file: {target}", path=target, field=flag,
                                hint="choose another path for the output folder")
    owner, recorded = read_manifest(target)
    if owner is not None and owner != command:
        raise OutputExistsError(
            f"the output folder holds the output of `{owner}`, not of `{command}`", path=target, field=flag,
            hint="choose another output folder (one command per folder, so neither overwrites the other)")
    files, folders = walk(target)
    entries = [n for n in files if not is_internal(n)]
    if not force:
        if not entries:
            what = "output folder already exists"
        elif owner == command:
            what = f"output folder holds a previous `{command}` output"
        else:
            what = f"output folder is not empty and was not written by `{command}`: {_describe(tuple(entries))}"
        raise OutputExistsError(what, path=target, field=flag,
                                hint="pass --force to replace the files this command wrote (others are never "
                                "touched), or choose another output folder")
    previous = {n: r for n, r in recorded.items() if n in entries and is_ours(target, n, r)}
    foreign_files = [n for n in entries if n not in previous]
    # a folder is worth naming only when no file under it is (an empty folder someone made); one
    # under in-folder staging is internal (is_internal matches its first part's prefix, so the path)
    empty = [d for d in folders if not any(n.startswith(d + "/") for n in entries) and not is_internal(d)]
    foreign = tuple(foreign_files + empty)
    return FolderTarget(target, command, existed=True, previous=previous, foreign=foreign, input_ids=ids)



def describe_foreign(names: tuple[str, ...]) -> str:
    """``"2 entries ('a', 'b')"``: for messages naming what a command refuses to touch."""
    return _describe(names)


__all__ = [
    "LEGACY_SWAP_COMMAND",
    "MANIFEST_NAME",
    "FileRecord",
    "FolderTarget",
    "apply_commit",
    "check_file_output",
    "check_folder_output",
    "describe_foreign",
    "file_record",
    "folder_output",
    "read_manifest",
    "record_tree",
    "recover_folder",
    "refuse_overlap",
    "remove_previous",
]
