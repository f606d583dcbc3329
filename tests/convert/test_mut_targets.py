"""apr/convert/targets.py rule by rule (issue 23): which dtype each imported tensor is stored as,
the ``quantization`` record an import stores, and the conversions. Expected values come from the
module docstring's rule, numpy's own casts and the APR quantizers, never from the output read back."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.convert import targets as tg
from apr.convert.quant_k import quantize_q4_k, quantize_q6_k
from apr.convert.targets import ImportQuant, Target
from apr.errors import UsageError
from apr.format.dtypes import DType, expected_nbytes
from apr.format.quant import PackedTensor, quantize_q4, quantize_q8

FLOATS = (DType.F32, DType.F16, DType.BF16, DType.F64)
INTEGERS = (DType.I64, DType.I32, DType.I8, DType.U8)
PACKED = (DType.Q4_K, DType.Q6_K, DType.APR_Q4, DType.APR_Q8)
QUANTS = (None, *ImportQuant)


# ---- --quantize text -------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("f16", ImportQuant.F16), ("bf16", ImportQuant.BF16), ("q8", ImportQuant.Q8), ("q4", ImportQuant.Q4),
    ("q4_k", ImportQuant.Q4_K),
    # aprender's spellings
    ("fp16", ImportQuant.F16), ("int8", ImportQuant.Q8), ("int4", ImportQuant.Q4), ("q4k", ImportQuant.Q4_K),
    # case does not matter, for the canonical names and the aliases alike
    ("Q4_K", ImportQuant.Q4_K), ("BF16", ImportQuant.BF16), ("INT8", ImportQuant.Q8), ("FP16", ImportQuant.F16),
    ("Q4K", ImportQuant.Q4_K),
])
def test_quantize_text_and_aliases(text, expected):
    assert tg.parse_import_quant(text) is expected


def test_no_quantize_flag_is_none():
    assert tg.parse_import_quant(None) is None


@pytest.mark.parametrize("text", ["q6_k", "int16", "fp32", "f32", "", "q4-k", "q8_0", "4"])
def test_other_quantize_text_is_a_usage_error_naming_the_flag(text):
    """Near misses of the accepted names (q4-k, q8_0, fp32) are refused, exit 64 with the flag named."""
    with pytest.raises(UsageError) as caught:
        tg.parse_import_quant(text)
    assert caught.value.field == "--quantize"
    assert caught.value.exit_code == 64  # EX_USAGE (sysexits.h), the documented usage exit
    assert repr(text) in caught.value.message
    assert caught.value.hint and "--quantize" in caught.value.hint
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# ---- the stored ``quantization`` record (docs/aprender-format.md §1.8) -----------------------------

# quant_type: the APR dtype the 2-D tensors get; bits per value; block_size: values per scale block
# (APR_Q4 blocks of 32, Q4_K super-blocks of 256, none for a cast or APR_Q8's one scale per tensor);
# symmetric: False only for Q4_K (its blocks carry a minimum as well as a scale).
RECORDS = {
    ImportQuant.F16: {"quant_type": "F16", "bits": 16, "block_size": None, "symmetric": True},
    ImportQuant.BF16: {"quant_type": "BF16", "bits": 16, "block_size": None, "symmetric": True},
    ImportQuant.Q8: {"quant_type": "APR_Q8", "bits": 8, "block_size": None, "symmetric": True},
    ImportQuant.Q4: {"quant_type": "APR_Q4", "bits": 4, "block_size": 32, "symmetric": True},
    ImportQuant.Q4_K: {"quant_type": "Q4_K", "bits": 4, "block_size": 256, "symmetric": False},
}


@pytest.mark.parametrize("quant", list(ImportQuant))
def test_quantization_record_is_the_documented_one(quant):
    assert tg.quantization_record(quant) == RECORDS[quant]
    assert quant.quantization_record == RECORDS[quant]
    # the record names the dtype choose_target stores a 2-D tensor with 256-value rows as
    assert RECORDS[quant]["quant_type"] == tg.choose_target(DType.F32, (4, 256), quant).dtype.name


# ---- choose_target ---------------------------------------------------------------------------------

dtypes = st.sampled_from([*FLOATS, *INTEGERS, *PACKED, None])
quants = st.sampled_from(QUANTS)
shapes_ = st.lists(st.integers(1, 1100), min_size=0, max_size=3).map(tuple)


def expected_target(source, shape, quant):
    """The module docstring's rule, written out independently."""
    if source in INTEGERS:
        return source, True, None
    if quant is None:
        return (source, True, None) if source is not None else (DType.F32, False, None)
    if quant in (ImportQuant.F16, ImportQuant.BF16):
        stored = DType.F16 if quant is ImportQuant.F16 else DType.BF16
    elif len(shape) < 2:
        stored = DType.F32  # vectors (norms, biases) stay F32
    elif quant is ImportQuant.Q8:
        stored = DType.APR_Q8
    elif quant is ImportQuant.Q4:
        stored = DType.APR_Q4
    elif shape[-1] % 256 == 0:
        stored = DType.Q4_K
    else:
        return DType.F16, source is DType.F16, \
            f"rows of {shape[-1]} values are not a multiple of 256: stored F16, not Q4_K"
    return stored, source is stored, None


