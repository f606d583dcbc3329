"""FALSIFY-EXPORT-014: the compiled (numba) block decoders give the ``gguf`` package's values, bit for bit.

`apr.convert.blocks_numba` decodes Q4_K, Q6_K and Q8_0 blocks whenever numba is installed: for the
error a quantized GGUF export reports (INV-EXPORT-005, whose equation names ``gguf.quants``'
dequantizer) and for GGUF import. Any block bytes (not only what a quantizer writes: random
bits, float16 Inf/NaN/subnormal scales, negative Q6_K scales) must decode to the float32 values
of ``gguf.quants.dequantize``, whatever the chunking and thread count. Skipped (the falsifier
UNDETERMINED, tolerated: ``requires: [numba]``) where numba is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from apr.convert import quant_pool
from apr.convert.ggml_blocks import dequantize, quantize

F32 = np.float32
SIZES = {"Q4_K": (144, 256), "Q6_K": (210, 256), "Q8_0": (34, 32)}


@pytest.fixture(autouse=True, scope="module")
def _needs_numba() -> None:
    """Skip each test, not the module (a module-level skip leaves the falsifier with no collected test)."""
    pytest.importorskip("numba")


def _gguf(data: np.ndarray, kind: str) -> np.ndarray:
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize as reference

    with np.errstate(all="ignore"):
        return reference(data, GGMLQuantizationType[kind]).reshape(data.shape[0], -1)


def _same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-equal float32, except that any NaN matches any NaN (payloads are not values)."""
    return bool(((a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))).all())


@pytest.mark.falsifies("FALSIFY-EXPORT-014")
@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(sorted(SIZES)), seed=st.integers(0, 2**32 - 1), blocks=st.integers(1, 6),
       threads=st.integers(1, 2), chunk_blocks=st.integers(1, 3))
@example(kind="Q6_K", seed=0, blocks=1, threads=1, chunk_blocks=1)
def test_falsify_export_014_any_block_bytes_decode_to_gguf_values(kind, seed, blocks, threads, chunk_blocks):
    size, values = SIZES[kind]
    data = np.random.default_rng(seed).integers(0, 256, (blocks, size), dtype=np.uint8)
    with pytest.MonkeyPatch.context() as patch, np.errstate(all="ignore"):
        patch.setattr(quant_pool, "CHUNK_VALUES", values * chunk_blocks)
        got = dequantize(data, kind, (blocks, values), threads=threads, kernel="numba")
    assert _same_values(got, _gguf(data, kind))


@pytest.mark.falsifies("FALSIFY-EXPORT-014")
@pytest.mark.parametrize("kind", sorted(SIZES))
def test_falsify_export_014_quantized_weights_decode_to_gguf_values(kind):
    """What an export decodes: a weight tensor's own blocks (many chunks, two threads), with an
    all-zero row and a negative-only row; every value equal to the gguf package's."""
    x = np.random.default_rng(14).normal(0, 0.02, (48, 1024)).astype(F32)
    x[2] = 0
    x[5] = -np.abs(x[5])
    data = quantize(x, kind, threads=2)
    got = dequantize(data, kind, x.shape, threads=2, kernel="numba")
    assert got.dtype == F32 and got.shape == x.shape
    assert got.tobytes() == _gguf(data.reshape(-1, SIZES[kind][0]), kind).reshape(x.shape).tobytes()
    assert got.tobytes() == dequantize(data, kind, x.shape, threads=1, kernel="numpy").tobytes()


@pytest.mark.falsifies("FALSIFY-EXPORT-014")
@pytest.mark.parametrize("kind", sorted(SIZES))
def test_falsify_export_014_special_scales(kind):
    """Scales that are float16 Inf, NaN, subnormal, negative zero and the largest finite half, with
    the extreme quant codes: the corner cases a hand-written decoder gets wrong."""
    size, values = SIZES[kind]
    halves = np.array([0x7C00, 0xFC00, 0x7E00, 0x0001, 0x03FF, 0x8000, 0x7BFF, 0x3C00], np.uint16)
    data = np.zeros((len(halves) * 3, size), np.uint8)
    for i, half in enumerate(halves):
        for j, fill in enumerate((0x00, 0xFF, 0xA5)):
            row = data[3 * i + j]
            row[:] = fill
            where = (208, 209) if kind == "Q6_K" else (0, 1)
            row[where[0]], row[where[1]] = half & 0xFF, half >> 8
            if kind == "Q4_K":  # dmin too
                row[2], row[3] = half & 0xFF, half >> 8
    got = dequantize(data, kind, (data.shape[0], values), threads=1, kernel="numba")
    assert _same_values(got, _gguf(data, kind))


