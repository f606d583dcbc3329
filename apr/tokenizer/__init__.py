"""Tokenizers as records: read from a Hugging Face folder, embed in APR metadata, rebuild.

`apr stamp --tokenizer`, `apr tokenize`, `apr pretrain` and `apr run` all go through these few
names; the ``tokenizers`` library is imported only when a tokenizer is actually built.
"""

from apr.tokenizer.build import build_tokenizer, read_tokenizer, tokenizer_json_document
from apr.tokenizer.embed import has_embedded_tokenizer, record_from_metadata, record_to_metadata
from apr.tokenizer.folder import read_tokenizer_dir
from apr.tokenizer.record import AddedToken, TokenizerRecord
from apr.tokenizer.train import train_byte_level_bpe

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
