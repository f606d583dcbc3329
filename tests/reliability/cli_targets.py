"""Fuzz targets that run whole `apr` commands (issue 14): no traceback, whatever the input.

Each target decodes its bytes into a hostile *structured* input, runs real commands in-process
through `apr.cli.main.main` (the top-level guard included) and returns nothing when every run ends
the documented way: an exit code in `exit_codes.DOCUMENTED`, no "Traceback" in the output, and no
internal error. An internal error (the guard's exit 70) is re-raised as the original exception, so
the campaign records it as ``exception@file:line`` like any other crash.

Classes (the byte layout is fixed, so a saved input replays the same case):

* ``metadata_types``: byte 0 a reading command, 1 a known metadata key (typed fields, identity,
  tokenizer and custom keys the code reads), 2 a wrong type (int, float, NaN, bool, null, list,
  dict, huge string, lone surrogate, markup string, deep nesting), 3 a variant of that value.
* ``hf_side_files``: byte 0 a side file of a tiny Hugging Face folder (config, generation config,
  tokenizer, tokenizer config, special tokens map, chat template, index), the rest its contents;
  then ``apr import`` and, on success, inspect and validate the result.
* ``gguf_values``: byte 0 a KV key of a tiny llama GGUF, 1 a GGUF value type, 2 a variant;
  then ``apr import`` and, on success, inspect, validate and export back to GGUF.
* ``write_faults``: byte 0 a writing command, 1 a write point (creating, opening for writing,
  fsync, rename, mkdir, pwrite), 2 which call of it fails, 3 the errno (ENOSPC, EROFS, EACCES, EIO,
  EDQUOT, EFBIG). The command must exit 0 or 7, leave its previous output byte-identical and no
  temporary behind.

`enumerate_inputs(name)` yields every case of a class once (the campaign runs them all before it
mutates); `run_cli` is also what the no-traceback tests use.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import io
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

# Crashes a campaign found and the guard stopped (exit 70, no traceback) but no fix has landed for
# yet: (exception type, file it rose in) -> the input. The suite tolerates only these
# (test_no_traceback.py, test_fuzz_replay.py). Empty: the three the first campaign found (GGUF and
# tokenizer_config.json exports of surrogates and float32 overflows) are refusals now.
KNOWN_INTERNAL_ERRORS: dict[tuple[str, str], str] = {}


# --- running a command ------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandRun:
    """What one `apr` command did: exit code, the text it wrote, the bug the guard caught (if any)."""

    argv: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    internal: BaseException | None


def run_cli(argv: list[str], *, env: dict[str, str] | None = None) -> CommandRun:
    """Run `apr ARGV` in-process through the guard, with strict UTF-8 streams like a terminal's.

    The streams are real text wrappers over bytes (errors="strict"), so text that a terminal
    could not take (a lone surrogate) fails here as it would there, unless `apr` escapes it.
    """
    from apr.cli import guard
    from apr.cli.main import main

    raw_out, raw_err = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(raw_out, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(raw_err, encoding="utf-8", errors="strict", write_through=True)
    caught: list[BaseException] = []
    real_internal_error = guard.internal_error

    def spy(error: BaseException):
        caught.append(error)
        return real_internal_error(error)

    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(guard, "internal_error", spy))
        if env is not None:
            stack.enter_context(mock.patch.dict(os.environ, env))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse usage errors
            code = exit_.code if isinstance(exit_.code, int) else 2
    out.flush()
    err.flush()
    return CommandRun(tuple(argv), code, raw_out.getvalue().decode("utf-8"), raw_err.getvalue().decode("utf-8"),
                      caught[0] if caught else None)


class UndocumentedEnd(AssertionError):
    """A command ended another way than the documented ones (a code outside the table, a traceback,
    a lost output or a stray temporary); ``where`` names the command and what went wrong, for the
    campaign's crash signature."""

    def __init__(self, message: str, *, where: str) -> None:
        super().__init__(message)
        self.where = where


def problem(run: CommandRun, *, allowed_codes: frozenset[int] | None = None) -> BaseException | None:
    """The finding in ``run``, if any: the guard's internal error (as the original exception) first."""
    from apr.cli.exit_codes import DOCUMENTED

    if run.internal is not None:
        return run.internal
    command = run.argv[0] if run.argv else "?"
    if run.code not in (allowed_codes or DOCUMENTED):
        return UndocumentedEnd(f"apr {' '.join(run.argv)[:200]} exited {run.code}: {run.stderr[-300:]}",
                               where=f"{command}:exit-{run.code}")
    if "Traceback (most recent call last)" in run.stderr + run.stdout:
        return UndocumentedEnd(f"apr {' '.join(run.argv)[:200]} printed a traceback: {run.stderr[-300:]}",
                               where=f"{command}:traceback")
    return None


