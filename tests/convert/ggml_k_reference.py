"""The oracle: ggml's Q4_K and Q6_K reference quantizers, ported statement by statement.

One superblock, one sub-block, one value at a time, in numpy float32 scalars (each operation
rounds to float32 as C's ``float`` does; products keep C's left-to-right association), from
ggml's ``quantize_row_q4_K_ref`` / ``make_qkx2_quants`` and ``quantize_row_q6_K_ref`` /
``make_qx_quants`` (src/ggml-quants.c at 5136ed0). Slow (tens of milliseconds a superblock) and
obvious: the vectorised, chunked, threaded `apr.convert.quant_k` is compared with it on random
tensors (tests/convert/test_quant_vectorised.py). Keep it naive: it is right by inspection.
"""

from __future__ import annotations

import numpy as np

F = np.float32
MAGIC = F(12582912.0)
GROUP_MAX_EPS = F(1e-15)


def nearest_int(value: np.float32) -> int:
    """C's ``nearest_int``: ``val + 12582912.f``, reinterpret as int, mask the mantissa."""
    shifted = np.array([F(value) + MAGIC], dtype=F)
    return int((int(shifted.view(np.int32)[0]) & 0x007FFFFF) - 0x00400000)


def make_qkx2_quants(x: list, weights: list, nmax: int, rmin: float, rdelta: float, nstep: int) -> tuple:
    """Returns (scale, the_min, L) for one sub-block (use_mad false)."""
    n = len(x)
    mn, mx = x[0], x[0]
    sum_w = weights[0]
    sum_x = sum_w * x[0]
    for i in range(1, n):
        if x[i] < mn:
            mn = x[i]
        if x[i] > mx:
            mx = x[i]
        w = weights[i]
        sum_w = sum_w + w
        sum_x = sum_x + w * x[i]
    if mn > 0:
        mn = F(0)
    if mx == mn:
        return F(0), -mn, [0] * n
    iscale = F(nmax) / (mx - mn)
    scale = F(1) / iscale
    best_error = F(0)
    levels = [0] * n
    for i in range(n):
        lv = max(0, min(nmax, nearest_int(iscale * (x[i] - mn))))
        levels[i] = lv
        diff = scale * F(lv) + mn - x[i]
        best_error = best_error + weights[i] * (diff * diff)
    for step in range(nstep + 1):
        iscale = (F(rmin) + F(rdelta) * F(step) + F(nmax)) / (mx - mn)  # mn: the best so far (the trap)
        sum_l, sum_l2, sum_xl = F(0), F(0), F(0)
        aux = [0] * n
        for i in range(n):
            lv = max(0, min(nmax, nearest_int(iscale * (x[i] - mn))))
            aux[i] = lv
            w = weights[i]
            sum_l = sum_l + w * F(lv)
            sum_l2 = sum_l2 + w * F(lv) * F(lv)
            sum_xl = sum_xl + w * F(lv) * x[i]
        det = sum_w * sum_l2 - sum_l * sum_l
        if det > 0:
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / det
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det
            if this_min > 0:
                this_min = F(0)
                this_scale = sum_xl / sum_l2
            cur_error = F(0)
            for i in range(n):
                diff = this_scale * F(aux[i]) + this_min - x[i]
                cur_error = cur_error + weights[i] * (diff * diff)
            if cur_error < best_error:
                levels = list(aux)
                best_error = cur_error
                scale = this_scale
                mn = this_min
    return scale, -mn, levels


def get_scale_min_k4(j: int, q: list) -> tuple[int, int]:
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def f16_bytes(value: np.float32) -> bytes:
    return np.array([value], dtype=F).astype(np.float16).tobytes()


def q4_k_block(x: list) -> bytes:
    """``quantize_row_q4_K_ref`` for one superblock of 256 float32 values."""
    levels = [0] * 256
    scales, mins = [F(0)] * 8, [F(0)] * 8
    max_scale, max_min = F(0), F(0)
    for j in range(8):
        sub = x[32 * j: 32 * j + 32]
        sum_x2 = F(0)
        for v in sub:
            sum_x2 = sum_x2 + v * v
        av_x = np.sqrt(sum_x2 / F(32))
        weights = [av_x + abs(v) for v in sub]
        scales[j], mins[j], levels[32 * j: 32 * j + 32] = make_qkx2_quants(sub, weights, 15, -1.0, 0.1, 20)
        if scales[j] > max_scale:
            max_scale = scales[j]
        if mins[j] > max_min:
            max_min = mins[j]
    inv_scale = F(63) / max_scale if max_scale > 0 else F(0)
    inv_min = F(63) / max_min if max_min > 0 else F(0)
    packed = [0] * 12
    for j in range(8):
        ls = min(63, nearest_int(inv_scale * scales[j]) & 0xFF)  # uint8_t ls = nearest_int(...)
        lm = min(63, nearest_int(inv_min * mins[j]) & 0xFF)
        if j < 4:
            packed[j] = ls
            packed[j + 4] = lm
        else:
            packed[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4)
            packed[j - 4] |= (ls >> 4) << 6
            packed[j] |= (lm >> 4) << 6
    d = np.array([max_scale / F(63)], F).astype(np.float16)[0]
    dmin = np.array([max_min / F(63)], F).astype(np.float16)[0]
    for j in range(8):
        sc, m = get_scale_min_k4(j, packed)
        dj = F(d) * F(sc)
        if not dj:
            continue
        dm = F(dmin) * F(m)
        for ii in range(32):
            levels[32 * j + ii] = max(0, min(15, nearest_int((x[32 * j + ii] + dm) / dj)))
    qs = []
    for j in range(0, 256, 64):
        qs += [levels[j + lo] | (levels[j + lo + 32] << 4) for lo in range(32)]
    return d.tobytes() + dmin.tobytes() + bytes(packed) + bytes(qs)


