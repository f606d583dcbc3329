"""`apr.format.quant` byte for byte against an independent oracle (issue 23). APR_Q8 and APR_Q4
payloads are stored values, so they are interface: the oracle below recomputes them element by
element with NumPy scalars in float32 (aprender's arithmetic, Rust's round-half-away-from-zero) and
packs them with `struct`, sharing no code with the module. Dequantization is checked the same way,
including the scales aprender reads as zero (f16 subnormal, NaN, Inf), and every refusal's exact
message, hint and threshold.
"""

from __future__ import annotations

import math
import struct
import warnings

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from apr.errors import TensorDataError, TensorInputError
from apr.format import DType, PackedTensor, dequantize, quantize_q4, quantize_q8

F16_MIN_NORMAL = 2.0 ** -14


def _half_away(v: np.float32) -> int:
    """Rust's f32::round: the nearest integer, ties away from zero (exact for |v| < 2**28)."""
    return int(math.copysign(math.floor(abs(float(v)) + 0.5), float(v)))


def oracle_q8(values: np.ndarray) -> bytes:
    xs = [np.float32(v) for v in np.asarray(values, np.float32).reshape(-1)]
    amax = max((abs(x) for x in xs), default=np.float32(0.0))
    scale = np.float32(amax / np.float32(127.0)) if amax > 0 else np.float32(1.0)
    qs = [max(-127, min(127, _half_away(np.float32(x / scale)))) for x in xs]
    return struct.pack("<f", scale) + struct.pack(f"<{len(qs)}b", *qs)


def oracle_q4(values: np.ndarray) -> bytes:
    xs = [np.float32(v) for v in np.asarray(values, np.float32).reshape(-1)]
    xs += [np.float32(0.0)] * (-len(xs) % 32)
    out = b""
    for start in range(0, len(xs), 32):
        block = xs[start:start + 32]
        amax = max(abs(x) for x in block)
        scale = np.float16(np.float32(amax / np.float32(7.0))) if amax > 0 else np.float16(1.0)
        divisor = np.float32(scale) if np.float32(scale) != 0 else np.float32(1.0)
        qs = [max(-8, min(7, _half_away(np.float32(x / divisor)))) + 8 for x in block]
        out += struct.pack("<e", scale) + bytes(qs[i] | (qs[i + 1] << 4) for i in range(0, 32, 2))
    return out


def oracle_dequantize(dtype: DType, n: int, raw: bytes) -> list[float]:
    if dtype is DType.APR_Q8:
        (scale,) = struct.unpack("<f", raw[:4])
        return [float(np.float32(np.float32(q) * np.float32(scale))) for q in struct.unpack(f"<{n}b", raw[4:])]
    values: list[float] = []
    for start in range(0, len(raw), 18):
        (scale,) = struct.unpack("<e", raw[start:start + 2])
        if not math.isfinite(scale) or abs(scale) < F16_MIN_NORMAL:
            scale = 0.0
        for byte in raw[start + 2:start + 18]:
            values += [float(np.float32((byte & 0x0F) - 8) * np.float32(scale)),
                       float(np.float32((byte >> 4) - 8) * np.float32(scale))]
    return values[:n]


# values that hit exact ties (k / 2) as well as arbitrary float32s
_elements = st.one_of(st.floats(-1e4, 1e4, allow_nan=False, width=32), st.integers(-300, 300).map(lambda k: k / 2))
_values = arrays(np.float32, st.integers(0, 80), elements=_elements)

TIES_Q8 = np.array([127.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5, 0.49, -0.51], np.float32)
TIES_Q4 = np.array([7.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 6.5, -6.5, 3.5, -3.5, 0.0] + [0.25] * 20, np.float32)


@given(_values)
@example(TIES_Q8)
@example(np.array([0.0, 0.0], np.float32))
@example(np.array([1e-30, -3e-30], np.float32))
def test_q8_payload_is_the_oracles(values):
    packed = quantize_q8(values)
    assert packed.dtype is DType.APR_Q8 and packed.shape == values.shape
    assert packed.data.dtype == np.uint8 and packed.data.ndim == 1
    assert packed.data.tobytes() == oracle_q8(values)
    assert packed.dequantize().reshape(-1).tolist() == oracle_dequantize(DType.APR_Q8, values.size,
                                                                         packed.data.tobytes())