def _check(run: CommandRun, **kwargs: Any) -> CommandRun:
    found = problem(run, **kwargs)
    if found is not None:
        raise found
    return run


class _Work:
    """One private folder per process for base models and scratch outputs (removed by `cleanup`)."""

    root: Path | None = None
    cache: ClassVar[dict[str, Any]] = {}

    @classmethod
    def folder(cls, name: str, *, fresh: bool = True) -> Path:
        if cls.root is None or not cls.root.exists():
            cls.root = Path(tempfile.mkdtemp(prefix="apr-cli-fuzz-"))
            cls.cache = {}
        path = cls.root / name
        if fresh and path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        return path


def cleanup() -> None:
    if _Work.root is not None:
        shutil.rmtree(_Work.root, ignore_errors=True)
    _Work.root = None
    _Work.cache = {}


def _byte(data: bytes, index: int) -> int:
    return data[index] if len(data) > index else 0


# --- metadata values of every wrong type, through every reading command ------------------------

# The QA gates that read the file without running the model (the "static" gates).
QA_STATIC = ("--skip-golden-output", "--skip-throughput", "--skip-format-parity", "--skip-gpu-speedup",
             "--skip-performance-regression")

# {file} is the checkpoint, {out} a fresh folder for what the command writes.
READING_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("inspect", "{file}"),
    ("inspect", "{file}", "--json"),
    ("inspect", "{file}", "--quality", "--explain"),
    ("inspect", "{file}", "--quality", "--explain", "--json"),
    ("inspect", "{file}", "--tensors"),
    ("validate", "{file}"),
    ("validate", "{file}", "--json"),
    ("qa", "{file}", *QA_STATIC),
    ("qa", "{file}", *QA_STATIC, "--json"),
    ("card", "{file}", "-o", "{out}/MODEL_CARD.md"),
    ("export", "{file}", "-o", "{out}/hf"),
    ("export", "{file}", "--format", "gguf", "-o", "{out}/model.gguf"),
)


def metadata_keys() -> tuple[str, ...]:
    """Every metadata key some command reads: aprender's typed fields, the tokenizer's, and ours."""
    from apr.format.metadata import TYPED_FIELDS
    from apr.tokenizer import embed

    tokenizer = (embed.VOCABULARY, embed.VOCAB_SIZE, embed.MERGES, embed.MODEL_TYPE, embed.ADDED_TOKENS,
                 embed.BOS_TOKEN_ID, embed.EOS_TOKEN_ID, embed.PIPELINE)
    custom = ("tied_embeddings", "source_metadata", "generation_config", "training", "source_dtype")
    return tuple(key for key, *_ in TYPED_FIELDS) + tokenizer + custom


def _deep(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


# (class name, variants). Values must survive `json.dumps(..., allow_nan=True)`; NaN and the
# infinities are written as the bare literals a hostile writer would use.
WRONG_VALUES: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("int", (0, -1, 7, 2**31, 2**63, 2**64 + 1, 10**40, -(2**63))),
    ("float", (0.5, -1.5, 1e308, -0.0, 5e-324, 3.0)),
    ("nan", (math.nan, math.inf, -math.inf)),
    ("bool", (True, False)),
    ("null", (None,)),
    ("list", ([], [1, "a"], [None], [[[]]], ["x", "y", "z"], list(range(300)))),
    ("dict", ({}, {"a": 1}, {"": None}, {"[/x]": [1.5]}, {"content": 5, "id": "x"})),
    ("huge_string", ("x" * (1 << 20), "[" * (1 << 18), "é" * (1 << 19))),
    ("surrogate", ("\ud800", "a\udfffb", "\udcff" * 3, "[/x]\ud83d")),
    ("markup", ("[/x]", "[bold]MIT[/bold]", "model[v2].apr", "[link=file:///etc/passwd]x[/link]", ":smile:",
                "\\[not markup", "[/]", "%s %d {0} {x}")),
    ("deep", (_deep(200), _deep(900))),
)


