"""Train a byte-level BPE with the `tokenizers` library: the demo's and the tests' tokenizer.

Kept in one place so the README's main job and the test fixtures build the same kind of
tokenizer the same way (offline, in well under a second on a few KB of text).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def train_byte_level_bpe(
    files: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    vocab_size: int = 512,
    full_byte_alphabet: bool = True,
    special_tokens: Sequence[str] = ("<|endoftext|>",),
) -> Path:
    """Train a GPT-2-style byte-level BPE on ``files`` and save ``out_dir/tokenizer.json``.

    Args:
        files: UTF-8 text files.
        out_dir: the tokenizer folder to write (created if needed).
        vocab_size: target vocabulary size.
        full_byte_alphabet: seed the vocabulary with all 256 byte symbols (any text encodes);
            False keeps only the characters of the corpus, so every token decodes to that
            corpus's characters (useful to test generation pipelines with random weights).
        special_tokens: added first, in order (the first is EOS).

    Returns:
        The folder, which `apr.tokenizer.read_tokenizer_dir` reads.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if full_byte_alphabet else [],
        show_progress=False,
    )
    tokenizer.train([os.fspath(f) for f in files], trainer)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder
