"""FALSIFY-EXPORT-012: the vectorised, chunked, threaded quantizers against the per-block oracle.

`tests.convert.ggml_k_reference` ports ggml's Q4_K/Q6_K reference code one value at a time; the
fast path (`apr.convert.quant_k`, run in chunks on a thread pool by `apr.convert.quant_pool`) must
give its bytes for any finite input: normal weights, all-zero and constant blocks, subnormals,
values near float32's limits, ties in magnitude. For the types the ``gguf`` package quantizes
(Q8_0, Q5_0: llama.cpp's fallbacks for rows that do not split into 256), `apr.convert.ggml_blocks`
must give the bytes of ``gguf.quants.quantize`` and the values of ``gguf.quants.dequantize``. The
chunk size and the thread count must not change a byte.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apr.convert import quant_pool
from apr.convert.gguf_encode import encode
from apr.convert.gguf_export import GgufQuant, storage_type
from apr.convert.quant_k import _acc_t, quantize_q4_k, quantize_q6_k
from tests.convert.ggml_k_reference import quantize_reference

F32 = np.float32
FAST = {"Q4_K": quantize_q4_k, "Q6_K": quantize_q6_k}
FILLS = ("normal", "zeros", "constant", "subnormal", "extreme", "wide", "ties", "any")


def _superblock(fill: str, seed: int) -> np.ndarray:
    """256 float32 values of one kind of block (all finite)."""
    rng = np.random.default_rng(seed)
    if fill == "normal":
        return rng.normal(0, 0.02, 256).astype(F32)
    if fill == "zeros":
        return np.zeros(256, F32)
    if fill == "constant":
        return np.full(256, rng.normal(), F32)
    if fill == "subnormal":  # below float32's smallest normal, 1.2e-38
        return (rng.uniform(-1, 1, 256) * 1e-39).astype(F32)
    if fill == "extreme":  # near float32's max: differences overflow to Inf inside the search
        return (rng.choice([-1.0, 1.0], 256) * rng.uniform(1e37, 3.4e38, 256)).astype(F32)
    if fill == "wide":  # magnitudes from 1e-30 to 1e30 in one block
        return (rng.choice([-1.0, 1.0], 256) * 10.0 ** rng.uniform(-30, 30, 256)).astype(F32)
    if fill == "ties":  # +a and -a as the largest magnitude of a sub-block: C keeps the first
        x = rng.normal(0, 0.1, 256).astype(F32)
        x[0::16], x[5::16] = F32(1.5), F32(-1.5)
        x[32::64], x[40::64] = F32(-2.0), F32(2.0)
        return x
    bits = rng.integers(0, 2**32, 256, dtype=np.uint64).astype(np.uint32).view(F32)
    return np.where(np.isfinite(bits), bits, F32(0)).astype(F32)  # any finite float32


@pytest.fixture(autouse=True)
def _numpy_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests (and the mutants of FALSIFY-EXPORT-012) are about the numpy path, whether or not
    numba is installed; the compiled kernel has its own, tests/convert/test_quant_numba.py."""
    monkeypatch.setenv("APR_QUANT_KERNEL", "numpy")


blocks = st.lists(st.tuples(st.sampled_from(FILLS), st.integers(0, 2**32 - 1)), min_size=1, max_size=4)


@pytest.mark.falsifies("FALSIFY-EXPORT-012")
@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(sorted(FAST)), parts=blocks, rows=st.sampled_from([1, 2]),
       threads=st.integers(1, 3), chunk_blocks=st.integers(1, 3))
def test_falsify_export_012_vectorised_equals_per_block_reference(kind, parts, rows, threads, chunk_blocks):
    x = np.concatenate([_superblock(fill, seed) for fill, seed in parts])
    x = np.tile(x, rows).reshape(rows, -1)
    with pytest.MonkeyPatch.context() as patch, np.errstate(all="ignore"):
        patch.setattr(quant_pool, "CHUNK_VALUES", 256 * chunk_blocks)  # several chunks per tensor
        fast = FAST[kind](x, threads=threads)
    assert fast.tobytes() == quantize_reference(x, kind).tobytes()


@pytest.mark.falsifies("FALSIFY-EXPORT-012")
@pytest.mark.parametrize("fill", ["extreme", "ties", "subnormal", "zeros"])
@pytest.mark.parametrize("kind", sorted(FAST))
def test_falsify_export_012_edge_blocks_equal_reference(kind, fill):
    x = np.stack([_superblock(fill, 7), _superblock("normal", 8)])
    with np.errstate(all="ignore"):
        assert FAST[kind](x).tobytes() == quantize_reference(x, kind).tobytes()


