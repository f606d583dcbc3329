"""`apr.format.sniff`: each magic, the safetensors heuristic at each of its limits (9 bytes of head,
a header length of 2, a header that just fits the file), and `require_apr2`'s refusal for each
foreign format with its class, exit code, detected format, offset and the conversion it names
(issue 23)."""

from __future__ import annotations

import errno
import struct
from pathlib import Path

import pytest

from apr.errors import AprFileNotFoundError, AprIOError, TruncatedError, WrongFormatError
from apr.format import sniff as sniff_module
from apr.format.sniff import FileFormat, require_apr2, sniff_bytes, sniff_format

APR2 = b"APR\x00" + bytes(12)


def _st(n: int, rest: bytes = b'{"a": 1}') -> bytes:
    """A safetensors head: the header length ``n`` (u64 little-endian), then the JSON."""
    return struct.pack("<Q", n) + rest


@pytest.mark.parametrize("head, fmt", [
    (APR2, FileFormat.APR2), (b"APRN" + bytes(12), FileFormat.APR1), (b"APR1", FileFormat.APR1),
    (b"APR2xxxx", FileFormat.APR1), (b"GGUF\x03\x00\x00\x00", FileFormat.GGUF), (b"", FileFormat.UNKNOWN),
    (b"APR", FileFormat.UNKNOWN), (b"PK\x03\x04" + bytes(12), FileFormat.UNKNOWN)])
def test_magics(head: bytes, fmt: FileFormat) -> None:
    assert sniff_bytes(head) is fmt and sniff_bytes(head, 1 << 20) is fmt


def test_the_safetensors_heuristic_at_its_limits() -> None:
    assert sniff_bytes(_st(2, b"{")) is FileFormat.SAFETENSORS  # exactly 9 bytes
    assert sniff_bytes(_st(2, b"")) is FileFormat.UNKNOWN  # 8 bytes: no JSON to see
    assert sniff_bytes(_st(1, b"{")) is FileFormat.UNKNOWN  # a header shorter than "{}"
    assert sniff_bytes(_st(0, b"{")) is FileFormat.UNKNOWN
    assert sniff_bytes(_st(2, b"[")) is FileFormat.UNKNOWN
    assert sniff_bytes(_st(100), 108) is FileFormat.SAFETENSORS  # the header just fits
    assert sniff_bytes(_st(100), 107) is FileFormat.UNKNOWN  # one byte too long for the file
    assert sniff_bytes(_st(1 << 40)) is FileFormat.SAFETENSORS  # no size given: not checked
    assert sniff_bytes(_st((1 << 64) - 1)) is FileFormat.SAFETENSORS  # the length is unsigned
    assert sniff_bytes(_st(1 << 40), 1 << 20) is FileFormat.UNKNOWN


def test_sniff_format_reads_the_head_and_the_size(tmp_path: Path) -> None:
    st = tmp_path / "m.safetensors"
    st.write_bytes(_st(20, b'{"x": 1}' + b" " * 12))
    assert sniff_format(st) is FileFormat.SAFETENSORS
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(_st(21, b'{"x": 1}' + b" " * 12))  # claims one byte more than there is
    assert sniff_format(str(cut)) is FileFormat.UNKNOWN
    apr = tmp_path / "m.apr"
    apr.write_bytes(APR2 * 4)
    assert sniff_format(apr) is FileFormat.APR2


def test_sniff_format_of_a_missing_path_or_a_folder(tmp_path: Path) -> None:
    with pytest.raises(AprFileNotFoundError) as info:
        sniff_format(tmp_path / "gone.apr")
    assert info.value.message == "file not found" and info.value.path == str(tmp_path / "gone.apr")
    assert info.value.hint == "check the path" and info.value.exit_code == 3
    with pytest.raises(AprFileNotFoundError) as info:
        sniff_format(tmp_path)
    assert info.value.message == "not a file (a folder or device)" and info.value.path == str(tmp_path)


