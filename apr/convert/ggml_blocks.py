"""ggml block types of whole tensors: the ``gguf`` package's block functions, run in big chunks.

``gguf.quants.quantize``/``dequantize`` apply a type's block function to groups of 16 rows, so a
tensor of short rows (SmolLM2's 576) costs thousands of Python-level calls, each with a dozen
numpy temporaries: exporting SmolLM2-135M to Q5_0/Q8_0 spent most of its time there. Blocks are
independent and each type's ``quantize_blocks``/``dequantize_blocks`` works on any number of them,
so we call those on chunks of `apr.convert.quant_pool.CHUNK_VALUES` values on the thread pool:
the same function on the same blocks, hence the same bytes (a test compares with
``gguf.quants.quantize`` and ``dequantize``), in a fraction of the calls.

Q4_K and Q6_K, which the package cannot quantize, come from `apr.convert.quant_k`.

Example:
    >>> import numpy as np
    >>> q = quantize(np.ones((2, 64), np.float32), "Q8_0")
    >>> q.shape, bool(np.abs(dequantize(q, "Q8_0", (2, 64)) - 1).max() < 1e-3)
    ((2, 68), True)
"""

from __future__ import annotations

from typing import Any

import numpy as np


def block_class(kind: str) -> Any:
    """The ``gguf.quants`` class of ggml type ``kind`` (e.g. ``"Q8_0"``), its grid initialised."""
    import gguf.quants

    cls = getattr(gguf.quants, kind, None)
    if cls is None or not hasattr(cls, "quantize_blocks"):
        raise NotImplementedError(f"the gguf package has no block codec for {kind}")
    cls.init_grid()
    return cls


def byte_shape(shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
    """The (…, bytes per row) shape of a ``kind`` tensor of element shape ``shape``."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    block, size = GGML_QUANT_SIZES[GGMLQuantizationType[kind]]
    return (*shape[:-1], shape[-1] // block * size)


def quantize(values: np.ndarray, kind: str, *, threads: int | None = None, kernel: str | None = None) -> np.ndarray:
    """float32 ``values`` (rows a multiple of the block size) as ggml ``kind`` blocks.

    Q8_0 is encoded by a compiled loop (`apr.convert.blocks_numba`, the same bytes) when numba is
    installed; ``kernel`` chooses as for the K-quants (None reads ``APR_QUANT_KERNEL``).

    Returns:
        uint8 array of `byte_shape`; the bytes of ``gguf.quants.quantize`` (Q4_K/Q6_K: of ggml's
        reference quantizers, `apr.convert.quant_k`).
    """
    if kind == "Q4_K":
        from apr.convert.quant_k import quantize_q4_k

        return quantize_q4_k(values, threads=threads, kernel=kernel)
    if kind == "Q6_K":
        from apr.convert.quant_k import quantize_q6_k

        return quantize_q6_k(values, threads=threads, kernel=kernel)
    from apr.convert.quant_pool import CHUNK_VALUES, run_chunks

    from apr.convert.quant_k import encoder_for

    cls = block_class(kind)
    x = np.ascontiguousarray(values, dtype=np.float32)
    blocks = x.reshape(-1, cls.block_size)
    out = np.empty((blocks.shape[0], cls.type_size), dtype=np.uint8)
    compiled = encoder_for(kind, kernel)
    first = _compile_once(compiled, blocks, out)

    def work(start: int, stop: int) -> None:
        start, stop = start + first, stop + first
        if compiled is not None:
            compiled(blocks[start:stop], out[start:stop])
        else:
            out[start:stop] = cls.quantize_blocks(blocks[start:stop])

    run_chunks(work, blocks.shape[0] - first, chunk=max(1, CHUNK_VALUES // cls.block_size), threads=threads)
    return out.reshape(byte_shape(x.shape, kind))


def _compile_once(compiled: Any, source: np.ndarray, out: np.ndarray) -> int:
    """Run ``compiled`` on the first block alone (it compiles, or loads from numba's cache, once,
    before the pool's threads race for it); the number of blocks done: 1, or 0 without a kernel."""
    if compiled is None or not source.shape[0]:
        return 0
    compiled(source[:1], out[:1])
    return 1


def dequantize(data: np.ndarray, kind: str, shape: tuple[int, ...], *, threads: int | None = None,
               kernel: str | None = None) -> np.ndarray:
    """ggml ``kind`` bytes back to float32 of element shape ``shape`` (``gguf.quants.dequantize``'s
    values, chunked on the thread pool).

    Q4_K, Q6_K and Q8_0 are decoded by compiled loops (`apr.convert.blocks_numba`, the same values
    bit for bit) when numba is installed; ``kernel`` ("auto", "numba", "numpy"; None reads
    ``APR_QUANT_KERNEL``) chooses as for the quantizers (`apr.convert.quant_k.decoder_for`)."""
    from apr.convert.quant_pool import CHUNK_VALUES, run_chunks

    if kind == "F32":
        return np.asarray(data).view(np.float32).reshape(shape)
    if kind == "F16":
        return np.asarray(data).view(np.float16).astype(np.float32).reshape(shape)
    cls = block_class(kind)
    blocks = np.asarray(data).view(np.uint8).reshape(-1, cls.type_size)
    out = np.empty((blocks.shape[0], cls.block_size), dtype=np.float32)
    from apr.convert.quant_k import decoder_for

    compiled = decoder_for(kind, kernel)
    first = _compile_once(compiled, blocks, out)

    def work(start: int, stop: int) -> None:
        start, stop = start + first, stop + first
        if compiled is not None:
            compiled(blocks[start:stop], out[start:stop])
        else:
            out[start:stop] = cls.dequantize_blocks(blocks[start:stop])

    run_chunks(work, blocks.shape[0] - first, chunk=max(1, CHUNK_VALUES // cls.block_size), threads=threads)
    return out.reshape(shape)


__all__ = ["block_class", "byte_shape", "dequantize", "quantize"]
