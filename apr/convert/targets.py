"""Which dtype each imported tensor is stored as, and the conversion that gets it there.

One rule for every source (HF safetensors, GGUF): with no ``--quantize`` a tensor keeps its
dtype (F32/F16/BF16 bytes pass through untouched; anything APR cannot hold is dequantized to
F32); ``f16``/``bf16`` cast every float tensor; ``q8``, ``q4`` and ``q4_k`` quantize 2-D float
tensors and keep vectors (norms, biases) in F32, as aprender does. Q4_K needs rows that are a
multiple of 256; other rows fall back to F16 and the fallback is reported, never silent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from apr.errors import UsageError
from apr.format.dtypes import DType, expected_nbytes
from apr.format.quant import PackedTensor, quantize_q4, quantize_q8


class ImportQuant(str, enum.Enum):
    """``apr import --quantize`` values."""

    F16 = "f16"
    BF16 = "bf16"
    Q8 = "q8"
    Q4 = "q4"
    Q4_K = "q4_k"

    @property
    def quantization_record(self) -> dict[str, object]:
        """The metadata ``quantization`` object (§1.8) describing this choice."""
        return quantization_record(self)


def quantization_record(quant: ImportQuant) -> dict[str, object]:
    """The metadata ``quantization`` object (§1.8) an import with ``--quantize quant`` stores.

    A plain function (the property above calls it) so mutation testing reaches the stored values.
    """
    bits, block, symmetric, name = {
        ImportQuant.F16: (16, None, True, "F16"),
        ImportQuant.BF16: (16, None, True, "BF16"),
        ImportQuant.Q8: (8, None, True, "APR_Q8"),
        ImportQuant.Q4: (4, 32, True, "APR_Q4"),
        ImportQuant.Q4_K: (4, 256, False, "Q4_K"),
    }[quant]
    return {"quant_type": name, "bits": bits, "block_size": block, "symmetric": symmetric}


def parse_import_quant(value: str | None) -> ImportQuant | None:
    """``--quantize`` text to `ImportQuant` (aprender's ``int8``/``int4``/``fp16``/``q4k`` accepted)."""
    if value is None:
        return None
    aliases = {"fp16": "f16", "int8": "q8", "int4": "q4", "q4k": "q4_k"}
    text = aliases.get(value.lower(), value.lower())
    try:
        return ImportQuant(text)
    except ValueError:
        raise UsageError(
            f"--quantize {value!r} is not one of f16, bf16, q8, q4, q4_k",
            field="--quantize", hint="e.g. apr import MODEL_DIR -o model.apr --quantize q4_k",
        ) from None


_FLOAT_DTYPES = frozenset({DType.F32, DType.F16, DType.BF16, DType.F64})


@dataclass(frozen=True, slots=True)
class Target:
    """Where one tensor goes: its stored dtype and whether it is a raw pass-through."""

    dtype: DType
    passthrough: bool
    fallback: str | None = None  # why a quantization target was not used

    def nbytes(self, shape: tuple[int, ...]) -> int:
        size = expected_nbytes(self.dtype, shape)
        assert size is not None  # targets are only chosen where a size exists
        return size


def choose_target(source: DType | None, shape: tuple[int, ...], quant: ImportQuant | None) -> Target:
    """The stored dtype of a tensor whose source dtype is ``source`` (None: only as float32 values).

    Args:
        source: the APR dtype the source bytes already are, or None when the source must be
            dequantized (a GGUF Q4_0, Q8_0, ...).
        shape: the Hugging Face (row-major) shape.
        quant: the ``--quantize`` choice, or None.
    """
    if source is not None and source not in _FLOAT_DTYPES and not source.is_packed:
        return Target(source, passthrough=True)  # integer buffers stay as they are
    if quant is None:
        if source is not None:
            return Target(source, passthrough=True)
        return Target(DType.F32, passthrough=False)
    if quant is ImportQuant.F16:
        return Target(DType.F16, passthrough=source is DType.F16)
    if quant is ImportQuant.BF16:
        return Target(DType.BF16, passthrough=source is DType.BF16)
    if len(shape) < 2:
        return Target(DType.F32, passthrough=source is DType.F32)
    if quant is ImportQuant.Q8:
        return Target(DType.APR_Q8, passthrough=source is DType.APR_Q8)
    if quant is ImportQuant.Q4:
        return Target(DType.APR_Q4, passthrough=source is DType.APR_Q4)
    if shape[-1] % 256:
        return Target(DType.F16, passthrough=source is DType.F16,
                      fallback=f"rows of {shape[-1]} values are not a multiple of 256: stored F16, not Q4_K")
    return Target(DType.Q4_K, passthrough=source is DType.Q4_K)


def convert_values(values: np.ndarray, shape: tuple[int, ...], target: DType) -> np.ndarray | PackedTensor:
    """float values (any float dtype) -> the payload of ``target``."""
    if target is DType.F32:
        return np.ascontiguousarray(values, dtype=np.float32).reshape(shape)
    if target is DType.F16:
        return np.ascontiguousarray(values, dtype=np.float32).astype(np.float16).reshape(shape)
    if target is DType.BF16:
        import ml_dtypes  # lazy: about a second to import (apr.format.dtypes)

        return np.ascontiguousarray(values, dtype=np.float32).astype(ml_dtypes.bfloat16).reshape(shape)
    if target is DType.F64:
        return np.ascontiguousarray(values, dtype=np.float64).reshape(shape)
    if target is DType.APR_Q8:
        return quantize_q8(np.asarray(values, np.float32).reshape(shape))
    if target is DType.APR_Q4:
        return quantize_q4(np.asarray(values, np.float32).reshape(shape))
    if target is DType.Q4_K:
        from apr.convert.quant_k import quantize_q4_k

        data = quantize_q4_k(np.asarray(values, np.float32).reshape(shape))
        return PackedTensor(DType.Q4_K, shape, data.reshape(-1))
    if target is DType.Q6_K:
        from apr.convert.quant_k import quantize_q6_k

        data = quantize_q6_k(np.asarray(values, np.float32).reshape(shape))
        return PackedTensor(DType.Q6_K, shape, data.reshape(-1))
    raise UsageError(f"cannot convert float values to {target.name}")


def as_float32(raw: np.ndarray, source: DType, shape: tuple[int, ...]) -> np.ndarray:
    """Source bytes (uint8) of dtype ``source`` as float32 values."""
    if source.is_packed:
        return PackedTensor(source, shape, raw.reshape(-1)).dequantize()
    return raw.view(source.numpy_dtype).reshape(shape).astype(np.float32)


__all__ = ["ImportQuant", "Target", "as_float32", "choose_target", "convert_values", "parse_import_quant"]
