"""The staging folder of `apr publish`: what the Hub repository will hold, built offline.

Layout (the repository root)::

    README.md                  the model card; front matter + apr_readiness, apr_sha256
    NAME.apr                   the checkpoint, byte for byte (its sha256 is in the card)
    config.json, generation_config.json, model.safetensors, tokenizer.json, tokenizer_config.json
                               the Hugging Face folder `apr export --format safetensors` writes
    NAME-QUANT.gguf            the GGUF `apr export --format gguf --quantize QUANT` writes
    CARD-loss.png              images the card links beside itself (`apr card`'s loss curve)
    .apr-publish.json          what this command wrote (never uploaded)

The folder is built beside its final place and renamed into it, so a failure leaves the previous
staging (or nothing) rather than half a repository. An existing staging folder is replaced only
when everything in it was written by an earlier `apr publish` (its ``.apr-publish.json`` says so);
anything else is refused, never deleted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apr.errors import AprFileNotFoundError, OutputExistsError, UsageError

FORMATS: tuple[str, ...] = ("apr", "safetensors", "gguf")
MARKER = ".apr-publish.json"
MARKER_FORMAT = "apr-publish/1"
# the Hub's repo id rules: owner/name, letters, digits, '-', '_', '.', no '--' or '..', at most 96 each
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO = re.compile(rf"({_PART})/({_PART})")
_HF_FILES = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


class PublishRefused(Exception):
    """Readiness said NO-GO: nothing is staged or uploaded (the CLI prints the blockers, exit 1)."""

    def __init__(self, report: Any) -> None:
        super().__init__(f"readiness NO-GO: {', '.join(g.name for g in report.failed)}")
        self.report = report


@dataclass(frozen=True, slots=True)
class PublishPlan:
    """What one `apr publish` will do, checked before any work."""

    repo: str
    checkpoint: Path
    model_card: Path
    formats: tuple[str, ...]
    quantize: str
    staging: Path

    @property
    def name(self) -> str:
        return self.repo.split("/", 1)[1]


@dataclass(frozen=True, slots=True)
class StagedFile:
    """One file of the staging folder, as the Hub commit will carry it."""

    path: str  # relative to the staging folder, '/'-separated
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes}


def check_repo_id(repo: str) -> str:
    """``owner/name`` as the Hub accepts it.

    Raises:
        UsageError: anything else (exit 64).

    Example:
        >>> check_repo_id("paiml/albor-370m-v1")
        'paiml/albor-370m-v1'
    """
    if not isinstance(repo, str) or not _REPO.fullmatch(repo) or "--" in repo or ".." in repo \
            or repo.endswith(".git"):
        raise UsageError(f"{repo!r} is not a Hugging Face repository id", field="REPO",
                         hint="pass OWNER/NAME, e.g. paiml/albor-370m-v1 (letters, digits, '-', '_', '.')")
    return repo


def parse_formats(value: str) -> tuple[str, ...]:
    """``apr,safetensors,gguf`` -> the formats, in that order, each once.

    Example:
        >>> parse_formats("gguf,apr")
        ('apr', 'gguf')
    """
    wanted = [part.strip().lower() for part in value.split(",") if part.strip()]
    unknown = [w for w in wanted if w not in FORMATS]
    if unknown or not wanted:
        raise UsageError(f"--formats {value!r}: {'unknown ' + ', '.join(map(repr, unknown)) if unknown else 'empty'}",
                         field="--formats", hint=f"a comma-separated subset of {','.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in wanted)


def plan_publish(repo: str, checkpoint: str | os.PathLike[str], *, model_card: str | os.PathLike[str],
                 formats: Sequence[str] = FORMATS, quantize: str = "q8_0",
                 staging: str | os.PathLike[str] | None = None) -> PublishPlan:
    """Check everything a publish needs before any work.

    Raises:
        UsageError: a bad repo id, format or quantization.
        AprFileNotFoundError: no checkpoint or no model card.
        OutputExistsError: a staging folder that holds files an earlier publish did not write.
    """
    from apr.convert.gguf_export import parse_gguf_quant

    check_repo_id(repo)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UsageError(f"unknown formats {unknown}", field="--formats", hint=f"a subset of {','.join(FORMATS)}")
    quant = parse_gguf_quant(quantize).value
    for path, what, hint in ((checkpoint, "checkpoint", "pass the .apr file to publish"),
                             (model_card, "model card", "write one: apr card CHECKPOINT -o CARD.md")):
        if not os.path.isfile(path):
            raise AprFileNotFoundError(f"{what} not found", path=os.fspath(path), hint=hint)
    name = repo.split("/", 1)[1]
    target = Path(staging) if staging is not None else Path(f"{name}.publish")
    _check_replaceable(target)  # before the gates run: a refused folder should not cost their minutes
    return PublishPlan(repo=repo, checkpoint=Path(checkpoint), model_card=Path(model_card),
                       formats=tuple(f for f in FORMATS if f in formats), quantize=quant, staging=target)


def card_text(plan: PublishPlan, *, sha256: str, verdict: str) -> str:
    """The repository's README.md: the card, its front matter completed for the Hub and bound to
    the exact file (``apr_readiness``, ``apr_sha256``)."""
    from huggingface_hub import ModelCard

    card = ModelCard.load(os.fspath(plan.model_card))
    data = card.data
    data.library_name = data.library_name or "apr"
    tags = list(data.tags or [])
    for tag in ("apr", *(["gguf"] if "gguf" in plan.formats else []),
                *(["safetensors"] if "safetensors" in plan.formats else [])):
        if tag not in tags:
            tags.append(tag)
    data.tags = tags
    data.apr_readiness = verdict
    data.apr_sha256 = sha256
    return f"---\n{data.to_yaml()}\n---\n{card.text}"


def build_staging(plan: PublishPlan, *, sha256: str, verdict: str, progress: Any = None) -> list[StagedFile]:
    """Write the staging folder (see the module docstring) and return its files.

    Raises:
        OutputExistsError: the staging folder holds files an earlier publish did not write.
        ConvertError, UnsupportedArchitectureError: an export the checkpoint cannot make.
    """
    from apr.convert.gguf_export import export_gguf, parse_gguf_quant
    from apr.convert.hf_export import export_safetensors
    from apr.format.atomic import atomic_write

    _check_replaceable(plan.staging)
    parent = plan.staging.resolve().parent
    tmp = parent / f".{plan.staging.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # ours: a killed earlier run of this process id
    try:
        if "safetensors" in plan.formats:
            export_safetensors(plan.checkpoint, tmp, progress=progress)
            (tmp / ".apr-output.json").unlink(missing_ok=True)  # the export's own manifest: not for the Hub
        else:
            tmp.mkdir()
        if "apr" in plan.formats:
            _copy(plan.checkpoint, tmp / f"{plan.name}.apr")
        if "gguf" in plan.formats:
            export_gguf(plan.checkpoint, tmp / f"{plan.name}-{plan.quantize}.gguf",
                        quantize=parse_gguf_quant(plan.quantize))
        with atomic_write(tmp / "README.md") as handle:
            handle.write(card_text(plan, sha256=sha256, verdict=verdict).encode("utf-8"))
        for image in card_images(plan.model_card):  # the card's links resolve on the Hub as they do here
            _copy(image, tmp / image.name)
        files = describe(tmp)
        marker = {"format": MARKER_FORMAT, "repo": plan.repo, "sha256": sha256, "verdict": verdict,
                  "files": [f.path for f in files]}
        with atomic_write(tmp / MARKER) as handle:
            handle.write((json.dumps(marker, indent=2) + "\n").encode("utf-8"))
        _swap_in(tmp, plan.staging)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return files


def _swap_in(built: Path, staging: Path) -> None:
    """Rename the finished folder ``built`` to ``staging``, an earlier staging moved aside first.

    Not `atomic_write`: that replaces one file, and this is a folder (a folder cannot be renamed
    over a non-empty one). The earlier staging (checked by `_check_replaceable`: all of it an earlier
    publish's) is renamed aside, not deleted, until the new one is in place; if that rename fails
    it is put back, so a failed publish leaves the previous staging as it was.
    """
    aside = staging.resolve().parent / f".{staging.name}.old-{os.getpid()}"
    shutil.rmtree(aside, ignore_errors=True)  # ours: a killed earlier run of this process id
    had_one = staging.exists()
    if had_one:
        os.rename(staging, aside)
    try:
        os.replace(built, staging)
    except BaseException:
        if had_one:
            os.rename(aside, staging)
        raise
    shutil.rmtree(aside, ignore_errors=True)


_IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def card_images(card: str | os.PathLike[str]) -> list[Path]:
    """The PNG files a card links by a plain file name beside itself (``![...](CARD-loss.png)``),
    that exist there. Links into other folders, URLs and other files are not staged: the
    repository root holds the card, so only a neighbour keeps the same relative link.

    Example:
        >>> card_images("no-such-card.md")
        []
    """
    path = Path(card)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    found: list[Path] = []
    for target in _IMAGE_LINK.findall(text):
        if "/" in target or "\\" in target or not target.lower().endswith(".png"):
            continue
        image = path.with_name(target)
        if image.is_file() and not image.is_symlink() and image not in found:
            found.append(image)
    return found


def describe(folder: str | os.PathLike[str]) -> list[StagedFile]:
    """The files a commit of ``folder`` carries (the marker excluded), sorted by path."""
    root = Path(folder)
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MARKER):
        found.append(StagedFile(path.relative_to(root).as_posix(), path.stat().st_size))
    return found


def _check_replaceable(staging: Path) -> None:
    """An absent or empty folder, or an earlier publish's (every file in it recorded): rebuilt."""
    if not staging.exists() and not staging.is_symlink():
        return
    if staging.is_symlink() or not staging.is_dir():
        raise OutputExistsError("the staging path exists and is not a folder", path=os.fspath(staging),
                                hint="pass another --staging DIR")
    entries = _relative_files(staging)
    if not entries:
        return
    recorded = _recorded(staging)
    if recorded is None:
        raise OutputExistsError(
            "the staging folder holds files `apr publish` did not write; nothing is deleted", path=os.fspath(staging),
            hint="pass an empty or new --staging DIR")
    foreign = sorted(entries - recorded - {MARKER})
    if foreign:
        raise OutputExistsError(
            f"the staging folder holds files an earlier publish did not write ({', '.join(foreign[:3])}); "
            "nothing is deleted", path=os.fspath(staging), hint="move them away, or pass another --staging DIR")


def _relative_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def _recorded(staging: Path) -> set[str] | None:
    try:
        marker = json.loads((staging / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(marker, dict) or marker.get("format") != MARKER_FORMAT or not isinstance(marker.get("files"), list):
        return None
    return {f for f in marker["files"] if isinstance(f, str)}


def _copy(source: Path, target: Path) -> None:
    """Byte-for-byte copy, flushed to disk before the folder is renamed into place."""
    with open(source, "rb") as src, open(target, "xb") as dst:
        shutil.copyfileobj(src, dst, 1 << 22)
        dst.flush()
        os.fsync(dst.fileno())


def hf_files(files: Iterable[StagedFile]) -> list[str]:
    """The Hugging Face folder's files among ``files``."""
    return [f.path for f in files if f.path in _HF_FILES]


__all__ = ["FORMATS", "MARKER", "PublishPlan", "PublishRefused", "StagedFile", "build_staging", "card_images", "card_text",
           "check_repo_id", "describe", "hf_files", "parse_formats", "plan_publish"]
