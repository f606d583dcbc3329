"""Q4_K and Q6_K quantizers compiled with numba: ggml's reference C loops, statement by statement.

Why: the numpy path (`apr.convert.quant_k`) vectorises across sub-blocks but still makes ~17
elementwise passes per candidate scale, each a separate numpy call: about 25-35 MB/s per core.
These are the same loops as ggml's ``quantize_row_q4_K_ref`` (``make_qkx2_quants``) and
``quantize_row_q6_K_ref`` (``make_qx_quants``), compiled, with one change of schedule: ggml's
sums are chains of dependent float32 adds (one sub-block at a time, the loop waits on the add
latency, ~50 MB/s per core for Q4_K), so here the sub-blocks of a superblock (of several, for
Q4_K) advance side by side, one per vector lane, each lane's sums still added in ggml's order.
They must give the numpy path's bytes (and the oracle's, tests/convert/ggml_k_reference.py), so:

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
# Superblocks whose sub-blocks one Q4_K search runs side by side (8 lanes each): 64 lanes
# measured fastest (1, 2, 4, 8, 16 tried; bench in docs/benchmarks.md). Q6_K searches one
# superblock's 16 sub-blocks at a time: grouping superblocks measured no faster there.
Q4_GROUP = 8


# Names of the compiled functions, leaves first: tests/convert/mutants.py rebuilds them with one
# global swapped (a mutant), which needs every caller recompiled after its callees.
JIT_FUNCTIONS = ("_nearest_int", "_nearest_int32", "_f16_bits", "_f16_value", "_make_qkx2_quants", "_make_qx_quants",
                 "_q4_k_pack", "q4_k_rows", "q6_k_rows")


@njit(inline="always", cache=True, nogil=True, error_model="numpy")
def _nearest_int(value: Any) -> Any:
    """C's ``nearest_int``: add 1.5·2^23 in float32 and read the low 23 bits of the sum."""
    shifted = F(value + MAGIC)
    return (np.int64(shifted.view(np.int32)) & 0x007FFFFF) - 0x00400000