def wrong_value(type_index: int, variant: int) -> tuple[str, Any]:
    name, variants = WRONG_VALUES[type_index % len(WRONG_VALUES)]
    return name, variants[variant % len(variants)]


def _base_model() -> tuple[dict[str, Any], dict[str, Any], int]:
    """A tiny qwen2 checkpoint with an embedded tokenizer: tensors, metadata, flags (built once)."""
    if "model" not in _Work.cache:
        from apr.format import load, open_file
        from tests.readiness.builders import build_checkpoint, tokenizer_metadata

        folder = _Work.folder("base-model", fresh=True)
        path = build_checkpoint(folder / "base.apr", tokenizer=tokenizer_metadata(folder))
        with open_file(path) as reader:
            metadata, flags = dict(reader.metadata), int(reader.flags)
        tensors = {name: value.copy() if hasattr(value, "copy") else value for name, value in load(path.read_bytes()).items()}
        _Work.cache["model"] = (tensors, metadata, flags)
    return _Work.cache["model"]


def raw_metadata_bytes(metadata: dict[str, Any]) -> bytes:
    """The metadata JSON a hostile writer would produce: no type checks, NaN literals allowed."""
    return json.dumps(metadata, ensure_ascii=True, allow_nan=True, separators=(",", ":")).encode("ascii")


def write_with_raw_metadata(path: Path, tensors: dict[str, Any], metadata: dict[str, Any], flags: int) -> None:
    """An APR v2 file whose metadata section is exactly `raw_metadata_bytes(metadata)` (valid CRCs)."""
    from apr.format import save_file

    raw = raw_metadata_bytes(metadata)
    with mock.patch("apr.format.writer.encode_metadata", lambda _metadata: raw):
        save_file(tensors, path, {}, flags=flags, durable=False)


def hostile_checkpoint(key_index: int, type_index: int, variant: int) -> tuple[Path, str, str]:
    """The base checkpoint with one known key set to a wrongly typed value: (path, key, class)."""
    keys = metadata_keys()
    key = keys[key_index % len(keys)]
    kind, value = wrong_value(type_index, variant)
    cache_key = f"meta-{key}-{kind}-{variant}"
    folder = _Work.folder("metadata-file", fresh=False)
    path = folder / "model.apr"
    if _Work.cache.get("metadata-file") != cache_key:
        tensors, metadata, flags = _base_model()
        metadata = dict(metadata)
        metadata[key] = value
        write_with_raw_metadata(path, tensors, metadata, flags)
        _Work.cache["metadata-file"] = cache_key
    return path, key, kind


def command_argv(template: tuple[str, ...], *, file: Path, out: Path) -> list[str]:
    return [part.format(file=file, out=out) for part in template]


def run_metadata_types(data: bytes) -> None:
    path, _key, _kind = hostile_checkpoint(_byte(data, 1), _byte(data, 2), _byte(data, 3))
    template = READING_COMMANDS[_byte(data, 0) % len(READING_COMMANDS)]
    _check(run_cli(command_argv(template, file=path, out=_Work.folder("out"))))


def enumerate_metadata_types() -> Iterator[bytes]:
    """Every key x every wrong type (each variant in turn across keys) x every reading command."""
    for type_index, (_name, variants) in enumerate(WRONG_VALUES):
        for key_index in range(len(metadata_keys())):
            variant = key_index % len(variants)
            for command in range(len(READING_COMMANDS)):
                yield bytes([command, key_index, type_index, variant])


# --- Hugging Face side files ---------------------------------------------------------------------

HF_SIDE_FILES: tuple[str, ...] = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "chat_template.jinja", "model.safetensors.index.json",
)


