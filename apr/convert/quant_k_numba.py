"""Q4_K and Q6_K quantizers compiled with numba: ggml's reference C loops, statement by statement.

Why: the numpy path (`apr.convert.quant_k`) vectorises across sub-blocks but still makes ~17
elementwise passes per candidate scale, each a separate numpy call: about 35 MB/s per core, where
ggml's C loop does about 170 MB/s. These are the same loops as ggml's ``quantize_row_q4_K_ref``
(``make_qkx2_quants``) and ``quantize_row_q6_K_ref`` (``make_qx_quants``), one superblock at a
time, compiled; they must give the numpy path's bytes (and the oracle's,
tests/convert/ggml_k_reference.py), so:

- every scalar is ``np.float32`` (``F``) and every constant is a float32 global: numba, like
  Python, widens ``float32 * 0.1`` to float64, which would round differently from C's ``float``;
- no ``fastmath``: LLVM may then neither reassociate sums nor fuse ``a*b + c`` into an FMA,
  so each operation rounds as C's does with contraction off (what the numpy path does);
- ``error_model="numpy"``: a division by zero gives Inf or NaN as in C instead of raising;
- ``nearest_int`` is C's bit trick (``val + 1.5·2^23``, read the mantissa), also for the huge
  values and NaN of degenerate sub-blocks, where it wraps as C's does;
- the float16 ``d``/``dmin`` are rounded to nearest, ties to even, by `_f16_bits` (numba has no
  float16 on the CPU), as numpy's ``astype(np.float16)`` rounds.

``nogil=True``: `apr.convert.quant_pool.run_chunks` runs chunks of superblocks on its threads,
which then use every core. ``cache=True``: compiled once per machine (a few seconds), then loaded
from numba's cache. Imported only when a K-quant export runs (`apr.convert.quant_k.kernel_for`):
numba costs about half a second to import and no other command needs it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

F = np.float32
F0 = F(0.0)
F1 = F(1.0)
MAGIC = F(12582912.0)  # 1.5 * 2^23
GROUP_MAX_EPS = F(1e-15)
Q4_RMIN = F(-1.0)
Q4_RDELTA = F(0.1)
Q6_STEP = F(0.1)
F32_32 = F(32.0)
F63 = F(63.0)
F_MINUS_128 = F(-128.0)


# Names of the compiled functions, leaves first: tests/convert/mutants.py rebuilds them with one
# global swapped (a mutant), which needs every caller recompiled after its callees.
JIT_FUNCTIONS = ("_nearest_int", "_f16_bits", "_f16_value", "_make_qkx2_quants", "_make_qx_quants",
                 "q4_k_rows", "q6_k_rows")


@njit(inline="always", cache=True, nogil=True, error_model="numpy")
def _nearest_int(value: Any) -> Any:
    """C's ``nearest_int``: add 1.5·2^23 in float32 and read the low 23 bits of the sum."""
    shifted = F(value + MAGIC)
    return (np.int64(shifted.view(np.int32)) & 0x007FFFFF) - 0x00400000


@njit(cache=True, nogil=True, error_model="numpy")
def _f16_bits(value: Any) -> Any:
    """IEEE binary16 bits of float32 ``value``, rounded to nearest, ties to even (numpy's
    ``npy_floatbits_to_halfbits``): overflow gives Inf, tiny values subnormals or zero."""
    bits = np.int64(F(value).view(np.int32)) & 0xFFFFFFFF
    sign = (bits & 0x80000000) >> 16
    exponent = bits & 0x7F800000
    if exponent >= 0x47800000:  # |value| >= 2^16, Inf or NaN
        mantissa = bits & 0x007FFFFF
        if exponent == 0x7F800000 and mantissa != 0:
            half = 0x7C00 + (mantissa >> 13)
            return sign + (half + 1 if half == 0x7C00 else half)
        return sign + 0x7C00
    if exponent <= 0x38000000:  # subnormal half or zero
        if exponent < 0x33000000:
            return sign
        shift_exponent = exponent >> 23
        significand = 0x00800000 + (bits & 0x007FFFFF)
        significand >>= 113 - shift_exponent
        if (significand & 0x00003FFF) != 0x00001000 or (bits & 0x000007FF) != 0:
            significand += 0x00001000
        return sign + (significand >> 13)  # a carry into the exponent is the right answer
    half_exponent = (exponent - 0x38000000) >> 13
    significand = bits & 0x007FFFFF
    if (significand & 0x00003FFF) != 0x00001000:
        significand += 0x00001000
    return sign + (significand >> 13) + half_exponent  # a carry may reach Inf, as it should