@njit(inline="always", cache=True, nogil=True, error_model="numpy")
def _nearest_int32(value: Any) -> Any:
    """`_nearest_int` in int32, the same value (the low 23 bits minus 2^22 always fit): the
    searches' lanes then stay 32 bits wide, twice as many per vector register as int64."""
    shifted = F(value + MAGIC)
    return np.int32(np.int32(shifted.view(np.int32) & np.int32(0x007FFFFF)) - np.int32(0x00400000))


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
def _make_qkx2_quants(xt: Any, wt: Any, levels: Any, aux: Any, lanes: Any, flags: Any,
                      scales: Any, mins: Any, width: Any) -> None:
    """``make_qkx2_quants(32, 15, x, weights, L, &the_min, Laux, -1, 0.1, 20, false)`` on every
    column of ``xt`` (32, width) at once: column j is one sub-block, its weights ``wt[:, j]``, its
    levels into ``levels[:, j]``, its scale and min into ``scales[j]``, ``mins[j]``. ``aux``
    (32, width), ``lanes`` (13, width) float32 and ``flags`` (2, width) int32 are scratch.

    Why columns: each sub-block's sums are chains of dependent float32 adds in C's order, so one
    sub-block at a time waits on the add latency (~50 MB/s per core). Here the innermost loop runs
    across the sub-blocks (independent chains, side by side in the lanes of a vector register),
    while each column's own sums are still added in ggml's order, element 0 to 31: the same
    roundings, hence the same bytes. Where ggml branches per sub-block (a flat sub-block returns
    early, det > 0, this_min > 0, a smaller error), every column computes and a per-column test
    decides what is kept; a value computed and then dropped changes nothing (no traps:
    ``error_model="numpy"``).
    """
    n = 32
    nmax = 15
    lo = lanes[0]
    hi = lanes[1]
    sum_w = lanes[2]
    sum_x = lanes[3]
    best_error = lanes[4]
    iscale = lanes[5]
    sum_l = lanes[6]
    sum_l2 = lanes[7]
    sum_xl = lanes[8]
    cur_error = lanes[9]
    this_scale = lanes[10]
    this_min = lanes[11]
    scale = lanes[12]
    flat = flags[0]
    better = flags[1]
    for j in range(width):
        v = xt[0, j]
        lo[j] = v
        hi[j] = v
        sum_w[j] = wt[0, j]
        sum_x[j] = F(wt[0, j] * v)
    for i in range(1, n):
        for j in range(width):
            v = xt[i, j]
            w = wt[i, j]
            lo[j] = v if v < lo[j] else lo[j]
            hi[j] = v if v > hi[j] else hi[j]
            sum_w[j] = F(sum_w[j] + w)
            sum_x[j] = F(sum_x[j] + F(w * v))
    for j in range(width):
        if lo[j] > F0:
            lo[j] = F0
        flat[j] = hi[j] == lo[j]
        iscale[j] = F(F(nmax) / F(hi[j] - lo[j]))
        scale[j] = F(F1 / iscale[j])
        best_error[j] = F0
    for i in range(n):
        for j in range(width):
            level = np.int32(min(max(_nearest_int32(F(iscale[j] * F(xt[i, j] - lo[j]))), np.int32(0)), np.int32(nmax)))
            levels[i, j] = level
            diff = F(F(F(scale[j] * F(level)) + lo[j]) - xt[i, j])
            best_error[j] = F(best_error[j] + F(wt[i, j] * F(diff * diff)))
    for step in range(21):
        for j in range(width):
            # the trap: `lo` is the min of the best candidate so far, not the first one
            iscale[j] = F(F(F(Q4_RMIN + F(Q4_RDELTA * F(step))) + F(nmax)) / F(hi[j] - lo[j]))
            sum_l[j] = F0
            sum_l2[j] = F0
            sum_xl[j] = F0
        for i in range(n):
            for j in range(width):
                level = np.int32(min(max(_nearest_int32(F(iscale[j] * F(xt[i, j] - lo[j]))), np.int32(0)), np.int32(nmax)))
                aux[i, j] = level
                wl = F(wt[i, j] * F(level))
                sum_l[j] = F(sum_l[j] + wl)
                sum_l2[j] = F(sum_l2[j] + F(wl * F(level)))
                sum_xl[j] = F(sum_xl[j] + F(wl * xt[i, j]))
        for j in range(width):
            det = F(F(sum_w[j] * sum_l2[j]) - F(sum_l[j] * sum_l[j]))
            candidate_scale = F(F(F(sum_w[j] * sum_xl[j]) - F(sum_x[j] * sum_l[j])) / det)
            candidate_min = F(F(F(sum_l2[j] * sum_x[j]) - F(sum_l[j] * sum_xl[j])) / det)
            if candidate_min > F0:
                candidate_min = F0
                candidate_scale = F(sum_xl[j] / sum_l2[j])
            this_scale[j] = candidate_scale
            this_min[j] = candidate_min
            better[j] = det > F0 and not flat[j]
            cur_error[j] = F0
        for i in range(n):
            for j in range(width):
                diff = F(F(F(this_scale[j] * F(aux[i, j])) + this_min[j]) - xt[i, j])
                cur_error[j] = F(cur_error[j] + F(wt[i, j] * F(diff * diff)))
        any_better = False
        for j in range(width):
            if better[j] and cur_error[j] < best_error[j]:
                best_error[j] = cur_error[j]
                scale[j] = this_scale[j]
                lo[j] = this_min[j]
                any_better = True
            else:
                better[j] = False
        if any_better:
            for i in range(n):
                for j in range(width):
                    if better[j]:
                        levels[i, j] = aux[i, j]
    for j in range(width):
        if flat[j]:  # ggml returned before the search: levels 0, scale 0, min -lo
            for i in range(n):
                levels[i, j] = 0
            scales[j] = F0
        else:
            scales[j] = scale[j]
        mins[j] = F(-lo[j])


