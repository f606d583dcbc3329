"""Hugging Face folder (config.json + safetensors + tokenizer) -> APR v2, streamed tensor by tensor.

Tensors are declared first (names, dtypes, shapes: safetensors headers are enough), then read one
at a time with positioned reads and written through `write_file_streaming`, so peak memory is
about one tensor whatever the model size. F32/F16/BF16 bytes pass through untouched unless
``--quantize`` asks otherwise (`apr.convert.targets`).

Folder rules: only ``model.safetensors`` or the shards a ``model.safetensors.index.json`` names;
every file read (shards and side files: `apr.convert.hf_side_files.SIDE_FILES`) must be a regular
file resolving inside the folder (no ``..``, no symlink out, no FIFO or device: `apr.format.inputs`);
headers bounded and checked by the ``safetensors`` library before use; side files parsed as data
with their types checked; the dimensions config.json states checked against the tensors
(`apr.convert.dimensions`) before anything is written; nothing is unpickled and nothing from
config files executed.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from apr.convert.dimensions import check_dimensions, check_vocabulary
from apr.convert.hf_config import config_key_for, metadata_from_hf_config, read_config_json
from apr.convert.hf_side_files import INDEX, check_side_files, read_generation_config, read_json_file, weight_map_files
from apr.convert.outputs import check_output, import_inputs
from apr.convert.targets import ImportQuant, Target, as_float32, choose_target, convert_values
from apr.convert.tokenizer_source import tokenizer_keys_from_folder
from apr.errors import AprError, AprFileNotFoundError, ConvertError, MissingConfigError
from apr.format.dtypes import DType, element_count
from apr.format.header import Flags
from apr.format.inputs import describe_mode, file_inside, open_regular
from apr.format.stream_writer import TensorSpec, write_file_streaming

log = logging.getLogger(__name__)

_MAX_HEADER = 100_000_000  # safetensors' own MAX_HEADER_SIZE
_ST_DTYPES = {"F32": DType.F32, "F16": DType.F16, "BF16": DType.BF16, "F64": DType.F64,
              "I64": DType.I64, "I32": DType.I32, "I8": DType.I8, "U8": DType.U8}
_SKIPPED_SUFFIXES = (".rotary_emb.inv_freq",)  # buffers HF recomputes; llama.cpp drops them too
_EMBED_NAMES = ("model.embed_tokens.weight", "transformer.wte.weight", "wte.weight", "token_embd.weight")
# Beside a single .safetensors file given as the source: the files read from its folder.
_SIDE_FILES_OF_A_FILE = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                         "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt",
                         "added_tokens.json")
_CONFIG_FIX = "correct config.json so it describes the weights beside it (or re-download the model)"

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SourceTensor:
    """A tensor in a source file: where its bytes are and what they are."""

    name: str
    file: Path
    dtype: DType
    shape: tuple[int, ...]
    begin: int  # absolute file offset
    nbytes: int


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What `import_hf` / `import_gguf` wrote."""

    path: str
    source_format: str
    tensor_count: int
    file_size: int
    param_count: int
    architecture: str | None
    hf_architecture: str | None
    has_vocab: bool
    quantize: str | None
    tied_embeddings: bool
    fallbacks: tuple[str, ...] = field(default=())
    # a GGUF import that dequantized: {"tensors", "types": {ggml type: count}, "stored_as",
    # "source_bytes", "stored_bytes"} (None: every tensor kept its bytes)
    dequantized: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        from apr.convert.fallbacks import group_fallbacks

        data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                ((f, getattr(self, f)) for f in self.__dataclass_fields__)}
        data["fallback_summary"] = [g.to_dict() for g in group_fallbacks(self.fallbacks)]
        return data


def _safetensors_view(handle: BinaryIO, path: Path) -> str:
    """A path that reopens exactly the file behind ``handle`` (Linux: ``/proc/self/fd/N``), so the
    ``safetensors`` library validates the file we checked even if the name is swapped meanwhile."""
    proc = f"/proc/self/fd/{handle.fileno()}"
    return proc if os.path.exists(proc) else os.fspath(path)