@njit(cache=True, nogil=True, error_model="numpy")
def _f16_value(half: Any) -> Any:
    """The float32 value of binary16 bits ``half`` (exact: every half is a float32)."""
    exponent = (half >> 10) & 0x1F
    mantissa = half & 0x3FF
    if exponent == 0:
        magnitude = np.float64(mantissa) * 2.0 ** -24
    elif exponent == 31:
        magnitude = np.inf if mantissa == 0 else np.nan
    else:
        magnitude = np.float64(1024 + mantissa) * 2.0 ** (exponent - 25)
    return F(-magnitude if half & 0x8000 else magnitude)


@njit(cache=True, nogil=True, error_model="numpy")
def _make_qkx2_quants(x: Any, base: Any, weights: Any, levels: Any, aux: Any) -> Any:
    """``make_qkx2_quants(32, 15, x, weights, L, &the_min, Laux, -1, 0.1, 20, false)`` on
    ``x[base:base+32]``, levels into ``levels[base:base+32]``. Returns (scale, the_min)."""
    n = 32
    nmax = 15
    lo = x[base]
    hi = x[base]
    sum_w = weights[0]
    sum_x = F(sum_w * x[base])
    for i in range(1, n):
        v = x[base + i]
        if v < lo:
            lo = v
        if v > hi:
            hi = v
        w = weights[i]
        sum_w = F(sum_w + w)
        sum_x = F(sum_x + F(w * v))
    if lo > F0:
        lo = F0
    if hi == lo:
        for i in range(n):
            levels[base + i] = 0
        return F0, F(-lo)
    iscale = F(F(nmax) / F(hi - lo))
    scale = F(F1 / iscale)
    best_error = F0
    for i in range(n):
        level = min(max(_nearest_int(F(iscale * F(x[base + i] - lo))), 0), nmax)
        levels[base + i] = level
        diff = F(F(F(scale * F(level)) + lo) - x[base + i])
        best_error = F(best_error + F(weights[i] * F(diff * diff)))
    for step in range(21):
        # the trap: `lo` is the min of the best candidate so far, not the first one
        iscale = F(F(F(Q4_RMIN + F(Q4_RDELTA * F(step))) + F(nmax)) / F(hi - lo))
        sum_l = F0
        sum_l2 = F0
        sum_xl = F0
        for i in range(n):
            level = min(max(_nearest_int(F(iscale * F(x[base + i] - lo))), 0), nmax)
            aux[i] = level
            wl = F(weights[i] * F(level))
            sum_l = F(sum_l + wl)
            sum_l2 = F(sum_l2 + F(wl * F(level)))
            sum_xl = F(sum_xl + F(wl * x[base + i]))
        det = F(F(sum_w * sum_l2) - F(sum_l * sum_l))
        if det > F0:
            this_scale = F(F(F(sum_w * sum_xl) - F(sum_x * sum_l)) / det)
            this_min = F(F(F(sum_l2 * sum_x) - F(sum_l * sum_xl)) / det)
            if this_min > F0:
                this_min = F0
                this_scale = F(sum_xl / sum_l2)
            cur_error = F0
            for i in range(n):
                diff = F(F(F(this_scale * F(aux[i])) + this_min) - x[base + i])
                cur_error = F(cur_error + F(weights[i] * F(diff * diff)))
            if cur_error < best_error:
                for i in range(n):
                    levels[base + i] = aux[i]
                best_error = cur_error
                scale = this_scale
                lo = this_min
    return scale, F(-lo)


