"""`apr.format.dtypes`: codes (legacy ones included) and unknown codes, numpy dtypes in either byte
order, element counts and the payload size of every dtype at its block limits, against sizes
computed by hand from docs/aprender-format.md §1.6 (issue 23)."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from apr.format.dtypes import DType, dtype_from_code, dtype_from_numpy, element_count, expected_nbytes


@pytest.mark.parametrize("code, dtype", [(0, DType.F32), (1, DType.F16), (3, DType.F64), (4, DType.I32),
                                         (5, DType.I64), (6, DType.I8), (7, DType.U8), (12, DType.Q4_K),
                                         (14, DType.Q6_K), (30, DType.BF16), (128, DType.APR_Q4),
                                         (129, DType.APR_Q8), (8, DType.APR_Q4), (9, DType.APR_Q8)])
def test_dtype_from_code(code: int, dtype: DType) -> None:
    assert dtype_from_code(code) is dtype


@pytest.mark.parametrize("code", [2, 10, 11, 13, 127, 130, -1, 256])
def test_an_unknown_code_is_none(code: int) -> None:
    assert dtype_from_code(code) is None


def test_dtype_from_numpy() -> None:
    assert dtype_from_numpy(np.dtype(">f4")) is DType.F32
    assert dtype_from_numpy(np.dtype("<i8")) is DType.I64
    assert dtype_from_numpy(np.dtype(">i2")) is None and dtype_from_numpy(np.dtype(bool)) is None
    assert dtype_from_numpy(np.dtype(ml_dtypes.bfloat16)) is DType.BF16
    assert dtype_from_numpy(np.dtype(ml_dtypes.bfloat16).newbyteorder(">")) is DType.BF16


@pytest.mark.parametrize("shape, count", [((), 1), ((5,), 5), ((2, 3, 4), 24), ((0, 7), 0), ((1 << 40, 1 << 30), 1 << 70)])
def test_element_count(shape: tuple[int, ...], count: int) -> None:
    assert element_count(shape) == count


@pytest.mark.parametrize("dtype, shape, nbytes", [
    (DType.F32, (3, 5), 60), (DType.F16, (7,), 14), (DType.BF16, (7,), 14), (DType.F64, (), 8),
    (DType.I32, (2,), 8), (DType.I64, (2,), 16), (DType.I8, (9,), 9), (DType.U8, (0,), 0),
    (DType.APR_Q8, (10,), 14), (DType.APR_Q8, (), 5), (DType.APR_Q8, (0,), 4),
    (DType.APR_Q4, (32,), 18), (DType.APR_Q4, (33,), 36), (DType.APR_Q4, (31,), 18), (DType.APR_Q4, (1,), 18),
    (DType.APR_Q4, (0,), 0), (DType.APR_Q4, (2, 32), 36),
    (DType.Q4_K, (256,), 144), (DType.Q4_K, (3, 512), 864), (DType.Q6_K, (256,), 210), (DType.Q6_K, (2, 256), 420),
    (DType.Q4_K, (255,), None), (DType.Q4_K, (257,), None), (DType.Q6_K, (512, 128), None),
    (DType.Q4_K, (), None), (DType.Q6_K, (128, 2), None)])
def test_expected_nbytes(dtype: DType, shape: tuple[int, ...], nbytes: int | None) -> None:
    size = expected_nbytes(dtype, shape)
    assert size == nbytes and type(size) is type(nbytes)  # an int (a byte count), never a float


def test_expected_nbytes_is_exact_beyond_float_precision() -> None:
    rows = (1 << 53) + 1  # 256-element rows: a float division would round this count
    assert expected_nbytes(DType.Q4_K, (rows, 256)) == rows * 144
    assert expected_nbytes(DType.Q6_K, (rows, 256)) == rows * 210