@njit(cache=True, nogil=True, error_model="numpy")
def q4_k_rows(x: Any, out: Any) -> None:
    """``quantize_row_q4_K_ref`` on superblocks ``x`` (nb, 256) float32 into ``out`` (nb, 144) uint8.

    The eight sub-blocks of ``Q4_GROUP`` consecutive superblocks are searched side by side
    (`_make_qkx2_quants` on the transposed group, ``xt[i, 8 s + j] = x[b + s, 32 j + i]``)."""
    lanes_max = 8 * Q4_GROUP
    xt = np.zeros((32, lanes_max), F)
    wt = np.zeros((32, lanes_max), F)
    levels = np.zeros((32, lanes_max), np.int32)
    aux = np.zeros((32, lanes_max), np.int32)
    lanes = np.zeros((13, lanes_max), F)
    flags = np.zeros((2, lanes_max), np.int32)
    sum_x2 = np.zeros(lanes_max, F)
    scales = np.zeros(lanes_max, F)
    mins = np.zeros(lanes_max, F)
    packed = np.zeros(12, np.int64)
    for b0 in range(0, x.shape[0], Q4_GROUP):
        group = min(Q4_GROUP, x.shape[0] - b0)
        width = 8 * group
        for s in range(group):
            xb = x[b0 + s]
            for j in range(8):
                for i in range(32):
                    xt[i, 8 * s + j] = xb[32 * j + i]
        for j in range(width):
            sum_x2[j] = F0
        for i in range(32):
            for j in range(width):
                v = xt[i, j]
                sum_x2[j] = F(sum_x2[j] + F(v * v))
        for j in range(width):
            av_x = F(np.sqrt(F(sum_x2[j] / F32_32)))
            for i in range(32):
                wt[i, j] = F(av_x + abs(xt[i, j]))
        _make_qkx2_quants(xt, wt, levels, aux, lanes, flags, scales, mins, width)
        for s in range(group):
            _q4_k_pack(xt, levels, scales, mins, 8 * s, packed, out[b0 + s])


@njit(cache=True, nogil=True, error_model="numpy")
def _q4_k_pack(xt: Any, levels: Any, scales: Any, mins: Any, first: Any, packed: Any, row: Any) -> None:
    """The rest of ``quantize_row_q4_K_ref`` for the superblock in columns ``first:first+8`` of
    the searched group: 6-bit scales and mins, f16 ``d``/``dmin``, levels again against them, and
    the 144 bytes into ``row``."""
    max_scale = F0
    max_min = F0
    for j in range(first, first + 8):
        if scales[j] > max_scale:
            max_scale = scales[j]
        if mins[j] > max_min:
            max_min = mins[j]
    inv_scale = F(F63 / max_scale) if max_scale > F0 else F0
    inv_min = F(F63 / max_min) if max_min > F0 else F0
    for j in range(12):
        packed[j] = 0
    for j in range(8):
        ls = min(_nearest_int(F(inv_scale * scales[first + j])) & 0xFF, 63)  # C: uint8_t, then MIN(63, .)
        lm = min(_nearest_int(F(inv_min * mins[first + j])) & 0xFF, 63)
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
            levels[i, first + j] = min(max(_nearest_int(F(F(xt[i, first + j] + dm) / dj)), 0), 15)
    row[0] = d_bits & 0xFF
    row[1] = d_bits >> 8
    row[2] = dmin_bits & 0xFF
    row[3] = dmin_bits >> 8
    for j in range(12):
        row[4 + j] = packed[j]
    for j in range(4):
        for i in range(32):
            row[16 + 32 * j + i] = levels[i, first + 2 * j] | (levels[i, first + 2 * j + 1] << 4)


