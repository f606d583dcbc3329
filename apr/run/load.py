"""Load an APR checkpoint for inference: its model (the trainer's llama/qwen2/qwen3 module) and
its embedded tokenizer, which must be there (PMAT-172, docs/aprender-format.md §5.7).

The tokenizer is checked before a single weight is read, so a file without one fails in
milliseconds with the re-conversion command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from apr.errors import ConvertError, MissingTokenizerError, ModelConfigError, UnsupportedArchitectureError
from apr.format import open_file
from apr.tokenizer import TokenizerRecord, build_tokenizer, has_embedded_tokenizer, record_from_metadata


@dataclass
class LoadedModel:
    """A model ready to generate: module, shape, tokenizer and the file's metadata."""

    model: Any  # apr.train.model.CausalLM, in eval mode
    config: Any  # apr.train.config.ModelConfig
    tokenizer: Any  # tokenizers.Tokenizer
    record: TokenizerRecord
    metadata: dict[str, Any]
    path: str


def missing_tokenizer_error(path: str) -> MissingTokenizerError:
    """PMAT-172's refusal, with aprender's wording and the command that fixes it."""
    return MissingTokenizerError(
        "[PMAT-172] ERROR: APR file missing embedded tokenizer. APR format requires self-contained tokenizer.",
        path=path, field="tokenizer.vocabulary",
        hint=f"Re-convert with: apr import <source>.gguf -o {path} "
             f"(or embed one: apr stamp {path} --tokenizer <tokenizer-dir> -o <stamped.apr>)",
    )


def read_tokenizer_record(metadata: dict[str, Any], path: str) -> TokenizerRecord:
    """The embedded tokenizer, or PMAT-172 (no ``tokenizer.vocabulary``, or no merges for BPE).

    Raises:
        MissingTokenizerError: PMAT-172.
        TokenizerError: tokenizer keys are present but of the wrong type or out of range.
    """
    vocabulary, merges = metadata.get("tokenizer.vocabulary"), metadata.get("tokenizer.merges")
    malformed = (vocabulary is not None and not isinstance(vocabulary, list)) or \
                (merges is not None and not isinstance(merges, list))
    if not malformed and (not has_embedded_tokenizer(metadata) or not merges):
        raise missing_tokenizer_error(path)
    return record_from_metadata(metadata, path=path)


def checked_config(reader: Any, path: str) -> Any:
    """The model shape the file's metadata describes, checked against its tensors.

    Everything here is integer work on the tensor index: the metadata's dimensions must agree with
    the tensors present and imply at most ten times the values they hold (`apr.train.bounds`), and
    every tensor must then be present with its exact shape, so that a ``num_layers`` of 10**9 or a
    ``hidden_size`` the tensors contradict is refused before a module or buffer is built.

    Raises:
        ConvertError: naming the field, the metadata value and what the tensors say.
    """
    from apr.train.bounds import check_against_tensors, tensor_shape_problems
    from apr.train.config import ModelConfig

    shapes = {name: tuple(reader.entry(name).shape) for name in reader.keys()}
    try:
        config = ModelConfig.from_metadata(reader.metadata, shapes, path=path)
        check_against_tensors(config, shapes, path=path)
    except UnsupportedArchitectureError:
        raise  # the registry's refusal, naming the architecture: not rewrapped
    except ModelConfigError as err:
        raise ConvertError(f"cannot run this model: {err.message}", path=path, field=err.field,
                           hint=err.hint) from err
    problems = tensor_shape_problems(config, shapes)
    if problems:
        shown = "; ".join(problems[:6]) + (f"; ... ({len(problems)} in all)" if len(problems) > 6 else "")
        raise ConvertError(f"the weights do not fit a {config.family} model: {shown}", path=path, field="tensors",
                           hint="check the file with `apr validate` and its identity with `apr inspect`")
    return config


def load_model(path: str | os.PathLike[str], *, device: str = "cpu") -> LoadedModel:
    """Open ``path``, check its tokenizer, build the model and load every weight (float32).

    Raises:
        MissingTokenizerError: PMAT-172, before any weight is read.
        TokenizerError: the embedded tokenizer's keys are malformed.
        ConvertError: not a llama/qwen2/qwen3 decoder, incomplete dimensions, or dimensions the
            tensors contradict (`checked_config`), before any module is built.
    """
    import torch

    from apr.train.model import CausalLM

    target = os.fspath(path)
    with open_file(target) as reader:
        record = read_tokenizer_record(reader.metadata, target)
        tokenizer = build_tokenizer(record)
        config = checked_config(reader, target)
        with torch.device("meta"):
            model = CausalLM(config)
        state = {name: torch.from_numpy(np.array(reader.get_float32(name), dtype=np.float32))
                 for name in reader.keys()}
        if config.tie_word_embeddings:
            state.setdefault("lm_head.weight", state["model.embed_tokens.weight"])
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        if missing or unexpected:  # checked_config listed every tensor already: a bug, not bad input
            raise RuntimeError(f"weight load mismatch: missing {sorted(missing)[:3]}, "
                               f"unexpected {sorted(unexpected)[:3]}")
        if config.tie_word_embeddings:
            model.lm_head.weight = model.model.embed_tokens.weight
        metadata = dict(reader.metadata)
    model.to(device).eval()
    return LoadedModel(model=model, config=config, tokenizer=tokenizer, record=record, metadata=metadata, path=target)


__all__ = ["LoadedModel", "checked_config", "load_model", "missing_tokenizer_error", "read_tokenizer_record"]
