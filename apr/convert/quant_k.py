"""Q4_K and Q6_K quantizers in numpy, byte for byte those of ggml's reference C code.

The ``gguf`` package dequantizes K-quants but cannot quantize them, so exporting Q4_K/Q6_K needs
these. They follow ggml's ``quantize_row_q4_K_ref`` (with ``make_qkx2_quants``: rmin -1,
rdelta 0.1, 20 steps, weights ``sqrt(mean(x²)) + |x|``) and ``quantize_row_q6_K_ref`` (with
``make_qx_quants``, rmse_type 1) operation for operation, so that the same floats come out:

- every sum is accumulated left to right in float32 (``np.add.accumulate`` along the 32 or 16
  values of a sub-block is exactly C's ``sum += ...`` loop); products keep C's association,
  e.g. ``w*l*x`` is ``(w*l)*x``;
- ``nearest_int`` is C's magic-number trick (round half to even), reproduced bit for bit;
- **the trap** (reference/formats.md): in ``make_qkx2_quants`` the running ``min`` is replaced
  whenever a better candidate is found, and later search steps use the *updated* ``min`` both in
  ``iscale = (rmin + rdelta*is + nmax) / (max - min)`` and in ``x - min``. A port that keeps the
  first ``min`` produces valid but different bytes;
- sub-blocks whose rescaled scale is 0 keep the levels the search chose, as C's ``continue`` does.

All sub-blocks of a chunk of superblocks are processed at once (vectorised across sub-blocks,
sequential within one, in a few preallocated buffers), chunks on a thread pool
(`apr.convert.quant_pool`): a row costs the same whatever the tensor size, and the bytes do not
depend on the chunking. tests/convert/ggml_k_reference.py keeps the straightforward per-block
port as the oracle a property test compares with.

When numba imports (the optional extra ``apr-contracts[fast]``), `quantize_q4_k` and
`quantize_q6_k` run `apr.convert.quant_k_numba` instead: the same C loops compiled, the same
bytes; ``APR_QUANT_KERNEL=numpy`` (or ``kernel="numpy"``) forces the numpy path, which stays the
fallback and what the compiled one is tested against.

Example:
    >>> import numpy as np
    >>> q = quantize_q4_k(np.zeros((2, 256), np.float32))
    >>> q.shape, int(q.sum())
    ((2, 144), 0)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from apr.errors import ConvertError

QK_K = 256
Q4_K_BYTES = 144
Q6_K_BYTES = 210
_F32 = np.float32
_MAGIC = _F32(12582912.0)
_GROUP_MAX_EPS = _F32(1e-15)


def _nearest_int(values: np.ndarray) -> np.ndarray:
    """ggml's ``nearest_int``: add 1.5·2^23 in float32 and read the mantissa bits."""
    shifted = (values.astype(_F32, copy=False) + _MAGIC).astype(_F32, copy=False)
    return (shifted.view(np.int32) & 0x007FFFFF) - 0x00400000


def _nearest_int_into(values: np.ndarray, low: int, high: int, out: np.ndarray, *, small: bool = False) -> np.ndarray:
    """``clamp(nearest_int(values), low, high)`` as float32 into ``out``, reusing ``values`` (float32,
    overwritten) as scratch: the same bits as `_nearest_int` then a clip, without temporaries.

    ``small``: the caller has shown every ``|value| < 2^21``. Then ``(v + 1.5·2^23) - 1.5·2^23`` in
    float32 is exactly the integer the bit trick reads (the sum lies in [2^23, 2^24), where floats
    are the integers), and the clamp can stay in float32: half the passes. Larger values (and NaN
    or Inf from a degenerate sub-block) take the bit trick, whose wrap-around C shares."""
    np.add(values, _MAGIC, out=values)
    if small:
        np.subtract(values, _MAGIC, out=values)
        return np.clip(values, _F32(low), _F32(high), out=out)  # one pass; maximum+minimum took 5
    bits = values.view(np.int32)
    np.bitwise_and(bits, 0x007FFFFF, out=bits)
    np.subtract(bits, 0x00400000, out=bits)
    np.clip(bits, low, high, out=bits)
    np.copyto(out, bits, casting="unsafe")
    return out


