"""Tokenizers as records: read from a Hugging Face folder, embed in APR metadata, rebuild.

`apr stamp --tokenizer`, `apr tokenize`, `apr pretrain` and `apr run` all go through these few
names; the ``tokenizers`` library is imported only when a tokenizer is actually built, and each
name's module only when the name is first used (`apr._lazy`): ``apr stamp`` needs the record and
its metadata form, not the BPE builder and trainer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apr._lazy import lazy_names

if TYPE_CHECKING:
    from apr.tokenizer.build import build_tokenizer, read_tokenizer, tokenizer_json_document
    from apr.tokenizer.embed import has_embedded_tokenizer, record_from_metadata, record_to_metadata
    from apr.tokenizer.folder import read_tokenizer_dir
    from apr.tokenizer.record import AddedToken, TokenizerRecord
    from apr.tokenizer.train import train_byte_level_bpe

_HOME: dict[str, str] = {
    "build_tokenizer": "build", "read_tokenizer": "build", "tokenizer_json_document": "build",
    "has_embedded_tokenizer": "embed", "record_from_metadata": "embed", "record_to_metadata": "embed",
    "read_tokenizer_dir": "folder", "AddedToken": "record", "TokenizerRecord": "record",
    "train_byte_level_bpe": "train",
}
__getattr__, __dir__ = lazy_names(__name__, globals(), _HOME)

__all__ = [
    "AddedToken",
    "TokenizerRecord",
    "build_tokenizer",
    "has_embedded_tokenizer",
    "read_tokenizer",
    "read_tokenizer_dir",
    "record_from_metadata",
    "record_to_metadata",
    "tokenizer_json_document",
    "train_byte_level_bpe",
]