@njit(cache=True, nogil=True, error_model="numpy")
def q4_k_rows(x: Any, out: Any) -> None:
    """``quantize_row_q4_K_ref`` on superblocks ``x`` (nb, 256) float32 into ``out`` (nb, 144) uint8."""
    levels = np.zeros(256, np.int64)
    aux = np.zeros(32, np.int64)
    weights = np.zeros(32, F)
    scales = np.zeros(8, F)
    mins = np.zeros(8, F)
    packed = np.zeros(12, np.int64)
    for b in range(x.shape[0]):
        xb = x[b]
        max_scale = F0
        max_min = F0
        for j in range(8):
            sum_x2 = F0
            for i in range(32):
                v = xb[32 * j + i]
                sum_x2 = F(sum_x2 + F(v * v))
            av_x = F(np.sqrt(F(sum_x2 / F32_32)))
            for i in range(32):
                weights[i] = F(av_x + abs(xb[32 * j + i]))
            scale, the_min = _make_qkx2_quants(xb, 32 * j, weights, levels, aux)
            scales[j] = scale
            mins[j] = the_min
            if scale > max_scale:
                max_scale = scale
            if the_min > max_min:
                max_min = the_min
        inv_scale = F(F63 / max_scale) if max_scale > F0 else F0
        inv_min = F(F63 / max_min) if max_min > F0 else F0
        for j in range(12):
            packed[j] = 0
        for j in range(8):
            ls = min(_nearest_int(F(inv_scale * scales[j])) & 0xFF, 63)  # C: uint8_t, then MIN(63, .)
            lm = min(_nearest_int(F(inv_min * mins[j])) & 0xFF, 63)
            if j < 4:
                packed[j] = ls
                packed[j + 4] = lm
            else:
                packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
                packed[j - 4] |= (ls >> 4) << 6
                packed[j] |= (lm >> 4) << 6
        d_bits = _f16_bits(F(max_scale / F63))
        dmin_bits = _f16_bits(F(max_min / F63))
        d = _f16_value(d_bits)
        dmin = _f16_value(dmin_bits)
        for j in range(8):
            if j < 4:  # get_scale_min_k4
                sc = packed[j] & 63
                m = packed[j + 4] & 63
            else:
                sc = (packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4)
                m = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4)
            dj = F(d * F(sc))
            if dj == F0:
                continue
            dm = F(dmin * F(m))
            for i in range(32):
                levels[32 * j + i] = min(max(_nearest_int(F(F(xb[32 * j + i] + dm) / dj)), 0), 15)
        row = out[b]
        row[0] = d_bits & 0xFF
        row[1] = d_bits >> 8
        row[2] = dmin_bits & 0xFF
        row[3] = dmin_bits >> 8
        for j in range(12):
            row[4 + j] = packed[j]
        for j in range(4):
            for i in range(32):
                row[16 + 32 * j + i] = levels[64 * j + i] | (levels[64 * j + 32 + i] << 4)


