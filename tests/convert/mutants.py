"""Deliberate faults for apr-convert-hf-arch-v1 and apr-export-v1: each must turn its falsifier's
tests red (targets are the names as their callers look them up)."""

from __future__ import annotations

from typing import Any

import numpy as np

from apr.convert import quant_k as _qk
from apr.convert.gguf_export import storage_type as _STORAGE_TYPE  # the real one, taken before a mutant patches it
from apr.convert.hf_config import synthesize_hf_architecture_from_family


def last_architecture(config: Any) -> str | None:
    """architectures[-1] instead of [0]."""
    archs = config.get("architectures")
    return archs[-1] if isinstance(archs, list) and archs and isinstance(archs[-1], str) else None


def synthesizing_architecture(config: Any) -> str | None:
    """Invents a class from model_type when architectures is missing (the P0-K fabrication)."""
    archs = config.get("architectures")
    if isinstance(archs, list) and archs and isinstance(archs[0], str):
        return archs[0]
    model_type = config.get("model_type")
    return synthesize_hf_architecture_from_family(model_type) if isinstance(model_type, str) else None


def identity_rows(rows: np.ndarray, n_heads: int) -> np.ndarray:
    """An unpermute that does nothing."""
    return np.ascontiguousarray(rows)


def qkx2_keeping_first_min(x, weights, nmax, rmin, rdelta, nstep):
    """make_qkx2_quants with the trap avoided wrongly: the search keeps the first min."""
    f32 = np.float32
    mn = np.minimum(x.min(axis=1), f32(0)).astype(f32)
    mx = x.max(axis=1).astype(f32)
    flat = mx == mn
    first_min = mn.copy()
    with np.errstate(all="ignore"):
        scale, the_min, levels = _real_qkx2(x, weights, nmax, rmin, rdelta, 0)
        best = None
        for step in range(nstep + 1):
            iscale = ((f32(rmin) + f32(rdelta) * f32(step)) + f32(nmax)) / np.where(flat, f32(1), mx - first_min)
            aux = np.clip(_qk._nearest_int(iscale[:, None] * (x - first_min[:, None])), 0, nmax).astype(f32)
            wl = weights * aux
            sw, sl, sl2 = _qk._acc(weights), _qk._acc(wl), _qk._acc(wl * aux)
            sxl, sx = _qk._acc(wl * x), _qk._acc(weights * x)
            det = sw * sl2 - sl * sl
            ts = ((sw * sxl - sx * sl) / det).astype(f32)
            tm = ((sl2 * sx - sl * sxl) / det).astype(f32)
            ts = np.where(tm > 0, sxl / sl2, ts).astype(f32)
            tm = np.where(tm > 0, f32(0), tm).astype(f32)
            diff = ts[:, None] * aux + tm[:, None] - x
            err = _qk._acc(weights * diff * diff)
            if best is None:
                best = np.full_like(err, np.inf)
            better = (det > 0) & (err < best) & ~flat
            levels = np.where(better[:, None], aux.astype(np.uint8), levels)
            best = np.where(better, err, best)
            scale = np.where(better, ts, scale).astype(f32)
            the_min = np.where(better, -tm, the_min).astype(f32)
    return scale, the_min, levels


_real_qkx2 = _qk._make_qkx2_quants


def no_architecture(config: Any) -> str | None:
    """hf_architecture_from_config that never reads architectures[0]: the HF identity is dropped."""
    return None


def llama_for_every_family(family: str) -> str:
    """synthesize_hf_architecture_from_family that answers LlamaForCausalLM for any family."""
    return "LlamaForCausalLM"


def float32_everything(value: Any) -> np.ndarray:
    """tensor_for_hf that widens every tensor to float32 (f16/bf16 bytes are not preserved)."""
    from apr.format import PackedTensor

    if isinstance(value, PackedTensor):
        return value.dequantize()
    return np.asarray(value).astype(np.float32)