@pytest.mark.falsifies("FALSIFY-EXPORT-012")
@pytest.mark.parametrize("kind", ["Q4_K", "Q6_K", "Q8_0", "Q5_0", "F16"])
def test_falsify_export_012_bytes_do_not_depend_on_chunks_or_threads(kind, monkeypatch):
    x = np.random.default_rng(3).normal(0, 0.05, (7, 512)).astype(F32)  # 14 superblocks, 112 Q8_0 blocks
    whole = encode(x, kind, measure=True, threads=1)
    for threads, chunk in ((1, 256), (2, 512), (3, 768), (2, 1 << 18)):
        monkeypatch.setattr(quant_pool, "CHUNK_VALUES", chunk)
        again = encode(x, kind, measure=True, threads=threads)
        assert again.array.tobytes() == whole.array.tobytes(), (threads, chunk)
        assert again.error == pytest.approx(whole.error, rel=1e-4)


@pytest.mark.falsifies("FALSIFY-EXPORT-012")
@settings(max_examples=20, deadline=None)
@given(quant=st.sampled_from([GgufQuant.Q4_K, GgufQuant.Q6_K, GgufQuant.Q8_0]),
       width=st.sampled_from([32, 96, 576, 800]), rows=st.integers(1, 9), seed=st.integers(0, 2**32 - 1),
       threads=st.integers(1, 3))
def test_falsify_export_012_fallback_rows_match_gguf(quant, width, rows, seed, threads):
    """Rows that do not split into 256 values take llama.cpp's fallback (Q5_0 / Q8_0 / F16); the
    chunked codec gives the bytes of gguf.quants.quantize and dequantizes as gguf does."""
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    x = np.random.default_rng(seed).normal(0, 0.05, (rows, width)).astype(F32)
    x[0, : min(32, width)] = 0  # an all-zero block
    kind = storage_type(quant, x.shape)
    assert kind in ("Q5_0", "Q8_0", "F16") or width % 256 == 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quant_pool, "CHUNK_VALUES", 64)
        enc = encode(x, kind, measure=True, threads=threads)
    if kind == "F16":
        assert enc.array.tobytes() == x.astype(np.float16).tobytes()
        return
    qtype = GGMLQuantizationType[kind]
    assert enc.array.tobytes() == quantize(x, qtype).tobytes()
    from apr.convert.ggml_blocks import dequantize as ours

    assert ours(enc.array, kind, x.shape, threads=threads).tobytes() == \
        np.asarray(dequantize(enc.array, qtype), F32).reshape(x.shape).tobytes()


@pytest.mark.falsifies("FALSIFY-EXPORT-012")
def test_falsify_export_012_k_dequantize_matches_gguf(monkeypatch):
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize

    from apr.convert.ggml_blocks import dequantize as ours

    monkeypatch.setattr(quant_pool, "CHUNK_VALUES", 512)
    x = np.random.default_rng(4).normal(0, 0.05, (5, 768)).astype(F32)
    for kind, data in (("Q4_K", quantize_q4_k(x)), ("Q6_K", quantize_q6_k(x))):
        expected = np.asarray(dequantize(data, GGMLQuantizationType[kind]), F32).reshape(x.shape)
        assert ours(data, kind, x.shape, threads=2).tobytes() == expected.tobytes()


@pytest.mark.falsifies("FALSIFY-EXPORT-012")
@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 40), s=st.one_of(st.integers(1, 50), st.sampled_from([4096, 8193])),
       seed=st.integers(0, 2**32 - 1))
def test_falsify_export_012_reduce_adds_left_to_right(n, s, seed):
    """np.add.reduce along axis 0 of a C-contiguous (n, S) array is C's ``for`` loop, in its order."""
    rng = np.random.default_rng(seed)
    columns = (rng.normal(0, 1, (n, s)) * 10.0 ** rng.integers(-8, 9, (n, s))).astype(F32)
    expected = columns[0].copy()
    for row in columns[1:]:
        expected = (expected + row).astype(F32)
    assert _acc_t(columns).tobytes() == expected.tobytes()


@pytest.mark.falsifies("FALSIFY-EXPORT-012")
def test_falsify_export_012_float_shortcut_only_where_exact():
    """nearest_int's float32 shortcut is taken only where it equals ggml's bit trick: past 2^22,
    and for Inf and NaN, the trick wraps around (C's levels), the shortcut would clamp."""
    from apr.convert.quant_k import _below_2_21, _nearest_int, _nearest_int_into

    ordinary = np.array([0.4, 0.5, 1.5, 2.5, -3.5, 14.6, 15.5, 2**20 + 0.5], F32)
    wild = np.array([2**22 + 3, 3e7, -5e9, 1e30, np.inf, -np.inf, np.nan, 7.0], F32)
    for values, shortcut in ((ordinary, True), (wild, False)):
        small = _below_2_21(np.ones(values.size, F32), values)
        assert small is shortcut
        with np.errstate(all="ignore"):
            expected = np.clip(_nearest_int(values), 0, 15).astype(F32)
            got = _nearest_int_into(values.copy(), 0, 15, np.empty_like(values), small=small)
        assert got.tobytes() == expected.tobytes()
