"""APR v2 -> GGUF for llama.cpp, with the ``gguf`` package as the container writer.

llama.cpp tensor names (`apr.convert.names`), llama's q/k row permutation, shapes reversed as
GGUF stores them (the writer does this from the numpy shape), KV metadata (``general.*``,
``{arch}.*``, ``tokenizer.ggml.*`` with the imported pre-tokenizer or ``gpt-2``, and what a GGUF
import carried in ``source_metadata``: `apr.convert.gguf_carry`), names under 64 bytes, 1-D
tensors in F32. Quantization per 2-D tensor, with llama.cpp's fallbacks when a row does not
split into blocks: Q4_K -> Q5_0 -> F16, Q6_K -> Q8_0 -> F16, Q8_0 -> F16. Q4_K and Q6_K come
from `apr.convert.quant_k` (the ``gguf`` package cannot quantize them); Q8_0 and Q5_0 from the
package. A tied ``lm_head.weight`` is not written (llama.cpp reuses ``token_embd.weight``).

The output goes through the project's output policy (`apr.format.outputs`: never the input, an
existing file needs ``force``) and `apr.format.atomic.atomic_path` (a temporary file, fsynced, renamed into place); the input's footer CRC is
checked as its tensors are read (`apr.format.footer_check`), before that rename.
"""

from __future__ import annotations

import errno
import enum
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from apr.convert.hf_export import ExportReport, model_config_of
from apr.convert.names import GGUF_MAX_NAME_BYTES, hf_to_gguf_for, is_qk_projection, permute_qk, qk_heads
from apr.convert.export_fields import float32_value, utf8_text
from apr.convert.gguf_carry import export_name, special_token_id, token_types, write_carried
from apr.convert.gguf_encode import relative_rmse
from apr.convert.outputs import check_output
from apr.errors import AprIOError, ConvertError, UsageError
from apr.format import PackedTensor, open_file
from apr.format.atomic import atomic_path
from apr.format.footer_check import FooterCheck, refuse_damage


class GgufQuant(str, enum.Enum):
    """``apr export --format gguf --quantize`` values."""

    F32 = "f32"
    F16 = "f16"
    Q8_0 = "q8_0"
    Q4_K = "q4_k"
    Q6_K = "q6_k"


def parse_gguf_quant(value: str | None) -> GgufQuant:
    if value is None:
        return GgufQuant.F32
    text = {"q4k": "q4_k", "q6k": "q6_k", "q8": "q8_0", "fp16": "f16", "fp32": "f32"}.get(value.lower(), value.lower())
    try:
        return GgufQuant(text)
    except ValueError:
        raise UsageError(f"--quantize {value!r} is not one of f32, f16, q8_0, q4_k, q6_k for GGUF export",
                         field="--quantize", hint="e.g. apr export model.apr --format gguf --quantize q4_k -o m.gguf") from None


# llama.cpp LlamaFileType for general.file_type
_FILE_TYPE = {GgufQuant.F32: 0, GgufQuant.F16: 1, GgufQuant.Q8_0: 7, GgufQuant.Q4_K: 14, GgufQuant.Q6_K: 18}


def storage_type(quant: GgufQuant, shape: tuple[int, ...]) -> str:
    """The ggml type name a tensor of ``shape`` is stored as (llama.cpp's fallbacks applied)."""
    if len(shape) < 2 or quant is GgufQuant.F32:
        return "F32"
    row = shape[-1]
    if quant is GgufQuant.F16:
        return "F16"
    if quant is GgufQuant.Q8_0:
        return "Q8_0" if row % 32 == 0 else "F16"
    if quant is GgufQuant.Q4_K:
        return "Q4_K" if row % 256 == 0 else "Q5_0" if row % 32 == 0 else "F16"
    return "Q6_K" if row % 256 == 0 else "Q8_0" if row % 32 == 0 else "F16"