def _base_hf_folder() -> Path:
    if "hf" not in _Work.cache:
        from tests.convert.tiny_hf import build_hf_folder

        folder = build_hf_folder(_Work.folder("base-hf", fresh=True) / "model", hidden=16, layers=1, heads=2,
                                 kv_heads=1, inter=32)
        (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": 2, "max_new_tokens": 8}))
        (folder / "special_tokens_map.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
        (folder / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}")
        _Work.cache["hf"] = folder
    return _Work.cache["hf"]


def hf_side_file_input(name: str, content: bytes) -> bytes:
    return bytes([HF_SIDE_FILES.index(name)]) + content


def hostile_hf_folder(data: bytes) -> Path:
    base = _base_hf_folder()
    folder = _Work.folder("hf-input") / "model"
    folder.mkdir()
    for item in base.iterdir():
        os.link(item, folder / item.name)  # hard links: nothing is copied, the importer only reads
    name = HF_SIDE_FILES[_byte(data, 0) % len(HF_SIDE_FILES)]
    (folder / name).unlink(missing_ok=True)
    (folder / name).write_bytes(data[1:])
    return folder


def run_hf_side_files(data: bytes) -> None:
    folder = hostile_hf_folder(data)
    out = _Work.folder("out")
    imported = _check(run_cli(["import", os.fspath(folder), "-o", os.fspath(out / "m.apr")]))
    if imported.code == 0:
        for argv in (["inspect", "{file}", "--quality", "--json"], ["validate", "{file}"]):
            _check(run_cli(command_argv(tuple(argv), file=out / "m.apr", out=out)))


def hf_side_file_seeds() -> dict[str, bytes]:
    """Each side file with its valid contents, and with wrongly typed values (seeds for mutation)."""
    base = _base_hf_folder()
    seeds: dict[str, bytes] = {}
    for name in HF_SIDE_FILES:
        path = base / name
        if path.exists():
            seeds[f"seed-{name}"] = hf_side_file_input(name, path.read_bytes())
    index = {"metadata": {"total_size": "big"}, "weight_map": {"model.embed_tokens.weight": 5}}
    seeds["seed-index-wrong-types"] = hf_side_file_input("model.safetensors.index.json", json.dumps(index).encode())
    seeds["seed-generation-wrong-types"] = hf_side_file_input(
        "generation_config.json", json.dumps({"eos_token_id": "x", "temperature": [1]}).encode())
    seeds["seed-tokenizer-config-wrong-types"] = hf_side_file_input(
        "tokenizer_config.json", json.dumps({"eos_token": 5, "chat_template": {"a": 1}, "added_tokens_decoder": []}).encode())
    seeds["seed-chat-template-latin1"] = hf_side_file_input("chat_template.jinja", "{{ 'caf\xe9' }}".encode("latin-1"))
    return seeds


def enumerate_hf_side_files() -> Iterator[bytes]:
    """Every side file replaced by each JSON value class (and garbage bytes)."""
    values: list[bytes] = [b"", b"\xff\xfe\x00", b"{", b"[" * 5000]
    for _name, variants in WRONG_VALUES:
        for variant in variants[:2]:
            values.append(raw_metadata_bytes({"v": variant})[5:-1])  # the bare JSON value
    for name in HF_SIDE_FILES:
        for value in values:
            yield hf_side_file_input(name, value)


# --- GGUF typed values -----------------------------------------------------------------------------

GGUF_KEYS: tuple[str, ...] = (
    "general.architecture", "general.name", "general.license", "llama.block_count", "llama.context_length",
    "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
    "llama.attention.head_count_kv", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon",
    "llama.vocab_size", "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.chat_template",
)


def _gguf_value(type_index: int, variant: int) -> tuple[Any, Any, Any]:
    """(value, GGUFValueType, sub type for arrays) of the chosen class."""
    from gguf import GGUFValueType as T

    table: tuple[tuple[Any, tuple[Any, ...], Any], ...] = (
        (T.UINT8, (0, 255), None), (T.INT8, (-128, 1), None), (T.UINT16, (0, 65535), None),
        (T.INT16, (-32768, 2), None), (T.UINT32, (0, 2**32 - 1, 1), None), (T.INT32, (-1, -(2**31), 3), None),
        (T.UINT64, (2**63, 2**64 - 1, 0), None), (T.INT64, (-(2**63), -1), None),
        (T.FLOAT32, (math.nan, math.inf, -1.5, 0.0), None), (T.FLOAT64, (math.nan, 1e308, -0.0), None),
        (T.BOOL, (True, False), None),
        (T.STRING, ("", "llama", "[/x]", b"\xff\xfe", "x" * 70000, "qwen2"), None),
        (T.ARRAY, ([], [1, 2, 3], [2**32 - 1]), T.UINT32),
        (T.ARRAY, ([-1.0, math.nan], [0.5]), T.FLOAT32),
        (T.ARRAY, ([""], ["a", "b"], ["[/x]"] * 3), T.STRING),
        (T.ARRAY, ([True, False],), T.BOOL),
    )
    vtype, variants, sub = table[type_index % len(table)]
    return variants[variant % len(variants)], vtype, sub


GGUF_VALUE_CLASSES = 16


def hostile_gguf(key_index: int, type_index: int, variant: int) -> Path:
    """A tiny llama GGUF (one block, 8 wide, 16 tokens) whose KV ``key`` has the chosen value."""
    import gguf
    import numpy as np

    key = GGUF_KEYS[key_index % len(GGUF_KEYS)]
    value, vtype, sub = _gguf_value(type_index, variant)
    path = _Work.folder("gguf-input") / "m.gguf"
    tokens = ["<|endoftext|>", "<|im_end|>", "Ġ"] + [chr(c) for c in range(ord("a"), ord("a") + 12)] + ["ab"]
    fields: dict[str, tuple[Any, Any, Any]] = {
        "general.name": ("tiny", gguf.GGUFValueType.STRING, None),
        "llama.block_count": (1, gguf.GGUFValueType.UINT32, None),
        "llama.context_length": (64, gguf.GGUFValueType.UINT32, None),
        "llama.embedding_length": (8, gguf.GGUFValueType.UINT32, None),
        "llama.feed_forward_length": (16, gguf.GGUFValueType.UINT32, None),
        "llama.attention.head_count": (2, gguf.GGUFValueType.UINT32, None),
        "llama.attention.head_count_kv": (1, gguf.GGUFValueType.UINT32, None),
        "llama.rope.freq_base": (10000.0, gguf.GGUFValueType.FLOAT32, None),
        "llama.attention.layer_norm_rms_epsilon": (1e-5, gguf.GGUFValueType.FLOAT32, None),
        "tokenizer.ggml.model": ("gpt2", gguf.GGUFValueType.STRING, None),
        "tokenizer.ggml.tokens": (tokens, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING),
        "tokenizer.ggml.token_type": ([3, 3] + [1] * 14, gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32),
        "tokenizer.ggml.merges": (["a b"], gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.STRING),
        "tokenizer.ggml.bos_token_id": (0, gguf.GGUFValueType.UINT32, None),
        "tokenizer.ggml.eos_token_id": (1, gguf.GGUFValueType.UINT32, None),
        "tokenizer.chat_template": ("{{ messages[0]['content'] }}", gguf.GGUFValueType.STRING, None),
        "general.license": ("MIT", gguf.GGUFValueType.STRING, None),
        "llama.vocab_size": (16, gguf.GGUFValueType.UINT32, None),
    }
    architecture = "llama"
    if key == "general.architecture":
        architecture = value  # the writer puts it first; anything but a str goes in raw below
    else:
        fields[key] = (value, vtype, sub)
    writer = gguf.GGUFWriter(os.fspath(path), "llama" if not isinstance(architecture, str) else architecture)
    if key == "general.architecture" and vtype is not gguf.GGUFValueType.STRING:
        writer.kv_data[0].pop("general.architecture", None)
        writer.add_key_value("general.architecture", value, vtype, sub_type=sub)
    for name, (field_value, field_type, field_sub) in fields.items():
        writer.add_key_value(name, field_value, field_type, sub_type=field_sub)
    rng = np.random.default_rng(0)
    shapes = {"token_embd.weight": (16, 8), "output_norm.weight": (8,), "output.weight": (16, 8),
              "blk.0.attn_norm.weight": (8,), "blk.0.ffn_norm.weight": (8,), "blk.0.attn_q.weight": (8, 8),
              "blk.0.attn_k.weight": (4, 8), "blk.0.attn_v.weight": (4, 8), "blk.0.attn_output.weight": (8, 8),
              "blk.0.ffn_gate.weight": (16, 8), "blk.0.ffn_up.weight": (16, 8), "blk.0.ffn_down.weight": (8, 16)}
    for name, shape in shapes.items():
        writer.add_tensor(name, (0.1 * rng.standard_normal(shape)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def run_gguf_values(data: bytes) -> None:
    try:
        path = hostile_gguf(_byte(data, 0), _byte(data, 1), _byte(data, 2))
    except (ValueError, TypeError, OverflowError, KeyError, UnicodeError, AttributeError):
        return  # the gguf package itself refuses to write this value: not an input apr can meet
    out = _Work.folder("out")
    imported = _check(run_cli(["import", os.fspath(path), "-o", os.fspath(out / "m.apr")]))
    if imported.code == 0:
        for argv in (("inspect", "{file}", "--json"), ("validate", "{file}"),
                     ("export", "{file}", "--format", "gguf", "-o", "{out}/back.gguf")):
            _check(run_cli(command_argv(argv, file=out / "m.apr", out=out)))


def enumerate_gguf_values() -> Iterator[bytes]:
    for key_index in range(len(GGUF_KEYS)):
        for type_index in range(GGUF_VALUE_CLASSES):
            for variant in range(3):
                yield bytes([key_index, type_index, variant])


# --- OSErrors injected at every write point ------------------------------------------------------

FAULT_ERRNOS: tuple[int, ...] = (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EIO, errno.EDQUOT, errno.EFBIG)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _writes(mode: str) -> bool:
    return any(c in mode for c in "wax+")


class WriteFault:
    """Patches every Python-level write point; the ``fail_at``-th call of point ``point`` raises.

    Points: ``create`` (os.open with write flags, which tempfile.mkstemp uses), ``open`` (open /
    io.open / os.fdopen for writing), ``fsync`` (of a file), ``rename`` (os.replace, os.rename), ``mkdir``,
    ``pwrite`` (os.pwrite, os.ftruncate). Writes of data inside an open file are covered by the
    RLIMIT_FSIZE tests (a real EFBIG at any byte).
    """

    POINTS = ("create", "open", "fsync", "rename", "mkdir", "pwrite")

    def __init__(self, point: str, fail_at: int, error_number: int) -> None:
        self.point, self.fail_at, self.errno = point, fail_at, error_number
        self.calls = 0
        self.fired = False

    def _maybe_fail(self, point: str, name: Any = None) -> None:
        if point != self.point or self.fired:
            return
        self.calls += 1
        if self.calls == self.fail_at:
            self.fired = True
            filename = os.fsdecode(name) if isinstance(name, (str, bytes, os.PathLike)) else None
            raise OSError(self.errno, os.strerror(self.errno), filename)

    @contextlib.contextmanager
    def installed(self) -> Iterator[WriteFault]:
        real_open, real_os_open = builtins.open, os.open
        real = {name: getattr(os, name) for name in ("fsync", "replace", "rename", "mkdir", "pwrite", "ftruncate")}

        def fault_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if _writes(mode):
                self._maybe_fail("open", file if not isinstance(file, int) else None)
            return real_open(file, mode, *args, **kwargs)

        def fault_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
            if flags & _WRITE_FLAGS:
                self._maybe_fail("create", path)
            return real_os_open(path, flags, *args, **kwargs)

        def fault_fsync(fd: int) -> None:
            # A folder's fsync after the rename is best effort by design (apr.format.atomic): the
            # new file is already in place, so only a file's own fsync is a write point.
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                self._maybe_fail("fsync")
            return real["fsync"](fd)

        def fault_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
            # mkdir of a folder that exists fails anyway (pathlib's exist_ok ignores it): not a write
            if not os.path.isdir(path):
                self._maybe_fail("mkdir", path)
            return real["mkdir"](path, *args, **kwargs)

        def wrap(point: str, function: Callable[..., Any], named: bool) -> Callable[..., Any]:
            def faulty(*args: Any, **kwargs: Any) -> Any:
                self._maybe_fail(point, args[0] if named and args else None)
                return function(*args, **kwargs)

            return faulty

        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch("builtins.open", fault_open))
            stack.enter_context(mock.patch("io.open", fault_open))
            stack.enter_context(mock.patch("os.open", fault_os_open))
            stack.enter_context(mock.patch("os.fsync", fault_fsync))
            stack.enter_context(mock.patch("os.replace", wrap("rename", real["replace"], True)))
            stack.enter_context(mock.patch("os.rename", wrap("rename", real["rename"], True)))
            stack.enter_context(mock.patch("os.mkdir", fault_mkdir))
            stack.enter_context(mock.patch("os.pwrite", wrap("pwrite", real["pwrite"], False)))
            stack.enter_context(mock.patch("os.ftruncate", wrap("pwrite", real["ftruncate"], False)))
            yield self


@dataclass(frozen=True)
class Writer:
    """A writing command: how to build its inputs in ``folder`` and its argv; its output path."""

    name: str
    prepare: Callable[[Path], tuple[list[str], Path]]


def _writer_stamp(folder: Path) -> tuple[list[str], Path]:
    source = _checkpoint_in(folder)
    return ["stamp", os.fspath(source), "--license", "MIT", "-o", os.fspath(folder / "out" / "stamped.apr"),
            "--force"], folder / "out" / "stamped.apr"


def _writer_card(folder: Path) -> tuple[list[str], Path]:
    source = _checkpoint_in(folder)
    return ["card", os.fspath(source), "-o", os.fspath(folder / "out" / "CARD.md"), "--force"], folder / "out" / "CARD.md"


def _writer_export_gguf(folder: Path) -> tuple[list[str], Path]:
    source = _checkpoint_in(folder)
    return ["export", os.fspath(source), "--format", "gguf", "-o", os.fspath(folder / "out" / "m.gguf"),
            "--force"], folder / "out" / "m.gguf"


def _writer_export_safetensors(folder: Path) -> tuple[list[str], Path]:
    source = _checkpoint_in(folder)
    return ["export", os.fspath(source), "-o", os.fspath(folder / "out" / "hf"), "--force"], folder / "out" / "hf"


def _writer_import_hf(folder: Path) -> tuple[list[str], Path]:
    source = folder / "hf"
    if not source.exists():
        shutil.copytree(_base_hf_folder(), source)
    return ["import", os.fspath(source), "-o", os.fspath(folder / "out" / "m.apr"), "--force"], folder / "out" / "m.apr"


def _writer_tokenize(folder: Path) -> tuple[list[str], Path]:
    source = _checkpoint_in(folder)
    text = folder / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog.\n" * 20, encoding="utf-8")
    return ["tokenize", os.fspath(text), "--tokenizer", os.fspath(source), "-o", os.fspath(folder / "out" / "tokens"),
            "--force"], folder / "out" / "tokens"


def _writer_contracts_new(folder: Path) -> tuple[list[str], Path]:
    """A fresh project each time: `contracts new --force` refuses to redo its own scaffold (its ids
    are taken by then), so the output checked is "nothing written" rather than a previous one."""
    project = folder / "out" / "project"
    shutil.rmtree(project, ignore_errors=True)
    (project / "contracts").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "pyproject.toml").write_text('[tool.apr-contracts]\ncontracts = "contracts"\ntests = "tests"\n')
    return ["contracts", "new", "fuzz-target-v1"], project


WRITERS: tuple[Writer, ...] = (
    Writer("stamp-o", _writer_stamp),
    Writer("card", _writer_card),
    Writer("export-gguf", _writer_export_gguf),
    Writer("export-safetensors", _writer_export_safetensors),
    Writer("import-hf", _writer_import_hf),
    Writer("tokenize", _writer_tokenize),
    Writer("contracts-new", _writer_contracts_new),
)


def _checkpoint_in(folder: Path) -> Path:
    path = folder / "model.apr"
    if not path.exists():
        tensors, metadata, flags = _base_model()
        from apr.format import save_file

        save_file(tensors, path, metadata, flags=flags, durable=False)
    return path


TEMPORARY_MARKS = (".tmp", ".old-", "stamp-journal")


def tree_digest(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of ``path`` itself), by relative name."""
    if path.is_file():
        return {".": hashlib.sha256(path.read_bytes()).hexdigest()}
    if not path.exists():
        return {}
    return {os.fspath(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Temporaries (``*.tmp*``, ``*.old-*``, stamp journals) anywhere under ``folder``."""
    return sorted(os.fspath(p.relative_to(folder)) for p in folder.rglob("*")
                  if any(mark in p.name for mark in TEMPORARY_MARKS))


@dataclass(frozen=True)
class FaultOutcome:
    writer: str
    point: str
    output: Path
    fired: bool
    run: CommandRun
    output_before: dict[str, str]
    output_after: dict[str, str]
    leftovers: list[str]


def run_with_fault(writer: Writer, point: str, fail_at: int, error_number: int) -> FaultOutcome:
    """Run ``writer`` once cleanly (the previous output), then again with the fault installed."""
    folder = _Work.folder(f"writer-{writer.name}", fresh=False)
    argv, output = writer.prepare(folder)
    (folder / "out").mkdir(exist_ok=True)
    cwd = os.getcwd()
    is_scaffold = writer.name == "contracts-new"
    workdir = output if is_scaffold else folder
    try:
        os.chdir(workdir)
        if not tree_digest(output) and not is_scaffold:
            _check(run_cli(argv))
        before = tree_digest(output)
        fault = WriteFault(point, fail_at, error_number)
        with fault.installed():
            run = run_cli(argv)
    finally:
        os.chdir(cwd)
    after = tree_digest(output)
    return FaultOutcome(writer.name, point, output, fault.fired, run, before, after, leftovers(folder))


def fault_problem(outcome: FaultOutcome) -> BaseException | None:
    """What is wrong with a faulted run: a bug, a code other than 0/7, a changed output, a temporary."""
    from apr.cli.exit_codes import EXIT_IO, OK

    found = problem(outcome.run, allowed_codes=frozenset({OK, EXIT_IO}))
    if found is not None:
        return found
    where = f"{outcome.writer}/{outcome.point}"
    if outcome.fired and outcome.run.code != EXIT_IO:
        return UndocumentedEnd(f"{outcome.writer}: a {outcome.point} fault was swallowed (exit {outcome.run.code})",
                               where=f"{where}:swallowed")
    if outcome.run.code == EXIT_IO and outcome.output_after != outcome.output_before:
        return UndocumentedEnd(f"{outcome.writer}: a failed write changed the previous output", where=f"{where}:output-changed")
    if outcome.leftovers:
        return UndocumentedEnd(f"{outcome.writer}: temporaries left after a {outcome.point} fault: {outcome.leftovers}",
                               where=f"{where}:temporary-left")
    return None


def run_cli_forked(argv: list[str], *, file_size_limit: int, cwd: Path | None = None) -> CommandRun:
    """Run `apr ARGV` in a forked child whose files may not grow past ``file_size_limit`` bytes.

    RLIMIT_FSIZE makes the kernel refuse the first write() past the limit with EFBIG (SIGXFSZ is
    ignored), at whatever byte that falls: a disk filling up in the middle of any writer, Python
    or C (numpy, the gguf package), which no monkeypatch reaches. The child reports back through
    a pipe and leaves with os._exit, so the parent's state (pytest's included) is untouched.
    """
    import resource
    import signal

    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        status = 0
        try:
            os.close(reader)
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, resource.RLIM_INFINITY))
            if cwd is not None:
                os.chdir(cwd)
            run = run_cli(argv)
            internal = None if run.internal is None else f"{type(run.internal).__name__}: {run.internal}"
            payload = json.dumps({"code": run.code, "stdout": run.stdout, "stderr": run.stderr, "internal": internal})
            resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
            with os.fdopen(writer, "w", encoding="utf-8") as pipe:
                pipe.write(payload)
        except BaseException:  # noqa: BLE001 - whatever happens, the child must not return into pytest
            status = 1
        finally:
            os._exit(status)
    os.close(writer)
    with os.fdopen(reader, encoding="utf-8") as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not text:
        raise RuntimeError(f"the forked child died without a report (status {status})")
    document = json.loads(text)
    internal = None if document["internal"] is None else RuntimeError(document["internal"])
    return CommandRun(tuple(argv), document["code"], document["stdout"], document["stderr"], internal)


