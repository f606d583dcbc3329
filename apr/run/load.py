"""Load an APR checkpoint for inference: its model (the trainer's llama/qwen2/qwen3 module) and
its embedded tokenizer, which must be there (PMAT-172, reference/aprender.md §5.7).

The tokenizer is checked before a single weight is read, so a file without one fails in
milliseconds with the re-conversion command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from apr.errors import ConvertError, MissingTokenizerError, ModelConfigError
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
    """The embedded tokenizer, or PMAT-172 (no ``tokenizer.vocabulary``, or no merges for BPE)."""
    if not has_embedded_tokenizer(metadata) or not metadata.get("tokenizer.merges"):
        raise missing_tokenizer_error(path)
    return record_from_metadata(metadata, path=path)


def load_model(path: str | os.PathLike[str], *, device: str = "cpu") -> LoadedModel:
    """Open ``path``, check its tokenizer, build the model and load every weight (float32).

    Raises:
        MissingTokenizerError: PMAT-172, before any weight is read.
        ConvertError: not a llama/qwen2/qwen3 decoder, or incomplete dimensions.
    """
    import torch

    from apr.train.config import ModelConfig
    from apr.train.model import CausalLM

    target = os.fspath(path)
    with open_file(target) as reader:
        record = read_tokenizer_record(reader.metadata, target)
        tokenizer = build_tokenizer(record)
        try:
            config = ModelConfig.from_metadata(reader.metadata, reader.keys(), path=target)
        except ModelConfigError as err:
            raise ConvertError(f"cannot run this model: {err.message}", path=target, field=err.field,
                               hint=err.hint) from err
        with torch.device("meta"):
            model = CausalLM(config)
        state = {name: torch.from_numpy(np.array(reader.get_float32(name), dtype=np.float32))
                 for name in reader.keys()}
        if config.tie_word_embeddings:
            state.setdefault("lm_head.weight", state["model.embed_tokens.weight"])
        missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
        if missing or unexpected:
            raise ConvertError(
                f"the weights do not fit a {config.family} model: missing {sorted(missing)[:3]}, "
                f"unexpected {sorted(unexpected)[:3]}", path=target,
                hint="check the file with `apr validate` and its identity with `apr inspect`",
            )
        if config.tie_word_embeddings:
            model.lm_head.weight = model.model.embed_tokens.weight
        metadata = dict(reader.metadata)
    model.to(device).eval()
    return LoadedModel(model=model, config=config, tokenizer=tokenizer, record=record, metadata=metadata, path=target)


__all__ = ["LoadedModel", "load_model", "missing_tokenizer_error", "read_tokenizer_record"]