def require_finite(name: str, values: np.ndarray, kind: str) -> None:
    """Refuse NaN or Inf in a tensor bound for a quantized type (INV-EXPORT-005).

    F32 and F16 carry them as they are; a quantized block cannot (ggml's quantizers cast NaN to an
    integer: the file would hold arbitrary numbers and no error bound could hold).

    Raises:
        ConvertError: naming the tensor and the count, with the commands that help.
    """
    if kind in ("F32", "F16"):
        return
    from apr.convert.quant_pool import CHUNK_VALUES, run_chunks

    flat = np.asarray(values).reshape(-1)

    def count(start: int, stop: int) -> int:  # on the pool: one pass over the tensor, every core
        part = flat[start:stop]
        return int(part.size - np.count_nonzero(np.isfinite(part)))

    bad = sum(run_chunks(count, flat.size, chunk=CHUNK_VALUES))
    if bad:
        raise ConvertError(
            f"tensor {name!r} has {bad} non-finite value(s) (NaN or Inf); {kind} cannot store them", field=name,
            hint="find them with `apr validate FILE`; or export with `--quantize f16` to keep them as they are")


def export_gguf(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    quantize: GgufQuant = GgufQuant.F32,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    measure_error: bool = True,
    allow_damaged: bool = False,
) -> ExportReport:
    """Export a llama/qwen2/qwen3 APR file to a GGUF file llama.cpp loads.

    Args:
        source: the ``.apr`` file.
        output: the ``.gguf`` file; written to a temporary file beside it and renamed.
        quantize: storage for 2-D tensors (vectors are always F32).
        force: replace an existing output.
        progress: ``progress(tensors_done, tensors_total)``.
        measure_error: record each quantized type's worst relative RMSE in the report.
        allow_damaged: carry over an input whose CRCs do not match instead of refusing it; the
            report's ``damaged`` says so.

    Raises:
        ConvertError: not a supported family, a name too long for GGUF, incomplete metadata.
        OutputExistsError, OutputIsInputError: a refused output (nothing written).
        DamagedInputError: the input's footer CRC does not match its bytes (nothing written).

    Example:
        >>> export_gguf("model.apr", "model.gguf", quantize=GgufQuant.Q4_K)  # doctest: +SKIP
    """
    import gguf

    target = check_output(output, force=force, inputs=(source,))
    with open_file(source, verify_checksum=not allow_damaged) as reader, FooterCheck(source) as crc:
        config = model_config_of(reader)
        arch = _gguf_arch(config, reader.path)
        names = [n for n in reader.keys() if not (config.tie_word_embeddings and n == "lm_head.weight")]
        gguf_names = {n: hf_to_gguf_for(config.family, n) for n in names}
        too_long = [g for g in gguf_names.values() if len(g.encode("utf-8")) > GGUF_MAX_NAME_BYTES]
        if too_long:
            raise ConvertError(f"GGUF tensor name {too_long[0]!r} is 64 bytes or longer; ggml refuses it",
                               field=too_long[0])
        fallbacks: list[str] = []
        errors: dict[str, float] = {}
        wanted = {GgufQuant.F16: "F16", GgufQuant.Q8_0: "Q8_0", GgufQuant.Q4_K: "Q4_K",
                  GgufQuant.Q6_K: "Q6_K"}.get(quantize, "F32")
        # an OSError of the write itself (disk full, read-only, EIO; naming no file, the temporary or
        # the output) leaves atomic_path as an AprIOError naming the output, the temporary removed;
        # any other keeps the file it names (apr.cli.guard reports it)
        with atomic_path(target) as tmp:  # fsynced and renamed into place when the block completes
            writer = gguf.GGUFWriter(tmp, arch)
            _write_kv(writer, reader, config, quantize)
            # streamed: every tensor's shape and type are declared first, then each tensor is read,
            # converted, written and let go before the next (peak memory about one tensor)
            layouts = {name: _declare(writer, reader, name, gguf_names[name], quantize) for name in names}
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            with _SideLane(reader, crc, writer, len(names), progress) as side:
                for name in names:
                    side.check(name)  # its CRC on the side thread, while this thread converts it
                    array, kind, err = _tensor_payload(reader, name, config, quantize, measure_error)
                    if (array.shape, array.dtype) != layouts[name]:
                        raise ConvertError(f"tensor {name!r} encoded as {array.dtype} {list(array.shape)}, "
                                           f"declared {layouts[name][1]} {list(layouts[name][0])}", field=name)
                    if array.ndim >= 2 and kind != wanted:
                        block = 256 if wanted in ("Q4_K", "Q6_K") else 32
                        fallbacks.append(f"{name}: rows of {reader.entry(name).shape[-1]} values do not split "
                                         f"into {block}-value {wanted} blocks: stored {kind}")
                    if err is not None:
                        errors[kind] = max(errors.get(kind, 0.0), err)
                    side.write(name, array)  # written while the next tensor is converted
                    del array
                side.drain()
            planned = sum(handle.tell() for handle in writer.fout or ())
            writer.close()
            if os.path.getsize(tmp) != planned:  # numpy's tofile drops a failed final flush silently (disk full)
                raise OSError(errno.ENOSPC, f"only {os.path.getsize(tmp)} of {planned} bytes reached the disk", tmp)
            written = gguf_tensor_count(tmp)
            if written != len(names):
                raise ConvertError(f"wrote {written} tensors, expected {len(names)}", path=tmp)
            damage = refuse_damage(crc.finish(reader), allow_damaged=allow_damaged, command="apr export")
    return ExportReport(path=os.fspath(target), format="gguf", tensor_count=len(names),
                        file_size=os.path.getsize(target), quantize=quantize.value,
                        fallbacks=tuple(fallbacks), quant_error=errors, damaged=damage)


