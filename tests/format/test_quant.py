"""Quantized payloads: APR_Q8/APR_Q4 layout and error bounds (§1.6), K-quants against `gguf`."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from apr.errors import TensorDataError, TensorInputError
from apr.format import DType, PackedTensor, dequantize, open_bytes, quantize_q4, quantize_q8, save

F16_MIN_NORMAL = 6.103515625e-05

# Values well inside float16's normal range once divided by 7 (see test_q4_tiny_and_huge_blocks).
q_values = st.floats(-1e4, 1e4, allow_nan=False, width=32).filter(lambda v: v == 0 or abs(v) > 1e-2)
value_arrays = arrays(np.float32, st.integers(0, 100), elements=q_values)


# --- byte layout examples --------------------------------------------------------------------------


def test_q8_layout_example() -> None:
    packed = quantize_q8(np.array([0.0, 127.0, -127.0, 63.6, -1.2], np.float32))
    # scale = max|x| / 127 = 1.0 -> f32 LE 00 00 80 3f; q = round(x / 1.0) as i8
    assert packed.data.tobytes() == struct.pack("<f", 1.0) + bytes([0, 127, 0x81, 64, 0xFF])
    assert packed.dtype is DType.APR_Q8 and packed.shape == (5,) and packed.nbytes == 4 + 5


def test_q8_all_zero_has_scale_one() -> None:
    assert quantize_q8(np.zeros((2, 2), np.float32)).data.tobytes() == struct.pack("<f", 1.0) + bytes(4)


def test_q4_layout_example() -> None:
    packed = quantize_q4(np.array([7.0, -7.0, 3.4, 0.0, 1.0], np.float32))
    # one block: f16 scale 7/7 = 1.0 (00 3c); q + 8 = [15, 1, 11, 8, 9] then zero padding (8);
    # even index in the low nibble: 0x1f, 0x8b, 0x89, then 0x88 for the 27 padded values.
    assert packed.data.tobytes() == bytes.fromhex("003c") + bytes([0x1F, 0x8B, 0x89]) + bytes([0x88] * 13)
    assert packed.nbytes == 18


def test_q4_sizes_are_whole_blocks() -> None:
    for n, blocks in ((0, 0), (1, 1), (32, 1), (33, 2), (64, 2)):
        assert quantize_q4(np.ones(n, np.float32)).nbytes == 18 * blocks


# --- error bounds --------------------------------------------------------------------------------


@given(value_arrays)
def test_q8_error_is_at_most_half_a_step(values: np.ndarray) -> None:
    packed = quantize_q8(values)
    scale = float(np.frombuffer(packed.data[:4].tobytes(), "<f4")[0])
    restored = packed.dequantize()
    assert restored.shape == values.shape and restored.dtype == np.float32
    error = np.abs(restored.astype(np.float64) - values.astype(np.float64))
    assert np.all(error <= scale / 2 * (1 + 1e-5) + 1e-30)


@given(value_arrays)
def test_q4_error_is_at_most_half_a_block_step(values: np.ndarray) -> None:
    packed = quantize_q4(values)
    blocks = packed.data.reshape(-1, 18)
    scales = blocks[:, :2].copy().view(np.float16).astype(np.float64).reshape(-1)
    restored = packed.dequantize()
    assert restored.shape == values.shape
    padded = np.zeros(len(scales) * 32)
    padded[: values.size] = values.reshape(-1)
    error = np.abs(np.pad(restored.reshape(-1), (0, padded.size - values.size)) - padded).reshape(-1, 32)
    assert np.all(error <= (scales / 2 * (1 + 1e-3))[:, None])


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_q4_tiny_blocks_read_back_as_zero() -> None:
    # §1.6: f16 scales that are subnormal dequantize as 0, so a block whose max is below
    # 7 × the f16 minimum normal reads back as zeros (aprender's rule; error <= 4.3e-4).
    tiny = np.full(32, 1e-4, np.float32)
    assert np.all(quantize_q4(tiny).dequantize() == 0)


def test_q4_refuses_blocks_whose_scale_overflows_f16() -> None:
    # aprender would store an infinite scale and read the block back as zeros; we refuse it.
    with pytest.raises(TensorInputError, match="458528"):
        quantize_q4(np.full(32, 1e6, np.float32))
    with pytest.raises(TensorInputError):
        quantize_q4(np.array([np.nan] * 32, np.float32))


def test_quantizers_round_ties_away_from_zero_like_rust() -> None:
    # Rust's f32::round: 2.5 -> 3, -2.5 -> -3 (numpy's rint gives 2 and -2).
    q = quantize_q8(np.array([127.0, 2.5, -2.5, 0.5, -0.5], np.float32))  # scale exactly 1.0
    assert q.data[4:].view(np.int8).tolist() == [127, 3, -3, 1, -1]


def test_q4_nonfinite_scales_dequantize_to_zero() -> None:
    for scale in (np.float16("nan"), np.float16("inf"), np.float16(1e-6)):
        raw = np.frombuffer(scale.tobytes() + bytes([0xFF] * 16), np.uint8)
        assert np.all(dequantize(DType.APR_Q4, (32,), raw) == 0)


# --- K-quants: raw GGUF superblocks, dequantized like gguf ----------------------------------------


def _superblocks(kind: DType, rows: int, seed: int) -> np.ndarray:
    per, d_at = (144, (0, 2)) if kind is DType.Q4_K else (210, (208,))
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(rows, per), dtype=np.uint8)
    for at in d_at:  # finite f16 super-block scales (d, and dmin for Q4_K)
        raw[:, at : at + 2] = rng.uniform(-0.1, 0.1, rows).astype(np.float16).view(np.uint8).reshape(rows, 2)
    return raw.reshape(-1)


@pytest.mark.parametrize("kind", [DType.Q4_K, DType.Q6_K])
@pytest.mark.parametrize("rows", [1, 3])
def test_k_quants_round_trip_raw_and_dequantize_like_gguf(kind: DType, rows: int) -> None:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize

    raw = _superblocks(kind, rows, seed=rows)
    packed = PackedTensor(kind, (rows, 256), raw)
    back = open_bytes(save({"k": packed})).get_tensor("k")
    assert isinstance(back, PackedTensor) and back.dtype is kind and back.shape == (rows, 256)
    assert back.data.tobytes() == raw.tobytes()
    gtype = GGMLQuantizationType.Q4_K if kind is DType.Q4_K else GGMLQuantizationType.Q6_K
    expected = np.asarray(gguf_dequantize(raw.reshape(rows, -1), gtype), np.float32)
    assert np.array_equal(back.dequantize(), expected.reshape(rows, 256), equal_nan=True)


@pytest.mark.parametrize(
    ("kind", "shape", "nbytes"),
    [
        (DType.Q4_K, (255,), 144),  # not whole superblocks
        (DType.Q4_K, (2, 128), 144),  # rows not a multiple of 256
        (DType.Q6_K, (256,), 144),  # wrong size
        (DType.APR_Q8, (3,), 3),  # missing its scale
        (DType.APR_Q4, (33,), 18),  # two blocks needed
    ],
)
def test_packed_payload_of_the_wrong_size(kind: DType, shape: tuple[int, ...], nbytes: int) -> None:
    raw = np.zeros(nbytes, np.uint8)
    with pytest.raises(TensorInputError):
        PackedTensor(kind, shape, raw)
    with pytest.raises(TensorDataError):
        dequantize(kind, shape, raw)


def test_packed_tensor_needs_a_packed_dtype() -> None:
    with pytest.raises(TensorInputError):
        PackedTensor(DType.F32, (1,), np.zeros(4, np.uint8))


@settings(max_examples=20)
@given(value_arrays.map(lambda a: a.reshape(-1)))
def test_quantized_tensors_survive_a_file(values: np.ndarray) -> None:
    tensors = {"q8": quantize_q8(values), "q4": quantize_q4(values)}
    reader = open_bytes(save(tensors))
    for name, packed in tensors.items():
        back = reader.get_tensor(name)
        assert back.dtype is packed.dtype and back.data.tobytes() == packed.data.tobytes()
        assert np.array_equal(reader.get_float32(name), packed.dequantize())
