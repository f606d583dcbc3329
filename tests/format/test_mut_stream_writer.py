"""`apr.format.stream_writer`: the declarations' checks at each limit (one error listing every problem
in order, nothing written), the file layout (offsets, padding, the footer as zlib's CRC of the bytes
before it, the returned size as the file's), every payload form a producer may return, and a
producer that fails or lies mid-file: the previous file stays, no temporary is left (issue 23)."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np
import pytest

from apr.errors import TensorInputError
from apr.format import DType, open_file, save
from apr.format.header import MAX_NDIM, MAX_TENSOR_NAME_LEN
from apr.format.quant import PackedTensor
from apr.format.stream_writer import TensorSpec, plan_specs, write_file_streaming

HINT = "fix the listed tensors; nothing was written"


_DTYPES = {np.dtype(np.float32): DType.F32, np.dtype(np.uint8): DType.U8}


def _spec(name: str, array: np.ndarray) -> TensorSpec:
    return TensorSpec(name, _DTYPES[array.dtype], array.shape, array.nbytes)


def _stream(tensors: dict[str, np.ndarray], path: Path, metadata=None, flags: int = 0, **kwargs) -> int:
    return write_file_streaming([_spec(n, a) for n, a in tensors.items()], lambda s: tensors[s.name], path,
                                metadata, flags, **kwargs)


# --- declarations -------------------------------------------------------------------------------------


def test_plan_lays_out_in_byte_order_at_64_byte_boundaries() -> None:
    specs = [TensorSpec("b", DType.U8, (65,), 65), TensorSpec("a", DType.U8, (1,), 1),
             TensorSpec("é", DType.U8, (0,), 0), TensorSpec("Z", DType.F32, (16,), 64), TensorSpec("c", DType.U8, (3,), 3)]
    planned = plan_specs(specs)
    assert [(d.entry.name, d.entry.offset, d.entry.size) for d in planned] == [
        ("Z", 0, 64), ("a", 64, 1), ("b", 128, 65), ("c", 256, 3), ("é", 320, 0)]
    assert [d.spec for d in planned] == [specs[3], specs[1], specs[0], specs[4], specs[2]]
    assert planned[0].entry.dtype is DType.F32 and planned[0].entry.shape == (16,)
    assert planned[2].entry.shape == (65,) and isinstance(planned[2].entry.shape, tuple)


def test_a_shape_given_as_a_list_is_stored_as_a_tuple(tmp_path: Path) -> None:
    (planned,) = plan_specs([TensorSpec("w", DType.F32, [2, 3], 24)])  # type: ignore[arg-type]
    assert planned.entry.shape == (2, 3)


def test_names_at_and_over_the_byte_limit() -> None:
    at_limit = "é" * (MAX_TENSOR_NAME_LEN // 2)  # 2 bytes each: exactly the limit in bytes
    over = "é" * (MAX_TENSOR_NAME_LEN // 2) + "x"
    assert len(at_limit.encode()) == MAX_TENSOR_NAME_LEN
    assert [d.entry.name for d in plan_specs([TensorSpec(at_limit, DType.U8, (1,), 1)])] == [at_limit]
    with pytest.raises(TensorInputError) as info:
        plan_specs([TensorSpec(over, DType.U8, (1,), 1)])
    assert info.value.message == (f"cannot write 1 tensor(s):\n    {over[:40]!r}...: name is "
                                  f"{MAX_TENSOR_NAME_LEN + 1} bytes, the format allows {MAX_TENSOR_NAME_LEN}")
    assert info.value.hint == HINT and info.value.exit_code == 5


def test_dimensions_at_and_over_the_limit() -> None:
    at_limit = (1,) * MAX_NDIM
    assert plan_specs([TensorSpec("w", DType.U8, at_limit, 1)])[0].entry.shape == at_limit
    with pytest.raises(TensorInputError) as info:
        plan_specs([TensorSpec("w", DType.U8, (1,) * (MAX_NDIM + 1), 1)])
    assert info.value.message == (f"cannot write 1 tensor(s):\n    'w': {MAX_NDIM + 1} dimensions, "
                                  f"the format allows at most {MAX_NDIM}")


def test_every_problem_is_listed_in_order_and_each_only_once() -> None:
    specs = [
        TensorSpec("ok", DType.F32, (2,), 8),
        TensorSpec("\udc80", DType.F32, (2,), 8),  # a lone surrogate: no UTF-8
        TensorSpec(7, DType.F32, (2,), 8),  # type: ignore[arg-type]
        TensorSpec("ok", DType.F32, (2,), 8),
        TensorSpec("big", DType.F32, (2, 3), 25),
        TensorSpec("deep", DType.F32, (1,) * (MAX_NDIM + 1), 4),
        TensorSpec("ok", DType.F32, (2,), 9),  # a third time: reported as declared twice, not as a size
    ]
    with pytest.raises(TensorInputError) as info:
        plan_specs(specs)
    assert info.value.message == "cannot write 6 tensor(s):\n    " + "\n    ".join([
        "'\\udc80': tensor name is not a valid str",
        "7: tensor name is not a valid str",
        "'ok': declared twice",
        "'big': F32 [2, 3] needs 24 bytes, declared 25",
        f"'deep': {MAX_NDIM + 1} dimensions, the format allows at most {MAX_NDIM}",
        "'ok': declared twice",
    ])
    assert info.value.hint == HINT


def test_a_refused_name_is_not_counted_as_seen() -> None:
    """A name refused for its length or shape is reported once per declaration, never as a duplicate."""
    long = "n" * (MAX_TENSOR_NAME_LEN + 1)
    with pytest.raises(TensorInputError) as info:
        plan_specs([TensorSpec("w", DType.F32, (1,), 5), TensorSpec("w", DType.F32, (1,), 4),
                    TensorSpec(long, DType.U8, (1,), 1)])
    assert info.value.message.splitlines()[1:] == [
        "    'w': F32 [1] needs 4 bytes, declared 5",
        "    'w': declared twice",
        f"    {long[:40]!r}...: name is {MAX_TENSOR_NAME_LEN + 1} bytes, the format allows {MAX_TENSOR_NAME_LEN}"]


def test_every_refusal_lets_the_next_declarations_be_checked() -> None:
    long = "n" * (MAX_TENSOR_NAME_LEN + 1)
    deep = (1,) * (MAX_NDIM + 1)
    with pytest.raises(TensorInputError) as info:
        plan_specs([TensorSpec(long, DType.U8, (1,), 1), TensorSpec("deep", DType.U8, deep, 1),
                    TensorSpec("size", DType.U8, (2,), 3), TensorSpec("\udc80", DType.U8, (1,), 1),
                    TensorSpec("last", DType.U8, (2,), 1)])
    assert [line.split(":")[0] for line in info.value.message.splitlines()[1:]] == [
        f"    {long[:40]!r}...", "    'deep'", "    'size'", "    '\\udc80'", "    'last'"]


def test_refused_declarations_write_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(b"previous")
    asked: list[str] = []
    with pytest.raises(TensorInputError):
        write_file_streaming([TensorSpec("w", DType.F32, (2,), 7)], lambda s: asked.append(s.name), path)
    assert asked == [] and path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["m.apr"]


# --- the file ----------------------------------------------------------------------------------------


def test_the_file_is_save_files_with_zlibs_footer_and_its_size_returned(tmp_path: Path) -> None:
    tensors = {"z": np.arange(17, dtype=np.float32), "a": np.zeros(0, np.float32), "m": np.arange(16, dtype=np.float32)}
    metadata = {"architecture": "llama", "n": 3}
    path = tmp_path / "m.apr"
    size = _stream(tensors, path, metadata, flags=0)
    raw = path.read_bytes()
    assert size == len(raw) == os.path.getsize(path)
    assert raw == save(tensors, metadata)
    assert int.from_bytes(raw[-4:], "little") == zlib.crc32(raw[:-4])
    with open_file(path) as reader:
        assert reader.keys() == ["a", "m", "z"]
        for name, array in tensors.items():
            assert bytes(reader.get_raw(name)) == array.tobytes()


def test_padding_is_zeros_to_64_bytes(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    _stream({"a": np.full(3, 0xFF, np.uint8)}, path)
    raw = path.read_bytes()
    with open_file(path) as reader:
        start, stop = reader.absolute_range(reader.entry("a"))
    assert raw[start:stop] == b"\xff\xff\xff"
    assert raw[stop:start + 64] == bytes(61) and len(raw) == start + 64 + 4


def test_flags_and_metadata_reach_the_header(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    tensors = {"w": np.ones(4, np.float32)}
    _stream(tensors, path, {"architecture": "qwen2"}, flags=0x0001)
    assert path.read_bytes() == save(tensors, {"architecture": "qwen2"}, 0x0001)
    with open_file(path) as reader:
        assert reader.header.flags & 0x0001 and reader.metadata["architecture"] == "qwen2"
    _stream(tensors, path, {"architecture": "qwen2"}, flags=0)
    with open_file(path) as reader:
        assert not reader.header.flags & 0x0001


def test_verify_sees_the_finished_temporary(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    tensors = {"w": np.arange(5, dtype=np.float32)}
    seen: list[tuple[str, bytes]] = []
    _stream(tensors, path, verify=lambda tmp: seen.append((tmp, Path(tmp).read_bytes())))
    ((tmp, raw),) = seen
    assert os.path.basename(tmp).startswith(".m.apr.tmp-") and raw == save(tensors) == path.read_bytes()


def test_produce_is_asked_once_per_tensor_in_file_order(tmp_path: Path) -> None:
    tensors = {"b": np.ones(2, np.float32), "B": np.ones(3, np.float32), "a": np.ones(1, np.float32)}
    asked: list[str] = []

    def produce(spec: TensorSpec) -> np.ndarray:
        asked.append(spec.name)
        return tensors[spec.name]

    write_file_streaming([_spec(n, a) for n, a in tensors.items()], produce, tmp_path / "m.apr")
    assert asked == ["B", "a", "b"]


# --- what a producer may return ------------------------------------------------------------------------


def test_bytes_bytearray_memoryview_and_arrays_give_the_same_file(tmp_path: Path) -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = save({"w": array})
    forms = {"bytes": array.tobytes(), "bytearray": bytearray(array.tobytes()),
             "memoryview": memoryview(array.tobytes()), "float view": memoryview(array.reshape(-1)),
             "big-endian": array.astype(">f4"), "fortran": np.asfortranarray(array),
             "transposed view": np.ascontiguousarray(array.T).T}
    for label, value in forms.items():
        path = tmp_path / f"{label}.apr"
        write_file_streaming([TensorSpec("w", DType.F32, (2, 3), 24)], lambda s, v=value: v, path)
        assert path.read_bytes() == expected, label


def test_a_scalar_is_written_by_its_bytes(tmp_path: Path) -> None:
    scalar = np.array(2.5, dtype=np.float32)
    path = tmp_path / "s.apr"
    write_file_streaming([TensorSpec("s", DType.F32, (), 4)], lambda s: scalar, path)
    assert path.read_bytes() == save({"s": scalar})
    with open_file(path) as reader:
        assert bytes(reader.get_raw("s")) == scalar.tobytes() and reader.entry("s").shape == ()


def test_a_packed_tensor_is_written_by_its_bytes(tmp_path: Path) -> None:
    data = np.arange(4 + 64, dtype=np.uint8)
    packed = PackedTensor(DType.APR_Q8, (64,), data)
    path = tmp_path / "q.apr"
    write_file_streaming([TensorSpec("q", DType.APR_Q8, (64,), 68)], lambda s: packed, path)
    assert path.read_bytes() == save({"q": packed})
    with open_file(path) as reader:
        assert bytes(reader.get_raw("q")) == data.tobytes()


@pytest.mark.parametrize("holder", [np.int16, np.float32, np.int8])
def test_a_packed_tensor_held_in_a_wider_array_is_written_by_its_bytes(tmp_path: Path, holder) -> None:
    """The bytes, not the values: streaming writes what save_file writes (a uint8 cast refused them)."""
    raw = (np.arange(68, dtype=np.uint8) * 37 + 200).astype(np.uint8)  # values over 127 included
    packed = PackedTensor(DType.APR_Q8, (64,), raw.view(holder))
    path = tmp_path / "q.apr"
    write_file_streaming([TensorSpec("q", DType.APR_Q8, (64,), 68)], lambda s: packed, path)
    assert path.read_bytes() == save({"q": packed}) == save({"q": PackedTensor(DType.APR_Q8, (64,), raw)})
    with open_file(path) as reader:
        assert bytes(reader.get_raw("q")) == raw.tobytes()


@pytest.mark.parametrize("dtype, shape", [(DType.APR_Q8, (2, 32)), (DType.APR_Q4, (64,))])
def test_a_packed_tensor_unlike_its_declaration_is_refused(tmp_path: Path, dtype: DType, shape: tuple[int, ...]) -> None:
    packed = PackedTensor(dtype, shape, np.zeros(4 + 64 if dtype is DType.APR_Q8 else 36, np.uint8))
    path = tmp_path / "q.apr"
    path.write_bytes(b"previous")
    with pytest.raises(TensorInputError) as info:
        write_file_streaming([TensorSpec("q", DType.APR_Q8, (64,), 68)], lambda s: packed, path)
    assert info.value.message == (f"'q': produced {dtype.name} {list(shape)}, declared APR_Q8 [64]")
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["q.apr"]


@pytest.mark.parametrize("value, kind", [(None, "NoneType"), ([1.0, 2.0], "list"), ("ab", "str")])
def test_a_producer_returning_something_else_is_refused(tmp_path: Path, value, kind: str) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(b"previous")
    with pytest.raises(TensorInputError) as info:
        write_file_streaming([TensorSpec("w", DType.F32, (2,), 8)], lambda s: value, path)
    assert info.value.message == f"'w': the producer returned {kind}, not bytes or an array"
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["m.apr"]


@pytest.mark.parametrize("produced", [np.zeros(3, np.float32), b"\x00" * 7, np.zeros(1, np.float32)])
def test_a_payload_of_the_wrong_size_mid_file_writes_nothing(tmp_path: Path, produced) -> None:
    path = tmp_path / "m.apr"
    path.write_bytes(b"previous")
    specs = [TensorSpec("a", DType.F32, (2,), 8), TensorSpec("b", DType.F32, (2,), 8)]
    with pytest.raises(TensorInputError) as info:
        write_file_streaming(specs, lambda s: np.zeros(2, np.float32) if s.name == "a" else produced, path)
    err = info.value
    assert err.message == f"'b': the producer returned {np.asarray(produced).nbytes if not isinstance(produced, bytes) else 7} bytes, declared 8"
    assert err.field == "b" and err.hint == "this is a bug in the converter; nothing was written"
    assert err.exit_code == 5
    assert path.read_bytes() == b"previous" and os.listdir(tmp_path) == ["m.apr"]


def test_a_producer_that_crashes_mid_file_leaves_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "m.apr"
    _stream({"w": np.ones(2, np.float32)}, path)
    before = path.read_bytes()

    def produce(spec: TensorSpec) -> np.ndarray:
        if spec.name == "b":
            raise MemoryError("out of memory while converting b")
        return np.ones(2, np.float32)

    with pytest.raises(MemoryError):
        write_file_streaming([TensorSpec(n, DType.F32, (2,), 8) for n in "abc"], produce, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.apr"]