def run_write_faults(data: bytes) -> None:
    writer = WRITERS[_byte(data, 0) % len(WRITERS)]
    point = WriteFault.POINTS[_byte(data, 1) % len(WriteFault.POINTS)]
    fail_at = 1 + _byte(data, 2) % 8
    error_number = FAULT_ERRNOS[_byte(data, 3) % len(FAULT_ERRNOS)]
    found = fault_problem(run_with_fault(writer, point, fail_at, error_number))
    if found is not None:
        raise found


def enumerate_write_faults() -> Iterator[bytes]:
    for writer in range(len(WRITERS)):
        for point in range(len(WriteFault.POINTS)):
            for fail_at in range(8):
                yield bytes([writer, point, fail_at, fail_at % len(FAULT_ERRNOS)])


__all__ = [
    "KNOWN_INTERNAL_ERRORS", "CommandRun", "FAULT_ERRNOS", "GGUF_KEYS", "HF_SIDE_FILES", "QA_STATIC", "READING_COMMANDS", "WRITERS",
    "WRONG_VALUES", "WriteFault", "cleanup", "command_argv", "enumerate_gguf_values", "enumerate_hf_side_files",
    "enumerate_metadata_types", "enumerate_write_faults", "fault_problem", "hostile_checkpoint", "leftovers",
    "metadata_keys", "problem", "run_cli", "run_gguf_values", "run_hf_side_files", "run_metadata_types",
    "run_cli_forked", "run_with_fault", "run_write_faults", "tree_digest", "write_with_raw_metadata",
]
