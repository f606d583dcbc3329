"""One tensor's GGUF payload: float32 rows -> F32/F16/ggml blocks, with its quantization error.

The export's inner loop. A tensor is cut into chunks of whole rows (about
`apr.convert.quant_pool.CHUNK_VALUES` values each) that run on the thread pool; each chunk is
encoded into its slice of the output and, when the error is wanted, decoded again while it is
still in the CPU's cache to add up its squared differences. So a tensor is read once, no
dequantized copy of it is ever held, and the extra memory is the output plus a few chunks.

The error is e(x) = rms(dequantize(encode(x)) - x) / rms(x) over the finite values of x
(contract apr-export-v1, equation relative_rmse), dequantized with the ``gguf`` package's block
functions (`apr.convert.ggml_blocks`). Sums of squares are per chunk, added in float64.

Example:
    >>> import numpy as np
    >>> enc = encode(np.ones((4, 32), np.float32), "Q8_0", measure=True)
    >>> enc.array.shape, round(enc.error, 3)
    ((4, 34), 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Encoded:
    """A tensor ready for ``GGUFWriter``: ``array`` (F32/F16 values, or uint8 blocks of ``kind``),
    ``raw_dtype`` (the ``GGMLQuantizationType`` for blocks, else None) and the relative RMSE
    (None when not measured, or for F32)."""

    array: np.ndarray
    raw_dtype: Any
    kind: str
    error: float | None


def payload_layout(shape: tuple[int, ...], kind: str) -> tuple[tuple[int, ...], np.dtype]:
    """The numpy shape and dtype of the array ``encode`` gives for a tensor of ``shape`` stored as
    ``kind``: what ``GGUFWriter.add_tensor_info`` needs before any tensor is converted."""
    if kind == "F32":
        return tuple(shape), np.dtype(np.float32)
    if kind == "F16":
        return tuple(shape), np.dtype(np.float16)
    from apr.convert.ggml_blocks import byte_shape

    return byte_shape(tuple(shape), kind), np.dtype(np.uint8)


def encode(values: np.ndarray, kind: str, *, measure: bool = True, threads: int | None = None) -> Encoded:
    """``values`` (float32, at least 2-D for block types) stored as ``kind`` (F32, F16, Q8_0, Q5_0,
    Q4_K, Q6_K, ...); bytes equal to ``gguf.quants.quantize`` / ggml's reference quantizers.

    Args:
        values: the tensor; an F32 result is this array itself when it is float32 and contiguous
            (a view of the input file is written without a copy).
        kind: the ggml type name.
        measure: compute the relative RMSE (not for F32, which is exact).
        threads: worker threads (None: the CPUs available).
    """
    from gguf import GGMLQuantizationType

    if kind == "F32":
        return Encoded(np.ascontiguousarray(values, np.float32), None, kind, None)
    x = np.ascontiguousarray(values, np.float32)
    rows = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
    shape, dtype = payload_layout(x.shape, kind)
    out = np.empty(shape, dtype=dtype)
    out_rows = out.reshape(rows.shape[0], -1)
    raw_dtype = None if kind == "F16" else GGMLQuantizationType[kind]
    fused = _fused_kernels(kind)[0] if measure else None
    if fused is not None:  # compiles, or loads from numba's cache, once, before the pool's threads race
        fused(*_fused_views(kind, rows[:0], out_rows[:0]), np.zeros(3))

    def work(start: int, stop: int) -> tuple[float, float, int]:
        chunk = rows[start:stop]
        if fused is not None:  # encode and measure in one pass (apr.convert.blocks_numba)
            sums = np.zeros(3)
            fused(*_fused_views(kind, chunk, out_rows[start:stop]), sums)
            return float(sums[0]), float(sums[1]), int(sums[2])
        out_rows[start:stop] = _encode_rows(chunk, kind)
        if not measure:
            return 0.0, 0.0, 0
        if kind == "F16":  # the float16 values themselves: `_squared_sums` widens each exactly as it
            return _squared_sums(chunk, out_rows[start:stop])  # subtracts, no float32 copy first
        return _squared_sums(chunk, _decode_rows(out_rows[start:stop], kind, chunk.shape))

    from apr.convert.quant_pool import CHUNK_VALUES, run_chunks

    width = max(1, rows.shape[1])
    sums = run_chunks(work, rows.shape[0], chunk=max(1, CHUNK_VALUES // width), threads=threads)
    error = _ratio(sums) if measure else None
    return Encoded(out, raw_dtype, kind, error)


def relative_rmse(original: np.ndarray, stored: np.ndarray, raw_dtype: Any) -> float:
    """rms(dequantize(stored) - original) / rms(original), with the ``gguf`` package's dequantizer.

    Over the finite values of ``original``: NaN and Inf reach here only for F32/F16, which keep them
    as they are (quantized types refuse them, `apr.convert.gguf_export.require_finite`).
    ``raw_dtype`` None means ``stored`` holds the values themselves (F16 or F32).
    """
    from apr.convert.quant_pool import CHUNK_VALUES, run_chunks

    x = np.ascontiguousarray(original, np.float32)
    rows = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
    kind = "VALUES" if raw_dtype is None else raw_dtype.name
    data = np.asarray(stored)
    data_rows = data.reshape(rows.shape[0], -1)

    fused_kind = "F16" if kind == "VALUES" and data.dtype == np.float16 else kind
    measured = _fused_kernels(fused_kind)[1]

    def work(start: int, stop: int) -> tuple[float, float, int]:
        chunk = rows[start:stop]
        if measured is not None:  # the sums `encode` takes while encoding, in the same order
            sums = np.zeros(3)
            measured(*_fused_views(fused_kind, chunk, np.ascontiguousarray(data_rows[start:stop])), sums)
            return float(sums[0]), float(sums[1]), int(sums[2])
        if kind == "VALUES":
            restored = data_rows[start:stop].astype(np.float32)
        else:
            restored = _decode_rows(data_rows[start:stop], kind, chunk.shape)
        return _squared_sums(chunk, restored)

    width = max(1, rows.shape[1])
    return _ratio(run_chunks(work, rows.shape[0], chunk=max(1, CHUNK_VALUES // width)))


def _fused_kernels(kind: str) -> tuple[Any, Any]:
    """(encode-and-measure, measure-stored) compiled kernels of `apr.convert.blocks_numba` for
    ``kind`` (F16: ``f16_encode_sums``/``f16_sums``; Q8_0: ``q8_0_encode_sums``/``q8_0_sums``) when
    the compiled path is chosen (``APR_QUANT_KERNEL``) and numba imports, else (None, None): the
    encoder, then `_decode_rows` and `_squared_sums`. The compiled pair gives the same bytes; its
    error sums are float64 in fixed lanes (numpy's are float32 dot products per chunk), so the
    reported error may differ from the numpy path's in its last digits, never between encoding
    and `relative_rmse`."""
    if kind not in ("F16", "Q8_0"):
        return None, None
    from apr.convert.quant_k import compiled_module

    module = compiled_module("blocks_numba", None)
    if module is None:
        return None, None
    if kind == "F16":
        return module.f16_encode_sums, module.f16_sums
    return module.q8_0_encode_sums, module.q8_0_sums


def _fused_views(kind: str, chunk: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The arrays a fused kernel takes for rows ``chunk`` and their payload rows ``out``: flat
    float32 and uint16 for F16, (blocks, 32) float32 and (blocks, 34) uint8 for Q8_0."""
    if kind == "F16":
        return chunk.reshape(-1), out.reshape(-1).view(np.uint16)
    return chunk.reshape(-1, 32), out.reshape(-1, 34)


def _encode_rows(chunk: np.ndarray, kind: str) -> np.ndarray:
    if kind == "F16":
        with np.errstate(over="ignore"):  # beyond 65504 is Inf, as F16 keeps it (INV-EXPORT-005)
            return chunk.astype(np.float16)
    from apr.convert.ggml_blocks import quantize

    return quantize(chunk, kind, threads=1)  # already on a pool thread


def _decode_rows(data: np.ndarray, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "F16":
        return data.astype(np.float32)
    from apr.convert.ggml_blocks import dequantize

    return dequantize(data, kind, shape, threads=1)


def _squared_sums(original: np.ndarray, restored: np.ndarray) -> tuple[float, float, int]:
    """(sum x², sum (restored - x)², count) over the finite values of ``original``.

    ``restored`` may be float16 (an F16 payload): the subtraction widens it to float32 exactly,
    so the sums are those of ``restored.astype(np.float32)`` without that copy.

    A chunk's sums are BLAS float32 dot products (a chunk is small enough that float32 keeps
    about five significant digits, plenty for a reported error); only a chunk whose sums come out
    non-finite (a NaN or Inf in F16/F32 data, or squares beyond float32) is redone with a mask in
    float64."""
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.subtract(restored, original, dtype=np.float32).ravel()
        flat = original.ravel()
        total, err = float(np.dot(flat, flat)), float(np.dot(diff, diff))
    if np.isfinite(total) and np.isfinite(err):
        return total, err, int(flat.size)
    finite = np.isfinite(flat)
    x64 = flat[finite].astype(np.float64)
    d64 = restored.ravel()[finite].astype(np.float64) - x64
    return float(np.dot(x64, x64)), float(np.dot(d64, d64)), int(x64.size)


def _ratio(sums: list[tuple[float, float, int]]) -> float:
    """sqrt(mean diff²) / sqrt(mean x²) from per-chunk sums (the counts cancel); the absolute RMS
    of the difference when the original is all zeros (nothing to divide by)."""
    total, err, count = (sum(s[i] for s in sums) for i in range(3))
    if total > 0:
        return float(np.sqrt(err / total))
    return float(np.sqrt(err / count)) if count else 0.0


__all__ = ["Encoded", "encode", "payload_layout", "relative_rmse"]