def test_sniff_format_of_an_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(APR2)

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(sniff_module, "open", refuse, raising=False)
    with pytest.raises(AprIOError) as info:
        sniff_format(path)
    assert info.value.message == "cannot read file: Permission denied" and info.value.path == str(path)
    assert info.value.exit_code == 7


# --- require_apr2 ------------------------------------------------------------------------------------


def test_an_apr2_head_at_and_under_the_header_size() -> None:
    assert require_apr2(APR2, 64) is None
    with pytest.raises(TruncatedError) as info:
        require_apr2(APR2, 63, "m.apr")
    err = info.value
    assert err.message == "file too small to contain a valid APR header: 63 bytes, need 64"
    assert err.hint == "the file is truncated; re-copy or re-export it" and err.path == "m.apr"
    assert err.exit_code == 4


@pytest.mark.parametrize("magic", [b"APRN", b"APR1", b"APR2"])
def test_a_legacy_apr_file_is_told_to_reimport(magic: bytes) -> None:
    with pytest.raises(WrongFormatError) as info:
        require_apr2(magic + bytes(60), 64, "old.apr")
    err = info.value
    assert err.detected == "apr1" and err.offset == 0 and err.path == "old.apr" and err.exit_code == 4
    assert err.message == (f"legacy APR format detected ({magic.decode()}); only APR v2 (APR\\0) is supported")
    assert err.hint == "re-import the model from its source with `apr import SRC -o OUT.apr` to create a v2 file"


def test_a_gguf_file_names_its_conversion() -> None:
    with pytest.raises(WrongFormatError) as info:
        require_apr2(b"GGUF" + bytes(60), 64, "/m/x.gguf")
    err = info.value
    assert err.detected == "gguf" and err.offset == 0 and err.path == "/m/x.gguf"
    assert err.message == "GGUF format detected, not APR v2"
    assert err.hint == "convert it first: apr import /m/x.gguf -o MODEL.apr"
    with pytest.raises(WrongFormatError) as info:
        require_apr2(b"GGUF" + bytes(60), 64)
    assert info.value.hint == "convert it first: apr import MODEL.gguf -o MODEL.apr" and info.value.path is None


def test_a_safetensors_file_names_its_conversion() -> None:
    with pytest.raises(WrongFormatError) as info:
        require_apr2(_st(10), 100, "w.safetensors")
    err = info.value
    assert err.detected == "safetensors" and err.offset == 0 and err.path == "w.safetensors"
    assert err.message == "safetensors format detected, not APR v2"
    assert err.hint == "import the Hugging Face folder that holds it: apr import MODEL_DIR -o MODEL.apr"


def test_require_apr2_checks_the_safetensors_length_against_the_file() -> None:
    with pytest.raises(WrongFormatError) as info:
        require_apr2(_st(1000), 100, "x.bin")  # a length longer than the file: not safetensors
    assert info.value.detected == "unknown" and info.value.message.startswith("invalid magic bytes")
    with pytest.raises(WrongFormatError) as info:
        require_apr2(_st(92), 100, "x.bin")
    assert info.value.detected == "safetensors"


@pytest.mark.parametrize("size", [0, 3])
def test_a_tiny_unknown_file_is_truncated(size: int) -> None:
    with pytest.raises(TruncatedError) as info:
        require_apr2(b"\x01" * size, size, "t.apr")
    err = info.value
    assert err.message == f"file too small to contain a valid APR header: {size} bytes, need 64"
    assert err.hint == "the file is empty or truncated; re-copy or re-export it" and err.path == "t.apr"


def test_an_unknown_magic_is_shown_in_hex() -> None:
    with pytest.raises(WrongFormatError) as info:
        require_apr2(b"\x7fELF" + bytes(60), 4, "a.out")
    err = info.value
    assert type(err) is WrongFormatError and err.detected == "unknown" and err.offset == 0
    assert err.message == "invalid magic bytes: expected 41505200 ('APR\\0'), got 7f454c46"
    assert err.hint == "this is not a model file `apr` can read; check the path" and err.path == "a.out"
