"""APR v2 -> a Hugging Face model folder that ``transformers`` and ``tokenizers`` load.

The folder holds ``config.json`` (built for the file's own family from its metadata, with
`apr.train.config.ModelConfig`), ``model.safetensors`` (``{"format": "pt"}`` plus the source's
safetensors metadata; F32/F16/BF16 bytes unchanged, packed dtypes dequantized to F32; a tied
``lm_head.weight`` left out as ``save_pretrained`` does), ``tokenizer.json`` +
``tokenizer_config.json`` rebuilt from the embedded tokenizer, and ``generation_config.json``.

The safetensors file is streamed (header first, then one tensor at a time) and checked with the
``safetensors`` library before the folder output is committed (`apr.format.outputs`: a new folder is
renamed into place; an existing one gets only these files, never losing a file it did not write).
The input's footer CRC is checked as its tensors are read (`apr.format.footer_check`): a damaged
input is refused, or with ``allow_damaged`` carried over and reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from apr.convert.export_fields import utf8_text
from apr.convert.outputs import check_folder_output, folder_output
from apr.errors import ConvertError, ModelConfigError, UnsupportedArchitectureError
from apr.format import PackedTensor, open_file
from apr.format.dtypes import DType, element_count
from apr.format.footer_check import Damage, FooterCheck, refuse_damage
from apr.format.outputs import LEGACY_SWAP_COMMAND

EXPORT_COMMAND = LEGACY_SWAP_COMMAND  # the owner named in the folder's manifest: "apr export --format safetensors"

_ST_NAMES = {DType.F32: "F32", DType.F16: "F16", DType.BF16: "BF16", DType.F64: "F64",
             DType.I64: "I64", DType.I32: "I32", DType.I8: "I8", DType.U8: "U8"}


@dataclass(frozen=True, slots=True)
class ExportReport:
    """What an export wrote."""

    path: str
    format: str
    tensor_count: int
    file_size: int
    quantize: str | None = None
    fallbacks: tuple[str, ...] = field(default=())
    # per stored type: the largest relative RMSE (rms(err)/rms(x)) of any tensor quantized to it
    quant_error: dict[str, float] = field(default_factory=dict)
    # --allow-damaged: what was carried over from an input whose CRCs do not match (None: intact)
    damaged: Damage | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "tensor_count": self.tensor_count,
                "file_size": self.file_size, "quantize": self.quantize, "fallbacks": list(self.fallbacks),
                "fallback_summary": [g.to_dict() for g in _grouped(self.fallbacks)],
                "quant_error": dict(self.quant_error),
                "damaged": self.damaged.to_dict() if self.damaged is not None else None}


def _grouped(fallbacks: tuple[str, ...]) -> list[Any]:
    from apr.convert.fallbacks import group_fallbacks

    return group_fallbacks(fallbacks)


def model_config_of(reader: Any) -> Any:
    """The `ModelConfig` an APR file describes (its family from tensor names, dims from metadata),
    checked against the tensors before an export sizes anything by it (`apr.train.bounds`).

    Raises:
        ConvertError: the file is not a llama/qwen2/qwen3 decoder with complete dimensions, or its
            metadata dimensions disagree with its tensors (naming the field and both values).
    """
    from apr.train.bounds import check_against_tensors
    from apr.train.config import ModelConfig

    shapes = {name: tuple(reader.entry(name).shape) for name in reader.keys()}
    try:
        config = ModelConfig.from_metadata(reader.metadata, shapes, path=reader.path)
        check_against_tensors(config, shapes, path=reader.path)
        return config
    except UnsupportedArchitectureError:
        raise  # the registry's refusal, naming the architecture: not rewrapped
    except ModelConfigError as err:
        raise ConvertError(f"cannot describe this model for export: {err.message}", path=reader.path,
                           field=err.field, hint=err.hint) from err


def hf_config_for(reader: Any, config: Any, record: Any) -> dict[str, Any]:
    """config.json for the file's own family (the metadata's HF class when it names that family)."""
    from apr.identity import normalize_metadata_arch_family

    document = config.to_hf_config()
    claimed = reader.metadata.get("hf_architecture")
    if isinstance(claimed, str) and normalize_metadata_arch_family(claimed) == config.family:
        document["architectures"] = [claimed]
    dtypes = {reader.entry(n).dtype for n in reader.keys() if not reader.entry(n).dtype.is_packed}
    document["torch_dtype"] = {DType.F16: "float16", DType.BF16: "bfloat16"}.get(next(iter(dtypes)), "float32") \
        if len(dtypes) == 1 else "float32"
    if record is not None:
        if record.bos_token_id is not None:
            document["bos_token_id"] = record.bos_token_id
        if record.eos_token_id is not None:
            document["eos_token_id"] = record.eos_token_id
    return document


def tensor_for_hf(value: np.ndarray | PackedTensor) -> np.ndarray:
    """An APR tensor as safetensors can hold it: plain dtypes unchanged, packed ones as float32."""
    if isinstance(value, PackedTensor):
        return value.dequantize()
    return value


def write_safetensors_streaming(path: Path, names: list[str], load: Callable[[str], np.ndarray],
                                shapes: dict[str, tuple[str, tuple[int, ...], int]],
                                metadata: dict[str, str]) -> int:
    """Write a safetensors file tensor by tensor; ``shapes[name] = (dtype, shape, nbytes)``."""
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name in names:
        dtype, shape, nbytes = shapes[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * ((8 - (8 + len(raw)) % 8) % 8)  # data starts 8-aligned, as the Rust writer pads
    with open(path, "wb") as handle:
        handle.write(len(raw).to_bytes(8, "little"))
        handle.write(raw)
        for name in names:
            array = np.ascontiguousarray(load(name))
            if array.nbytes != shapes[name][2]:
                raise ConvertError(f"tensor {name!r} changed size while exporting", field=name)
            handle.write(array.reshape(-1).view(np.uint8).data)
        handle.flush()
        os.fsync(handle.fileno())
    return 8 + len(raw) + offset


def export_safetensors(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    allow_damaged: bool = False,
) -> ExportReport:
    """Export an APR file to a Hugging Face model folder.

    Args:
        force: write into an existing folder: the files a previous export wrote are replaced, any
            other file is left alone (and one that a written file would replace is refused).
        allow_damaged: carry over an input whose CRCs do not match instead of refusing it; the
            report's ``damaged`` says so.

    Raises:
        ConvertError: not a llama/qwen2/qwen3 model, or metadata too incomplete for config.json.
        OutputExistsError: ``output`` exists and not ``force``, or an export file would replace a
            file the export did not write.
        OutputIsInputError: ``output`` is, contains or lies inside the input.
        DamagedInputError: the input's footer CRC does not match its bytes (nothing written).

    Example:
        >>> export_safetensors("model.apr", "model-hf/")  # doctest: +SKIP
    """
    from apr.tokenizer import has_embedded_tokenizer, record_from_metadata, tokenizer_json_document

    target = check_folder_output(output, command=EXPORT_COMMAND, force=force, inputs=(source,))
    with open_file(source, verify_checksum=not allow_damaged) as reader, FooterCheck(source) as crc:
        config = model_config_of(reader)
        record = record_from_metadata(reader.metadata, path=reader.path) if has_embedded_tokenizer(reader.metadata) else None
        names = [n for n in reader.keys() if not (config.tie_word_embeddings and n == "lm_head.weight")]
        shapes: dict[str, tuple[str, tuple[int, ...], int]] = {}
        for name in names:
            entry = reader.entry(name)
            if entry.dtype.is_packed:
                shapes[name] = ("F32", entry.shape, 4 * element_count(entry.shape))
            elif entry.dtype in _ST_NAMES:
                shapes[name] = (_ST_NAMES[entry.dtype], entry.shape, entry.size)
            else:
                raise ConvertError(f"tensor {name!r} has dtype {entry.dtype.name}, which safetensors cannot hold",
                                   field=name)
        source_meta = reader.metadata.get("source_metadata")
        st_metadata = {str(k): v for k, v in (source_meta or {}).items() if isinstance(v, str)} \
            if isinstance(source_meta, dict) else {}
        st_metadata["format"] = "pt"
        total = sum(s[2] for s in shapes.values())
        done = 0
        target.refuse_collisions(["model.safetensors", "config.json", "generation_config.json"]
                                 + (["tokenizer.json", "tokenizer_config.json"] if record is not None else []))

        def load(name: str) -> np.ndarray:
            nonlocal done
            crc.feed_tensor(reader, name)
            array = tensor_for_hf(reader.get_tensor(name))
            done += shapes[name][2]
            if progress is not None:
                progress(done, total)
            return array

        with folder_output(target) as folder:
            size = write_safetensors_streaming(folder / "model.safetensors", names, load, shapes, st_metadata)
            _check_safetensors(folder / "model.safetensors", len(names))
            (folder / "config.json").write_text(json.dumps(hf_config_for(reader, config, record), indent=2) + "\n")
            (folder / "generation_config.json").write_text(
                json.dumps(_generation_config(reader.metadata, record), indent=2) + "\n")
            if record is not None:
                (folder / "tokenizer.json").write_text(
                    json.dumps(tokenizer_json_document(record), ensure_ascii=False), encoding="utf-8")
                (folder / "tokenizer_config.json").write_text(
                    json.dumps(_tokenizer_config(reader.metadata, record, source), indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8")
            damage = refuse_damage(crc.finish(reader), allow_damaged=allow_damaged, command="apr export")
    return ExportReport(path=os.fspath(target.path), format="safetensors", tensor_count=len(names), file_size=size,
                        damaged=damage)


def _check_safetensors(path: Path, count: int) -> None:
    from safetensors import safe_open

    try:
        with safe_open(os.fspath(path), framework="np") as handle:
            found = len(list(handle.keys()))
    except Exception as err:
        raise ConvertError(f"the written safetensors file does not load: {err}", path=path) from err
    if found != count:
        raise ConvertError(f"wrote {found} tensors, expected {count}", path=path)


def _generation_config(metadata: dict[str, Any], record: Any) -> dict[str, Any]:
    document: dict[str, Any] = {}
    stored = metadata.get("generation_config")
    if isinstance(stored, dict):
        document.update(stored)
    if record is not None:
        if record.bos_token_id is not None:
            document.setdefault("bos_token_id", record.bos_token_id)
        if record.eos_token_id is not None:
            document.setdefault("eos_token_id", record.eos_token_id)
    document.setdefault("do_sample", False)
    return document


def _tokenizer_config(metadata: dict[str, Any], record: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    def token(index: int | None) -> str | None:
        return record.vocabulary[index] if index is not None else None

    document: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": token(record.bos_token_id),
        "eos_token": token(record.eos_token_id),
        "clean_up_tokenization_spaces": False,
    }
    if isinstance(metadata.get("chat_template"), str):
        document["chat_template"] = utf8_text(metadata["chat_template"], field="chat_template", path=path)
    return document


__all__ = ["ExportReport", "export_safetensors", "model_config_of", "write_safetensors_streaming"]