@njit(cache=True, nogil=True, error_model="numpy")
def _make_qx_quants(x: Any, base: Any, levels: Any) -> Any:
    """``make_qx_quants(16, 32, x, L, 1, NULL)`` on ``x[base:base+16]``, levels (0..63) into
    ``levels[base:base+16]``. Returns the scale."""
    n = 16
    nmax = 32
    peak = F0
    amax = F0
    for i in range(n):
        magnitude = abs(x[base + i])
        if magnitude > amax:
            amax = magnitude
            peak = x[base + i]
    if amax < GROUP_MAX_EPS:
        for i in range(n):
            levels[base + i] = 0
        return F0
    iscale = F(F(-nmax) / peak)
    sumlx = F0
    suml2 = F0
    for i in range(n):
        v = x[base + i]
        level = min(max(_nearest_int(F(iscale * v)), -nmax), nmax - 1)
        levels[base + i] = level + nmax
        w = F(v * v)
        sumlx = F(sumlx + F(F(w * v) * F(level)))
        suml2 = F(suml2 + F(F(w * F(level)) * F(level)))
    scale = F(sumlx / suml2) if suml2 != F0 else F0
    best = F(scale * sumlx)
    for step in range(-9, 10):
        if step == 0:
            continue
        iscale = F(F(-F(F(nmax) + F(Q6_STEP * F(step)))) / peak)
        sumlx = F0
        suml2 = F0
        for i in range(n):
            v = x[base + i]
            level = min(max(_nearest_int(F(iscale * v)), -nmax), nmax - 1)
            w = F(v * v)
            sumlx = F(sumlx + F(F(w * v) * F(level)))
            suml2 = F(suml2 + F(F(w * F(level)) * F(level)))
        if suml2 > F0 and F(sumlx * sumlx) > F(best * suml2):
            for i in range(n):
                levels[base + i] = nmax + min(max(_nearest_int(F(iscale * x[base + i])), -nmax), nmax - 1)
            scale = F(sumlx / suml2)
            best = F(scale * sumlx)
    return scale


@njit(cache=True, nogil=True, error_model="numpy")
def q6_k_rows(x: Any, out: Any) -> None:
    """``quantize_row_q6_K_ref`` on superblocks ``x`` (nb, 256) float32 into ``out`` (nb, 210) uint8."""
    levels = np.zeros(256, np.int64)
    scales = np.zeros(16, F)
    for b in range(x.shape[0]):
        xb = x[b]
        row = out[b]
        max_scale = F0
        max_abs_scale = F0
        for ib in range(16):
            scale = _make_qx_quants(xb, 16 * ib, levels)
            scales[ib] = scale
            magnitude = abs(scale)
            if magnitude > max_abs_scale:
                max_abs_scale = magnitude
                max_scale = scale
        if max_abs_scale < GROUP_MAX_EPS:  # C memsets the superblock
            for k in range(210):
                row[k] = 0
            continue
        iscale = F(F_MINUS_128 / max_scale)
        d_bits = _f16_bits(F(F1 / iscale))
        d = _f16_value(d_bits)
        for ib in range(16):
            stored = min(_nearest_int(F(iscale * scales[ib])), 127) & 0xFF  # C: int8_t
            row[192 + ib] = stored
            dj = F(d * F(stored - 256 if stored > 127 else stored))
            if dj == F0:
                continue
            for i in range(16):
                levels[16 * ib + i] = min(max(_nearest_int(F(xb[16 * ib + i] / dj)), -32), 31) + 32
        for half in range(2):
            for i in range(32):
                q1 = levels[128 * half + i]
                q2 = levels[128 * half + 32 + i]
                q3 = levels[128 * half + 64 + i]
                q4 = levels[128 * half + 96 + i]
                row[64 * half + i] = (q1 & 0xF) | ((q3 & 0xF) << 4)
                row[64 * half + 32 + i] = (q2 & 0xF) | ((q4 & 0xF) << 4)
                row[128 + 32 * half + i] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
        row[208] = d_bits & 0xFF
        row[209] = d_bits >> 8


_KERNELS = {"Q4_K": q4_k_rows, "Q6_K": q6_k_rows}


def kernel(kind: str) -> Any:
    """The compiled ``(x (nb, 256) float32, out (nb, width) uint8) -> None`` kernel for ``kind``
    ("Q4_K" or "Q6_K"). The one place `apr.convert.quant_k` looks kernels up (a mutant swaps it)."""
    return _KERNELS[kind]


__all__ = ["JIT_FUNCTIONS", "kernel", "q4_k_rows", "q6_k_rows"]