@given(source=dtypes, shape=shapes_, quant=quants)
@example(source=DType.F32, shape=(3, 256), quant=ImportQuant.Q4_K)
@example(source=DType.F32, shape=(2, 256, 3), quant=ImportQuant.Q4_K)   # rows are the last axis
@example(source=DType.F32, shape=(2, 3, 256), quant=ImportQuant.Q4_K)
@example(source=DType.F32, shape=(3, 255), quant=ImportQuant.Q4_K)
@example(source=DType.F32, shape=(3, 257), quant=ImportQuant.Q4_K)
@example(source=DType.Q4_K, shape=(2, 512), quant=ImportQuant.Q4_K)
@example(source=DType.F16, shape=(2, 100), quant=ImportQuant.Q4_K)
@example(source=DType.F32, shape=(256,), quant=ImportQuant.Q4_K)
@example(source=DType.F32, shape=(7, 3), quant=ImportQuant.Q8)
@example(source=DType.APR_Q8, shape=(7, 3), quant=ImportQuant.Q8)
@example(source=DType.APR_Q4, shape=(7, 64), quant=ImportQuant.Q4)
@example(source=DType.F32, shape=(5,), quant=ImportQuant.Q8)
@example(source=DType.F16, shape=(5,), quant=ImportQuant.Q8)
@example(source=DType.F16, shape=(5, 5), quant=ImportQuant.F16)
@example(source=DType.BF16, shape=(5, 5), quant=ImportQuant.BF16)
@example(source=DType.F32, shape=(5, 5), quant=ImportQuant.BF16)
@example(source=DType.I64, shape=(5, 5), quant=ImportQuant.Q4)
@example(source=DType.Q6_K, shape=(1, 256), quant=None)
@example(source=None, shape=(1, 256), quant=None)
@example(source=None, shape=(2,), quant=ImportQuant.Q4)
def test_choose_target_follows_the_documented_rule(source, shape, quant):
    got = tg.choose_target(source, shape, quant)
    assert (got.dtype, got.passthrough, got.fallback) == expected_target(source, shape, quant)


def test_a_target_without_fallback_has_none():
    assert Target(DType.F32, passthrough=True).fallback is None


@given(dtype=st.sampled_from([*FLOATS, *INTEGERS, *PACKED]),
       shape=st.lists(st.integers(1, 600), min_size=1, max_size=3).map(tuple))
def test_target_nbytes_is_the_formats_size(dtype, shape):
    if dtype in (DType.Q4_K, DType.Q6_K) and shape[-1] % 256:
        shape = (*shape[:-1], 256)
    assert Target(dtype, passthrough=False).nbytes(shape) == expected_nbytes(dtype, shape)


# ---- conversions -----------------------------------------------------------------------------------

