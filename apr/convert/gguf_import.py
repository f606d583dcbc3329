"""GGUF (llama, qwen2, qwen3) -> APR v2 with Hugging Face tensor names.

Names are mapped back with `apr.convert.names.gguf_to_hf`; llama's q/k row permutation is undone
(rows only, so it works on K-quant byte rows too); shapes are reversed from GGUF's innermost-first
order. F32, F16, BF16, Q4_K and Q6_K bytes are kept as they are; every other ggml type (Q4_0,
Q4_1, Q5_*, Q8_0, ...) is dequantized with the ``gguf`` package and stored as the ``--quantize``
target (F32 when none is given) instead of being refused; the report's ``dequantized`` says how
many, of which types, and the size they grew to. What APR has no field for (``general.*``, rope
scaling, token types, UNK/PAD, tokenizer flags) is kept for the export (`apr.convert.gguf_carry`). Identity: the family is
``general.architecture`` and ``hf_architecture`` is synthesized from it (INV-CONVERT-HF-ARCH-004:
GGUF has no ``architectures[0]``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from apr.convert.dimensions import check_dimensions, check_vocabulary
from apr.convert.gguf_bounds import check_gguf_bounds
from apr.convert.gguf_carry import IMPORT_NAME, carried_from_gguf, special_tokens_from_gguf
from apr.convert.gguf_fields import FIX, check_gguf_fields
from apr.convert.hf_config import rope_type_for, synthesize_hf_architecture_from_family
from apr.convert.hf_import import ImportReport, _verify_written
from apr.convert.names import SUPPORTED_FAMILIES, gguf_to_hf, is_qk_projection, qk_heads, unpermute_qk
from apr.convert.outputs import check_output
from apr.convert.targets import ImportQuant, Target, choose_target, convert_values
from apr.convert.tokenizer_source import record_from_gguf, tokenizer_keys_from_record
from apr.errors import AprError, AprFileNotFoundError, ConvertError
from apr.format.dtypes import DType, element_count
from apr.format.header import Flags
from apr.format.inputs import open_regular
from apr.format.quant import PackedTensor
from apr.format.stream_writer import TensorSpec, write_file_streaming

log = logging.getLogger(__name__)

# ggml type id -> APR dtype for the types whose bytes APR stores unchanged
_KEPT = {0: DType.F32, 1: DType.F16, 12: DType.Q4_K, 14: DType.Q6_K, 30: DType.BF16}


def read_gguf_fields(reader: Any, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Every KV pair of a `gguf.GGUFReader` as plain Python values (pseudo-fields left out).

    Raises:
        ConvertError: a value cannot be decoded (a string that is not UTF-8, e.g. an encoded
            lone surrogate), naming the key.
    """
    out: dict[str, Any] = {}
    for key, value in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        try:
            out[key] = value.contents()
        except Exception as err:  # a malformed field: name it instead of a traceback
            what = "text that is not UTF-8" if isinstance(err, UnicodeDecodeError) else "a malformed value"
            raise ConvertError(f"GGUF metadata key {key!r} holds {what}: {err}", path=path, field=key,
                               hint=FIX) from err
    return out


def metadata_from_gguf_fields(fields: dict[str, Any], arch: str) -> dict[str, Any]:
    """APR metadata from type-checked GGUF fields (`check_gguf_fields`); absent keys stay absent,
    and a zero is kept as a zero (for `check_dimensions` to refuse), never replaced by a default."""
    def get(suffix: str) -> Any:
        return fields.get(f"{arch}.{suffix}")

    def default(value: Any, fallback: Any) -> Any:
        return fallback if value is None else value

    heads = get("attention.head_count")
    hidden = get("embedding_length")
    meta: dict[str, Any] = {
        "model_type": arch,
        "architecture": arch,
        "hf_architecture": synthesize_hf_architecture_from_family(arch),
        "hf_model_type": arch,
        "hidden_size": hidden,
        "num_layers": get("block_count"),
        "num_heads": heads,
        "num_kv_heads": default(get("attention.head_count_kv"), heads),
        "intermediate_size": get("feed_forward_length"),
        "max_position_embeddings": get("context_length"),
        "rope_theta": float(default(get("rope.freq_base"), 10000.0)),
        "rope_type": rope_type_for(arch),
        "rms_norm_eps": float(default(get("attention.layer_norm_rms_epsilon"), 1e-6)),
        "original_format": "gguf",
    }
    head_dim = get("attention.key_length")
    if head_dim is None and isinstance(hidden, int) and isinstance(heads, int) and heads > 0 and hidden % heads == 0:
        head_dim = hidden // heads
    if head_dim is not None:
        meta["head_dim"] = head_dim
    tokens = fields.get("tokenizer.ggml.tokens")
    vocab = default(get("vocab_size"), len(tokens) if tokens else None)
    if vocab is not None:
        meta["vocab_size"] = vocab
    if isinstance(fields.get("general.name"), str):
        meta["description"] = f"imported from GGUF model {fields['general.name']!r}"
    meta["license"] = license_from_gguf(fields.get("general.license"))
    return {k: v for k, v in meta.items() if v is not None}