def no_fallbacks(quant: Any, shape: tuple[int, ...]) -> str:
    """storage_type without llama.cpp's fallbacks: every 2-D tensor takes the requested type."""
    from apr.convert.gguf_export import GgufQuant

    if len(shape) < 2 or quant is GgufQuant.F32:
        return "F32"
    return {GgufQuant.F16: "F16", GgufQuant.Q8_0: "Q8_0", GgufQuant.Q4_K: "Q4_K"}.get(quant, "Q6_K")


def accept_non_finite(name: str, values: Any, kind: str) -> None:
    """require_finite that lets NaN and Inf through to the quantizer."""


def q4k_without_min(x: np.ndarray) -> np.ndarray:
    """quantize_q4_k that stores dmin as zero: blocks parse, but every sub-block loses its offset."""
    data = np.array(_qk.quantize_q4_k(x), copy=True)
    blocks = data.reshape(-1, 144)  # block_q4_K: d (f16), dmin (f16), scales[12], qs[128]
    blocks[:, 2:4] = 0
    return data


def output_check_ignores_force(path: Any, *, force: bool, **kwargs: Any) -> Any:
    """check_output that treats every call as --force: an existing output is overwritten."""
    from apr.convert.outputs import check_output

    return check_output(path, force=True, **kwargs)


def plan_in_declaration_order(specs: Any) -> list[Any]:
    """plan_specs that keeps the declaration order instead of save_file's sorted name order."""
    from apr.format import stream_writer as _sw
    from apr.format.header import align64
    from apr.format.tensor_index import TensorEntry

    specs = list(specs)
    checked = {d.spec.name for d in _real_plan_specs(specs)}
    declared, offset = [], 0
    for spec in specs:
        if spec.name not in checked:
            continue
        entry = TensorEntry(name=spec.name, dtype=spec.dtype, shape=tuple(spec.shape), offset=offset, size=spec.nbytes)
        declared.append(_sw._Declared(entry, spec))
        offset += align64(spec.nbytes)
    return declared


def dequantized_to_f16(source: Any, shape: tuple[int, ...], quant: Any) -> Any:
    """choose_target that stores dequantized GGUF tensors (Q8_0, Q4_0, ...) as F16 by default, not F32."""
    from apr.convert.targets import Target, choose_target
    from apr.format.dtypes import DType

    if source is None and quant is None:
        return Target(DType.F16, passthrough=False)
    return choose_target(source, shape, quant)


def config_without_tie(reader: Any, config: Any, record: Any) -> dict[str, Any]:
    """hf_config_for that drops tie_word_embeddings: a tied model loads with an untied, random lm_head."""
    document = _real_hf_config_for(reader, config, record)
    document.pop("tie_word_embeddings", None)
    return document


def _capture_plan_specs() -> Any:
    from apr.format import stream_writer as _sw

    return _sw.plan_specs


_real_plan_specs = _capture_plan_specs()


def _capture_hf_config_for() -> Any:
    from apr.convert import hf_export as _hf

    return _hf.hf_config_for


_real_hf_config_for = _capture_hf_config_for()


def run_chunks_skipping_last(work: Any, total: int, *, chunk: int, threads: Any = None) -> list[Any]:
    """run_chunks that forgets the last, partial chunk (an off-by-one in the range split): the tail
    of a tensor keeps whatever np.empty held."""
    chunk = max(1, int(chunk))
    return [work(start, start + chunk) for start in range(0, total - chunk + 1, chunk)]


def float_rounding_everywhere(iscale: Any, *spans: Any) -> bool:
    """_below_2_21 that always allows the float32 shortcut for nearest_int, also for NaN, Inf and
    values past 2^22, where ggml's bit trick gives other levels."""
    return True


def last_peak(xt: np.ndarray) -> np.ndarray:
    """_first_peak that keeps the last value of largest magnitude (C's strict '>' keeps the first)."""
    magnitude = np.abs(xt)
    amax = magnitude.max(axis=0)
    peak = np.zeros(xt.shape[1], dtype=np.float32)
    for row in range(xt.shape[0]):
        np.copyto(peak, xt[row], where=magnitude[row] == amax)
    return peak


