"""Read APR v2 files lazily: header, metadata and index on open; tensor bytes only when asked.

Opening reads the 64-byte header, the metadata JSON and the tensor index with positioned reads,
never the data section, so `apr inspect` on a 4 GiB file costs the same as on a 4 KiB one. Tensors
are zero-copy numpy views of a read-only memory map, created on first access.

Every size a header claims is checked against the file before anything is allocated for it, and
whatever the bytes, the only exceptions that leave this module are `apr.errors.AprError`s.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from apr.errors import (
    AprFileNotFoundError,
    AprIOError,
    FormatError,
    ResourceLimitError,
    TensorDataError,
    TruncatedError,
)
from apr.format.dtypes import element_count, expected_nbytes
from apr.format.header import (
    FOOTER_SIZE,
    HEADER_SIZE,
    Flags,
    Header,
    align64,
    check_header_layout,
    parse_header,
)
from apr.format.metadata import MAX_METADATA_SIZE, decode_metadata
from apr.format.sniff import require_apr2
from apr.format.tensor_index import MIN_ENTRY_SIZE, TensorEntry, parse_index

if TYPE_CHECKING:  # numpy and the quant module load with the first tensor read, not with the header (issue 17)
    import numpy as np

    from apr.format.quant import PackedTensor

# The largest tensor index we agree to read: 2^16 - 1 byte names × many tensors is still far below.
MAX_INDEX_SIZE = 256 * 1024 * 1024
_MAX_ENTRY_SIZE = 2 + 0xFFFF + 2 + 8 * 8 + 16
_MAX_NUMPY_BYTES = 2**63 - 1  # numpy's intp limit on dims and on an array's byte size


class _FileSource:
    """Positioned reads from a file descriptor, and a lazily created read-only memory map."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDONLY)  # not inherited by child processes (PEP 446)
            self.size = os.fstat(self.fd).st_size
        except OSError as err:
            raise AprIOError(f"cannot open file: {err.strerror}", path=path) from err
        self._map: mmap.mmap | None = None

    def read(self, offset: int, size: int) -> bytes:
        chunks = []
        while size > 0:
            chunk = os.pread(self.fd, min(size, 1 << 30), offset)
            if not chunk:
                raise TruncatedError(f"file ended while reading {size} bytes", path=self.path, offset=offset)
            chunks.append(chunk)
            offset += len(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def buffer(self) -> Any:
        if self._map is None:
            self._map = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ)
        return self._map

    def release(self, start: int, stop: int) -> None:
        """Drop the mapped pages of bytes ``[start, stop)`` from this process (``MADV_DONTNEED``):
        a file-backed read-only page is only unmapped, stays in the page cache and faults back in
        on the next access, so nothing read through the map changes. Without it, a pass over a
        large file through the map keeps every page resident and RSS grows to the file's size."""
        advise = getattr(mmap, "MADV_DONTNEED", None)
        if self._map is None or advise is None or stop <= start:
            return
        page = mmap.PAGESIZE
        first = start - start % page
        try:
            self._map.madvise(advise, first, min(stop, self.size) - first)
        except (OSError, ValueError):
            pass  # advice only: a platform without it keeps the pages, which is still correct

    def close(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:
                pass  # numpy views still use it; it is released when they are
            self._map = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _BytesSource:
    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.path = None
        self.data = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        self.size = len(self.data)

    def read(self, offset: int, size: int) -> bytes:
        if offset + size > self.size:
            raise TruncatedError(f"buffer ended while reading {size} bytes", offset=offset)
        return bytes(self.data[offset : offset + size])

    def buffer(self) -> Any:
        return self.data

    def close(self) -> None:
        pass


class AprReader:
    """An open APR v2 file. Use `open_file` (a context manager) rather than constructing it.

    Attributes:
        path: the file path (None for an in-memory buffer).
        header: the decoded `Header`.
        metadata: the metadata JSON object as a dict.
        entries: the tensor index, in file (sorted) order.
        file_size: bytes in the file.
    """

    def __init__(self, source: _FileSource | _BytesSource, *, verify_checksum: bool = True) -> None:
        self._source = source
        self.path = source.path
        self.file_size = source.size
        try:
            self._load(verify_checksum)
        except FormatError as err:
            source.close()
            if self.path:
                err.with_path(self.path)  # re-renders this error with the path
            raise
        except BaseException:
            source.close()
            raise

    def _load(self, verify_checksum: bool) -> None:
        head = self._source.read(0, min(self.file_size, HEADER_SIZE))
        require_apr2(head, self.file_size, self.path)
        self.header: Header = parse_header(head, verify_checksum=verify_checksum)
        check_header_layout(self.header, self.file_size)
        if self.header.metadata_size > MAX_METADATA_SIZE:
            raise ResourceLimitError(
                f"metadata section claims {self.header.metadata_size} bytes, over the "
                f"{MAX_METADATA_SIZE}-byte limit",
                offset=20,
                field="metadata_size",
                hint="the header is corrupt, or the file stores data in metadata; restore it from its source",
            )
        raw_meta = self._source.read(self.header.metadata_offset, self.header.metadata_size)
        self.metadata: dict[str, Any] = decode_metadata(raw_meta)
        count = self.header.tensor_count
        span = self.header.data_offset - self.header.tensor_index_offset
        if count * MIN_ENTRY_SIZE > span:
            raise ResourceLimitError(
                f"header claims {count} tensors but the tensor index has room for at most {span // MIN_ENTRY_SIZE}",
                offset=8,
                field="tensor_count",
                hint="the header is corrupt; restore the file from its source",
            )
        needed = min(span, count * _MAX_ENTRY_SIZE)
        if needed > MAX_INDEX_SIZE:
            raise ResourceLimitError(
                f"tensor index would need {needed} bytes, over the {MAX_INDEX_SIZE}-byte limit",
                offset=24,
                hint="the header is corrupt; restore the file from its source",
            )
        index = self._source.read(self.header.tensor_index_offset, needed)
        self.entries: list[TensorEntry] = parse_index(
            index, count, base_offset=self.header.tensor_index_offset
        )
        data_end = self.file_size - FOOTER_SIZE
        for entry in self.entries:
            start = self.header.data_offset + entry.offset
            # Every payload is padded to 64 (§1.4), so a file cut inside the last payload's
            # padding or its footer is truncated too, not just one cut inside the payload.
            if start + align64(entry.size) > data_end:
                raise TruncatedError(
                    f"tensor {entry.name!r} lies past the end of the data section "
                    f"(bytes {start}..{start + align64(entry.size)} with padding, data ends at {data_end})",
                    field=entry.name,
                    hint="the file is truncated or its index is corrupt; restore it from its source",
                )
        self._by_name = {entry.name: entry for entry in self.entries}

    # --- context manager -----------------------------------------------------------------------
    def __enter__(self) -> AprReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the file. Tensors already returned stay valid (they keep the map alive)."""
        self._source.close()

    # --- queries -------------------------------------------------------------------------------
    @property
    def flags(self) -> int:
        return self.header.flags

    @property
    def is_checksum_valid(self) -> bool:
        """Whether the header CRC matches (only False when opened with ``verify_checksum=False``)."""
        return self.header.is_checksum_valid

    def has_flag(self, flag: Flags) -> bool:
        return self.header.has(flag)

    def keys(self) -> list[str]:
        """Tensor names in file (sorted) order."""
        return [entry.name for entry in self.entries]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, name: str) -> TensorEntry:
        try:
            return self._by_name[name]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(name, self._by_name, n=1)
            raise KeyError(
                f"no tensor named {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
            ) from None

    def absolute_range(self, entry: TensorEntry) -> tuple[int, int]:
        """``(start, end)`` file offsets of a tensor's payload."""
        start = self.header.data_offset + entry.offset
        return start, start + entry.size

    def get_raw(self, name: str) -> np.ndarray:
        """The tensor's payload bytes as a read-only 1-D uint8 view of the file."""
        import numpy as np

        entry = self.entry(name)
        start, _ = self.absolute_range(entry)
        if entry.size == 0:
            return np.zeros(0, dtype=np.uint8)
        return np.frombuffer(self._source.buffer(), dtype=np.uint8, count=entry.size, offset=start)

    def release(self, name: str) -> None:
        """Let tensor ``name``'s pages of the memory map go (see ``_FileSource.release``): a
        streaming copy calls this after each tensor, so its RSS stays about one tensor, not the file.
        Views of the tensor stay valid (they fault the pages back in). A no-op for in-memory data."""
        release = getattr(self._source, "release", None)
        if release is not None:
            release(*self.absolute_range(self.entry(name)))

    def get_tensor(self, name: str) -> np.ndarray | PackedTensor:
        """A zero-copy, read-only numpy view of tensor ``name`` (a `PackedTensor` for packed dtypes).

        Raises:
            KeyError: no such tensor (with a did-you-mean).
            TensorDataError: the payload size does not match the dtype and shape.
        """
        entry = self.entry(name)
        expected = expected_nbytes(entry.dtype, entry.shape)
        if expected != entry.size:
            raise TensorDataError(
                f"tensor {name!r}: {entry.dtype.name} {list(entry.shape)} needs {expected} bytes, "
                f"the index says {entry.size}",
                path=self.path,
                field=name,
                hint="the tensor index is corrupt; restore the file from its source",
            )
        # A zero-size tensor may claim any dims (offsets and size stay in bounds), but numpy cannot
        # represent a shape whose non-zero dims overflow its index type, even for float32 output.
        if element_count(tuple(d for d in entry.shape if d)) * 8 > _MAX_NUMPY_BYTES:
            raise TensorDataError(
                f"tensor {name!r}: shape {list(entry.shape)} is too large to represent",
                path=self.path,
                field=name,
                hint="the tensor index is corrupt; restore the file from its source",
            )
        raw = self.get_raw(name)
        if entry.dtype.is_packed:
            from apr.format.quant import PackedTensor

            return PackedTensor(entry.dtype, entry.shape, raw)
        dtype = entry.dtype.numpy_dtype
        if element_count(entry.shape) == 0:
            import numpy as np

            return np.zeros(entry.shape, dtype=dtype)
        return raw.view(dtype).reshape(entry.shape)

    def get_float32(self, name: str) -> np.ndarray:
        """Tensor ``name`` as float32 (dequantized or cast; a copy unless already float32)."""
        import numpy as np

        from apr.format.quant import PackedTensor

        value = self.get_tensor(name)
        if isinstance(value, PackedTensor):
            return value.dequantize()
        return value.astype(np.float32, copy=False)

    def iter_float32(self, name: str, chunk: int = 1 << 20) -> Iterator[np.ndarray]:
        """Tensor ``name`` flattened, as float32 pieces of at most ``chunk`` elements, read with
        positioned reads (not the memory map), so a scan of a large file keeps only one piece in
        memory. A packed (quantized) tensor is dequantized whole: its blocks do not split."""
        import numpy as np

        entry = self.entry(name)
        self.get_tensor(name)  # the size checks; a zero-copy view, nothing read yet
        if entry.dtype.is_packed:
            yield self.get_float32(name).reshape(-1)
            return
        dtype = entry.dtype.numpy_dtype
        start, _ = self.absolute_range(entry)
        total = element_count(entry.shape)
        for first in range(0, total, max(int(chunk), 1)):
            count = min(chunk, total - first)
            raw = self._source.read(start + first * dtype.itemsize, count * dtype.itemsize)
            yield np.frombuffer(raw, dtype=dtype).astype(np.float32)


def open_file(path: str | os.PathLike[str], *, verify_checksum: bool = True) -> AprReader:
    """Open an APR v2 file for lazy reading.

    Args:
        path: the ``.apr`` file.
        verify_checksum: refuse a header whose CRC does not match (default). ``apr inspect``
            passes False to report such a file instead.

    Returns:
        An `AprReader`, usable as a context manager.

    Raises:
        AprFileNotFoundError: missing path, or not a regular file.
        WrongFormatError: GGUF, safetensors or APR v1 (with the command that converts it).
        FormatError: any structural defect, with its byte offset and a fix.

    Example:
        >>> with open_file("model.apr") as f:  # doctest: +SKIP
        ...     w = f.get_tensor("model.embed_tokens.weight")
    """
    target = os.fspath(path)
    try:
        info = os.stat(target)
    except FileNotFoundError:
        raise AprFileNotFoundError("file not found", path=target, hint="check the path") from None
    except OSError as err:
        raise AprIOError(f"cannot stat file: {err.strerror}", path=target) from err
    if not stat.S_ISREG(info.st_mode):
        raise AprFileNotFoundError(
            "not a file (a folder or device)", path=target, hint="pass the path of an .apr file, not a folder"
        )
    return AprReader(_FileSource(target), verify_checksum=verify_checksum)


def open_bytes(data: bytes | bytearray | memoryview, *, verify_checksum: bool = True) -> AprReader:
    """Open an APR v2 file held in memory (same checks as `open_file`)."""
    return AprReader(_BytesSource(data), verify_checksum=verify_checksum)


def load_file(path: str | os.PathLike[str]) -> dict[str, np.ndarray | PackedTensor]:
    """Every tensor of an APR v2 file, as numpy arrays (`PackedTensor` for packed dtypes).

    The arrays are read-only views of a memory map; copy one to modify it.

    Example:
        >>> tensors = load_file("model.apr")  # doctest: +SKIP
    """
    with open_file(path) as reader:
        return {name: reader.get_tensor(name) for name in reader.keys()}


def load(data: bytes) -> dict[str, np.ndarray | PackedTensor]:
    """Every tensor of an in-memory APR v2 file (the bytes `save` returns)."""
    with open_bytes(data) as reader:
        return {name: reader.get_tensor(name) for name in reader.keys()}