def read_safetensors_header(path: Path) -> tuple[dict[str, SourceTensor], dict[str, str]]:
    """The tensors and ``__metadata__`` of one safetensors file (header checked by `safe_open`).

    Raises:
        ConvertError: not a regular file, or not a valid safetensors file.
    """
    from safetensors import safe_open

    with open_regular(path, error=ConvertError, follow_symlinks=False) as handle:  # a FIFO is refused, never waited on
        try:
            with safe_open(_safetensors_view(handle, path), framework="np") as checked:  # offsets and coverage
                library_metadata = checked.metadata() or {}
        except Exception as err:  # SafetensorError / OSError
            raise ConvertError(f"not a valid safetensors file: {err}", path=path,
                               hint="re-download it (a Git-LFS pointer file gives 'header too large')") from err
        (length,) = struct.unpack("<Q", handle.read(8))
        if length > _MAX_HEADER:
            raise ConvertError(f"safetensors header of {length} bytes is over the limit", path=path)
        header = json.loads(handle.read(length))
    data_start = 8 + length
    tensors: dict[str, SourceTensor] = {}
    unsupported = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_DTYPES.get(info["dtype"])
        if dtype is None:
            unsupported.append(f"{name!r} ({info['dtype']})")
            continue
        begin, end = info["data_offsets"]
        tensors[name] = SourceTensor(name, path, dtype, tuple(int(d) for d in info["shape"]), data_start + begin, end - begin)
    if unsupported:
        raise ConvertError(
            f"{len(unsupported)} tensor(s) have dtypes APR cannot store: {', '.join(unsupported[:8])}",
            path=path, hint="convert them to float32/float16/bfloat16 before importing",
        )
    return tensors, {str(k): str(v) for k, v in library_metadata.items()}


def _source_kind(source: Path) -> str:
    """``"folder"`` or ``"file"``; anything else (a FIFO, a device, a socket) is refused."""
    try:
        mode = os.stat(source).st_mode
    except FileNotFoundError:
        raise AprFileNotFoundError("source not found", path=source,
                                   hint="pass a Hugging Face model folder or a .gguf file") from None
    except OSError as err:
        raise ConvertError(f"cannot look at the source: {err.strerror}", path=source) from err
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISREG(mode):
        return "file"
    raise ConvertError(f"the source is {describe_mode(mode)}, not a model folder or a regular file", path=source,
                       hint="pass a Hugging Face model folder, a .safetensors file or a .gguf file")


def _required(root: Path, name: str) -> Path:
    path = file_inside(root, name, error=ConvertError, required=True)
    assert path is not None  # required=True raises AprFileNotFoundError instead of returning None
    return path


def collect_safetensors(source: Path) -> tuple[Path, dict[str, SourceTensor], dict[str, str]]:
    """The folder and every tensor of a model: one file, a single ``model.safetensors``, or shards.

    Every side file of the folder is checked first (`check_side_files`: a regular file inside the
    folder, or absent); shard names come from the index and must be regular files inside it too.
    """
    if _source_kind(source) == "file":
        root = source.parent
        files = [source.resolve()]
        check_side_files(root, _SIDE_FILES_OF_A_FILE)
    else:
        root = source
        check_side_files(root)
        index = read_json_file(root, INDEX)
        if index is not None:
            shards = weight_map_files(index, root / INDEX)
            files = [_required(root, name) for name in shards]
        elif file_inside(root, "model.safetensors", error=ConvertError) is not None:
            files = [_required(root, "model.safetensors")]
        else:
            raise AprFileNotFoundError(
                "no model.safetensors or model.safetensors.index.json in the folder", path=root,
                hint="pass a Hugging Face model folder (save_pretrained output); .bin files are not read (pickle)",
            )
    tensors: dict[str, SourceTensor] = {}
    metadata: dict[str, str] = {}
    for file in files:
        found, meta = read_safetensors_header(file)
        duplicated = sorted(set(found) & set(tensors))
        if duplicated:
            raise ConvertError(f"tensor {duplicated[0]!r} appears in two shards", path=file, field=duplicated[0])
        tensors.update(found)
        metadata.update(meta)
    return root, tensors, metadata


