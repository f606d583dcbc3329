"""ggml block decoders (Q4_K, Q6_K, Q8_0) and the Q8_0 encoder compiled with numba: the ``gguf`` package's
values and bytes, bit for bit.

Why: a quantized GGUF export measures each tensor's error by decoding what it just encoded
(contract apr-export-v1, INV-EXPORT-005), and GGUF import decodes every quantized tensor. The
``gguf`` package's ``dequantize_blocks`` are a dozen numpy passes with temporaries per chunk: with
the compiled Q4_K search (`apr.convert.quant_k_numba`) they were 23 % of a Q4_K export (1.5 s of
CPU per GiB of float32). These loops read each block once and write each value once.

They must give exactly the float32 values of ``gguf.quants.<TYPE>.dequantize_blocks`` (the
decoder the contract's error equation names), so each value is computed with the same float32
operations in the same order, and without ``fastmath`` (no reassociation, no fused multiply-add):

- Q4_K: ``F(F(d * sc) * q) - F(dmin * m)`` with the 6-bit ``sc``/``m`` unpacked as
  ``Q4_K.get_scale_min`` does;
- Q6_K: ``F(d * scale) * (q - 32)``;
- Q8_0: ``q * d``.

The Q8_0 encoder is ``gguf.quants.Q8_0.quantize_blocks`` (itself ggml's ``quantize_row_q8_0_ref``)
step by step in float32: ``d = amax / 127``, ``id = 1 / d`` (0 for an all-zero block), each
``x * id`` rounded half away from zero as ``np_roundf`` does it, ``d`` rounded to float16 to
nearest even (`apr.convert.quant_k_numba._f16_bits`). Its input is finite (a quantized export
refuses NaN and Inf first, `apr.convert.gguf_export.require_finite`). The package's version makes
about ten numpy passes per chunk: 60 % of a Q8_0 export's CPU.

The float16 ``d``/``dmin`` are widened exactly (`apr.convert.quant_k_numba._f16_value`); a NaN
half decodes to a NaN (its payload bits may differ from numpy's, which no quantizer writes).
Imported only when a quantized tensor is decoded with numba available (`decoder`); see
`apr.convert.ggml_blocks.dequantize`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from apr.convert.quant_k_numba import _f16_bits, _f16_value

F = np.float32
QK_K = 256
F127 = F(127.0)
F2 = F(2.0)


@njit(cache=True, nogil=True, error_model="numpy")
def _half(lo: Any, hi: Any) -> Any:
    """The float32 value of the little-endian binary16 in bytes ``lo``, ``hi``."""
    return _f16_value(np.int64(lo) | (np.int64(hi) << 8))


@njit(cache=True, nogil=True, error_model="numpy")
def q4_k_decode(blocks: Any, out: Any) -> None:
    """``blocks`` (nb, 144) uint8 -> ``out`` (nb, 256) float32, as ``gguf.quants.Q4_K``."""
    for b in range(blocks.shape[0]):
        row = blocks[b]
        d = _half(row[0], row[1])
        dmin = _half(row[2], row[3])
        for sb in range(8):
            if sb < 4:
                sc = row[4 + sb] & 0x3F
                mn = row[8 + sb] & 0x3F
            else:
                k = sb - 4
                sc = (row[12 + k] & 0x0F) | ((row[4 + k] >> 2) & 0x30)
                mn = (row[12 + k] >> 4) | ((row[8 + k] >> 2) & 0x30)
            ds = F(d * F(sc))
            dm = F(dmin * F(mn))
            base = 16 + 32 * (sb // 2)
            shift = 4 * (sb % 2)
            for i in range(32):
                q = (row[base + i] >> shift) & 0x0F
                out[b, 32 * sb + i] = F(F(ds * F(q)) - dm)


@njit(cache=True, nogil=True, error_model="numpy")
def q6_k_decode(blocks: Any, out: Any) -> None:
    """``blocks`` (nb, 210) uint8 -> ``out`` (nb, 256) float32, as ``gguf.quants.Q6_K``: 128 bytes
    of low nibbles, 64 of high bit pairs, 16 int8 scales, the float16 ``d``."""
    for b in range(blocks.shape[0]):
        row = blocks[b]
        d = _half(row[208], row[209])
        for half in range(2):
            for u in range(4):
                r = 4 * half + u  # value 32 r + i
                low = 64 * half + 32 * (u % 2)
                low_shift = 4 * (u // 2)
                for i in range(32):
                    q = ((row[low + i] >> low_shift) & 0x0F) | (((row[128 + 32 * half + i] >> (2 * u)) & 0x03) << 4)
                    stored = np.int64(row[192 + 2 * r + i // 16])
                    scale = stored - 256 if stored > 127 else stored
                    out[b, 32 * r + i] = F(F(d * F(scale)) * F(np.int64(q) - 32))


@njit(cache=True, nogil=True, error_model="numpy")
def q8_0_decode(blocks: Any, out: Any) -> None:
    """``blocks`` (nb, 34) uint8 -> ``out`` (nb, 32) float32, as ``gguf.quants.Q8_0``."""
    for b in range(blocks.shape[0]):
        row = blocks[b]
        d = _half(row[0], row[1])
        for i in range(32):
            stored = np.int64(row[2 + i])
            out[b, i] = F(F(stored - 256 if stored > 127 else stored) * d)


@njit(cache=True, nogil=True, error_model="numpy")
def q8_0_encode(x: Any, out: Any) -> None:
    """``x`` (nb, 32) float32, finite -> ``out`` (nb, 34) uint8, as ``gguf.quants.Q8_0``."""
    for b in range(x.shape[0]):
        amax = F(0.0)
        for i in range(32):
            amax = max(amax, F(abs(x[b, i])))
        d = F(amax / F127)
        inverse = F(0.0) if d == F(0.0) else F(F(1.0) / d)
        bits = _f16_bits(d)
        out[b, 0] = bits & 0xFF
        out[b, 1] = bits >> 8
        for i in range(32):
            v = F(x[b, i] * inverse)
            a = F(abs(v))
            floored = F(np.floor(a))
            rounded = F(floored + F(np.floor(F(F2 * F(a - floored)))))
            q = np.int64(rounded)
            out[b, 2 + i] = (-q if v < F(0.0) else q) & 0xFF


_DECODERS = {"Q4_K": q4_k_decode, "Q6_K": q6_k_decode, "Q8_0": q8_0_decode}
_ENCODERS = {"Q8_0": q8_0_encode}
JIT_FUNCTIONS = ("_half", "q4_k_decode", "q6_k_decode", "q8_0_decode", "q8_0_encode")


def decoder(kind: str) -> Any:
    """The compiled ``(blocks (nb, bytes) uint8, out (nb, values) float32) -> None`` decoder for
    ``kind``, or None for a type without one. The one place `apr.convert.ggml_blocks` looks
    decoders up (a mutant swaps it)."""
    return _DECODERS.get(kind)


def encoder(kind: str) -> Any:
    """The compiled ``(x (nb, values) float32, out (nb, bytes) uint8) -> None`` encoder for
    ``kind`` (Q8_0), or None (the K-quants have their own, `apr.convert.quant_k_numba`)."""
    return _ENCODERS.get(kind)


__all__ = ["JIT_FUNCTIONS", "decoder", "encoder", "q4_k_decode", "q6_k_decode", "q8_0_decode", "q8_0_encode"]


# 0.5: adding it to |x| < 2^-14 rounds x to a multiple of 2^-24 (a half's subnormal step) in the low bits
DENORM_MAGIC = F(0.5)
DENORM_MAGIC_BITS = np.int32(0x3F000000)


LANES = 16  # independent partial sums, one per vector lane: float64 adds in one chain do not vectorise
F_SUB_STEP = F(2.0 ** -24)
F_INF = F(np.inf)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _f16_one(v: Any) -> Any:
    """(binary16 bits of float32 ``v`` as numpy rounds them, their value as float32), branch-free."""
    bits = v.view(np.int32)
    sign = (bits >> 16) & 0x8000
    a = bits & 0x7FFFFFFF
    nan_bits = 0x7C00 | ((a >> 13) & 0x3FF)  # numpy keeps the top payload bits, forcing one set
    nan_bits = nan_bits | (1 if (nan_bits & 0x3FF) == 0 else 0)
    odd = (a >> 13) & 1  # normal result: rounding bias for ties to even, then the exponent shift
    normal = ((a + np.int32((15 - 127) << 23) + 0xFFF + odd) >> 13) & 0xFFFF
    sub = F(F(abs(v)) + DENORM_MAGIC).view(np.int32) - DENORM_MAGIC_BITS  # 0.5 + |v| rounds to 2^-24 steps
    half = np.int32(normal)
    half = np.int32(sub) if a < np.int32(113 << 23) else half
    half = np.int32(0x7C00) if a >= np.int32((127 + 16) << 23) else half
    half = np.int32(nan_bits) if a > np.int32(0x7F800000) else half
    exponent = half >> 10
    value = np.int32((half << 13) + np.int32((127 - 15) << 23)).view(F)  # a normal half, exactly
    value = F(F(half) * F_SUB_STEP) if exponent == 0 else value
    value = F_INF if exponent >= 31 else value
    return half | sign, (-value if sign else value)


@njit(cache=True, nogil=True, error_model="numpy")
def f16_encode_sums(x: Any, out: Any, sums: Any) -> None:
    """``x`` float32 (flat) -> ``out`` uint16 (flat), the binary16 bits numpy's ``astype(np.float16)``
    gives (round to nearest, ties to even; overflow to Inf; a NaN keeps its sign and top payload
    bits, as ``npy_floatbits_to_halfbits``), while adding, over the finite values of ``x``,
    ``sums[0] += x²``, ``sums[1] += (half - x)²`` (float64) and ``sums[2] += 1``: the F16 export's
    error in the same pass.

    Branch-free per value and summed in `LANES` partial sums, so LLVM vectorises it; numpy's own
    conversion is a scalar loop (about 3 ns a value here) and the error a second pass.
    """
    n = x.shape[0]
    total = np.zeros(LANES)
    err = np.zeros(LANES)
    count = np.zeros(LANES)
    whole = n - n % LANES
    for base in range(0, whole, LANES):
        for j in range(LANES):
            v = F(x[base + j])
            half, value = _f16_one(v)
            out[base + j] = np.uint16(half)
            finite = (v.view(np.int32) & 0x7FFFFFFF) < np.int32(0x7F800000)
            xv = np.float64(v) if finite else 0.0
            diff = np.float64(value) - xv if finite else 0.0
            total[j] += xv * xv
            err[j] += diff * diff
            count[j] += 1.0 if finite else 0.0
    for i in range(whole, n):
        v = F(x[i])
        half, value = _f16_one(v)
        out[i] = np.uint16(half)
        if (v.view(np.int32) & 0x7FFFFFFF) < np.int32(0x7F800000):
            xv = np.float64(v)
            diff = np.float64(value) - xv
            total[0] += xv * xv
            err[0] += diff * diff
            count[0] += 1.0
    sums[0] += total.sum()
    sums[1] += err.sum()
    sums[2] += count.sum()


@njit(cache=True, nogil=True, error_model="numpy")
def f16_sums(x: Any, halves: Any, sums: Any) -> None:
    """`f16_encode_sums`'s sums for given binary16 bits ``halves`` (uint16, flat) of ``x``: the same
    values, in the same lanes and order, so an error measured while encoding equals one measured
    afterwards on the stored bits."""
    n = x.shape[0]
    total = np.zeros(LANES)
    err = np.zeros(LANES)
    count = np.zeros(LANES)
    for i in range(n):
        j = i % LANES if i < n - n % LANES else 0
        v = F(x[i])
        half = np.int32(halves[i])
        sign = half & 0x8000
        half = half & 0x7FFF
        exponent = half >> 10
        value = np.int32((half << 13) + np.int32((127 - 15) << 23)).view(F)
        value = F(F(half) * F_SUB_STEP) if exponent == 0 else value
        value = F_INF if exponent >= 31 else value
        value = -value if sign else value
        if (v.view(np.int32) & 0x7FFFFFFF) < np.int32(0x7F800000):
            xv = np.float64(v)
            diff = np.float64(value) - xv
            total[j] += xv * xv
            err[j] += diff * diff
            count[j] += 1.0
    sums[0] += total.sum()
    sums[1] += err.sum()
    sums[2] += count.sum()


@njit(cache=True, nogil=True, error_model="numpy")
def q8_0_encode_sums(x: Any, out: Any, sums: Any) -> None:
    """`q8_0_encode` (the same bytes) while adding ``sums[0] += x²``, ``sums[1] += (decoded - x)²``
    (float64, `LANES` partial sums by position in the block) and ``sums[2] += count``: a Q8_0
    export's error in the encoding pass, the decoded value computed as gguf's ``q * d``."""
    q8_0_encode(x, out)
    q8_0_sums(x, out, sums)


@njit(cache=True, nogil=True, error_model="numpy")
def q8_0_sums(x: Any, blocks: Any, sums: Any) -> None:
    """The error sums of Q8_0 ``blocks`` (nb, 34) against ``x`` (nb, 32), finite ``x`` assumed
    (a quantized export refuses NaN and Inf first): the same order as `q8_0_encode_sums`, so an
    error measured while encoding equals one measured afterwards on the stored bytes."""
    total = np.zeros(32)
    err = np.zeros(32)
    for b in range(x.shape[0]):
        row = blocks[b]
        d = _half(row[0], row[1])
        for i in range(32):
            stored = np.int64(row[2 + i])
            value = F(F(stored - 256 if stored > 127 else stored) * d)
            xv = np.float64(x[b, i])
            diff = np.float64(value) - xv
            total[i] += xv * xv
            err[i] += diff * diff
    sums[0] += total.sum()
    sums[1] += err.sum()
    sums[2] += 32 * x.shape[0]