def _below_2_21(iscale: np.ndarray, *spans: np.ndarray) -> bool:
    """Whether ``|iscale · v| < 2^21`` for every v between the given per-column extremes of
    ``x - shift``: a bound, with a wide margin for float32 rounding, that `_nearest_int_into`'s
    float path needs. False for NaN or Inf (comparisons with NaN are false)."""
    with np.errstate(invalid="ignore", over="ignore"):
        reach = np.abs(spans[0])
        for span in spans[1:]:
            reach = np.maximum(reach, np.abs(span))
        return bool(np.all(np.abs(iscale) * reach < _F32(2**21)))


def _acc(values: np.ndarray) -> np.ndarray:
    """Left-to-right float32 sum along axis 1 (C's ``for (...) s += v[i]``): `_acc_t` of the transpose."""
    return _acc_t(np.ascontiguousarray(values.astype(_F32, copy=False).T))


def _acc_t(columns: np.ndarray) -> np.ndarray:
    """Left-to-right float32 sums of values laid out one row per position (n, S): C's
    ``for (...) s += v[i]`` over all S sub-blocks at once.

    ``np.add.reduce`` along axis 0 of a C-contiguous (n, S) array keeps S as the inner loop, so it
    adds row 1 to row 0, then row 2, ...: the additions of the C loop in its order (numpy's
    pairwise summation applies only when the reduced axis is the inner one, as it is for a single
    column, which therefore takes the explicit loop). A test pins it against the loop; ``np.add.accumulate(..., axis=1)`` on (S, n) was ten times slower."""
    columns = columns.astype(_F32, copy=False)
    if columns.ndim != 2 or columns.shape[1] < 2 or not columns.flags.c_contiguous:
        # one column is a contiguous run, which numpy sums pairwise: add row by row instead
        total = columns[0].astype(_F32, copy=True)
        for column in columns[1:]:
            total += column
        return total
    return np.add.reduce(columns, axis=0)