def test_the_kernel_choice_picks_the_decoder(monkeypatch):
    """"numpy" never calls a compiled decoder, "numba" always does for Q4_K/Q6_K/Q8_0, and a type
    without one (Q5_0) decodes with the gguf package's whatever the choice."""
    from apr.convert import blocks_numba
    from apr.convert.quant_k import decoder_for

    assert decoder_for("Q4_K", "numba") is blocks_numba.q4_k_decode
    assert decoder_for("Q6_K", "numba") is blocks_numba.q6_k_decode
    assert decoder_for("Q8_0", "auto") is blocks_numba.q8_0_decode
    assert decoder_for("Q5_0", "numba") is None
    assert decoder_for("Q4_K", "numpy") is None
    monkeypatch.setenv("APR_QUANT_KERNEL", "numpy")
    assert decoder_for("Q4_K") is None
    calls = []
    monkeypatch.setattr(blocks_numba, "decoder", lambda kind: calls.append(kind))
    x = np.random.default_rng(3).normal(0, 1, (2, 256)).astype(F32)
    data = quantize(x, "Q5_0")
    assert dequantize(data, "Q5_0", x.shape, kernel="numba").tobytes() == _gguf(data.reshape(-1, 22), "Q5_0").reshape(x.shape).tobytes()
    dequantize(quantize(x, "Q8_0"), "Q8_0", x.shape)  # APR_QUANT_KERNEL=numpy
    assert calls == ["Q5_0"]


def _q8_0_values(seed: int, blocks: int, spread: int) -> np.ndarray:
    """Blocks of normal values scaled by 10^-spread..10^spread, with exact halves (ties for the
    rounding), all-zero and constant blocks, and a block holding a lone extreme."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(0, 1, (blocks, 32)) * 10.0 ** rng.integers(-spread, spread + 1, (blocks, 1))).astype(F32)
    kind = seed % 5
    if kind == 0:
        x[0] = 0
    elif kind == 1:
        x[0] = np.arange(32, dtype=F32) - F32(15.5)  # ties: amax 127 makes d = 1, so x * id = x
        x[0, 0] = F32(127.0)
    elif kind == 2:
        x[0] = F32(-3.0)
    elif kind == 3:
        x[0, :] = F32(1e-3)
        x[0, 7] = F32(-3e30)
    return x


@pytest.mark.falsifies("FALSIFY-EXPORT-014")
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), blocks=st.integers(1, 6), spread=st.integers(0, 30),
       threads=st.integers(1, 2), chunk_blocks=st.integers(1, 3))
@example(seed=1, blocks=1, spread=0, threads=1, chunk_blocks=1)
def test_falsify_export_014_q8_0_encoder_gives_gguf_bytes(seed, blocks, spread, threads, chunk_blocks):
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize as reference

    x = _q8_0_values(seed, blocks, spread).reshape(-1, 64 if blocks % 2 == 0 else 32)
    with pytest.MonkeyPatch.context() as patch, np.errstate(all="ignore"):
        patch.setattr(quant_pool, "CHUNK_VALUES", 32 * chunk_blocks)
        got = quantize(x, "Q8_0", threads=threads, kernel="numba")
        expected = reference(x, GGMLQuantizationType.Q8_0)
        fallback = quantize(x, "Q8_0", threads=1, kernel="numpy")
    assert got.shape == expected.shape and got.tobytes() == expected.tobytes()
    assert got.tobytes() == fallback.tobytes()


def test_the_kernel_choice_picks_the_q8_0_encoder(monkeypatch):
    from apr.convert import blocks_numba
    from apr.convert.quant_k import encoder_for

    assert encoder_for("Q8_0", "numba") is blocks_numba.q8_0_encode
    assert encoder_for("Q5_0", "numba") is None
    assert encoder_for("Q8_0", "numpy") is None
    calls = []
    monkeypatch.setattr(blocks_numba, "encoder", lambda kind: calls.append(kind))
    x = np.random.default_rng(4).normal(0, 1, (2, 64)).astype(F32)
    quantize(x, "Q5_0", kernel="numba")
    quantize(x, "Q8_0", kernel="numpy")
    assert calls == ["Q5_0"]


def _f16_inputs(seed: int) -> np.ndarray:
    """Random float32 bits (NaN payloads, Inf, subnormals included), every exact half, values just
    above and below each half (ties and near-ties), and the overflow and underflow edges."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32).view(F32)
    halves = np.arange(0, 2**16, 3, dtype=np.uint16).view(np.float16).astype(F32)
    with np.errstate(all="ignore"):
        near = np.concatenate([halves * F32(1.0004882), halves * F32(0.99951), np.nextafter(halves, F32(np.inf))])
    edges = np.array([65504, 65519.99, 65520, 65536, 1e-8, 2.98e-8, 2.9802322e-08, 5.96e-8, 6.1e-5, 6.097555e-05,
                      np.inf, -np.inf, np.nan, 0.0, -0.0], F32)
    x = np.concatenate([bits, halves, near, edges])
    return np.concatenate([x, -x])[rng.permutation(2 * x.size)]


