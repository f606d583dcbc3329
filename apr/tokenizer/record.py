"""The tokenizer as a typed record: what `apr stamp --tokenizer`, `apr tokenize` and `apr pretrain`
carry around, independent of where it was read from (a folder or an APR checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AddedToken:
    """One entry of tokenizer.json ``added_tokens`` (kept: aprender's stamp drops them, §2.5)."""

    id: int
    content: str
    special: bool = True
    single_word: bool = False
    lstrip: bool = False
    rstrip: bool = False
    normalized: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "content": self.content,
            "single_word": self.single_word,
            "lstrip": self.lstrip,
            "rstrip": self.rstrip,
            "normalized": self.normalized,
            "special": self.special,
        }


@dataclass(frozen=True, slots=True)
class TokenizerRecord:
    """A BPE tokenizer, complete enough to rebuild a `tokenizers.Tokenizer` giving the same ids.

    ``vocabulary[i]`` is the token with id ``i`` (model vocabulary overlaid with added tokens; an id
    gap is filled with a unique ``<|apr_unused_N|>`` placeholder so the list stays indexable).
    ``pipeline`` holds tokenizer.json's non-vocabulary sections (normalizer, pre_tokenizer,
    post_processor, decoder and the model's options) so a rebuild is faithful; ``None`` means the
    default byte-level pipeline (vocab.json + merges.txt folders, aprender-stamped checkpoints).
    """

    vocabulary: tuple[str, ...]
    merges: tuple[str, ...]
    model_type: str | None = "BPE"
    added_tokens: tuple[AddedToken, ...] = ()
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pipeline: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def token_to_id(self) -> dict[str, int]:
        """``{token: id}``, later ids winning on a duplicate string (as tokenizers does)."""
        return {token: index for index, token in enumerate(self.vocabulary)}