def _numba_rebuilt(kind: str, swap: dict[str, Any], rebuild: tuple[str, ...]) -> Any:
    """apr.convert.quant_k_numba's kernel for ``kind`` with the functions in ``rebuild`` compiled
    again (no cache) over the module's globals with ``swap`` applied: a fault inside the compiled
    code, which patching a module attribute cannot reach once the kernel is compiled."""
    import types

    from numba import njit

    from apr.convert import quant_k_numba as qn

    scope = dict(vars(qn))
    scope.update(swap)
    for name in qn.JIT_FUNCTIONS:
        if name in rebuild:
            py = getattr(qn, name).py_func
            copy = types.FunctionType(py.__code__, scope, name, py.__defaults__, py.__closure__)
            scope[name] = njit(nogil=True, error_model="numpy")(copy)
    return scope[{"Q4_K": "q4_k_rows", "Q6_K": "q6_k_rows"}[kind]]


_SEARCH = ("_make_qkx2_quants", "_make_qx_quants", "_q4_k_pack", "q4_k_rows", "q6_k_rows")
_NUMBA_MUTANTS: dict[tuple[str, str], Any] = {}


def numba_kernel_float64(kind: str) -> Any:
    """The compiled kernel with its scalars widened to float64 (``F = np.float64``): numba's
    default for ``float32 * 0.1``; nearest_int then rounds a float64 to float32 first."""
    key = ("float64", kind)
    if key not in _NUMBA_MUTANTS:
        _NUMBA_MUTANTS[key] = _numba_rebuilt(kind, {"F": np.float64}, _SEARCH)
    return _NUMBA_MUTANTS[key]


def _f16_bits_truncating(value: Any) -> Any:
    """float32 -> binary16 bits by dropping the low 13 mantissa bits (no rounding), normal range only."""
    bits = np.int64(np.float32(value).view(np.int32)) & 0xFFFFFFFF
    sign = (bits & 0x80000000) >> 16
    exponent = bits & 0x7F800000
    if exponent <= 0x38000000:
        return sign
    if exponent >= 0x47800000:
        return sign + 0x7C00
    return sign + ((exponent - 0x38000000) >> 13) + ((bits & 0x007FFFFF) >> 13)


def numba_kernel_f16_truncated(kind: str) -> Any:
    """The compiled kernel with ``d``/``dmin`` truncated to float16 instead of rounded to nearest even."""
    key = ("f16", kind)
    if key not in _NUMBA_MUTANTS:
        from numba import njit

        _NUMBA_MUTANTS[key] = _numba_rebuilt(kind, {"_f16_bits": njit(_f16_bits_truncating)},
                                              ("_q4_k_pack", "q4_k_rows", "q6_k_rows"))
    return _NUMBA_MUTANTS[key]


def _numpy_decoder(compute: Any) -> Any:
    """A decoder with the compiled ones' signature, ``out[...] = compute(blocks)``."""

    def decode(blocks: np.ndarray, out: np.ndarray) -> None:
        out[...] = compute(np.asarray(blocks))

    return decode


def _q4_k_high_scales_swapped(blocks: np.ndarray) -> np.ndarray:
    """gguf's Q4_K decode with the scale and min of sub-blocks 4-7 swapped (the packed 12 bytes
    keep them in mirrored halves of the same bytes)."""
    import gguf.quants

    n = blocks.shape[0]
    d = blocks[:, 0:2].copy().view(np.float16).astype(np.float32)
    dmin = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
    sc, m = gguf.quants.Q4_K.get_scale_min(blocks[:, 4:16].copy())
    sc, m = sc.copy(), m.copy()
    sc[:, 4:], m[:, 4:] = m[:, 4:].copy(), sc[:, 4:].copy()
    ds = (d * sc.astype(np.float32)).reshape(n, 8, 1)
    dm = (dmin * m.astype(np.float32)).reshape(n, 8, 1)
    qs = blocks[:, 16:].reshape(n, 4, 1, 32) >> np.array([0, 4], np.uint8).reshape(1, 1, 2, 1)
    qs = (qs & 0x0F).reshape(n, 8, 32).astype(np.float32)
    return (ds * qs - dm).reshape(n, 256)