@given(_values)
@example(TIES_Q4)
@example(np.concatenate([np.zeros(32, np.float32), np.full(5, 0.5, np.float32)]))
@example(np.full(32, 0.5, np.float32))  # a block maximum below 1
@example(np.full(32, 1e-4, np.float32))  # a subnormal f16 scale
def test_q4_payload_is_the_oracles(values):
    packed = quantize_q4(values)
    assert packed.dtype is DType.APR_Q4 and packed.shape == values.shape
    assert packed.data.dtype == np.uint8 and packed.data.ndim == 1
    assert packed.data.tobytes() == oracle_q4(values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a subnormal scale's overflow warning in the oracle's own check
        expected = oracle_dequantize(DType.APR_Q4, values.size, packed.data.tobytes())
    assert packed.dequantize().reshape(-1).tolist() == expected


def test_ties_round_away_from_zero_exactly():
    assert quantize_q8(TIES_Q8).data[4:].view(np.int8).tolist() == [127, 1, -1, 2, -2, 3, -3, 127, -127, 0, -1]
    nibbles = quantize_q4(TIES_Q4).data[2:].tolist()
    q = [v for byte in nibbles for v in (byte & 0x0F, byte >> 4)]
    assert q[:12] == [15, 9, 7, 10, 6, 11, 5, 15, 1, 12, 4, 8]  # q + 8 (6.5 -> 7, -6.5 -> -7)


def test_inputs_of_other_types_quantize_as_float32():
    ints = [[1, -2], [3, 127]]
    assert quantize_q8(ints).data.tobytes() == oracle_q8(np.array(ints, np.float32))
    assert quantize_q8(ints).shape == (2, 2)
    doubles = np.array([0.1, -0.3, 2.0 / 3.0], np.float64)
    assert quantize_q4(doubles).data.tobytes() == oracle_q4(doubles.astype(np.float32))


def test_zero_blocks_store_scale_one():
    """The canonical stored scale of an all-zero block is 1.0, not 0 (aprender's bytes)."""
    assert quantize_q8(np.zeros(3, np.float32)).data.tobytes() == struct.pack("<f", 1.0) + bytes(3)
    values = np.concatenate([np.zeros(32, np.float32), np.full(3, 7.0, np.float32)])
    data = quantize_q4(values).data.tobytes()
    assert data[:18] == struct.pack("<e", 1.0) + bytes([0x88] * 16)
    assert data[18:20] == struct.pack("<e", 1.0) and data[20:22] == bytes([0xFF, 0x8F])


def test_a_q4_scale_that_underflows_f16_stores_zero_and_divides_by_one():
    data = quantize_q4(np.full(32, 1e-9, np.float32)).data.tobytes()
    assert data == bytes(2) + bytes([0x88] * 16)


def test_empty_tensors_quantize_to_a_scale_or_nothing():
    assert quantize_q8(np.zeros((0, 4), np.float32)).data.tobytes() == struct.pack("<f", 1.0)
    empty = quantize_q4(np.zeros((0, 4), np.float32))
    assert empty.data.size == 0 and empty.shape == (0, 4) and empty.dequantize().shape == (0, 4)


Q4_REFUSAL = ("APR_Q4 cannot store values whose block maximum exceeds 458528 (the f16 block scale overflows) "
              "or that are NaN/Inf")
Q4_REFUSAL_HINT = "quantize to APR_Q8 or keep the tensor in float32"


def test_q4_block_maximum_threshold_is_458528():
    """458528 / 7 = 65504, f16's largest value: stored; the next float32 above it is refused."""
    at = np.float32(458528.0)
    packed = quantize_q4(np.array([at, -1.0], np.float32))
    assert packed.data[:2].tobytes() == struct.pack("<e", 65504.0)
    assert packed.data.tobytes() == oracle_q4(np.array([at, -1.0], np.float32))
    above = np.nextafter(at, np.float32(np.inf))
    for values in (np.array([above], np.float32), np.array([-above], np.float32),
                   np.concatenate([np.ones(32, np.float32), [above]])):
        with pytest.raises(TensorInputError) as info:
            quantize_q4(values)
        assert (info.value.message, info.value.hint) == (Q4_REFUSAL, Q4_REFUSAL_HINT)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_q4_refuses_non_finite_values(bad):
    with pytest.raises(TensorInputError) as info:
        quantize_q4(np.array([1.0, bad], np.float32))
    assert (info.value.message, info.value.hint) == (Q4_REFUSAL, Q4_REFUSAL_HINT)


# --- dequantize ----------------------------------------------------------------------------------------


def test_q8_dequantize_is_scale_times_each_signed_byte():
    raw = np.frombuffer(struct.pack("<f", 0.5) + bytes([0, 1, 0x7F, 0x80, 0xFF, 0x81]), np.uint8)
    out = dequantize(DType.APR_Q8, (2, 3), raw)
    assert out.dtype == np.float32 and out.shape == (2, 3)
    assert out.tolist() == [[0.0, 0.5, 63.5], [-64.0, -0.5, -63.5]]


def test_q8_dequantize_of_a_huge_scale_is_inf_without_a_warning():
    raw = np.frombuffer(struct.pack("<f", 3.0e38) + bytes([0x7F, 0x00]), np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = dequantize(DType.APR_Q8, (2,), raw)
    assert out.tolist() == [math.inf, 0.0]


def _q4_block(scale: float, nibbles: bytes = bytes([0x1F]) + bytes([0x88] * 15)) -> bytes:
    return struct.pack("<e", scale) + nibbles


def test_q4_dequantize_nibbles_low_first_minus_eight():
    raw = np.frombuffer(_q4_block(2.0, bytes([0x1F, 0x80, 0x08]) + bytes([0x88] * 13)), np.uint8)
    out = dequantize(DType.APR_Q4, (5,), raw)
    # byte 0x1F: low nibble 15 -> 7 (even index), high 1 -> -7; 0x80: 0 -> -8, 8 -> 0; 0x08: 8 -> 0
    assert out.dtype == np.float32 and out.tolist() == [14.0, -14.0, -16.0, 0.0, 0.0]


def test_q4_scales_read_as_zero_below_the_f16_minimum_normal():
    smallest_normal = float(np.float16(F16_MIN_NORMAL))
    largest_subnormal = float(np.nextafter(np.float16(F16_MIN_NORMAL), np.float16(0)))
    kept = dequantize(DType.APR_Q4, (2,), np.frombuffer(_q4_block(smallest_normal), np.uint8))
    assert kept.tolist() == [7 * smallest_normal, -7 * smallest_normal]
    negative = dequantize(DType.APR_Q4, (2,), np.frombuffer(_q4_block(-smallest_normal), np.uint8))
    assert negative.tolist() == [-7 * smallest_normal, 7 * smallest_normal]  # a negative scale is a scale
    for scale in (largest_subnormal, -largest_subnormal, 0.0, math.inf, -math.inf, math.nan):
        out = dequantize(DType.APR_Q4, (2,), np.frombuffer(_q4_block(scale), np.uint8))
        assert out.tolist() == [0.0, 0.0], scale
    # one bad block does not zero the next
    two = np.frombuffer(_q4_block(math.nan) + _q4_block(1.0), np.uint8)
    assert dequantize(DType.APR_Q4, (34,), two)[32:].tolist() == [7.0, -7.0]


@pytest.mark.parametrize(("dtype", "shape", "nbytes"), [
    (DType.APR_Q8, (3,), 6), (DType.APR_Q8, (3,), 8), (DType.APR_Q4, (33,), 18), (DType.APR_Q4, (2, 2), 19)])
def test_dequantize_refuses_a_payload_of_the_wrong_size_by_name(dtype, shape, nbytes):
    expected = {DType.APR_Q8: 4 + math.prod(shape), DType.APR_Q4: 18 * -(-math.prod(shape) // 32)}[dtype]
    with pytest.raises(TensorDataError) as info:
        dequantize(dtype, shape, np.zeros(nbytes, np.uint8))
    assert info.value.message == f"{dtype.name} payload of shape {shape} must be {expected} bytes, got {nbytes}"


def test_dequantize_refuses_an_unpacked_dtype():
    with pytest.raises(TensorDataError) as info:
        dequantize(DType.F32, (2,), np.zeros(8, np.uint8))
    assert info.value.message == "F32 is not a packed dtype"


def test_dequantize_accepts_any_byte_array_shape():
    raw = np.frombuffer(struct.pack("<f", 1.0) + bytes([1, 2, 3, 4]), np.uint8).reshape(2, 4)
    assert dequantize(DType.APR_Q8, (4,), raw).tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("kind", [DType.Q4_K, DType.Q6_K])
def test_k_quants_dequantize_with_their_own_gguf_type(kind):
    """A Q4_K payload read as Q6_K (or the reverse) would give other values: each is gguf's own."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as gguf_dequantize

    size, at = (144, (0, 2)) if kind is DType.Q4_K else (210, (208,))
    raw = np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8)
    for offset in at:
        raw[offset:offset + 2] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
    gtype = GGMLQuantizationType.Q4_K if kind is DType.Q4_K else GGMLQuantizationType.Q6_K
    out = dequantize(kind, (1, 256), raw)
    assert out.dtype == np.float32 and out.shape == (1, 256)
    assert np.array_equal(out, np.asarray(gguf_dequantize(raw, gtype), np.float32).reshape(1, 256))


# --- PackedTensor ------------------------------------------------------------------------------------------


def test_packed_tensor_refusals_say_what_and_why():
    with pytest.raises(TensorInputError) as info:
        PackedTensor(DType.F16, (1,), np.zeros(2, np.uint8))
    assert info.value.message == "PackedTensor needs a packed dtype, got F16"
    with pytest.raises(TensorInputError) as info:
        PackedTensor(DType.APR_Q8, (3,), np.zeros(8, np.uint8))
    assert info.value.message == "APR_Q8 payload of shape (3,) must be 7 bytes, got 8"
    assert info.value.hint == "K-quants need rows that are a multiple of 256 elements"
    with pytest.raises(TensorInputError) as info:
        PackedTensor(DType.Q4_K, (100,), np.zeros(144, np.uint8))
    assert info.value.message == "Q4_K payload of shape (100,) must be None bytes, got 144"


def test_packed_tensor_size_and_values():
    packed = PackedTensor(DType.APR_Q8, (2,), np.frombuffer(struct.pack("<f", 2.0) + bytes([1, 0xFF]), np.uint8))
    assert packed.nbytes == 6 and isinstance(packed.nbytes, int)
    assert packed.dequantize().tolist() == [2.0, -2.0]
    # nbytes counts bytes, whatever the array's element type
    wide = PackedTensor(DType.APR_Q8, (4,), np.zeros(2, np.float32))
    assert wide.nbytes == 8


def test_q8_of_doubles_is_q8_of_their_float32_values():
    """The scale comes from the float32 values, not the doubles given (0.1 is not a float32)."""
    # found by search: quantized from the doubles themselves, one of these lands in another step
    doubles = np.array([0.023643249400513433, 0.9009273926518706, -0.7116807745607325, 0.8972988942744877])
    assert quantize_q8(doubles).data.tobytes() == oracle_q8(doubles.astype(np.float32))


def test_a_payload_held_in_a_wider_array_dequantizes_from_its_bytes():
    """`PackedTensor` counts ``data.nbytes`` and save_file writes the bytes, so an int16 or float32
    array holding the payload is the same tensor: dequantizing it reads the bytes, not cast values."""
    q8 = quantize_q8(np.array([1.0, -2.0, 3.0, 0.5], np.float32))
    q4 = quantize_q4(np.arange(-16, 16, dtype=np.float32))
    for packed, wide in ((q8, np.int16), (q4, np.int16), (q4, np.float16)):
        held = PackedTensor(packed.dtype, packed.shape, packed.data.view(wide))
        assert held.nbytes == packed.nbytes
        assert held.dequantize().tolist() == packed.dequantize().tolist()
        assert dequantize(packed.dtype, packed.shape, packed.data.view(wide).reshape(1, -1)).tolist() == \
            packed.dequantize().tolist()


SUBNORMAL_F16 = 2.0 ** -24


def test_q4_codes_are_clipped_to_minus_8_and_7_when_a_subnormal_scale_rounds_down():
    """amax / 7 = 1.4 x f16's smallest subnormal rounds to 1 x: |x| / scale = 9.8 rounds to 10, so
    the codes reach the clip: 7 (stored 15) and -8 (stored 0)."""
    amax = np.float32(7 * 1.4 * SUBNORMAL_F16)
    values = np.array([amax, -amax, amax / 2] + [0.0] * 29, np.float32)
    data = quantize_q4(values).data.tobytes()
    assert data[:2] == struct.pack("<e", SUBNORMAL_F16)
    assert data[2] == 0x0F and data[3] & 0x0F == 13  # 7 + 8 | (-8 + 8) << 4; round(4.9) = 5 -> 13
    assert data == oracle_q4(values)


def test_q8_codes_are_clipped_to_plus_minus_127_when_a_subnormal_scale_rounds_down():
    """amax = 178 x float32's smallest subnormal: amax / 127 rounds to 1 x, so |x| / scale = 178 clips to 127."""
    tiny = np.float32(2.0 ** -149)
    values = np.array([178, -178, 50, -127], np.float32) * tiny
    data = quantize_q8(values).data.tobytes()
    assert data[:4] == struct.pack("<f", float(tiny))
    assert list(struct.unpack("<4b", data[4:])) == [127, -127, 50, -127]
    assert data == oracle_q8(values)
