"""Fuzz targets for issue 8: bytes in, and either a result or one of the project's own errors out.

Each `Target` takes one input as ``bytes`` and drives one parser the way the CLI does. An
exception that is not in the target's ``allowed`` tuple is a finding (a crash). The same
functions serve the deterministic corpus replay (``tests/reliability/test_fuzz_replay.py``) and
the timed campaign (``bench/fuzz_campaign.py``, atheris or plain mutation).

Targets:

* ``apr_reader``: `apr.format.open_bytes`, then every tensor as numpy and as float32.
* ``tokenizer_folder``: the input is split into the files of a tokenizer folder
  (tokenizer.json [+ tokenizer_config.json], or vocab.json + merges.txt [+ added_tokens.json]),
  read with `apr.tokenizer.read_tokenizer_dir` and round-tripped through APR metadata.
* ``hf_config``: the input as ``config.json``: `read_config_json` + `metadata_from_hf_config`.
* ``contract_yaml``: the input as a contract file through `falsifiers.lint.lint_paths` (loader,
  schema, corpus checks); it must never raise at all.
* ``sniff``: `sniff_bytes`, then the parser of whatever was recognised: APR v2 reader, the GGUF
  import, the safetensors header reader, or the wrong-format refusal for APR v1 / unknown bytes.

Issue 14 adds targets that run whole `apr` commands through the top-level guard
(`tests.reliability.cli_targets`): ``metadata_types`` (every known metadata key with every wrong
type, through every reading command), ``hf_side_files`` (hostile Hugging Face side files, then
import), ``gguf_values`` (wrongly typed GGUF values, then import) and ``write_faults`` (an OSError
at a write point of every writing command). They allow no exception: the guard's internal error
is re-raised as the original exception, and a run that ends undocumented raises
``UndocumentedEnd``. Their inputs are structured, so ``enumerate`` yields every case once.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from apr.errors import AprError
from tests.reliability import cli_targets

CORPUS = Path(__file__).resolve().parent / "corpus"
# Separates the files of a tokenizer-folder input (see `_split_files`).
FILE_SEPARATOR = b"\n--8<--\n"


@dataclass(frozen=True, slots=True)
class Target:
    """One fuzz target: ``run(data)`` may raise only ``allowed`` exceptions."""

    name: str
    run: Callable[[bytes], None]
    allowed: tuple[type[BaseException], ...]
    description: str
    # Every case of a structured input class, once (the campaign runs them all before mutating).
    enumerate: Callable[[], Iterable[bytes]] | None = None


class _Scratch:
    """One private folder per process, emptied before each input (cheap: no mkdtemp per call)."""

    _root: Path | None = None

    @classmethod
    def folder(cls, name: str) -> Path:
        if cls._root is None or not cls._root.exists():
            cls._root = Path(tempfile.mkdtemp(prefix="apr-fuzz-"))
        path = cls._root / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
        return path


# --- apr reader ---------------------------------------------------------------------------------


def run_apr_reader(data: bytes) -> None:
    from apr.format import PackedTensor, open_bytes

    with open_bytes(data) as reader:
        for name in reader.keys():
            value = reader.get_tensor(name)
            if isinstance(value, PackedTensor) and value.data.size <= 1 << 20:
                value.dequantize()
        reader.metadata.get("architecture")


# --- tokenizer folder ---------------------------------------------------------------------------


def _split_files(data: bytes, names: tuple[str, ...]) -> dict[str, bytes]:
    parts = data.split(FILE_SEPARATOR)
    return {name: part for name, part in zip(names, parts, strict=False)}


TOKENIZER_LAYOUTS: tuple[tuple[str, ...], ...] = (
    ("tokenizer.json",),
    ("tokenizer.json", "tokenizer_config.json"),
    ("vocab.json", "merges.txt"),
    ("vocab.json", "merges.txt", "added_tokens.json"),
)


def tokenizer_input(files: dict[str, bytes]) -> bytes:
    """The fuzz input that `run_tokenizer_folder` turns back into ``files`` (for seeds)."""
    names = tuple(files)
    layout = TOKENIZER_LAYOUTS.index(names)
    return bytes([layout]) + FILE_SEPARATOR.join(files[n] for n in names)


def run_tokenizer_folder(data: bytes) -> None:
    from apr.tokenizer import read_tokenizer_dir, record_from_metadata, record_to_metadata

    if not data:
        return
    names = TOKENIZER_LAYOUTS[data[0] % len(TOKENIZER_LAYOUTS)]
    folder = _Scratch.folder("tokenizer")
    for name, content in _split_files(data[1:], names).items():
        (folder / name).write_bytes(content)
    record = read_tokenizer_dir(folder)
    record_from_metadata(record_to_metadata(record))


# --- config.json --------------------------------------------------------------------------------


def run_hf_config(data: bytes) -> None:
    from apr.convert.hf_config import metadata_from_hf_config, read_config_json

    folder = _Scratch.folder("config")
    (folder / "config.json").write_bytes(data)
    metadata_from_hf_config(read_config_json(folder / "config.json"))


# --- contract YAML ------------------------------------------------------------------------------


def run_contract_yaml(data: bytes) -> None:
    from falsifiers.lint import lint_paths

    folder = _Scratch.folder("contracts")
    (folder / "fuzz-v1.yaml").write_bytes(data)
    corpus = lint_paths([folder / "fuzz-v1.yaml"])
    for finding in corpus.findings:
        finding.render()


# --- format sniffing ----------------------------------------------------------------------------


def run_sniff(data: bytes) -> None:
    from apr.format import FileFormat, open_bytes, sniff_bytes
    from apr.format.sniff import require_apr2

    fmt = sniff_bytes(data[:16], len(data))
    if fmt is FileFormat.APR2:
        with open_bytes(data) as reader:
            reader.keys()
        return
    folder = _Scratch.folder("sniff")
    if fmt is FileFormat.GGUF:
        from apr.convert.gguf_import import import_gguf

        (folder / "m.gguf").write_bytes(data)
        import_gguf(folder / "m.gguf", folder / "out.apr")
        return
    if fmt is FileFormat.SAFETENSORS:
        from apr.convert.hf_import import read_safetensors_header

        (folder / "model.safetensors").write_bytes(data)
        read_safetensors_header(folder / "model.safetensors")
        return
    require_apr2(data[:64], len(data))  # APR v1 or unknown: must refuse with WrongFormatError
    raise AssertionError(f"require_apr2 accepted bytes sniffed as {fmt.value}")  # pragma: no cover


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("apr_reader", run_apr_reader, (AprError,), "APR v2 reader: header, metadata, index, tensors"),
        Target("tokenizer_folder", run_tokenizer_folder, (AprError,),
               "--tokenizer folder: tokenizer.json / vocab.json + merges.txt"),
        Target("hf_config", run_hf_config, (AprError,), "config.json -> APR metadata (apr import)"),
        Target("contract_yaml", run_contract_yaml, (), "contract YAML through the loader and lint"),
        Target("sniff", run_sniff, (AprError,), "format sniffing, then the GGUF / safetensors / APR parser"),
        Target("metadata_types", cli_targets.run_metadata_types, (),
               "every known metadata key x every wrong type x every reading command, through the guard",
               cli_targets.enumerate_metadata_types),
        Target("hf_side_files", cli_targets.run_hf_side_files, (),
               "a hostile Hugging Face side file, then apr import / inspect / validate",
               cli_targets.enumerate_hf_side_files),
        Target("gguf_values", cli_targets.run_gguf_values, (),
               "a wrongly typed GGUF value, then apr import / inspect / validate / export",
               cli_targets.enumerate_gguf_values),
        Target("write_faults", cli_targets.run_write_faults, (),
               "an OSError at a write point of every writing command: exit 7, nothing lost or left",
               cli_targets.enumerate_write_faults),
    )
}


def corpus_files(target: str) -> list[Path]:
    folder = CORPUS / target
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def outcome(target: Target, data: bytes) -> BaseException | None:
    """Run one input; return the exception if it is a finding, else None."""
    try:
        target.run(data)
    except target.allowed:
        return None
    except RecursionError as err:  # before Exception: it is one
        return err
    except Exception as err:  # noqa: BLE001 - anything else is what we look for
        return err
    return None


def cleanup() -> None:
    if _Scratch._root is not None:
        shutil.rmtree(_Scratch._root, ignore_errors=True)
        _Scratch._root = None
    cli_targets.cleanup()


_INTERESTING = [0, 1, 2, 7, 8, 63, 64, 65, 127, 128, 255, 256, 0x7FFF, 0xFFFF, 0x10000, 2**31 - 1,
                2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**64 - 1]

# --- mutation (the campaign's fallback engine and the replay's fixed mutations) ----------------------------------------------------------------------------


def mutate(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 5))):
        op = rng.randrange(8)
        if op == 0 and buf:  # flip a bit
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # set a byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 2 and len(buf) >= 8:  # an interesting little-endian integer
            width = rng.choice((1, 2, 4, 8))
            i = rng.randrange(max(1, len(buf) - width))
            value = rng.choice(_INTERESTING) & ((1 << (8 * width)) - 1)
            buf[i : i + width] = value.to_bytes(width, "little")
        elif op == 3 and buf:  # truncate
            del buf[rng.randrange(len(buf)) :]
        elif op == 4 and buf:  # delete a range
            i = rng.randrange(len(buf))
            del buf[i : i + rng.randrange(1, 64)]
        elif op == 5 and buf:  # repeat a range (nesting, long names)
            i = rng.randrange(len(buf))
            chunk = bytes(buf[i : i + rng.randrange(1, 16)])
            buf[i:i] = chunk * rng.randrange(1, 200)
        elif op == 6 and pool:  # splice another corpus input
            other = rng.choice(pool)
            if other:
                j = rng.randrange(len(other))
                i = rng.randrange(len(buf) + 1)
                buf[i:] = other[j:]
        else:  # insert text tokens parsers care about
            token = rng.choice((b"[", b"{", b"]", b"}", b'"', b":", b",", b"\n", b"\t", b"&a ", b"*a",
                                b"- ", b"..", b"/", b"\x00", b"\xff", b"1e999", b"NaN", b"-1", b"18446744073709551616"))
            i = rng.randrange(len(buf) + 1)
            buf[i:i] = token * rng.choice((1, 1, 3, 50))
    return bytes(buf[: 4 * 1024 * 1024])


__all__ = ["CORPUS", "TARGETS", "Target", "cleanup", "corpus_files", "mutate", "outcome", "tokenizer_input"]