def _make_qkx2_quants(
    x: np.ndarray, weights: np.ndarray, nmax: int, rmin: float, rdelta: float, nstep: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``make_qkx2_quants`` on every row of ``x`` (S, n) at once (use_mad = false).

    Returns (scale (S,), the_min (S,), L (S, n) uint8). The work is done on the transposes (n, S),
    so that each of C's sums over a sub-block is n vector adds over all sub-blocks, in a few
    preallocated buffers (a chunk of a few thousand sub-blocks stays in the CPU's cache).
    """
    nmax_f = _F32(nmax)
    xt = np.ascontiguousarray(x.T, dtype=_F32)  # (n, S)
    wt = np.ascontiguousarray(weights.T, dtype=_F32)
    mn = xt.min(axis=0).astype(_F32)
    mx = xt.max(axis=0).astype(_F32)
    xmin = mn.copy()
    sum_w = _acc_t(wt)
    scratch = np.empty_like(xt)
    lf = np.empty_like(xt)
    wl = np.empty_like(xt)
    sum_x = _acc_t(np.multiply(wt, xt, out=scratch))
    mn = np.where(mn > 0, _F32(0), mn).astype(_F32)
    flat = mx == mn
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = (nmax_f / np.where(flat, _F32(1), mx - mn)).astype(_F32)
        scale = (_F32(1) / iscale).astype(_F32)
        # the levels of the best candidate are recomputed at the end from the (iscale, min) that
        # made them: cheaper than copying a (n, S) array whenever some sub-block improves
        best_iscale, best_shift = iscale, mn
        np.subtract(xt, mn, out=scratch)
        np.multiply(iscale, scratch, out=scratch)
        _nearest_int_into(scratch, 0, nmax, lf)
        np.multiply(scale, lf, out=scratch)
        np.add(scratch, mn, out=scratch)
        np.subtract(scratch, xt, out=scratch)  # diff = (scale*l + mn) - x
        np.multiply(scratch, scratch, out=scratch)
        best_error = _acc_t(np.multiply(wt, scratch, out=scratch))
        for step in range(nstep + 1):
            numerator = (_F32(rmin) + _F32(rdelta) * _F32(step)) + nmax_f
            # the trap: `mn` here is the min of the best candidate so far, not the first one
            step_iscale = (numerator / np.where(flat, _F32(1), mx - mn)).astype(_F32)
            np.subtract(xt, mn, out=scratch)
            np.multiply(step_iscale, scratch, out=scratch)
            _nearest_int_into(scratch, 0, nmax, lf, small=_below_2_21(step_iscale, xmin - mn, mx - mn))
            np.multiply(wt, lf, out=wl)
            sum_l = _acc_t(wl)
            sum_l2 = _acc_t(np.multiply(wl, lf, out=scratch))
            sum_xl = _acc_t(np.multiply(wl, xt, out=scratch))
            det = sum_w * sum_l2 - sum_l * sum_l
            this_scale = (sum_w * sum_xl - sum_x * sum_l) / det
            this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det
            positive_min = this_min > 0
            this_scale = np.where(positive_min, sum_xl / sum_l2, this_scale).astype(_F32)
            this_min = np.where(positive_min, _F32(0), this_min).astype(_F32)
            np.multiply(this_scale, lf, out=scratch)
            np.add(scratch, this_min, out=scratch)
            np.subtract(scratch, xt, out=scratch)
            np.multiply(scratch, scratch, out=scratch)
            cur_error = _acc_t(np.multiply(wt, scratch, out=scratch))
            better = (det > 0) & (cur_error < best_error) & ~flat
            if better.any():
                best_iscale = np.where(better, step_iscale, best_iscale).astype(_F32)
                best_shift = np.where(better, mn, best_shift).astype(_F32)
                best_error = np.where(better, cur_error, best_error).astype(_F32)
                scale = np.where(better, this_scale, scale).astype(_F32)
                mn = np.where(better, this_min, mn).astype(_F32)
        np.subtract(xt, best_shift, out=scratch)
        np.multiply(best_iscale, scratch, out=scratch)
        best_levels = _nearest_int_into(scratch, 0, nmax, lf)
    best_levels[:, flat] = 0
    scale = np.where(flat, _F32(0), scale).astype(_F32)
    return scale, (-mn).astype(_F32), np.ascontiguousarray(best_levels.astype(np.uint8).T)


def _first_peak(xt: np.ndarray) -> np.ndarray:
    """Per column of ``xt`` (n, S): the first value of largest magnitude (C's ``amax`` loop with a
    strict '>', so of ``+a`` and ``-a`` the earlier wins). Row by row from the last, so the first
    match is written last; ``np.argmax`` along axis 0 was the slowest step of Q6_K."""
    magnitude = np.abs(xt)
    amax = magnitude.max(axis=0)
    peak = np.zeros(xt.shape[1], dtype=_F32)
    for row in range(xt.shape[0] - 1, -1, -1):
        np.copyto(peak, xt[row], where=magnitude[row] == amax)
    return peak


def _make_qx_quants(x: np.ndarray, nmax: int) -> tuple[np.ndarray, np.ndarray]:
    """``make_qx_quants`` with rmse_type 1 and no importance weights, on every row of ``x``.

    Returns (scale (S,), L (S, n) int with values 0..2·nmax-1). Worked on the transpose (n, S), as
    `_make_qkx2_quants`, in preallocated buffers.
    """
    xt = np.ascontiguousarray(x.T, dtype=_F32)  # (n, S)
    peak = _first_peak(xt)
    zero = np.abs(peak) < _GROUP_MAX_EPS
    safe_peak = np.where(zero, _F32(1), peak).astype(_F32)
    with np.errstate(over="ignore"):  # |x| past 1e19: C's float overflows to Inf the same way
        weights = xt * xt
        wx = weights * xt
    scratch = np.empty_like(xt)
    lf = np.empty_like(xt)

    magnitude = np.abs(peak)

    def levels_for(iscale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        np.multiply(iscale, xt, out=scratch)
        _nearest_int_into(scratch, -nmax, nmax - 1, lf, small=_below_2_21(iscale, magnitude))
        sumlx = _acc_t(np.multiply(wx, lf, out=scratch))  # (w*x)*l, C's association
        np.multiply(weights, lf, out=scratch)
        return sumlx, _acc_t(np.multiply(scratch, lf, out=scratch))

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = (_F32(-nmax) / safe_peak).astype(_F32)
        sumlx, suml2 = levels_for(iscale)
        best_iscale = iscale
        scale = np.where(suml2 != 0, sumlx / suml2, _F32(0)).astype(_F32)
        best = (scale * sumlx).astype(_F32)
        for step in range(-9, 10):
            if step == 0:
                continue
            step_iscale = (-(_F32(nmax) + _F32(0.1) * _F32(step)) / safe_peak).astype(_F32)
            sumlx, suml2 = levels_for(step_iscale)
            better = (suml2 > 0) & (sumlx * sumlx > best * suml2) & ~zero
            if better.any():
                best_iscale = np.where(better, step_iscale, best_iscale).astype(_F32)
                scale = np.where(better, sumlx / suml2, scale).astype(_F32)
                best = np.where(better, scale * sumlx, best).astype(_F32)
        np.multiply(best_iscale, xt, out=scratch)  # the best candidate's levels, recomputed
        levels = _nearest_int_into(scratch, -nmax, nmax - 1, lf)
    levels[:, zero] = -nmax  # C writes L = 0, i.e. level -nmax
    scale = np.where(zero, _F32(0), scale).astype(_F32)
    return scale, np.ascontiguousarray((levels + _F32(nmax)).astype(np.int32).T)


def _blocks(values: np.ndarray, what: str) -> tuple[np.ndarray, tuple[int, ...]]:
    x = np.ascontiguousarray(values, dtype=_F32)
    if x.ndim == 0 or x.shape[-1] % QK_K:
        raise ConvertError(
            f"{what} needs rows that are a multiple of {QK_K} values, got shape {list(x.shape)}",
            hint="use --quantize f16 or q8_0 for this tensor (llama.cpp's fallback)",
        )
    if not np.isfinite(x).all():
        raise ConvertError(f"{what}: the tensor holds NaN or infinite values", hint="fix the weights first")
    return x.reshape(-1, QK_K), x.shape


def quantize_q4_k(values: np.ndarray, *, threads: int | None = None, kernel: str | None = None) -> np.ndarray:
    """Q4_K superblocks of ``values`` (rows a multiple of 256), as ggml's reference writes them.

    Superblocks are independent: they are quantized in chunks of `CHUNK_VALUES` on ``threads``
    threads (None: the CPUs available), which changes neither the bytes nor their order.
    ``kernel``: "numba" (the compiled port, `apr.convert.quant_k_numba`), "numpy" (this module's
    vectorised search) or "auto"; None reads ``APR_QUANT_KERNEL`` (default "auto": numba when it
    imports). Every kernel gives the same bytes.

    Returns:
        uint8 array of shape ``(*values.shape[:-1], values.shape[-1] // 256 * 144)``: each row's
        superblocks (``d`` f16, ``dmin`` f16, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles).

    Raises:
        ConvertError: a row is not a multiple of 256 values, or a value is not finite; ``kernel``
            (or ``APR_QUANT_KERNEL``) is unknown, or "numba" without numba installed.
    """
    x, shape = _blocks(values, "Q4_K")
    compiled = kernel_for("Q4_K", kernel)
    if compiled is not None:
        out = _map_compiled(compiled, x, Q4_K_BYTES, threads)
    else:
        out = _map_superblocks(_q4_k_superblocks, x, Q4_K_BYTES, threads)
    return out.reshape(*shape[:-1], shape[-1] // QK_K * Q4_K_BYTES)


KERNELS = ("auto", "numba", "numpy")
KERNEL_ENV = "APR_QUANT_KERNEL"


def kernel_for(kind: str, kernel: str | None = None) -> Callable[[np.ndarray, np.ndarray], None] | None:
    """The compiled kernel for ``kind`` ("Q4_K"/"Q6_K"), or None for this module's numpy search.

    ``kernel`` None reads ``APR_QUANT_KERNEL``. "auto" takes numba when it imports (the optional
    extra ``apr-contracts[fast]``), "numpy" forces the fallback (the reference the tests compare
    with), "numba" insists. numba is imported here, on the first K-quant, never at start-up.
    """
    module = compiled_module("quant_k_numba", kernel)
    if module is None:
        return None
    compiled: Callable[[np.ndarray, np.ndarray], None] = module.kernel(kind)
    return compiled


def decoder_for(kind: str, kernel: str | None = None) -> Callable[[np.ndarray, np.ndarray], None] | None:
    """The compiled block decoder for ``kind`` (Q4_K, Q6_K, Q8_0: `apr.convert.blocks_numba`), or
    None for the ``gguf`` package's (another type, numba missing under "auto", or "numpy").
    The same choice as `kernel_for`: ``APR_QUANT_KERNEL`` picks encoders and decoders together."""
    module = compiled_module("blocks_numba", kernel)
    if module is None:
        return None
    compiled: Callable[[np.ndarray, np.ndarray], None] | None = module.decoder(kind)
    return compiled


def encoder_for(kind: str, kernel: str | None = None) -> Callable[[np.ndarray, np.ndarray], None] | None:
    """The compiled block encoder for ``kind`` (Q8_0: `apr.convert.blocks_numba`), or None for the
    ``gguf`` package's; the same choice as `kernel_for`."""
    module = compiled_module("blocks_numba", kernel)
    if module is None:
        return None
    compiled: Callable[[np.ndarray, np.ndarray], None] | None = module.encoder(kind)
    return compiled


def compiled_module(name: str, kernel: str | None) -> Any:
    """``apr.convert.<name>`` when the compiled path is chosen (``kernel`` or ``APR_QUANT_KERNEL``)
    and numba imports; None for the numpy path."""
    choice = (os.environ.get(KERNEL_ENV, "") if kernel is None else kernel).strip().lower() or "auto"
    if choice not in KERNELS:
        raise ConvertError(f"unknown quantization kernel {choice!r} (from {KERNEL_ENV} or kernel=)",
                           hint=f"use one of {', '.join(KERNELS)}")
    if choice == "numpy":
        return None
    try:
        return importlib.import_module(f"apr.convert.{name}")
    except ImportError as error:
        if choice == "auto":
            return None
        raise ConvertError(f"the numba quantization kernel needs numba: {error}",
                           hint="pip install 'apr-contracts[fast]', or set APR_QUANT_KERNEL=numpy") from error


def _map_compiled(compiled: Callable[[np.ndarray, np.ndarray], None], x: np.ndarray, width: int,
                  threads: int | None) -> np.ndarray:
    """``compiled(x_chunk, out_chunk)`` over the superblocks (nb, 256) of ``x`` in chunks on the
    pool (the kernel releases the GIL), into one (nb, width) array. The first chunk runs alone:
    it compiles the kernel or loads it from numba's cache, once, before threads race for it."""
    from apr.convert.quant_pool import CHUNK_VALUES, run_chunks

    out = np.empty((x.shape[0], width), dtype=np.uint8)
    if x.shape[0] == 0:
        return out
    chunk = CHUNK_VALUES // QK_K
    compiled(x[:1], out[:1])
    rest = x[1:]
    rest_out = out[1:]

    def work(start: int, stop: int) -> None:
        compiled(rest[start:stop], rest_out[start:stop])

    run_chunks(work, rest.shape[0], chunk=chunk, threads=threads)
    return out


def _map_superblocks(kernel: Callable[[np.ndarray], np.ndarray], x: np.ndarray, width: int,
                     threads: int | None) -> np.ndarray:
    """``kernel`` over the superblocks (nb, 256) of ``x`` in chunks, into one (nb, width) array."""
    from apr.convert.quant_pool import CHUNK_VALUES, run_chunks

    out = np.empty((x.shape[0], width), dtype=np.uint8)

    def work(start: int, stop: int) -> None:
        out[start:stop] = kernel(x[start:stop])

    run_chunks(work, x.shape[0], chunk=CHUNK_VALUES // QK_K, threads=threads)
    return out


def _q4_k_superblocks(x: np.ndarray) -> np.ndarray:
    """``quantize_row_q4_K_ref`` on superblocks ``x`` (nb, 256) float32: (nb, 144) uint8."""
    nb = x.shape[0]
    sub = x.reshape(nb * 8, 32)
    av_x = np.sqrt(_acc(sub * sub) / _F32(32)).astype(_F32)
    weights = (av_x[:, None] + np.abs(sub)).astype(_F32)
    scales, mins, levels = _make_qkx2_quants(sub, weights, 15, -1.0, 0.1, 20)
    scales, mins, levels = scales.reshape(nb, 8), mins.reshape(nb, 8), levels.reshape(nb, 8, 32)
    # C: `if (scale > max_scale) max_scale = scale` from 0, so a NaN (from inputs past 1e19, whose
    # squares overflow) never wins; numpy's max would propagate it
    max_scale = np.where(np.isnan(scales), _F32(0), np.maximum(scales, _F32(0))).max(axis=1).astype(_F32)
    max_min = np.where(np.isnan(mins), _F32(0), np.maximum(mins, _F32(0))).max(axis=1).astype(_F32)
    with np.errstate(divide="ignore"):
        inv_scale = np.where(max_scale > 0, _F32(63) / max_scale, _F32(0)).astype(_F32)
        inv_min = np.where(max_min > 0, _F32(63) / max_min, _F32(0)).astype(_F32)
    ls = np.minimum(_nearest_int(inv_scale[:, None] * scales) & 0xFF, 63).astype(np.uint8)
    lm = np.minimum(_nearest_int(inv_min[:, None] * mins) & 0xFF, 63).astype(np.uint8)
    packed_scales = np.zeros((nb, 12), dtype=np.uint8)
    packed_scales[:, 0:4] = ls[:, 0:4] | ((ls[:, 4:8] >> 4) << 6)
    packed_scales[:, 4:8] = lm[:, 0:4] | ((lm[:, 4:8] >> 4) << 6)
    packed_scales[:, 8:12] = (ls[:, 4:8] & 0xF) | ((lm[:, 4:8] & 0xF) << 4)
    d = (max_scale / _F32(63)).astype(np.float16)
    dmin = (max_min / _F32(63)).astype(np.float16)
    # requantize against the stored (6-bit, f16) scales and mins; get_scale_min_k4 gives back ls, lm
    sub_d = d.astype(_F32)[:, None] * ls.astype(_F32)  # (nb, 8)
    sub_m = dmin.astype(_F32)[:, None] * lm.astype(_F32)
    blocks = x.reshape(nb, 8, 32)
    with np.errstate(divide="ignore", invalid="ignore"):
        fresh = np.clip(_nearest_int((blocks + sub_m[:, :, None]) / sub_d[:, :, None]), 0, 15).astype(np.uint8)
    levels = np.where((sub_d != 0)[:, :, None], fresh, levels).reshape(nb, 4, 2, 32)
    qs = (levels[:, :, 0, :] | (levels[:, :, 1, :] << 4)).reshape(nb, 128)
    out = np.empty((nb, Q4_K_BYTES), dtype=np.uint8)
    out[:, 0:2] = d.view(np.uint8).reshape(nb, 2)
    out[:, 2:4] = dmin.view(np.uint8).reshape(nb, 2)
    out[:, 4:16] = packed_scales
    out[:, 16:] = qs
    return out


def quantize_q6_k(values: np.ndarray, *, threads: int | None = None, kernel: str | None = None) -> np.ndarray:
    """Q6_K superblocks of ``values`` (rows a multiple of 256), as ggml's reference writes them.

    Chunked, threaded and dispatched as `quantize_q4_k` (same bytes whatever ``threads`` and ``kernel``).

    Returns:
        uint8 array of shape ``(*values.shape[:-1], values.shape[-1] // 256 * 210)``: ``ql`` 128
        bytes, ``qh`` 64 bytes, 16 int8 scales, ``d`` f16.

    Raises:
        ConvertError: a row is not a multiple of 256 values, or a value is not finite; ``kernel``
            (or ``APR_QUANT_KERNEL``) is unknown, or "numba" without numba installed.
    """
    x, shape = _blocks(values, "Q6_K")
    compiled = kernel_for("Q6_K", kernel)
    if compiled is not None:
        out = _map_compiled(compiled, x, Q6_K_BYTES, threads)
    else:
        out = _map_superblocks(_q6_k_superblocks, x, Q6_K_BYTES, threads)
    return out.reshape(*shape[:-1], shape[-1] // QK_K * Q6_K_BYTES)


def _q6_k_superblocks(x: np.ndarray) -> np.ndarray:
    """``quantize_row_q6_K_ref`` on superblocks ``x`` (nb, 256) float32: (nb, 210) uint8."""
    nb = x.shape[0]
    scales, levels = _make_qx_quants(x.reshape(nb * 16, 16), 32)
    scales, levels = scales.reshape(nb, 16), levels.reshape(nb, 16, 16)
    # C keeps the first scale of strictly largest |scale| above 0; NaN never compares greater
    magnitude = np.abs(scales)
    magnitude = np.where(np.isnan(magnitude), _F32(0), magnitude)
    peak_index = np.argmax(magnitude, axis=1)
    max_scale = np.where(magnitude.max(axis=1) > 0, scales[np.arange(nb), peak_index], _F32(0)).astype(_F32)
    zero_block = np.abs(max_scale) < _GROUP_MAX_EPS
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        iscale = (_F32(-128) / np.where(zero_block, _F32(1), max_scale)).astype(_F32)
        d = (_F32(1) / iscale).astype(np.float16)
        block_scales = np.minimum(_nearest_int(iscale[:, None] * scales), 127)
        block_scales = (block_scales & 0xFF).astype(np.uint8).view(np.int8)
        sub_d = d.astype(_F32)[:, None] * block_scales.astype(_F32)  # (nb, 16)
        fresh = np.clip(_nearest_int(x.reshape(nb, 16, 16) / sub_d[:, :, None]), -32, 31) + 32
    levels = np.where((sub_d != 0)[:, :, None], fresh, levels).astype(np.uint8).reshape(nb, 2, 4, 32)
    q0, q1, q2, q3 = (levels[:, :, k, :] for k in range(4))
    ql = np.concatenate([(q0 & 0xF) | ((q2 & 0xF) << 4), (q1 & 0xF) | ((q3 & 0xF) << 4)], axis=2)  # (nb, 2, 64)
    qh = (q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6)  # (nb, 2, 32)
    out = np.empty((nb, Q6_K_BYTES), dtype=np.uint8)
    out[:, 0:128] = ql.reshape(nb, 128)
    out[:, 128:192] = qh.reshape(nb, 64)
    out[:, 192:208] = block_scales.view(np.uint8)
    out[:, 208:210] = d.view(np.uint8).reshape(nb, 2)
    out[zero_block] = 0  # C memsets an all-zero superblock
    return out


__all__ = ["KERNELS", "KERNEL_ENV", "QK_K", "Q4_K_BYTES", "Q6_K_BYTES", "compiled_module", "decoder_for", "encoder_for", "kernel_for", "quantize_q4_k", "quantize_q6_k"]
