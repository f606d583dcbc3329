"""Quantized payloads: APR-native Q8/Q4 (quantize and dequantize) and GGML K-quants (dequantize).

APR_Q8: ``[f32 scale][N × i8]``, scale = max|x|/127 (1.0 when all zero), q = round(x/scale)
clamped to [-127, 127]. APR_Q4: blocks of 32 values, each ``[f16 scale][16 bytes of nibbles]``,
scale = blockmax|x|/7 (1.0 when zero), q = round(x/scale) clamped to [-8, 7] stored as q+8, even
index in the low nibble; the last block zero-padded (docs/aprender-format.md §1.6).

Q4_K and Q6_K are stored as raw GGUF superblocks; their dequantization is the `gguf` package's
(imported lazily), the reference implementation llama.cpp's own Python tools use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from apr.errors import TensorDataError, TensorInputError
from apr.format.dtypes import DType, element_count, expected_nbytes

_F16_MIN_NORMAL = np.float32(6.103515625e-05)


@dataclass(frozen=True)
class PackedTensor:
    """A tensor whose dtype has no numpy element type: its dtype, logical shape and raw bytes.

    ``data`` is a 1-D uint8 array (possibly a zero-copy view of a memory map).
    """

    dtype: DType
    shape: tuple[int, ...]
    data: np.ndarray

    def __post_init__(self) -> None:
        if not self.dtype.is_packed:
            raise TensorInputError(f"PackedTensor needs a packed dtype, got {self.dtype.name}")
        expected = expected_nbytes(self.dtype, self.shape)
        if expected is None or self.data.nbytes != expected:
            raise TensorInputError(
                f"{self.dtype.name} payload of shape {self.shape} must be {expected} bytes, got {self.data.nbytes}",
                hint="K-quants need rows that are a multiple of 256 elements",
            )

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def dequantize(self) -> np.ndarray:
        """The values as float32, shaped ``shape``."""
        return dequantize(self.dtype, self.shape, self.data)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero: Rust's ``f32::round``, which aprender uses.

    `np.rint` rounds ties to even, which would give different bytes from aprender on exact ties.
    """
    r = np.rint(x)
    frac = np.abs(x - np.trunc(x))
    ties = frac == 0.5
    if np.any(ties):
        r = np.where(ties, np.trunc(x) + np.sign(x), r)
    return r


def quantize_q8(values: np.ndarray) -> PackedTensor:
    """APR_Q8 of ``values`` (any float array)."""
    x = np.asarray(values, dtype=np.float32)
    amax = float(np.max(np.abs(x))) if x.size else 0.0
    scale = np.float32(amax / 127.0) if amax > 0 else np.float32(1.0)
    q = np.clip(_round_half_away(x / scale), -127, 127).astype(np.int8)
    payload = np.concatenate([np.frombuffer(np.float32(scale).tobytes(), np.uint8), q.reshape(-1).view(np.uint8)])
    return PackedTensor(DType.APR_Q8, tuple(x.shape), payload)


def quantize_q4(values: np.ndarray) -> PackedTensor:
    """APR_Q4 of ``values`` (any float array)."""
    x = np.asarray(values, dtype=np.float32)
    flat = x.reshape(-1)
    n_blocks = -(-flat.size // 32)
    padded = np.zeros(n_blocks * 32, dtype=np.float32)
    padded[: flat.size] = flat
    blocks = padded.reshape(n_blocks, 32)
    amax = np.max(np.abs(blocks), axis=1)  # (n_blocks,): empty for an empty tensor
    if not np.all(np.isfinite(amax)) or np.any(amax / 7.0 > 65504.0):
        raise TensorInputError(
            "APR_Q4 cannot store values whose block maximum exceeds 458528 (the f16 block scale overflows) "
            "or that are NaN/Inf",
            hint="quantize to APR_Q8 or keep the tensor in float32",
        )
    scale = np.where(amax > 0, amax / 7.0, 1.0).astype(np.float16)
    scale32 = scale.astype(np.float32)
    safe = np.where(scale32 == 0, 1.0, scale32)  # an f16 underflow must not divide by zero
    q = np.clip(_round_half_away(blocks / safe[:, None]), -8, 7).astype(np.int16) + 8
    nibbles = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8)  # (n_blocks, 16)
    out = np.empty((n_blocks, 18), dtype=np.uint8)
    out[:, :2] = scale.view(np.uint8).reshape(n_blocks, 2)
    out[:, 2:] = nibbles
    return PackedTensor(DType.APR_Q4, tuple(x.shape), out.reshape(-1))


def dequantize(dtype: DType, shape: tuple[int, ...], data: np.ndarray) -> np.ndarray:
    """float32 values of a packed payload.

    Raises:
        TensorDataError: the payload length does not match the dtype and shape.
    """
    n = element_count(shape)
    # the payload is the data's bytes, whatever array type holds them (as `PackedTensor` counts them
    # and save_file writes them): a cast to uint8 would change a multi-byte array's values and count
    raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    expected = expected_nbytes(dtype, shape)
    if expected is None or raw.size != expected:
        raise TensorDataError(f"{dtype.name} payload of shape {shape} must be {expected} bytes, got {raw.size}")
    if dtype is DType.APR_Q8:
        scale = raw[:4].view(np.float32)[0]
        with np.errstate(over="ignore"):  # a scale near float32's max gives inf: what the bytes say (validate flags it)
            return (raw[4:].view(np.int8).astype(np.float32) * scale).reshape(shape)
    if dtype is DType.APR_Q4:
        blocks = raw.reshape(-1, 18)
        scale = blocks[:, :2].copy().view(np.float16).astype(np.float32).reshape(-1)
        bad = ~np.isfinite(scale) | (np.abs(scale) < _F16_MIN_NORMAL)
        scale[bad] = 0.0
        nib = blocks[:, 2:]
        q = np.empty((blocks.shape[0], 32), dtype=np.float32)
        q[:, 0::2] = (nib & 0x0F).astype(np.float32) - 8
        q[:, 1::2] = (nib >> 4).astype(np.float32) - 8
        return (q * scale[:, None]).reshape(-1)[:n].reshape(shape)
    if dtype in (DType.Q4_K, DType.Q6_K):
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize as gguf_dequantize

        kind = GGMLQuantizationType.Q4_K if dtype is DType.Q4_K else GGMLQuantizationType.Q6_K
        values = gguf_dequantize(raw, kind)
        return np.asarray(values, dtype=np.float32).reshape(shape)
    raise TensorDataError(f"{dtype.name} is not a packed dtype")