class _SideLane:
    """The export's second lane: one thread that checks each tensor's CRC and writes each payload,
    in order, while the calling thread (and the quantization pool) converts the next tensor.

    Before, the loop was serial per tensor: CRC, convert, write. On two cores the CRC (zlib, about
    0.7 s per GiB) and the write sat idle beside a conversion that could not use them. zlib's
    ``crc32`` and numpy's ``tofile`` release the GIL, so this lane runs them beside the conversion.
    Order is kept by the single thread (CRCs are fed in file order, payloads written in declaration
    order); at most two payloads are alive (the one being written, the one being converted). A
    failure on the lane is raised in the calling thread at the next call, so nothing after it is
    written and `apr.format.atomic.atomic_path` removes the temporary.
    """

    def __init__(self, reader: Any, crc: Any, writer: Any, total: int,
                 progress: Callable[[int, int], None] | None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._reader, self._crc, self._writer = reader, crc, writer
        self._total, self._progress = total, progress
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apr-export-io")
        self._checks: list[Any] = []
        self._written: Any = None  # (name, future) of the last payload handed to the lane
        self._done = 0

    def __enter__(self) -> _SideLane:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def check(self, name: str) -> None:
        """Queue tensor ``name``'s bytes for the footer CRC (`apr.format.footer_check.FooterCheck`)."""
        self._raise_failed_checks()
        self._checks.append(self._pool.submit(self._feed, name))

    def _feed(self, name: str) -> None:
        try:
            self._crc.feed_tensor(self._reader, name)
        except OSError as err:  # the input failed, not the output the caller's handler would name
            if isinstance(err, AprIOError):
                raise
            raise AprIOError.from_os_error(err, path=self._reader.path, action="read",
                                           note="nothing was written") from err

    def write(self, name: str, array: np.ndarray) -> None:
        """Queue ``array`` as tensor ``name``'s payload, after waiting for the previous one."""
        self._finish_write()
        self._written = (name, self._pool.submit(self._writer.write_tensor_data, array))

    def drain(self) -> None:
        """Wait for every queued CRC and write; raise the first failure."""
        self._finish_write()
        for future in self._checks:
            future.result()
        self._checks.clear()

    def _raise_failed_checks(self) -> None:
        while self._checks and self._checks[0].done():
            self._checks.pop(0).result()

    def _finish_write(self) -> None:
        if self._written is None:
            return
        name, future = self._written
        future.result()
        self._written = None
        self._reader.release(name)
        self._done += 1
        if self._progress is not None:
            self._progress(self._done, self._total)


def gguf_tensor_count(path: str | os.PathLike[str]) -> int:
    """The tensor count in a GGUF file's header (magic, version, then the count as u64).

    What the export checks of the file it wrote; parsing it whole with ``gguf.GGUFReader`` took
    longer than writing it (a Python object per token of the vocabulary).

    Raises:
        ConvertError: not a GGUF file.
    """
    with open(path, "rb") as handle:
        head = handle.read(16)
    if len(head) < 16 or head[:4] != b"GGUF":
        raise ConvertError("the written file does not start with a GGUF header", path=os.fspath(path))
    return int.from_bytes(head[8:16], "little")


def _declare(writer: Any, reader: Any, name: str, gguf_name: str, quantize: GgufQuant) -> tuple[tuple[int, ...], np.dtype]:
    """``add_tensor_info`` for tensor ``name`` before any payload is converted; returns the
    (shape, dtype) its payload must have."""
    from gguf import GGMLQuantizationType

    from apr.convert.gguf_encode import payload_layout

    entry = reader.entry(name)
    kind = storage_type(quantize, tuple(entry.shape))
    shape, dtype = payload_layout(tuple(entry.shape), kind)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw_dtype = None if kind in ("F32", "F16") else GGMLQuantizationType[kind]
    writer.add_tensor_info(gguf_name, shape, dtype, nbytes, raw_dtype=raw_dtype)
    return shape, dtype


def _tensor_payload(reader: Any, name: str, config: Any, quantize: GgufQuant,
                    measure_error: bool) -> tuple[np.ndarray, str, float | None]:
    from apr.convert.gguf_encode import encode

    value = reader.get_tensor(name)
    shape = reader.entry(name).shape
    kind = storage_type(quantize, shape)
    from apr.arch import REGISTRY

    permute = REGISTRY[config.family].gguf_permute_qk and is_qk_projection(name)
    heads = qk_heads(name, config.num_heads, config.num_kv_heads)
    if isinstance(value, PackedTensor) and value.dtype.name == kind:  # Q4_K/Q6_K already: keep the bytes
        rows = np.asarray(value.data).reshape(shape[0], -1)
        if permute:
            rows = permute_qk(rows, heads)
        return np.ascontiguousarray(rows), kind, None
    if isinstance(value, PackedTensor):
        values = value.dequantize()
    elif value.dtype == np.float32:
        values = value
    else:
        values = value.astype(np.float32)
    if value is not None and not isinstance(value, PackedTensor) and value.dtype.kind not in "fV":
        raise ConvertError(f"tensor {name!r} is an integer tensor; GGUF export takes float weights", field=name)
    require_finite(name, values, kind)
    offset = gguf_norm_offset(config.family, name)
    if offset:
        values = values + np.float32(offset)
    if permute:
        values = permute_qk(values, heads)
    encoded = encode(values, kind, measure=measure_error)
    return encoded.array, kind, encoded.error


def gguf_norm_offset(family: str, name: str) -> float:
    """What llama.cpp's converter adds to a tensor: 1 to Gemma's zero-centred RMSNorm weights
    (llama.cpp's norm multiplies by the stored weight; Gemma's by 1 + weight), else 0.

    Example:
        >>> gguf_norm_offset("gemma", "model.norm.weight"), gguf_norm_offset("llama", "model.norm.weight")
        (1.0, 0.0)
    """
    from apr.arch import REGISTRY, Feature

    return 1.0 if REGISTRY[family].honours(Feature.NORM_PLUS_ONE) and name.endswith("norm.weight") else 0.0


def _gguf_arch(config: Any, path: str | None) -> str:
    """llama.cpp's ``general.architecture`` for the file's registry entry.

    Mistral is written as ``llama`` (llama.cpp's converter does the same), whose runtime has no
    sliding window: a window shorter than the context would be silently dropped, so it is refused.

    Raises:
        UnsupportedArchitectureError: a sliding window GGUF's llama architecture cannot carry.
    """
    from apr.arch import REGISTRY
    from apr.errors import UnsupportedArchitectureError

    spec = REGISTRY[config.family]
    if spec.gguf_arch == "gemma2":
        problems = gemma2_gguf_problems(config)
        if problems:
            raise UnsupportedArchitectureError(
                f"this gemma2 model cannot be exported to GGUF exactly: {'; '.join(problems)}",
                architecture=config.family, reasons=tuple(problems), path=path, field="architecture",
                hint="export to safetensors instead (apr export FILE --format safetensors -o DIR)")
        return spec.gguf_arch
    if config.sliding_window is not None and spec.gguf_arch != "phi3":  # llama.cpp's phi3 has a window
        raise UnsupportedArchitectureError(
            f"a {config.family} model with a sliding window of {config.sliding_window} tokens (context "
            f"{config.max_position_embeddings}) cannot be exported to GGUF exactly: llama.cpp's "
            f"{spec.gguf_arch!r} architecture has no sliding window",
            architecture=config.family, reasons=("sliding window not representable in GGUF",), path=path,
            field="sliding_window", hint="export to safetensors instead (apr export FILE --format safetensors -o DIR)",
        )
    return spec.gguf_arch


def gemma2_gguf_problems(config: Any) -> list[str]:
    """What llama.cpp's gemma2 cannot compute as this model does.

    llama.cpp scales queries by 1/sqrt(head_dim) (except for its 27B size class), alternates
    sliding-window layers from layer 0, always softcaps, and reads the head from token_embd.
    """
    problems = []
    if config.query_pre_attn_scalar != config.head_dim:
        problems.append(f"query_pre_attn_scalar {config.query_pre_attn_scalar} != head_dim {config.head_dim} "
                        "(llama.cpp scales queries by 1/sqrt(head_dim))")
    default = tuple("sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(config.num_layers))
    if config.layer_types != default:
        problems.append("layer_types is not the alternating pattern llama.cpp's gemma2 uses")
    if config.attn_softcap is None or config.final_softcap is None:
        problems.append("a softcap is off (llama.cpp's gemma2 always softcaps)")
    if not config.tie_word_embeddings:
        problems.append("the head is not tied (llama.cpp's gemma2 reads it from token_embd)")
    return problems


def write_arch_keys(writer: Any, arch: str, config: Any) -> None:
    """Keys only one llama.cpp architecture reads: phi3's original context and sliding window, as
    llama.cpp's Phi3MiniModel writes them (window 0: none); gemma2's softcaps and window (a
    window covering the context when it has none)."""
    if arch == "gemma2":
        writer.add_attn_logit_softcapping(config.attn_softcap)
        writer.add_final_logit_softcapping(config.final_softcap)
        writer.add_sliding_window(config.sliding_window or config.max_position_embeddings)
    if arch == "phi3":
        writer.add_rope_scaling_orig_ctx_len(config.max_position_embeddings)
        writer.add_sliding_window(config.sliding_window or 0)


def _write_kv(writer: Any, reader: Any, config: Any, quantize: GgufQuant) -> None:
    from apr.tokenizer import has_embedded_tokenizer, record_from_metadata

    meta = reader.metadata
    arch = _gguf_arch(config, reader.path)
    path = reader.path
    carried = meta.get("source_metadata") if isinstance(meta.get("source_metadata"), dict) else {}
    name = export_name(meta, carried)  # the source GGUF's own name unless a later stamp renamed it
    writer.add_name(utf8_text(name, field="name", path=path))
    writer.add_file_type(_FILE_TYPE[quantize])
    writer.add_quantization_version(2)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_heads)
    writer.add_head_count_kv(config.num_kv_heads)
    writer.add_layer_norm_rms_eps(float32_value(config.rms_norm_eps, field="rms_norm_eps", path=path))
    writer.add_rope_freq_base(float32_value(config.rope_theta, field="rope_theta", path=path))
    writer.add_rope_dimension_count(config.head_dim)
    writer.add_vocab_size(config.vocab_size)
    write_arch_keys(writer, arch, config)
    if arch == "qwen3" or config.head_dim * config.num_heads != config.hidden_size:
        writer.add_key_length(config.head_dim)
        writer.add_value_length(config.head_dim)
    if isinstance(meta.get("license"), str) and meta["license"]:
        source_license = carried.get("general.license")
        # the source's own spelling ("apache-2.0") when it names the same license the checkpoint holds
        same = isinstance(source_license, str) and source_license.casefold() == meta["license"].casefold()
        spelling = source_license if same and isinstance(source_license, str) else meta["license"]
        writer.add_string("general.license", utf8_text(spelling, field="license", path=path))
    if not has_embedded_tokenizer(meta):
        write_carried(writer, _utf8_checked(carried, path), arch)
        return
    record = record_from_metadata(meta, path=reader.path)
    tokens = list(record.vocabulary)
    # llama.cpp needs one token per embedding row; pad (P0-G) and make duplicates unique
    seen: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token in seen:
            tokens[index] = f"{token}_{index}"
        seen[tokens[index]] = index
    tokens += [f"<|pad_{i}|>" for i in range(len(tokens), config.vocab_size)]
    types = token_types(len(tokens), record.added_tokens, carried)
    writer.add_tokenizer_model("gpt2")
    # llama.cpp picks its pre-tokenizer regex by this name: the imported file's (e.g. "smollm") is
    # kept, since "gpt-2" splits digits and some punctuation differently (issue 15)
    pre = meta.get("tokenizer.pre_type")
    writer.add_tokenizer_pre(utf8_text(pre, field="tokenizer.pre_type", path=path) if isinstance(pre, str) and pre
                             else "gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    if record.merges:
        writer.add_token_merges(list(record.merges))
    if record.bos_token_id is not None:
        writer.add_bos_token_id(record.bos_token_id)
    if record.eos_token_id is not None:
        writer.add_eos_token_id(record.eos_token_id)
    # UNK and PAD only when the tokenizer has them (never an invented id)
    unk = special_token_id(record.vocabulary, meta.get("special_tokens"), "unk_token")
    if unk is not None:
        writer.add_unk_token_id(unk)
    pad = special_token_id(record.vocabulary, meta.get("special_tokens"), "pad_token")
    if pad is not None:
        writer.add_pad_token_id(pad)
    if isinstance(meta.get("chat_template"), str) and meta["chat_template"]:
        writer.add_chat_template(utf8_text(meta["chat_template"], field="chat_template", path=path))
    write_carried(writer, _utf8_checked(carried, path), arch)  # general.*, rope scaling, tokenizer flags
    if "tokenizer.ggml.add_bos_token" not in carried:
        writer.add_add_bos_token(False)


def _utf8_checked(carried: dict[str, Any], path: Any) -> dict[str, Any]:
    """``source_metadata`` with every string checked to encode as UTF-8 (GGUF stores UTF-8)."""
    for key, value in carried.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                utf8_text(item, field=f"source_metadata.{key}", path=path)
    return carried


__all__ = ["GgufQuant", "export_gguf", "parse_gguf_quant", "relative_rmse", "require_finite", "storage_type"]