@pytest.mark.falsifies("FALSIFY-EXPORT-014")
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 40))
def test_falsify_export_014_f16_encoder_gives_numpys_bits_and_exact_sums(seed, cut):
    from apr.convert.blocks_numba import f16_encode_sums, f16_sums

    x = _f16_inputs(seed)[cut:]  # any length: the lanes' tail
    out = np.empty(x.shape, np.uint16)
    sums = np.zeros(3)
    f16_encode_sums(x, out, sums)
    with np.errstate(all="ignore"):
        expected = x.astype(np.float16)
    assert out.tobytes() == expected.view(np.uint16).tobytes()
    again = np.zeros(3)
    f16_sums(x, out, again)
    assert again.tolist() == sums.tolist()
    finite = np.isfinite(x)
    with np.errstate(all="ignore"):
        x64 = x[finite].astype(np.float64)
        d64 = expected[finite].astype(np.float64) - x64
        assert sums[2] == finite.sum()
        assert sums[0] == pytest.approx(float(x64 @ x64), rel=1e-12)
        assert sums[1] == pytest.approx(float(d64 @ d64), rel=1e-12)


@pytest.mark.falsifies("FALSIFY-EXPORT-014")
def test_falsify_export_014_f16_export_error_is_the_same_measured_both_ways():
    """The F16 payload of `encode` is numpy's, its error equals `relative_rmse` of that payload
    exactly (same sums, same order) and the numpy kernel's within float32 rounding."""
    from apr.convert.gguf_encode import encode, relative_rmse

    x = np.random.default_rng(15).normal(0, 0.02, (96, 1000)).astype(F32)
    x[3, 7] = np.nan
    x[4, 9] = 70000.0  # overflows to Inf: an infinite error, reported as such
    y = x.copy()
    y[4, 9] = 1.0
    for values in (x, y):
        compiled = encode(values, "F16", measure=True, threads=2)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("APR_QUANT_KERNEL", "numpy")
            reference = encode(values, "F16", measure=True, threads=2)
        with np.errstate(all="ignore"):
            assert compiled.array.tobytes() == values.astype(np.float16).tobytes() == reference.array.tobytes()
        assert compiled.error == relative_rmse(values, compiled.array, None)
        assert compiled.error == pytest.approx(reference.error, rel=1e-4)


@pytest.mark.falsifies("FALSIFY-EXPORT-014")
@pytest.mark.parametrize("seed", [1, 2])
def test_falsify_export_014_q8_0_export_encodes_and_measures_in_one_pass(seed):
    """`encode(x, "Q8_0")` with numba encodes and measures in one compiled pass: gguf's bytes, an
    error equal to `relative_rmse` of the stored bytes, and the numpy path's within rounding."""
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize as reference

    from apr.convert.gguf_encode import encode, relative_rmse

    # zero, tie and constant blocks among normal ones (not the lone 3e30, whose float16 scale overflows)
    x = np.concatenate([_q8_0_values(seed * 5 + k, 30, 3) for k in (0, 1, 2, 4)]).reshape(-1, 480)
    compiled = encode(x, "Q8_0", measure=True, threads=2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("APR_QUANT_KERNEL", "numpy")
        fallback = encode(x, "Q8_0", measure=True, threads=2)
    assert compiled.array.tobytes() == reference(x, GGMLQuantizationType.Q8_0).tobytes() == fallback.array.tobytes()
    assert compiled.error == relative_rmse(x, compiled.array, GGMLQuantizationType.Q8_0)
    assert compiled.error == pytest.approx(fallback.error, rel=1e-4)
    assert 0 < compiled.error < 0.01
