"""The command-line interface of the command modules tests/cli/test_mut_cmd_parsers.py does not
cover (issue 23, helper mutcli2): `apr completion`, `tokenize`, `run`, `import`, `export`,
`pretrain` and `demo`: every flag's spelling, destination, default, type, arity and help, and the
defaults each parser sets (the handler, the checkpoints it reads, the extras it needs, the JSON
input, where ``-o -`` streams), pinned as in that file: flags and defaults are interface, and the
help text is the only reference a user of `apr COMMAND --help` gets, so a change to any of them is
deliberate and shows up here.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from tests.cli.test_mut_cmd_parsers import _name, registered


def _described(module: str) -> dict[str, Any]:
    """`registered`, with a tuple default's callables by name too (``stdout_output``'s name function)."""
    got = registered(importlib.import_module(f"apr.cli.{module}"))
    for doc in got.values():
        doc["defaults"] = {k: tuple(_name(x) for x in v) if isinstance(v, tuple) else v
                           for k, v in doc["defaults"].items()}
    return got


EXPECTED: dict[str, dict[str, Any]] = {
    'completion_cmd': {
        'completion': {
            'help': 'print a shell completion script (bash or zsh)',
            'description': 'Print a completion script for apr. bash: apr completion bash > ~/.local/share/bash-completion/completions/apr; zsh: eval "$(apr completion zsh)" in ~/.zshrc.',
            'defaults': {'handler': 'apr.cli.completion_cmd.run'},
            'groups': [('positional arguments', ['shell']), ('options', ['help'])],
            'exclusive': [],
            'actions': [
                ((), '_StoreAction', 'shell', None, None, None, None, ('bash', 'zsh'), True, None, 'the shell the script is for'),
            ],
        },
    },
    'tokenize_cmd': {
        'tokenize': {
            'help': 'encode text files into token shards for `apr pretrain`',
            'description': "Encode TEXT files with a tokenizer folder or an APR checkpoint's embedded tokenizer and write token shards plus manifest.json to -o DIR.",
            'defaults': {'handler': 'apr.cli.tokenize_cmd.run', 'json_input': ('text',)},
            'groups': [('positional arguments', ['text']), ('options', ['help', 'tokenizer', 'output', 'shard_tokens', 'no_eos', 'force', 'json'])],
            'exclusive': [],
            'actions': [
                ((), '_StoreAction', 'text', None, None, '+', None, None, True, 'TEXT', 'UTF-8 text files to encode, in order'),
                (('--tokenizer',), '_StoreAction', 'tokenizer', None, None, None, None, None, True, 'DIR|FILE.apr', 'folder with tokenizer.json (or vocab.json + merges.txt), or a checkpoint embedding one'),
                (('-o', '--output'), '_StoreAction', 'output', None, None, None, None, None, True, 'DIR', 'folder to write the shards to'),
                (('--shard-tokens',), '_StoreAction', 'shard_tokens', 134217728, None, None, 'int', None, False, 'N', 'ids per shard file (default 134217728)'),
                (('--no-eos',), '_StoreTrueAction', 'no_eos', False, True, 0, None, None, False, None, 'do not append the EOS id after each file'),
                (('-f', '--force'), '_StoreTrueAction', 'force', False, True, 0, None, None, False, None, 'write into an existing DIR: replaces an earlier dataset there, never other files'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document on stdout'),
            ],
        },
    },
    'run_cmd': {
        'run': {
            'help': 'generate text from an .apr model with its embedded tokenizer',
            'description': None,
            'defaults': {'handler': 'apr.cli.run_cmd.run', 'needs_extras': ('train',), 'reads_checkpoints': ('file',)},
            'groups': [('positional arguments', ['file', 'prompt']), ('options', ['help', 'max_tokens', 'temperature', 'top_k', 'top_p', 'seed', 'device', 'chat', 'json'])],
            'exclusive': [],
            'actions': [
                ((), '_StoreAction', 'file', None, None, None, None, None, True, None, 'the .apr file'),
                ((), '_StoreAction', 'prompt', None, None, None, None, None, True, None, 'the prompt text'),
                (('--max-tokens',), '_StoreAction', 'max_tokens', 128, None, None, 'int', None, False, 'N', 'tokens to generate at most (default 128)'),
                (('--temperature',), '_StoreAction', 'temperature', 0.0, None, None, 'float', None, False, 'T', '0 (default) is greedy and deterministic'),
                (('--top-k',), '_StoreAction', 'top_k', 0, None, None, 'int', None, False, 'K', 'sample from the K most likely tokens (0: all)'),
                (('--top-p',), '_StoreAction', 'top_p', 1.0, None, None, 'float', None, False, 'P', 'nucleus sampling mass (default 1.0: off)'),
                (('--seed',), '_StoreAction', 'seed', 0, None, None, 'int', None, False, 'S', 'sampling seed (default 0)'),
                (('--device',), '_StoreAction', 'device', 'cpu', None, None, None, None, False, 'D', 'cpu (default), cuda, cuda:N or auto'),
                (('--chat',), '_StoreTrueAction', 'chat', False, True, 0, None, None, False, None, "wrap the prompt in the model's chat template"),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document instead of streaming'),
            ],
        },
    },
    'import_cmd': {
        'import': {
            'help': 'import a Hugging Face folder or a GGUF file into an .apr file',
            'description': 'Import a Hugging Face model folder (config.json + safetensors + tokenizer) or a llama/qwen2/qwen3 .gguf file into APR v2, tokenizer embedded.',
            'defaults': {'handler': 'apr.cli.import_cmd.run'},
            'groups': [('positional arguments', ['source']), ('options', ['help', 'output', 'quantize', 'tokenizer', 'allow_no_config', 'force', 'json'])],
            'exclusive': [],
            'actions': [
                ((), '_StoreAction', 'source', None, None, None, None, None, True, None, 'model folder, .safetensors file or .gguf file'),
                (('-o', '--output'), '_StoreAction', 'output', None, None, None, None, None, True, 'OUT.apr', 'the .apr file to write'),
                (('--quantize',), '_StoreAction', 'quantize', None, None, None, None, None, False, 'Q', 'store float weights as f16, bf16, q8, q4 or q4_k (default: as in the source)'),
                (('--tokenizer',), '_StoreAction', 'tokenizer', None, None, None, None, None, False, 'PATH', "embed this tokenizer folder or tokenizer.json instead of the source's"),
                (('--allow-no-config',), '_StoreTrueAction', 'allow_no_config', False, True, 0, None, None, False, None, 'import a folder without config.json (identity stays unset)'),
                (('-f', '--force'), '_StoreTrueAction', 'force', False, True, 0, None, None, False, None, 'replace an existing output file'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document'),
            ],
        },
    },
    'export_cmd': {
        'export': {
            'help': 'export an .apr file as a Hugging Face folder or a GGUF file',
            'description': 'Export a llama/qwen2/qwen3 .apr file to a Hugging Face model folder (--format safetensors) or a llama.cpp GGUF file (--format gguf).',
            'defaults': {'handler': 'apr.cli.export_cmd.run', 'reads_checkpoints': ('file',), 'stdout_output': ('output', 'apr.cli.export_cmd.stream_name')},
            'groups': [('positional arguments', ['file']), ('options', ['help', 'format', 'output', 'quantize', 'force', 'allow_damaged', 'json'])],
            'exclusive': [],
            'actions': [
                ((), '_StoreAction', 'file', None, None, None, None, None, True, None, 'the .apr file'),
                (('--format',), '_StoreAction', 'format', None, None, None, None, ('safetensors', 'gguf'), False, None, 'output format; default from OUT: gguf for a .gguf name, else safetensors (a folder)'),
                (('-o', '--output'), '_StoreAction', 'output', None, None, None, None, None, True, 'OUT', 'output folder (safetensors) or .gguf file'),
                (('--quantize',), '_StoreAction', 'quantize', None, None, None, None, None, False, 'Q', 'gguf only: f32 (default), f16, q8_0, q4_k or q6_k'),
                (('-f', '--force'), '_StoreTrueAction', 'force', False, True, 0, None, None, False, None, 'replace an existing output (in a folder: only the files an earlier export wrote)'),
                (('--allow-damaged',), '_StoreTrueAction', 'allow_damaged', False, True, 0, None, None, False, None, 'salvage: export a FILE whose CRCs do not match instead of refusing it (the report says so)'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document'),
            ],
        },
    },
    'pretrain_cmd': {
        'pretrain': {
            'help': 'train a llama/qwen2/qwen3 model on token shards (CPU, CUDA, torchrun)',
            'description': 'Pre-train or fine-tune a decoder-only model on `apr tokenize` shards. With --init, start from an APR checkpoint (SPEC §49 pretrained-init; apr-pretrain-from-init-v1).',
            'defaults': {'handler': 'apr.cli.pretrain_cmd.run', 'needs_extras': ('train',), 'reads_checkpoints': ('init',)},
            'groups': [('positional arguments', []), ('options', ['help', 'dataset', 'tokenizer', 'run_dir', 'mode', 'lr', 'num_steps', 'warmup_steps', 'batch_size', 'seq_length', 'steps_per_epoch', 'seed', 'target_val_loss', 'device', 'init', 'resume', 'save_every_steps', 'keep_last', 'allow_world_size_change', 'force_under_provisioned', 'val_shard', 'config', 'compile', 'force', 'log_every_steps', 'report_to', 'json'])],
            'exclusive': [],
            'actions': [
                (('--dataset',), '_StoreAction', 'dataset', None, None, None, None, None, True, 'DIR', 'token shards from `apr tokenize`'),
                (('--tokenizer',), '_StoreAction', 'tokenizer', None, None, None, None, None, False, 'DIR|FILE.apr', 'tokenizer to embed in checkpoints (default: the one embedded in --init)'),
                (('--run-dir',), '_StoreAction', 'run_dir', None, None, None, None, None, True, 'DIR', 'checkpoints go to DIR/ckpt/epoch-NNN.apr'),
                (('--mode',), '_StoreAction', 'mode', 'finetune', None, None, None, ('finetune', 'from-scratch'), False, None, 'hyper-parameter defaults: finetune lr 5e-5/warmup 100/target 2.2; from-scratch 3e-4/1000/3.0 (default finetune)'),
                (('--lr',), '_StoreAction', 'lr', None, None, None, 'float', None, False, None, 'peak learning rate (overrides the mode default)'),
                (('--num-steps',), '_StoreAction', 'num_steps', 1000, None, None, 'int', None, False, None, 'optimizer steps (default 1000; 0 = evaluate the --init weights and re-emit them as ckpt/init.apr)'),
                (('--warmup-steps',), '_StoreAction', 'warmup_steps', None, None, None, 'int', None, False, None, 'linear warmup steps (overrides the mode default)'),
                (('--batch-size',), '_StoreAction', 'batch_size', 16, None, None, 'int', None, False, None, 'global sequences per step (default 16)'),
                (('--seq-length',), '_StoreAction', 'seq_length', 1024, None, None, 'int', None, False, None, 'tokens per sequence (default 1024)'),
                (('--steps-per-epoch',), '_StoreAction', 'steps_per_epoch', 100, None, None, 'int', None, False, None, 'steps between checkpoints (default 100)'),
                (('--seed',), '_StoreAction', 'seed', 42, None, None, 'int', None, False, None, 'seed for init and batch sampling (default 42)'),
                (('--target-val-loss',), '_StoreAction', 'target_val_loss', None, None, None, 'float', None, False, None, 'stop early once val_loss reaches it (mode default)'),
                (('--device',), '_StoreAction', 'device', 'auto', None, None, None, None, False, None, 'auto, cpu, cuda or cuda:N (default auto)'),
                (('--init',), '_StoreAction', 'init', None, None, None, None, None, False, 'FILE.apr', 'initial weights from an APR checkpoint (§49 pretrained-init); optimizer state starts fresh'),
                (('--resume',), '_StoreAction', 'resume', None, None, None, None, None, False, 'RUN_DIR|CKPT', 'continue the same run from its latest checkpoint (or CKPT): weights, AdamW, schedule position, data cursor and RNG states; the other flags must describe the same run'),
                (('--save-every-steps',), '_StoreAction', 'save_every_steps', None, None, None, 'int', None, False, 'N', 'also checkpoint (with training state) every N steps inside an epoch'),
                (('--keep-last',), '_StoreAction', 'keep_last', None, None, None, 'int', None, False, 'K', "keep only this run's last K checkpoints and its best by val_loss (default: keep all)"),
                (('--allow-world-size-change',), '_StoreTrueAction', 'allow_world_size_change', False, True, 0, None, None, False, None, "with --resume: accept another number of processes (same global batch; equal within DDP's float tolerance, not bit for bit)"),
                (('--force-under-provisioned',), '_StoreTrueAction', 'force_under_provisioned', False, True, 0, None, None, False, None, 'run even when D < 20*N (chinchilla-gate-v1); logs a BYPASSED warning'),
                (('--val-shard',), '_StoreAction', 'val_shard', None, None, None, None, None, False, 'DIR', 'held-out token shards (default: 10%% tail of --dataset)'),
                (('--config',), '_StoreAction', 'config', None, None, None, None, None, False, 'config.json', 'Hugging Face config.json for a from-scratch shape'),
                (('--compile',), '_StoreTrueAction', 'compile', False, True, 0, None, None, False, None, 'torch.compile the model (slow start, faster steps)'),
                (('-f', '--force'), '_StoreTrueAction', 'force', False, True, 0, None, None, False, None, 'overwrite checkpoints already in --run-dir'),
                (('--log-every-steps',), '_StoreAction', 'log_every_steps', None, None, None, 'int', None, False, 'N', 'append a row to RUN_DIR/metrics.jsonl every N steps (default: num_steps/100, between 1 and 100); a row after every evaluation too'),
                (('--report-to',), '_StoreAction', 'report_to', 'none', None, None, None, ('none', 'tensorboard'), False, None, "also write the metrics as TensorBoard events under RUN_DIR/tb/ (needs pip install 'apr-contracts[tensorboard]')"),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print the run report as one JSON document'),
            ],
        },
    },
    'demo_cmd': {
        'demo': {
            'help': 'the whole story on an embedded default: train, stamp, qa, export, readiness',
            'description': None,
            'defaults': {'handler': 'apr.cli.demo_cmd.run', 'needs_extras': ('train',)},
            'groups': [('positional arguments', []), ('options', ['help', 'output', 'json'])],
            'exclusive': [],
            'actions': [
                (('-o', '--output'), '_StoreAction', 'output', 'demo-out', None, None, None, None, False, None, "folder for the demo's files (default: demo-out)"),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document (the step results)'),
            ],
        },
    },
}


@pytest.mark.parametrize("module", list(EXPECTED))
def test_each_command_registers_its_documented_interface(module: str) -> None:
    got = _described(module)
    assert list(got) == list(EXPECTED[module])
    for name, expected in EXPECTED[module].items():
        assert got[name] == expected, name