@njit(cache=True, nogil=True, error_model="numpy")
def _make_qx_quants(xt: Any, levels: Any, lanes: Any, flags: Any, scales: Any) -> None:
    """``make_qx_quants(16, 32, x, L, 1, NULL)`` on every column of ``xt`` (16, width) at once:
    column j is one sub-block, its levels (0..63) into ``levels[:, j]``, its scale into
    ``scales[j]``. ``lanes`` (6, width) float32 and ``flags`` (2, width) int64 are scratch.

    Columns side by side for the reason given in `_make_qkx2_quants`: each column's sums are added
    in ggml's order, so the bytes are ggml's; ggml's early return for an all-zero sub-block and its
    test for a better candidate become per-column tests.
    """
    n = 16
    nmax = 32
    width = xt.shape[1]
    peak = lanes[0]
    amax = lanes[1]
    iscale = lanes[2]
    sumlx = lanes[3]
    suml2 = lanes[4]
    best = lanes[5]
    empty = flags[0]
    better = flags[1]
    for j in range(width):
        peak[j] = F0
        amax[j] = F0
    for i in range(n):
        for j in range(width):
            v = xt[i, j]
            magnitude = abs(v)
            if magnitude > amax[j]:
                amax[j] = magnitude
                peak[j] = v
    for j in range(width):
        empty[j] = amax[j] < GROUP_MAX_EPS
        iscale[j] = F(F(-nmax) / peak[j])
        sumlx[j] = F0
        suml2[j] = F0
    for i in range(n):
        for j in range(width):
            v = xt[i, j]
            level = np.int32(min(max(_nearest_int32(F(iscale[j] * v)), np.int32(-nmax)), np.int32(nmax - 1)))
            levels[i, j] = level + nmax
            w = F(v * v)
            sumlx[j] = F(sumlx[j] + F(F(w * v) * F(level)))
            suml2[j] = F(suml2[j] + F(F(w * F(level)) * F(level)))
    for j in range(width):
        scales[j] = F(sumlx[j] / suml2[j]) if suml2[j] != F0 else F0
        best[j] = F(scales[j] * sumlx[j])
    for step in range(-9, 10):
        if step == 0:
            continue
        for j in range(width):
            iscale[j] = F(F(-F(F(nmax) + F(Q6_STEP * F(step)))) / peak[j])
            sumlx[j] = F0
            suml2[j] = F0
        for i in range(n):
            for j in range(width):
                v = xt[i, j]
                level = np.int32(min(max(_nearest_int32(F(iscale[j] * v)), np.int32(-nmax)), np.int32(nmax - 1)))
                w = F(v * v)
                sumlx[j] = F(sumlx[j] + F(F(w * v) * F(level)))
                suml2[j] = F(suml2[j] + F(F(w * F(level)) * F(level)))
        any_better = False
        for j in range(width):
            if not empty[j] and suml2[j] > F0 and F(sumlx[j] * sumlx[j]) > F(best[j] * suml2[j]):
                scales[j] = F(sumlx[j] / suml2[j])
                best[j] = F(scales[j] * sumlx[j])
                better[j] = True
                any_better = True
            else:
                better[j] = False
        if any_better:
            for i in range(n):
                for j in range(width):
                    if better[j]:
                        levels[i, j] = nmax + min(max(_nearest_int(F(iscale[j] * xt[i, j])), -nmax), nmax - 1)
    for j in range(width):
        if empty[j]:  # ggml returned before the search: levels 0, scale 0
            for i in range(n):
                levels[i, j] = 0
            scales[j] = F0


@njit(cache=True, nogil=True, error_model="numpy")
def q6_k_rows(x: Any, out: Any) -> None:
    """``quantize_row_q6_K_ref`` on superblocks ``x`` (nb, 256) float32 into ``out`` (nb, 210) uint8.

    Each superblock's sixteen sub-blocks are searched side by side (`_make_qx_quants` on the
    transposed superblock, ``xt[i, ib] = x[16 ib + i]``)."""
    xt = np.zeros((16, 16), F)
    levels = np.zeros((16, 16), np.int32)
    lanes = np.zeros((6, 16), F)
    flags = np.zeros((2, 16), np.int64)
    scales = np.zeros(16, F)
    for b in range(x.shape[0]):
        xb = x[b]
        row = out[b]
        for ib in range(16):
            for i in range(16):
                xt[i, ib] = xb[16 * ib + i]
        _make_qx_quants(xt, levels, lanes, flags, scales)
        max_scale = F0
        max_abs_scale = F0
        for ib in range(16):
            magnitude = abs(scales[ib])
            if magnitude > max_abs_scale:
                max_abs_scale = magnitude
                max_scale = scales[ib]
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
                levels[i, ib] = min(max(_nearest_int(F(xt[i, ib] / dj)), -32), 31) + 32
        for half in range(2):
            for i in range(32):  # value k = 128 half + 32 q + i is levels[k % 16, k // 16]
                q1 = levels[i % 16, 8 * half + i // 16]
                q2 = levels[i % 16, 8 * half + 2 + i // 16]
                q3 = levels[i % 16, 8 * half + 4 + i // 16]
                q4 = levels[i % 16, 8 * half + 6 + i // 16]
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