def make_qx_quants(x: list, nmax: int) -> tuple:
    """Returns (scale, L) for one sub-block (rmse_type 1, no importance weights)."""
    n = len(x)
    mx, amax = F(0), F(0)
    for v in x:
        if abs(v) > amax:
            amax, mx = abs(v), v
    if amax < GROUP_MAX_EPS:
        return F(0), [0] * n
    iscale = F(-nmax) / mx
    levels = [0] * n
    sumlx, suml2 = F(0), F(0)
    for i in range(n):
        lv = max(-nmax, min(nmax - 1, nearest_int(iscale * x[i])))
        levels[i] = lv + nmax
        w = x[i] * x[i]
        sumlx = sumlx + w * x[i] * F(lv)
        suml2 = suml2 + w * F(lv) * F(lv)
    scale = sumlx / suml2 if suml2 else F(0)
    best = scale * sumlx
    for step in range(-9, 10):
        if step == 0:
            continue
        iscale = -(F(nmax) + F(0.1) * F(step)) / mx
        sumlx, suml2 = F(0), F(0)
        for i in range(n):
            lv = max(-nmax, min(nmax - 1, nearest_int(iscale * x[i])))
            w = x[i] * x[i]
            sumlx = sumlx + w * x[i] * F(lv)
            suml2 = suml2 + w * F(lv) * F(lv)
        if suml2 > 0 and sumlx * sumlx > best * suml2:
            levels = [nmax + max(-nmax, min(nmax - 1, nearest_int(iscale * v))) for v in x]
            scale = sumlx / suml2
            best = scale * sumlx
    return scale, levels


def q6_k_block(x: list) -> bytes:
    """``quantize_row_q6_K_ref`` for one superblock of 256 float32 values."""
    levels = [0] * 256
    scales = [F(0)] * 16
    max_scale, max_abs_scale = F(0), F(0)
    for ib in range(16):
        scales[ib], levels[16 * ib: 16 * ib + 16] = make_qx_quants(x[16 * ib: 16 * ib + 16], 32)
        if abs(scales[ib]) > max_abs_scale:
            max_abs_scale, max_scale = abs(scales[ib]), scales[ib]
    if max_abs_scale < GROUP_MAX_EPS:
        return bytes(210)
    iscale = F(-128) / max_scale
    d = np.array([F(1) / iscale], F).astype(np.float16)[0]
    block_scales = [int(np.array([min(127, nearest_int(iscale * s))]).astype(np.int8)[0]) for s in scales]
    for j in range(16):
        dj = F(d) * F(block_scales[j])
        if not dj:
            continue
        for ii in range(16):
            levels[16 * j + ii] = max(-32, min(31, nearest_int(x[16 * j + ii] / dj))) + 32
    ql, qh = [0] * 128, [0] * 64
    for half, j in enumerate(range(0, 256, 128)):
        for lo in range(32):
            q1, q2, q3, q4 = (levels[j + lo + k] for k in (0, 32, 64, 96))
            ql[64 * half + lo] = (q1 & 0xF) | ((q3 & 0xF) << 4)
            ql[64 * half + lo + 32] = (q2 & 0xF) | ((q4 & 0xF) << 4)
            qh[32 * half + lo] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6)
    return bytes(ql) + bytes(qh) + np.array(block_scales, np.int8).tobytes() + d.tobytes()


def quantize_reference(values: np.ndarray, kind: str) -> np.ndarray:
    """Every superblock of ``values`` (rows a multiple of 256) through the per-block port above."""
    block = q4_k_block if kind == "Q4_K" else q6_k_block
    width = 144 if kind == "Q4_K" else 210
    flat = np.asarray(values, F).reshape(-1, 256)
    with np.errstate(all="ignore"):
        out = [np.frombuffer(block([F(v) for v in row]), np.uint8) for row in flat]
    return np.stack(out).reshape(*values.shape[:-1], values.shape[-1] // 256 * width)