_metadata_from_fields = metadata_from_gguf_fields


def license_from_gguf(value: Any) -> str | None:
    """``general.license`` as the APR ``license`` field: its canonical SPDX (or Hub) form, or None.

    The key was dropped on import, so an imported model lost its license and 25 quality points
    (issue 15). A value that is not a license expression stays only in ``source_metadata``.

    >>> license_from_gguf("apache-2.0"), license_from_gguf("MIT"), license_from_gguf("see LICENSE"), license_from_gguf(3)
    ('Apache-2.0', 'MIT', None, None)
    """
    if not isinstance(value, str) or not value.strip():
        return None
    from apr.errors import LicenseError
    from apr.stamp.spdx import validate_license

    try:
        return validate_license(value, flag="general.license")
    except LicenseError:
        log.warning("general.license %r is not an SPDX expression: kept in source_metadata only", value)
        return None


def _gguf_key_for(fields: dict[str, Any], arch: str) -> Callable[[str], str]:
    """How each metadata key is spelled in the GGUF file (or which default stood in for it)."""
    spelled = {
        "num_layers": "block_count", "hidden_size": "embedding_length", "num_heads": "attention.head_count",
        "num_kv_heads": "attention.head_count_kv", "intermediate_size": "feed_forward_length",
        "max_position_embeddings": "context_length", "head_dim": "attention.key_length",
        "vocab_size": "vocab_size", "rope_theta": "rope.freq_base",
        "rms_norm_eps": "attention.layer_norm_rms_epsilon",
    }
    defaults = {"num_kv_heads": "attention.head_count", "head_dim": "embedding_length / attention.head_count",
                "vocab_size": "the number of tokenizer.ggml.tokens"}

    def spell(key: str) -> str:
        suffix = spelled.get(key)
        if suffix is None:
            return key
        if f"{arch}.{suffix}" in fields or key not in defaults:
            return f"{arch}.{suffix}"
        return f"{key} (no {arch}.{suffix}: {defaults[key]})"

    return spell


