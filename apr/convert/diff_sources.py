"""One side of ``apr diff``: an APR file, a safetensors file or Hugging Face folder, or a GGUF file,
read through the importers' own readers and seen the way an import would store it.

Why: "is this GGUF the model I exported?" and "what did q8_0 cost per tensor?" compare across
formats (issue 15, part 3). Each side shows Hugging Face tensor names (GGUF names mapped back with
`apr.convert.names.gguf_to_hf`, llama's q/k rows un-permuted), row-major shapes, and float32
values produced one tensor at a time; nothing is written. Metadata is what the import would
derive (`metadata_from_hf_config`, the GGUF import's field mapping), so the config keys compare
across formats.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CHUNK = 1 << 20  # elements per piece when a format allows reading a tensor in pieces


@dataclass
class Side:
    """A checkpoint as ``apr diff`` sees it."""

    path: str
    format: str  # "apr", "safetensors", "gguf"
    metadata: dict[str, Any]
    flags: list[str] | None  # APR header flags; None for other formats
    shapes: dict[str, list[int]]  # HF name -> row-major shape, in the file's order
    dtypes: dict[str, str]
    _pieces: Callable[[str], Iterator[np.ndarray]]
    aliases: dict[str, str] = field(default_factory=dict)  # a tied head read from the embedding

    def names(self) -> list[str]:
        return list(self.shapes)

    def iter_float32(self, name: str) -> Iterator[np.ndarray]:
        """Tensor ``name`` flattened, as float32 pieces."""
        return self._pieces(self.aliases.get(name, name))

    def alias(self, name: str, target: str) -> None:
        """Show ``target`` under ``name`` too (a tied ``lm_head.weight`` that the format leaves out)."""
        self.shapes[name] = list(self.shapes[target])
        self.dtypes[name] = self.dtypes[target]
        self.aliases[name] = target


@contextlib.contextmanager
def open_side(path: str | os.PathLike[str]) -> Iterator[Side]:
    """Open ``path`` as a `Side`: a folder is a Hugging Face model, ``.safetensors`` a safetensors
    file, a file starting with ``GGUF`` a GGUF file, anything else an APR file.

    Raises:
        AprFileNotFoundError: no such path (exit 3).
        FormatError, ConvertError: not a valid file of its format (exit 4 / 5).
    """
    source = Path(path)
    if not os.path.lexists(source):
        from apr.errors import AprFileNotFoundError

        raise AprFileNotFoundError("checkpoint not found", path=source, hint="check the path")
    if source.is_dir() or source.suffix.lower() == ".safetensors":
        yield _safetensors_side(source)
        return
    if _is_gguf(source):
        with _gguf_side(source) as side:
            yield side
        return
    with _apr_side(source) as side:
        yield side


def _is_gguf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"GGUF"
    except OSError:
        return False  # the APR reader reports it properly


@contextlib.contextmanager
def _apr_side(path: Path) -> Iterator[Side]:
    from apr.format import open_file
    from apr.format.header import FLAG_LABELS

    with open_file(path) as reader:
        names = reader.keys()
        yield Side(
            path=os.fspath(path), format="apr", metadata=dict(reader.metadata),
            flags=[label for flag, label in FLAG_LABELS if reader.header.flags & flag],
            shapes={n: list(reader.entry(n).shape) for n in names},
            dtypes={n: reader.entry(n).dtype.name for n in names}, _pieces=reader.iter_float32)


def _safetensors_side(source: Path) -> Side:
    from apr.convert.hf_config import metadata_from_hf_config, read_config_json
    from apr.convert.hf_import import collect_safetensors, read_tensor_bytes
    from apr.convert.targets import as_float32
    from apr.errors import ConvertError
    from apr.format.inputs import file_inside

    root, tensors, _st_metadata = collect_safetensors(source)
    config_file = file_inside(root, "config.json", error=ConvertError)
    metadata = metadata_from_hf_config(read_config_json(config_file)) if config_file is not None else {}

    def pieces(name: str) -> Iterator[np.ndarray]:
        tensor = tensors[name]
        if tensor.dtype.is_packed:
            yield as_float32(read_tensor_bytes(tensor), tensor.dtype, tensor.shape).reshape(-1)
            return
        itemsize = tensor.dtype.numpy_dtype.itemsize
        total = tensor.nbytes // itemsize
        with open(tensor.file, "rb") as handle:
            for first in range(0, total, CHUNK):
                count = min(CHUNK, total - first)
                raw = os.pread(handle.fileno(), count * itemsize, tensor.begin + first * itemsize)
                if len(raw) != count * itemsize:
                    raise ConvertError(f"file ended inside tensor {name!r}", path=tensor.file)
                yield np.frombuffer(raw, dtype=tensor.dtype.numpy_dtype).astype(np.float32)

    return Side(path=os.fspath(source), format="safetensors", metadata=metadata, flags=None,
                shapes={n: list(t.shape) for n, t in tensors.items()},
                dtypes={n: t.dtype.name for n, t in tensors.items()}, _pieces=pieces)


@contextlib.contextmanager
def _gguf_side(path: Path) -> Iterator[Side]:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    from apr.convert.gguf_fields import FIX
    from apr.convert.gguf_import import metadata_from_gguf_fields, open_gguf
    from apr.convert.names import gguf_to_hf, is_qk_projection, qk_heads, unpermute_qk
    from apr.errors import ConvertError
    from apr.format.inputs import open_regular

    with open_regular(path, error=ConvertError) as handle:
        reader, fields, arch = open_gguf(handle, path)
        metadata = metadata_from_gguf_fields(fields, arch)
        heads, kv_heads = metadata.get("num_heads"), metadata.get("num_kv_heads")
        n_heads, n_kv_heads = (heads, kv_heads) if isinstance(heads, int) and isinstance(kv_heads, int) else (0, 0)
        by_name: dict[str, Any] = {}
        for tensor in reader.tensors:
            try:
                by_name[gguf_to_hf(tensor.name)] = tensor
            except ConvertError:
                by_name[tensor.name] = tensor  # shown under its GGUF name: it matches nothing, and says so

        def pieces(name: str) -> Iterator[np.ndarray]:
            tensor = by_name[name]
            shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))
            qtype = GGMLQuantizationType(int(tensor.tensor_type))
            rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
            row_bytes = int(tensor.n_bytes) // max(rows, 1)
            start = int(tensor.data_offset)  # absolute in the file (GGUFReader adds its data offset)

            def decode(first: int, count: int) -> np.ndarray:
                # positioned reads, not the memory map (whose touched pages stay resident)
                raw = os.pread(handle.fileno(), count * row_bytes, start + first * row_bytes)
                if len(raw) != count * row_bytes:
                    raise ConvertError(f"file ended inside tensor {tensor.name!r}", path=path)
                data = np.frombuffer(raw, np.uint8).reshape(count, row_bytes)
                return np.asarray(dequantize(data, qtype), np.float32).reshape(-1)

            if arch == "llama" and is_qk_projection(name):  # the un-permutation needs every row
                if not n_heads or not n_kv_heads:  # the import refuses the same file
                    raise ConvertError(f"tensor {name!r}: a llama GGUF without llama.attention.head_count and "
                                       "head_count_kv: its q/k rows cannot be put back in Hugging Face order",
                                       path=path, hint=FIX)
                values = decode(0, rows).reshape(shape)
                yield unpermute_qk(values, qk_heads(name, n_heads, n_kv_heads)).reshape(-1)
                return
            step = max(1, CHUNK // max(shape[-1], 1))
            for first in range(0, rows, step):
                yield decode(first, min(step, rows - first))

        yield Side(path=os.fspath(path), format="gguf", metadata=metadata, flags=None,
                   shapes={n: [int(d) for d in reversed(t.shape.tolist())] for n, t in by_name.items()},
                   dtypes={n: t.tensor_type.name for n, t in by_name.items()}, _pieces=pieces)


__all__ = ["CHUNK", "Side", "open_side"]
