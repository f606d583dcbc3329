"""Recognising foreign formats, and the command each error tells the user to run."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from apr.errors import AprFileNotFoundError, TruncatedError, WrongFormatError
from apr.format import FileFormat, open_bytes, open_file, save, sniff_bytes, sniff_format


def _gguf_bytes() -> bytes:
    # GGUF v3 header: magic, version u32, tensor_count u64, kv_count u64
    return b"GGUF" + struct.pack("<IQQ", 3, 0, 0)


def _safetensors_bytes() -> bytes:
    import safetensors.numpy

    return safetensors.numpy.save({"w": np.zeros(2, np.float32)})


def _aprn_bytes() -> bytes:
    return b"APRN" + bytes([1, 0]) + struct.pack("<HIII", 0x0020, 0, 0, 0) + bytes(12)


CASES = [
    (_gguf_bytes, FileFormat.GGUF, "apr import"),
    (_safetensors_bytes, FileFormat.SAFETENSORS, "apr import"),
    (_aprn_bytes, FileFormat.APR1, "apr import"),
    (lambda: b"APR1" + bytes(60), FileFormat.APR1, "apr import"),
    (lambda: b"APR2" + bytes(60), FileFormat.APR1, "apr import"),
]


@pytest.mark.parametrize(("make", "fmt", "command"), CASES)
def test_foreign_formats_are_named_with_the_command_to_run(
    tmp_path: Path, make, fmt: FileFormat, command: str
) -> None:
    data = make()
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    assert sniff_bytes(data[:16], len(data)) is fmt
    assert sniff_format(path) is fmt
    with pytest.raises(WrongFormatError) as info:
        open_file(path)
    err = info.value
    assert err.detected == fmt.value and err.offset == 0 and err.path == str(path)
    assert command in (err.hint or "")
    with pytest.raises(WrongFormatError):
        open_bytes(data)


def test_gguf_hint_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(_gguf_bytes())
    with pytest.raises(WrongFormatError) as info:
        open_file(path)
    assert info.value.hint == f"convert it first: apr import {path} -o MODEL.apr"


def test_apr2_is_recognised() -> None:
    data = save({"w": np.zeros(1, np.float32)})
    assert sniff_bytes(data[:16], len(data)) is FileFormat.APR2


@pytest.mark.parametrize("data", [b"", b"A", b"AP", b"APR"])
def test_files_too_short_to_sniff_are_truncated(data: bytes) -> None:
    with pytest.raises(TruncatedError) as info:
        open_bytes(data)
    assert info.value.hint


@pytest.mark.parametrize("size", [4, 10, 63])
def test_apr2_magic_without_a_whole_header_is_truncated(size: int) -> None:
    data = save({"w": np.zeros(1, np.float32)})[:size]
    with pytest.raises(TruncatedError, match="need 64"):
        open_bytes(data)


@pytest.mark.parametrize("data", [b"\x00" * 64, b"PK\x03\x04" + bytes(60), b"\x89PNG\r\n\x1a\n" + bytes(60)])
def test_unknown_magic_is_a_wrong_format(data: bytes) -> None:
    assert sniff_bytes(data[:16], len(data)) is FileFormat.UNKNOWN
    with pytest.raises(WrongFormatError, match="invalid magic") as info:
        open_bytes(data)
    assert info.value.detected == "unknown"


def test_safetensors_sniff_needs_a_plausible_header_length() -> None:
    head = struct.pack("<Q", 10**12) + b"{"
    assert sniff_bytes(head, 100) is FileFormat.UNKNOWN
    assert sniff_bytes(struct.pack("<Q", 2) + b"{}", 10) is FileFormat.SAFETENSORS


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError):
        open_file(tmp_path / "absent.apr")
    with pytest.raises(AprFileNotFoundError, match="not a file"):
        open_file(tmp_path)


def test_sniff_format_on_a_missing_path_is_an_apr_error(tmp_path) -> None:
    from apr.errors import AprFileNotFoundError
    from apr.format import sniff_format

    with pytest.raises(AprFileNotFoundError) as info:
        sniff_format(tmp_path / "nope.apr")
    assert info.value.exit_code == 3
    with pytest.raises(AprFileNotFoundError, match="not a file"):
        sniff_format(tmp_path)