def read_tensor_bytes(tensor: SourceTensor) -> np.ndarray:
    """The tensor's bytes as a fresh uint8 array (one read; freed by the caller)."""
    buffer = bytearray(tensor.nbytes)
    view = memoryview(buffer)
    with open_regular(tensor.file, error=ConvertError, follow_symlinks=False) as handle:
        handle.seek(tensor.begin)
        done = 0
        while done < tensor.nbytes:
            n = handle.readinto(view[done:])
            if not n:
                raise ConvertError(f"file ended inside tensor {tensor.name!r}", path=tensor.file)
            done += n
    return np.frombuffer(buffer, dtype=np.uint8)


def produce_payload(raw: np.ndarray, source: DType, shape: tuple[int, ...], target: Target) -> Any:
    """Source bytes -> the payload for ``target`` (the bytes themselves on a pass-through)."""
    if target.passthrough:
        return raw
    return convert_values(as_float32(raw, source, shape), shape, target.dtype)


def import_hf(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    quantize: ImportQuant | None = None,
    tokenizer: str | os.PathLike[str] | None = None,
    allow_no_config: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a Hugging Face model folder (or one ``.safetensors`` file beside its config.json).

    Args:
        source: the folder, or a ``.safetensors`` file.
        output: the ``.apr`` file to write.
        quantize: storage for float tensors (None keeps F32/F16/BF16 as they are).
        tokenizer: a tokenizer folder or tokenizer.json to embed instead of the source's.
        allow_no_config: import without config.json (identity then stays unset, INV-CONVERT-HF-ARCH-002).
        force: replace an existing output.
        progress: ``progress(bytes_done, bytes_total)`` after each tensor.

    Returns:
        An `ImportReport`.

    Raises:
        MissingConfigError: no config.json and not ``allow_no_config`` (GH-223).
        ConvertError: a side file that is not a regular file inside the folder (a FIFO, a device,
            a symlink out), a wrongly typed value in a side file, dimensions that contradict the
            tensors or exceed their ceilings (`apr.convert.dimensions`); nothing written.
        TokenizerError / AprFileNotFoundError: the source is unusable; nothing written.

    Example:
        >>> import_hf("Qwen2-0.5B/", "qwen2.apr", quantize=ImportQuant.Q4_K)  # doctest: +SKIP
    """
    src = Path(source)
    _source_kind(src)  # a missing source is exit 3 (before an existing output's exit 5); a FIFO is refused
    target_path = check_output(output, force=force, inputs=import_inputs(src, tokenizer))
    root, tensors, st_metadata = collect_safetensors(src)
    config_path = root / "config.json"
    config: dict[str, Any] | None = None
    real_config = file_inside(root, "config.json", error=ConvertError)
    if real_config is not None:
        config = read_config_json(real_config)
    elif not allow_no_config:
        raise MissingConfigError(
            "no config.json beside the weights", path=root, field="config.json",
            hint="add the model's config.json, or pass --allow-no-config (identity then stays unset)",
        )
    for name in [n for n in tensors if n.endswith(_SKIPPED_SUFFIXES)]:
        log.info("skipping buffer %s (recomputed by the model)", name)
        del tensors[name]
    if not tensors:
        raise ConvertError("the model has no tensors", path=root)

    try:
        metadata: dict[str, Any] = metadata_from_hf_config(config) if config is not None else {}
    except AprError as err:
        if err.path is None:
            err.with_path(config_path)
        raise
    if config is None:
        from apr.identity import family_from_tensor_names

        family = family_from_tensor_names(tensors)
        if family != "unknown":
            metadata["architecture"] = family  # evidence, not an HF identity claim
        metadata.update(_shapes_from_tensors(tensors))
    shapes = {name: tensor.shape for name, tensor in tensors.items()}
    check_dimensions(metadata, shapes, source="config.json" if config is not None else "the tensor names",
                     path=config_path if config is not None else root,
                     spell=(lambda key: config_key_for(config, key)) if config is not None else str, hint=_CONFIG_FIX)
    token_keys, record = tokenizer_keys_from_folder(root, config, tokenizer)
    if record is None:
        log.warning("no tokenizer in %s: the .apr will have no embedded tokenizer (apr run needs one)", root)
    else:
        check_vocabulary(record.vocab_size, metadata, source=os.fspath(tokenizer or root), path=config_path,
                         hint="embed the tokenizer this model was trained with (--tokenizer DIR), or fix vocab_size")

    # tied embeddings (GH-88): aprender writes lm_head.weight as a copy of the embedding
    tied = False
    sources: dict[str, SourceTensor] = dict(tensors)
    if "lm_head.weight" not in sources:
        embed = next((sources[n] for n in _EMBED_NAMES if n in sources), None)
        if embed is not None:
            sources["lm_head.weight"] = embed
            tied = True

    specs: list[TensorSpec] = []
    plan: dict[str, tuple[SourceTensor, Target]] = {}
    fallbacks: list[str] = []
    for name, tensor in sources.items():
        target = choose_target(tensor.dtype, tensor.shape, quantize)
        if target.fallback:
            fallbacks.append(f"{name}: {target.fallback}")
        plan[name] = (tensor, target)
        specs.append(TensorSpec(name, target.dtype, tensor.shape, target.nbytes(tensor.shape)))

    metadata.update({
        "name": target_path.stem,
        "original_format": "safetensors",
        "param_count": sum(element_count(t.shape) for n, t in tensors.items()),
        "total_size": sum(s.nbytes for s in specs),
    })
    if st_metadata:
        metadata["source_metadata"] = st_metadata
    if tied:
        metadata["tied_embeddings"] = True
    if quantize is not None:
        metadata["quantization"] = quantize.quantization_record
    metadata.update(token_keys)
    if config is not None and isinstance(config.get("torch_dtype", config.get("dtype")), str):
        metadata["source_dtype"] = config.get("torch_dtype", config.get("dtype"))
    generation = read_generation_config(root, vocab_size=metadata.get("vocab_size"))
    if generation:
        metadata["generation_config"] = generation
    flags = Flags.HAS_VOCAB if record is not None else 0
    if quantize in (ImportQuant.Q8, ImportQuant.Q4, ImportQuant.Q4_K):
        flags |= Flags.QUANTIZED

    total = sum(s.nbytes for s in specs)
    done = 0

    def produce(spec: TensorSpec) -> Any:
        nonlocal done
        tensor, target = plan[spec.name]
        payload = produce_payload(read_tensor_bytes(tensor), tensor.dtype, tensor.shape, target)
        done += spec.nbytes
        if progress is not None:
            progress(done, total)
        return payload

    size = write_file_streaming(specs, produce, target_path, metadata, int(flags), verify=_verify_written(len(specs)))
    return ImportReport(
        path=os.fspath(target_path), source_format="safetensors", tensor_count=len(specs), file_size=size,
        param_count=metadata["param_count"], architecture=metadata.get("architecture"),
        hf_architecture=metadata.get("hf_architecture"), has_vocab=record is not None,
        quantize=quantize.value if quantize else None, tied_embeddings=tied, fallbacks=tuple(fallbacks),
    )


def _verify_written(expected_tensors: int) -> Callable[[str], None]:
    """Re-open the temporary file before it replaces anything: header CRC, index, tensor count."""

    def verify(tmp_path: str) -> None:
        from apr.format import open_file

        with open_file(tmp_path) as reader:
            if len(reader) != expected_tensors:
                raise ConvertError(f"wrote {len(reader)} tensors, expected {expected_tensors}", path=tmp_path)

    return verify


def _shapes_from_tensors(tensors: dict[str, SourceTensor]) -> dict[str, Any]:
    """Dimensions readable from tensor shapes alone (used with --allow-no-config)."""
    out: dict[str, Any] = {}
    embed = next((tensors[n] for n in _EMBED_NAMES if n in tensors), None)
    if embed is not None and len(embed.shape) == 2:
        out["vocab_size"], out["hidden_size"] = embed.shape
    layers = {int(n.split(".")[2]) for n in tensors if n.startswith("model.layers.") and n.split(".")[2].isdigit()}
    if layers:
        out["num_layers"] = max(layers) + 1
    gate = tensors.get("model.layers.0.mlp.gate_proj.weight")
    if gate is not None:
        out["intermediate_size"] = gate.shape[0]
    return out


__all__ = ["ImportReport", "SourceTensor", "collect_safetensors", "import_hf", "read_safetensors_header"]