def _values(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize(("target", "numpy_dtype"), [
    (DType.F32, np.float32), (DType.F16, np.float16), (DType.BF16, ml_dtypes.bfloat16), (DType.F64, np.float64),
])
@pytest.mark.parametrize("given_dtype", [np.float64, np.float32, np.float16])
def test_plain_targets_cast_through_float32(target, numpy_dtype, given_dtype):
    """Flat values of any float dtype come back in the target's dtype and the asked shape, equal to
    numpy's cast of the float32 values (F64: of the values themselves)."""
    shape = (3, 4)
    flat = _values(12, dtype=given_dtype)
    got = tg.convert_values(flat, shape, target)
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.dtype(numpy_dtype) and got.shape == shape
    assert got.flags["C_CONTIGUOUS"]
    via = flat.astype(np.float64) if target is DType.F64 else flat.astype(np.float32)
    assert np.array_equal(got, via.astype(numpy_dtype).reshape(shape))


def test_f16_goes_through_float32_not_straight_from_float64():
    """1 + 2^-11 + 2^-40 as float64 rounds up to 1 + 2^-10 in float16 directly, but its float32 value
    is exactly 1 + 2^-11, a tie that float16 rounds to even: 1.0. The module casts via float32."""
    value = np.array([1 + 2.0 ** -11 + 2.0 ** -40], dtype=np.float64)
    assert value.astype(np.float16)[0] != value.astype(np.float32).astype(np.float16)[0]  # the premise
    got = tg.convert_values(value, (1,), DType.F16)
    assert got[0] == np.float16(1.0)


def test_bf16_goes_through_float32_not_straight_from_float64():
    """1 + 2^-8 + 2^-30 as float64 rounds up in bfloat16 directly, but its float32 value is exactly
    1 + 2^-8, a tie that bfloat16 rounds to even: 1.0. The module casts via float32, as F16 does."""
    value = np.array([1 + 2.0 ** -8 + 2.0 ** -30], dtype=np.float64)
    assert value.astype(ml_dtypes.bfloat16)[0] != value.astype(np.float32).astype(ml_dtypes.bfloat16)[0]
    got = tg.convert_values(value, (1,), DType.BF16)
    assert got.dtype == np.dtype(ml_dtypes.bfloat16) and float(got[0]) == 1.0


@pytest.mark.parametrize("target", [DType.Q4_K, DType.Q6_K])
def test_k_quant_rows_are_the_asked_shapes_rows(target):
    """768 values as (2, 384): rows of 384 are not whole super-blocks, although 768 values are three;
    the quantizer sees the asked shape and refuses it (ConvertError naming the shape)."""
    from apr.errors import ConvertError

    with pytest.raises(ConvertError) as caught:
        tg.convert_values(_values(768), (2, 384), target)
    assert "[2, 384]" in caught.value.message


@pytest.mark.parametrize(("target", "quantizer"), [(DType.APR_Q8, quantize_q8), (DType.APR_Q4, quantize_q4)])
def test_apr_quantized_targets(target, quantizer):
    shape = (4, 64)
    flat = _values(256)
    got = tg.convert_values(flat, shape, target)
    expected = quantizer(flat.astype(np.float32).reshape(shape))
    assert isinstance(got, PackedTensor)
    assert got.dtype is target and tuple(got.shape) == shape
    assert np.array_equal(got.data, expected.data)


@pytest.mark.parametrize(("target", "quantizer"), [(DType.Q4_K, quantize_q4_k), (DType.Q6_K, quantize_q6_k)])
def test_k_quant_targets(target, quantizer):
    shape = (2, 256)
    flat = _values(512, seed=3)
    got = tg.convert_values(flat, shape, target)
    expected = quantizer(flat.astype(np.float32).reshape(shape))
    assert isinstance(got, PackedTensor)
    assert got.dtype is target and tuple(got.shape) == shape
    assert got.data.ndim == 1 and np.array_equal(got.data, np.asarray(expected).reshape(-1))


@pytest.mark.parametrize("target", INTEGERS)
def test_integer_targets_are_refused(target):
    with pytest.raises(UsageError) as caught:
        tg.convert_values(_values(4), (4,), target)
    assert target.name in caught.value.message


@pytest.mark.parametrize(("source", "numpy_dtype"), [
    (DType.F32, np.float32), (DType.F16, np.float16), (DType.BF16, ml_dtypes.bfloat16), (DType.F64, np.float64),
])
def test_as_float32_reads_plain_bytes(source, numpy_dtype):
    shape = (2, 3)
    values = _values(shape).astype(numpy_dtype)
    raw = np.frombuffer(values.tobytes(), np.uint8)
    got = tg.as_float32(raw, source, shape)
    assert got.dtype == np.float32 and got.shape == shape
    assert np.array_equal(got, values.astype(np.float32))


@pytest.mark.parametrize("source", PACKED)
def test_as_float32_dequantizes_packed_bytes(source):
    shape = (2, 256)
    packed = tg.convert_values(_values(512, seed=5), shape, source)
    got = tg.as_float32(packed.data.reshape(2, -1), source, shape)  # any layout of the bytes
    assert got.dtype == np.float32 and tuple(got.shape) == shape
    assert np.array_equal(got, packed.dequantize())