def _q6_k_unsigned_scales(blocks: np.ndarray) -> np.ndarray:
    import gguf.quants

    fixed = np.asarray(blocks).copy()
    signed = gguf.quants.Q6_K.dequantize_blocks(fixed)
    scales = fixed[:, 192:208].astype(np.float32)  # read as uint8: -1 becomes 255
    true_scales = fixed[:, 192:208].view(np.int8).astype(np.float32)
    factor = np.where(true_scales == 0, 0, scales / np.where(true_scales == 0, 1, true_scales))
    return (signed.reshape(-1, 16, 16) * factor[:, :, None]).reshape(-1, 256).astype(np.float32)


def numba_decoder_high_scales_swapped(kind: str) -> Any:
    """The compiled decoder with Q4_K's scale and min of sub-blocks 4-7 swapped in the unpacking.
    (Not float64 arithmetic: every Q4_K product is exact in float32, so a float64 decoder rounds
    only the final difference, as gguf's does: an equivalent mutant.)"""
    from apr.convert import blocks_numba

    return _numpy_decoder(_q4_k_high_scales_swapped) if kind == "Q4_K" else blocks_numba._DECODERS.get(kind)


def numba_decoder_unsigned_scales(kind: str) -> Any:
    """The compiled decoder reading Q6_K's sub-block scales as unsigned bytes (int8 in ggml)."""
    from apr.convert import blocks_numba

    return _numpy_decoder(_q6_k_unsigned_scales) if kind == "Q6_K" else blocks_numba._DECODERS.get(kind)


def numba_encoder_round_half_even(kind: str) -> Any:
    """The compiled Q8_0 encoder rounding x * id half to even (``np.rint``), not half away from zero."""
    from apr.convert import blocks_numba

    if kind != "Q8_0":
        return blocks_numba._ENCODERS.get(kind)

    def encode(x: np.ndarray, out: np.ndarray) -> None:
        d = (np.abs(x).max(axis=1, keepdims=True) / np.float32(127)).astype(np.float32)
        with np.errstate(divide="ignore"):
            inverse = np.where(d == 0, np.float32(0), np.float32(1) / d).astype(np.float32)
        out[:, :2] = d.astype(np.float16).view(np.uint8)
        out[:, 2:] = np.rint(x * inverse).astype(np.int8).view(np.uint8)

    return encode


def q4_k_falls_back_to_q8_0(quant: Any, shape: tuple[int, ...]) -> str:
    """storage_type with Q4_K's fallback for rows not made of 256-value blocks set to Q8_0
    (llama.cpp's is Q5_0, the only type that fallback chooses): a plausible choice, and a file
    llama-quantize would not write."""
    kind = _STORAGE_TYPE(quant, shape)
    return "Q8_0" if kind == "Q5_0" else kind


def f16_truncating_sums(x: np.ndarray, out: np.ndarray, sums: np.ndarray) -> None:
    """The compiled F16 encoder truncating the mantissa to 10 bits instead of rounding to nearest
    even (normal range; the rest as numpy), with its sums."""
    bits = np.asarray(x, np.float32).view(np.uint32)
    magnitude = bits & 0x7FFFFFFF
    normal = (magnitude >= 0x38800000) & (magnitude < 0x47800000)
    with np.errstate(all="ignore"):
        halves = np.asarray(x, np.float32).astype(np.float16).view(np.uint16).copy()
    truncated = (((bits >> 16) & 0x8000) | ((magnitude - 0x38000000) >> 13)).astype(np.uint16)
    halves[normal] = truncated[normal]
    out[:] = halves
    finite = np.isfinite(x)
    with np.errstate(all="ignore"):
        x64 = np.asarray(x, np.float64)[finite]
        d64 = halves.view(np.float16)[finite].astype(np.float64) - x64
    sums[0] += float(x64 @ x64)
    sums[1] += float(d64 @ d64)
    sums[2] += int(finite.sum())


def q8_0_round_half_even_sums(x: np.ndarray, out: np.ndarray, sums: np.ndarray) -> None:
    """The fused Q8_0 encoder rounding ties to even (its sums computed from what it wrote)."""
    from apr.convert import blocks_numba

    numba_encoder_round_half_even("Q8_0")(x, out)
    blocks_numba.q8_0_sums(x, out, sums)