def import_gguf(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    quantize: ImportQuant | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import a llama/qwen2/qwen3 GGUF file.

    Args:
        source: the ``.gguf`` file.
        output: the ``.apr`` file to write.
        quantize: storage for tensors that must be dequantized (and for F32/F16 ones).
        force: replace an existing output.
        progress: ``progress(bytes_done, bytes_total)`` after each tensor.

    Raises:
        AprFileNotFoundError: no such file.
        ConvertError: not a regular file (a FIFO, a device), a wrongly typed metadata value
            (`apr.convert.gguf_fields`), dimensions that contradict the tensors or exceed their
            ceilings (`apr.convert.dimensions`), an unsupported architecture or tensor name, a bos/eos
            id outside the vocabulary. Nothing is written in any of these cases.
        TokenizerError: a tokenizer that is not byte-level BPE.

    Example:
        >>> import_gguf("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2.apr")  # doctest: +SKIP
    """
    path = Path(source)
    if not os.path.lexists(path):
        raise AprFileNotFoundError("GGUF file not found", path=path, hint="check the path")
    handle = open_regular(path, error=ConvertError)  # a FIFO or device is refused, never blocks
    try:
        return _import_open_gguf(handle, path, output, quantize=quantize, force=force, progress=progress)
    finally:
        handle.close()


def open_gguf(handle: BinaryIO, path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any], str]:
    """A checked ``gguf.GGUFReader`` on the open regular file ``handle``: (reader, its fields as plain
    values, the architecture). What import and ``apr diff`` both do before reading a tensor.

    The header's counts are bounded by the file's size first (`apr.convert.gguf_bounds`:
    ``GGUFReader`` trusts every count it reads), and the reader maps the checked descriptor, not
    the path again.

    Raises:
        ConvertError: counts the file cannot hold, a file ``GGUFReader`` cannot parse, or fields
            of the wrong type (`apr.convert.gguf_fields.check_gguf_fields`).
    """
    from gguf import GGUFReader

    check_gguf_bounds(handle, path=path)
    try:
        reader = GGUFReader(handle)  # type: ignore[arg-type]  # np.memmap takes the checked descriptor
    except Exception as err:  # gguf raises bare ValueError/struct.error on a bad file
        raise ConvertError(f"not a readable GGUF file: {err}", path=path, hint=FIX) from err
    fields = read_gguf_fields(reader, path)
    return reader, fields, check_gguf_fields(fields, path)


def _import_open_gguf(handle: BinaryIO, path: Path, output: str | os.PathLike[str], *, quantize: ImportQuant | None,
                      force: bool, progress: Callable[[int, int], None] | None) -> ImportReport:
    from gguf import GGMLQuantizationType

    from apr.convert.ggml_blocks import dequantize

    target_path = check_output(output, force=force, inputs=(path,))
    reader, fields, arch = open_gguf(handle, path)
    if arch not in SUPPORTED_FAMILIES:
        raise ConvertError(
            f"GGUF architecture {arch!r} is not one apr imports (llama, qwen2, qwen3)", path=path,
            field="general.architecture", hint="only llama, qwen2 and qwen3 GGUF files can be imported",
        )
    metadata = _metadata_from_fields(fields, arch)
    heads, kv_heads = metadata.get("num_heads"), metadata.get("num_kv_heads")

    plan: dict[str, tuple[Any, str, tuple[int, ...], Target, int]] = {}
    specs: list[TensorSpec] = []
    problems: list[str] = []
    fallbacks: list[str] = []
    dequantized: dict[str, Any] = {"types": {}, "source_bytes": 0, "stored_bytes": 0, "stored_as": set()}
    for tensor in reader.tensors:
        try:
            hf_name = gguf_to_hf(tensor.name)
        except ConvertError as err:
            problems.append(err.message)
            continue
        shape = tuple(int(d) for d in reversed(tensor.shape.tolist()))
        type_id = int(tensor.tensor_type)
        kept = _KEPT.get(type_id)
        target = Target(kept, passthrough=True) if kept is not None and kept.is_packed else choose_target(kept, shape, quantize)
        if target.fallback:
            fallbacks.append(f"{hf_name}: {target.fallback}")
        if kept is None:  # a ggml type APR cannot hold: dequantized
            name = GGMLQuantizationType(type_id).name
            dequantized["types"][name] = dequantized["types"].get(name, 0) + 1
            dequantized["source_bytes"] += int(tensor.n_bytes)
            dequantized["stored_bytes"] += target.nbytes(shape)
            dequantized["stored_as"].add(target.dtype.name)
        plan[hf_name] = (tensor, tensor.name, shape, target, type_id)
        specs.append(TensorSpec(hf_name, target.dtype, shape, target.nbytes(shape)))
    if problems:
        raise ConvertError(f"{len(problems)} GGUF tensor(s) cannot be mapped:\n    " + "\n    ".join(problems[:10]),
                           path=path)
    shapes = {name: shape for name, (_t, _g, shape, _tg, _i) in plan.items()}
    check_dimensions(metadata, shapes, source=f"the GGUF metadata of {path.name}", path=path,
                     spell=_gguf_key_for(fields, arch), hint=FIX)
    tied = False
    if "lm_head.weight" not in plan and "model.embed_tokens.weight" in plan:
        plan["lm_head.weight"] = plan["model.embed_tokens.weight"]
        embed_spec = next(s for s in specs if s.name == "model.embed_tokens.weight")
        specs.append(TensorSpec("lm_head.weight", embed_spec.dtype, embed_spec.shape, embed_spec.nbytes))
        tied = True

    try:
        record = record_from_gguf(fields)
    except AprError as err:
        if err.path is None:
            err.with_path(path)
        raise
    if record is not None:
        check_vocabulary(record.vocab_size, metadata, source=path.name, path=path, hint=FIX)
        metadata.update(tokenizer_keys_from_record(record, fields.get("tokenizer.chat_template"),
                                                   fields.get("tokenizer.ggml.pre")))
        metadata["special_tokens"].update(special_tokens_from_gguf(fields, record.vocabulary))
    else:
        log.warning("%s has no tokenizer.ggml.tokens: the .apr will have no embedded tokenizer", path)
    metadata.update({
        "name": target_path.stem,
        "param_count": sum(element_count(shape) for n, (_t, _g, shape, _tg, _i) in plan.items()
                           if not (tied and n == "lm_head.weight")),
        "total_size": sum(s.nbytes for s in specs),
        # written back by an export (gguf_carry); IMPORT_NAME records the name this import gave, so
        # an export can tell a name stamped later (which wins) from the file stem (which does not)
        "source_metadata": {**carried_from_gguf(fields, arch), IMPORT_NAME: target_path.stem},
    })
    if tied:
        metadata["tied_embeddings"] = True
    if quantize is not None:
        metadata["quantization"] = quantize.quantization_record
    flags = Flags.HAS_VOCAB if record is not None else 0
    if any(s.dtype.is_packed for s in specs):
        flags |= Flags.QUANTIZED

    total = sum(s.nbytes for s in specs)
    done = 0

    def produce(spec: TensorSpec) -> Any:
        nonlocal done
        tensor, _gguf_name, shape, target, type_id = plan[spec.name]
        raw = np.asarray(reader.data[tensor.data_offset: tensor.data_offset + tensor.n_bytes])
        kept = _KEPT.get(type_id)
        # llama's q/k rows are permuted before any conversion (APR_Q8/APR_Q4 payloads have no rows)
        qk: int | None = None  # the head count to unpermute this projection's rows with
        if arch == "llama" and is_qk_projection(spec.name):
            if not (isinstance(heads, int) and isinstance(kv_heads, int)):
                raise ConvertError(f"{spec.name}: llama q/k rows cannot be unpermuted without both head counts",
                                   path=path, field="attention.head_count", hint=FIX)
            qk = qk_heads(spec.name, heads, kv_heads)
        if kept is not None and kept.is_packed:
            rows = raw.reshape(shape[0] if len(shape) > 1 else 1, -1)
            if qk is not None:
                rows = unpermute_qk(rows, qk)
            payload: Any = PackedTensor(kept, shape, np.ascontiguousarray(rows).reshape(-1))
        else:
            if kept is not None:
                values = raw.view(kept.numpy_dtype).reshape(shape)
            else:
                # the gguf package's block function on big chunks, threaded (same values)
                values = dequantize(raw, GGMLQuantizationType(type_id).name, tuple(shape))
            if qk is not None:
                values = unpermute_qk(values, qk)
            payload = values if target.passthrough else convert_values(values, shape, target.dtype)
        done += spec.nbytes
        if progress is not None:
            progress(done, total)
        return payload

    size = write_file_streaming(specs, produce, target_path, metadata, int(flags), verify=_verify_written(len(specs)))
    return ImportReport(
        path=os.fspath(target_path), source_format="gguf", tensor_count=len(specs), file_size=size,
        param_count=metadata["param_count"], architecture=arch, hf_architecture=metadata["hf_architecture"],
        has_vocab=record is not None, quantize=quantize.value if quantize else None, tied_embeddings=tied,
        fallbacks=tuple(fallbacks), dequantized=_dequantized_record(dequantized),
    )


def _dequantized_record(tally: dict[str, Any]) -> dict[str, Any] | None:
    """The report's ``dequantized`` entry (None when every tensor kept its bytes)."""
    if not tally["types"]:
        return None
    return {"tensors": sum(tally["types"].values()), "types": dict(sorted(tally["types"].items())),
            "stored_as": "/".join(sorted(tally["stored_as"])), "source_bytes": tally["source_bytes"],
            "stored_bytes": tally["stored_bytes"]}


__all__ = ["import_gguf", "metadata_from_gguf_fields", "open_gguf", "read_gguf_fields"]
