"""The committed seed corpus, as code: `write_all` regenerates ``corpus/<target>/seed-*``.

Seeds are small valid (or nearly valid) inputs, so mutations start from the structure each parser
expects. Crashing inputs found by a campaign are kept beside them as ``crash-*`` files and are
never regenerated. Run ``.venv/bin/python bench/fuzz_campaign.py --write-seeds``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from tests.reliability.targets import CORPUS, tokenizer_input

_VOCAB = {"<unk>": 0, "Ġ": 1, "t": 2, "h": 3, "e": 4, "Ġt": 5, "he": 6, "Ġthe": 7}


def apr_reader_seeds() -> dict[str, bytes]:
    from apr.format import save
    from tests.format.apr_samples import sample_file

    small = save({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, {"architecture": "llama"})
    return {
        "seed-sample-all-dtypes": sample_file(),
        "seed-one-tensor": small,
        "seed-empty": save({}, {}),
        "seed-truncated": small[:-70],
    }


def tokenizer_seeds() -> dict[str, bytes]:
    tokenizer = {
        "version": "1.0",
        "added_tokens": [{"id": 8, "content": "<|endoftext|>", "special": True}],
        "model": {"type": "BPE", "vocab": _VOCAB, "merges": ["Ġ t", "h e", ["Ġt", "he"]]},
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
    }
    config = {"bos_token": "<unk>", "eos_token": {"content": "<|endoftext|>"}}
    vocab = json.dumps(_VOCAB).encode()
    return {
        "seed-tokenizer-json": tokenizer_input({"tokenizer.json": json.dumps(tokenizer).encode()}),
        "seed-tokenizer-json-config": tokenizer_input({
            "tokenizer.json": json.dumps(tokenizer).encode(), "tokenizer_config.json": json.dumps(config).encode()}),
        "seed-vocab-merges": tokenizer_input({"vocab.json": vocab, "merges.txt": "#version: 0.2\nĠ t\nh e\n".encode()}),
        "seed-vocab-merges-added": tokenizer_input({
            "vocab.json": vocab, "merges.txt": "Ġ t\nh e\nĠt he\n".encode(),
            "added_tokens.json": b'{"<|im_end|>": 9, "<|im_start|>": 10}'}),
    }


def hf_config_seeds() -> dict[str, bytes]:
    qwen2 = {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 320, "hidden_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
        "max_position_embeddings": 256, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16", "bos_token_id": 0, "eos_token_id": [1, 2],
    }
    gpt2 = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 768, "n_layer": 12,
            "n_head": 12, "n_positions": 1024, "layer_norm_epsilon": 1e-5, "vocab_size": 50257}
    qwen3 = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 1024,
             "num_attention_heads": 16, "rope_parameters": {"rope_theta": 1000000, "rope_type": "default"},
             "rope_scaling": None, "num_local_experts": 8}
    return {
        "seed-qwen2": json.dumps(qwen2, indent=2).encode(),
        "seed-gpt2": json.dumps(gpt2).encode(),
        "seed-qwen3-rope-parameters": json.dumps(qwen3).encode(),
        "seed-nonfinite": b'{"hidden_size": 64, "num_attention_heads": 4, "rope_theta": Infinity, "rms_norm_eps": NaN}',
    }


def contract_seeds() -> dict[str, bytes]:
    root = Path(__file__).resolve().parents[2]
    small = (root / "contracts" / "apr-quality-v1.yaml").read_bytes()
    anchors = b"metadata: &m\n  version: 1.0.0\n  status: FUNCTIONAL\nother: *m\nlist: [*m, *m]\n"
    flow = b'{metadata: {version: "1.0.0", description: x, references: [a], depends_on: [],' \
           b' changelog: [{version: 1.0.0, date: 2026-11-26, changes: c}]}, invariants: [], falsification_tests: []}\n'
    return {
        "seed-apr-quality-v1": small,
        "seed-anchors": anchors,
        "seed-flow-style": flow,
        "seed-duplicate-and-tab": b"metadata:\n  version: 1\n  version: 2\ninvariants:\n\t- id: X\n",
    }


def sniff_seeds() -> dict[str, bytes]:
    from apr.format import save

    apr = save({"w": np.ones((2, 2), np.float32)}, {"architecture": "llama"})
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                         "__metadata__": {"format": "pt"}}).encode()
    header += b" " * (-len(header) % 8)
    safetensors = struct.pack("<Q", len(header)) + header + np.ones(2, np.float32).tobytes()
    aprn = b"APRN" + bytes([1, 0]) + struct.pack("<HIII", 0x20, 0, 0, 0) + bytes(12) + b"\x00" * 8
    return {
        "seed-apr2": apr,
        "seed-gguf": _tiny_gguf(),
        "seed-safetensors": safetensors,
        "seed-aprn": aprn,
        "seed-garbage": b"PK\x03\x04 not a model",
    }


def _tiny_gguf() -> bytes:
    """A minimal llama GGUF: one KV per kind the import reads, two small tensors."""
    import tempfile

    import gguf

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.gguf"
        writer = gguf.GGUFWriter(str(path), "llama")
        writer.add_block_count(1)
        writer.add_embedding_length(4)
        writer.add_head_count(2)
        writer.add_context_length(16)
        writer.add_token_list(["a", "b", "c"])
        writer.add_token_types([1, 1, 3])
        writer.add_tensor("token_embd.weight", np.ones((3, 4), np.float32))
        writer.add_tensor("output_norm.weight", np.ones(4, np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


def metadata_types_seeds() -> dict[str, bytes]:
    """(command, key, wrong type, variant) bytes: the issue-14 reproducers that must end cleanly."""
    from tests.reliability import cli_targets as ct

    keys, kinds = ct.metadata_keys(), [name for name, _ in ct.WRONG_VALUES]
    commands = {c: i for i, c in enumerate(ct.READING_COMMANDS)}
    return {
        "seed-inspect-license-markup": bytes([commands[("inspect", "{file}")], keys.index("license"),
                                             kinds.index("markup"), 0]),
        "seed-qa-added-tokens-int": bytes([commands[("qa", "{file}", *ct.QA_STATIC, "--json")],
                                           keys.index("tokenizer.added_tokens"), kinds.index("int"), 2]),
        "seed-card-name-surrogate": bytes([commands[("card", "{file}", "-o", "{out}/MODEL_CARD.md")],
                                           keys.index("name"), kinds.index("surrogate"), 1]),
    }


def hf_side_files_seeds() -> dict[str, bytes]:
    """The side files with wrongly typed values (the issue-14 reproducers)."""
    from tests.reliability import cli_targets as ct

    seeds = ct.hf_side_file_seeds()
    return {name: seeds[name] for name in ("seed-index-wrong-types", "seed-generation-wrong-types",
                                           "seed-tokenizer-config-wrong-types", "seed-chat-template-latin1")}


def gguf_values_seeds() -> dict[str, bytes]:
    """(key, GGUF value type, variant): an architecture as an int, a context length as a string,
    token types as floats."""
    from tests.reliability import cli_targets as ct

    keys = ct.GGUF_KEYS
    return {
        "seed-architecture-int": bytes([keys.index("general.architecture"), 4, 2]),
        "seed-context-length-string": bytes([keys.index("llama.context_length"), 11, 2]),
        "seed-token-types-floats": bytes([keys.index("tokenizer.ggml.token_type"), 13, 0]),
    }


def write_faults_seeds() -> dict[str, bytes]:
    """(writer, write point, which call, errno): disk full in GGUF export, read-only contracts new, EIO."""
    from tests.reliability import cli_targets as ct

    writers = [w.name for w in ct.WRITERS]
    points = ct.WriteFault.POINTS
    return {
        "seed-export-gguf-enospc": bytes([writers.index("export-gguf"), points.index("open"), 0, 0]),
        "seed-contracts-new-erofs": bytes([writers.index("contracts-new"), points.index("create"), 1, 1]),
        "seed-card-fsync-eio": bytes([writers.index("card"), points.index("fsync"), 0, 3]),
    }


SEEDS = {
    "apr_reader": apr_reader_seeds,
    "tokenizer_folder": tokenizer_seeds,
    "hf_config": hf_config_seeds,
    "contract_yaml": contract_seeds,
    "sniff": sniff_seeds,
    "metadata_types": metadata_types_seeds,
    "hf_side_files": hf_side_files_seeds,
    "gguf_values": gguf_values_seeds,
    "write_faults": write_faults_seeds,
}


def write_all(targets: list[str] | None = None) -> dict[str, int]:
    """Regenerate the ``seed-*`` files of ``targets`` (default: all); return how many each got."""
    counts = {}
    for target, build in SEEDS.items():
        if targets and target not in targets:
            continue
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        seeds = build()
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
        counts[target] = len(seeds)
    return counts
