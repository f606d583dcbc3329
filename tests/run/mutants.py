"""Deliberate faults for apr-run-tokenizer-v1."""

from __future__ import annotations

from apr.train.model import rope_cos_sin as _real_rope


def rope_from_zero(positions, head_dim, theta, dtype):
    """Every call's RoPE starts at position 0 (forgets the cache offset)."""
    return _real_rope(positions - positions[0], head_dim, theta, dtype)


def generic_missing_tokenizer(path: str):
    """missing_tokenizer_error without the PMAT-172 message and its fix."""
    from apr.errors import InferenceError

    return InferenceError("cannot run this file")


def no_sampling_checks(self) -> None:
    """SamplingConfig.__post_init__ that accepts any value."""
    return None


def lenient_render_chat(*args, **kwargs):
    """render_chat that falls back to plain text when the template fails."""
    from apr.errors import InferenceError

    try:
        return _real_render_chat(*args, **kwargs)
    except InferenceError:
        return ""


def _capture():
    from apr.run import chat as _chat

    return _chat.render_chat


_real_render_chat = _capture()


def tokenizer_without_added_tokens(record):
    """build_tokenizer that forgets the added (special) tokens: <|im_start|> is split like text."""
    import json

    from tokenizers import Tokenizer

    from apr.tokenizer.build import tokenizer_json_document

    document = tokenizer_json_document(record)
    document["added_tokens"] = []
    return Tokenizer.from_str(json.dumps(document))


def interleaved_rope(x, cos, sin):
    """apply_rope that rotates adjacent pairs (2i, 2i + 1), GPT-J style, instead of (i, i + D/2)."""
    import torch

    half = x.shape[-1] // 2
    pairs = x.reshape(*x.shape[:-1], half, 2)
    rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).reshape(x.shape)
    return x * cos + rotated * sin
