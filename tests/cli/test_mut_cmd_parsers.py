"""The command-line interface the command modules register (issue 23): for `apr qa`, `readiness`,
`card`, `validate`, `diff`, `publish`, `stamp`, `inspect` and `contracts ...`, every flag's
spelling, destination, default, type, arity and help, the defaults each parser sets (the handler,
the checkpoints it reads, the extras it needs, where ``-o -`` streams) and its groups.

Flags, defaults and exit-code-bearing handlers are interface (scripts and docs name them); the help
text is the only reference a user of `apr COMMAND --help` gets, so it is pinned here too: a change
to any of them is deliberate and shows up as a change to this table.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import inspect
from typing import Any

import pytest

def _name(value: Any) -> Any:
    """A default as data: a handler by its function's qualified name (through any wrapper: the
    contracts commands' error guard, or mutmut's trampoline)."""
    if isinstance(value, functools.partial):
        return f"partial({_name(value.func)}, {', '.join(type(a).__name__ for a in value.args)})"
    if isinstance(value, type):
        return value.__name__
    if callable(value):
        function = inspect.unwrap(value)
        return f"{function.__module__}.{function.__qualname__}"
    return value


def describe(parser: argparse.ArgumentParser) -> dict[str, Any]:
    """Everything a parser accepts and sets, as data: each argument as one tuple (flags, action,
    dest, default, const, nargs, type, choices, required, metavar, help), the defaults it sets, its
    groups and its subcommands."""
    actions: list[Any] = []
    sub: dict[str, Any] = {}
    for a in parser._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        if isinstance(a, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in a._choices_actions}
            for name, child in a.choices.items():
                sub[name] = {"help": helps.get(name), **describe(child)}
            actions.append(("subcommands", a.dest, a.metavar, _name(a._parser_class)))
            continue
        actions.append((tuple(a.option_strings), type(a).__name__, a.dest, a.default, a.const, a.nargs, _name(a.type),
                        a.choices, a.required, a.metavar, a.help))
    doc: dict[str, Any] = {
        "description": parser.description,
        "defaults": {k: _name(v) for k, v in sorted(parser._defaults.items())},
        "groups": [(g.title, [a.dest for a in g._group_actions]) for g in parser._action_groups],
        "exclusive": [(g.required, [a.dest for a in g._group_actions]) for g in parser._mutually_exclusive_groups],
        "actions": actions,
    }
    if sub:
        doc["subcommands"] = sub
    return doc


def registered(module: Any) -> dict[str, Any]:
    """What ``module.register`` adds to a fresh `apr` parser, by subcommand."""
    root = argparse.ArgumentParser(prog="apr")
    subs = root.add_subparsers(dest="command")
    module.register(subs)
    return describe(root)["subcommands"]


EXPECTED: dict[str, dict[str, Any]] = {
    'qa_cmd': {
        'qa': {
            'help': 'run the QA gates on a checkpoint: GO / NO-GO',
            'description': None,
            'defaults': {'handler': 'apr.cli.qa_cmd.run', 'needs_extras': ('train',), 'reads_checkpoints': ('file',)},
            'groups': [('positional arguments', ['file']), ('options', ['help', 'skip_capability_match', 'skip_tensor_contract', 'skip_metadata_plausibility', 'skip_golden_output', 'skip_throughput', 'skip_format_parity', 'skip_gpu_speedup', 'skip_performance_regression', 'min_executed', 'previous_report', 'assert_tps', 'prompt', 'json'])],
            'exclusive': [],
            "actions": [
                ((), '_StoreAction', 'file', None, None, None, None, None, True, None, 'the .apr file'),
                (('--skip-capability-match',), '_StoreTrueAction', 'skip_capability_match', False, True, 0, None, None, False, None, 'skip the capability_match gate (reported as skipped, never as passed)'),
                (('--skip-tensor-contract',), '_StoreTrueAction', 'skip_tensor_contract', False, True, 0, None, None, False, None, 'skip the tensor_contract gate (reported as skipped, never as passed)'),
                (('--skip-metadata-plausibility',), '_StoreTrueAction', 'skip_metadata_plausibility', False, True, 0, None, None, False, None, 'skip the metadata_plausibility gate (reported as skipped, never as passed)'),
                (('--skip-golden-output',), '_StoreTrueAction', 'skip_golden_output', False, True, 0, None, None, False, None, 'skip the golden_output gate (reported as skipped, never as passed)'),
                (('--skip-throughput',), '_StoreTrueAction', 'skip_throughput', False, True, 0, None, None, False, None, 'skip the throughput gate (reported as skipped, never as passed)'),
                (('--skip-format-parity',), '_StoreTrueAction', 'skip_format_parity', False, True, 0, None, None, False, None, 'skip the format_parity gate (reported as skipped, never as passed)'),
                (('--skip-gpu-speedup',), '_StoreTrueAction', 'skip_gpu_speedup', False, True, 0, None, None, False, None, 'skip the gpu_speedup gate (reported as skipped, never as passed)'),
                (('--skip-performance-regression',), '_StoreTrueAction', 'skip_performance_regression', False, True, 0, None, None, False, None, 'skip the performance_regression gate (reported as skipped, never as passed)'),
                (('--min-executed',), '_StoreAction', 'min_executed', 0, None, None, 'int', None, False, None, 'NO-GO unless at least N gates ran'),
                (('--previous-report',), '_StoreAction', 'previous_report', None, None, None, None, None, False, None, 'a previous `apr qa --json` report for performance_regression'),
                (('--assert-tps',), '_StoreAction', 'assert_tps', 10.0, None, None, 'float', None, False, None, "throughput threshold in tokens per CPU-second of one thread (default 10); measured in CPU time, so the verdict does not depend on the machine's load (docs/publish.md)"),
                (('--prompt',), '_StoreAction', 'prompt', 'The', None, None, None, None, False, None, 'prompt for golden_output and throughput'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document'),
            ],
        },
    },
    'readiness_cmd': {
        'readiness': {
            'help': 'the seven publish gates: GO / NO-GO, each blocker with its fix',
            'description': None,
            'defaults': {'handler': 'apr.cli.readiness_cmd.run_readiness_cmd', 'needs_extras': ('train',), 'reads_checkpoints': ('file',)},
            'groups': [('positional arguments', ['file']), ('options', ['help', 'model_card', 'require_token', 'json'])],
            'exclusive': [],
            "actions": [
                ((), '_StoreAction', 'file', None, None, None, None, None, True, None, 'the .apr file'),
                (('--model-card',), '_StoreAction', 'model_card', None, None, None, None, None, False, None, 'the model card (Markdown with YAML front matter)'),
                (('--require-token',), '_StoreTrueAction', 'require_token', False, True, 0, None, None, False, None, 'also require HF_TOKEN to be set'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document'),
            ],
        },
        'card': {
            'help': "write a model card from a checkpoint's metadata and training report",
            'description': None,
            'defaults': {'handler': 'apr.cli.readiness_cmd.run_card_cmd', 'reads_checkpoints': ('file',), 'stdout_output': ('output', 'MODEL_CARD.md')},
            'groups': [('positional arguments', ['file']), ('options', ['help', 'report', 'run_dir', 'output', 'force', 'json'])],
            'exclusive': [],
            "actions": [
                ((), '_StoreAction', 'file', None, None, None, None, None, True, None, 'the .apr file'),
                (('--report',), '_StoreAction', 'report', None, None, None, None, None, False, None, 'a training report (`apr pretrain --json` output) for the metrics'),
                (('--run-dir',), '_StoreAction', 'run_dir', None, None, None, None, None, False, 'DIR', 'the training run whose DIR/metrics.jsonl gives the "Training results" table (default: NAME.metrics.jsonl beside FILE, or the run of RUN/ckpt/FILE)'),
                (('-o', '--output'), '_StoreAction', 'output', None, None, None, None, None, True, None, 'the card to write (CARD.md); with the [plot] extra, the loss curve goes beside it as CARD-loss.png'),
                (('-f', '--force'), '_StoreTrueAction', 'force', False, True, 0, None, None, False, None, 'replace an existing card'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document'),
            ],
        },
    },
    'validate_cmd': {
        'validate': {
            'help': "check an .apr file's structure, both CRCs and its tensor values",
            'description': None,
            'defaults': {'handler': 'apr.cli.validate_cmd.run', 'reads_checkpoints': ('file',)},
            'groups': [('positional arguments', ['file']), ('options', ['help', 'strict', 'json'])],
            'exclusive': [],
            "actions": [
                ((), '_StoreAction', 'file', None, None, None, None, None, True, None, 'the .apr file'),
                (('--strict',), '_StoreTrueAction', 'strict', False, True, 0, None, None, False, None, 'all-zero tensors fail instead of warning'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document'),
            ],
        },
    },
    'diff_cmd': {
        'diff': {
            'help': 'compare two checkpoints (.apr, safetensors, GGUF): metadata, flags, tensor set, per-tensor error',
            'description': "Compare two checkpoints key by key and tensor by tensor (one tensor in memory at a time). Either side may be an .apr file, a .safetensors file or Hugging Face folder, or a .gguf file, read as an import would (Hugging Face names, nothing written): `apr diff model.apr model-q8_0.gguf` gives each tensor's quantization error. Exit 0 when they are the same within --atol, 1 when they differ.",
            'defaults': {'handler': 'apr.cli.diff_cmd.run', 'json_input': ('a', 'b'), 'reads_checkpoints': ('a', 'b')},
            'groups': [('positional arguments', ['a', 'b']), ('options', ['help', 'atol', 'json'])],
            'exclusive': [],
            "actions": [
                ((), '_StoreAction', 'a', None, None, None, None, None, True, None, 'the first checkpoint: .apr, .safetensors, a Hugging Face folder or .gguf'),
                ((), '_StoreAction', 'b', None, None, None, None, None, True, None, 'the second checkpoint (any of the same)'),
                (('--atol',), '_StoreAction', 'atol', 0.0, None, None, 'float', None, False, None, 'largest |a - b| per element still called equal (default 0: bit-equal values)'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document'),
            ],
        },
    },
    'publish_cmd': {
        'publish': {
            'help': 'readiness, then stage and upload a checkpoint to the Hugging Face Hub',
            'description': 'Run the readiness gates on FILE; on GO, build a staging folder laid out as the Hub repository (README.md card, the .apr, a transformers folder, the GGUF) and commit it to REPO with huggingface_hub. Without a token, or with --dry-run, print the commit instead.',
            'defaults': {'handler': 'apr.cli.publish_cmd.run', 'needs_extras': ('train',), 'reads_checkpoints': ('file',)},
            'groups': [('positional arguments', ['repo', 'file']), ('options', ['help', 'model_card', 'formats', 'quantize', 'revision', 'private', 'commit_message', 'dry_run', 'staging', 'json'])],
            'exclusive': [],
            "actions": [
                ((), '_StoreAction', 'repo', None, None, None, None, None, True, 'REPO', 'the Hub repository, OWNER/NAME'),
                ((), '_StoreAction', 'file', None, None, None, None, None, True, None, 'the .apr checkpoint to publish'),
                (('--model-card',), '_StoreAction', 'model_card', None, None, None, None, None, True, 'CARD.md', 'the model card (apr card writes one)'),
                (('--formats',), '_StoreAction', 'formats', 'apr,safetensors,gguf', None, None, None, None, False, None, 'comma-separated: apr, safetensors, gguf'),
                (('--quantize',), '_StoreAction', 'quantize', 'q8_0', None, None, None, None, False, None, "the GGUF's type: f16, q8_0, q6_k, q4_k (default q8_0)"),
                (('--revision',), '_StoreAction', 'revision', None, None, None, None, None, False, None, 'the branch to commit to (created if missing)'),
                (('--private',), '_StoreTrueAction', 'private', False, True, 0, None, None, False, None, 'create the repository private'),
                (('--commit-message',), '_StoreAction', 'commit_message', None, None, None, None, None, False, None, "the commit's message (default: apr publish)"),
                (('--dry-run',), '_StoreTrueAction', 'dry_run', False, True, 0, None, None, False, None, 'stage and print the commit; upload nothing'),
                (('--staging',), '_StoreAction', 'staging', None, None, None, None, None, False, 'DIR', 'the staging folder (default: NAME.publish)'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document'),
            ],
        },
    },
    'stamp_cmd': {
        'stamp': {
            'help': 'set license, data provenance, HF identity, family or tokenizer; tensor bytes untouched',
            'description': "Patch an .apr file's identity and provenance. Give at least one field, and either -o OUT (a stamped copy) or --in-place.",
            'defaults': {'handler': 'apr.cli.stamp_cmd.run', 'stdout_output': ('output', 'stamped.apr')},
            'groups': [('positional arguments', ['file']), ('options', ['help', 'output', 'in_place', 'recover', 'strict', 'force', 'allow_damaged', 'json']), ('fields (an empty string clears a field)', ['license', 'data_source', 'data_license', 'hf_architecture', 'hf_model_type', 'architecture', 'tokenizer', 'name', 'description'])],
            'exclusive': [(False, ['output', 'in_place', 'recover'])],
            "actions": [
                ((), '_StoreAction', 'file', None, None, None, None, None, True, None, 'the .apr file to stamp'),
                (('--license',), '_StoreAction', 'license', None, None, None, None, None, False, 'SPDX', "license of the weights, an SPDX expression (Apache-2.0, 'Apache-2.0 OR MIT')"),
                (('--data-source',), '_StoreAction', 'data_source', None, None, None, None, None, False, 'STR', 'training data, e.g. bigcode/the-stack-dedup or teacher-only'),
                (('--data-license',), '_StoreAction', 'data_license', None, None, None, None, None, False, 'TEXT', "license of the training data: an SPDX expression (stored canonical), or free text such as 'Apache-2.0 / permissive-aggregate' (stored verbatim, as aprender does)"),
                (('--hf-architecture',), '_StoreAction', 'hf_architecture', None, None, None, None, None, False, 'CLASS', 'Hugging Face class, e.g. Qwen2ForCausalLM'),
                (('--hf-model-type',), '_StoreAction', 'hf_model_type', None, None, None, None, None, False, 'SLUG', 'config.json model_type, e.g. qwen2'),
                (('--architecture',), '_StoreAction', 'architecture', None, None, None, None, None, False, 'SLUG', 'family slug that `apr pretrain --init` reads, e.g. qwen2'),
                (('--tokenizer',), '_StoreAction', 'tokenizer', None, None, None, None, None, False, 'DIR', 'embed the tokenizer in DIR (tokenizer.json, else vocab.json + merges.txt); sets HAS_VOCAB'),
                (('--name',), '_StoreAction', 'name', None, None, None, None, None, False, 'STR', "the model's name"),
                (('--description',), '_StoreAction', 'description', None, None, None, None, None, False, 'STR', 'one line describing the model'),
                (('-o', '--output'), '_StoreAction', 'output', None, None, None, None, None, False, 'OUT', 'write the stamped copy here'),
                (('--in-place',), '_StoreTrueAction', 'in_place', False, True, 0, None, None, False, None, 'stamp FILE itself (crash-safe; rewrites only the header and metadata when they fit)'),
                (('--recover',), '_StoreTrueAction', 'recover', False, True, 0, None, None, False, None, 'only undo an interrupted --in-place stamp of FILE'),
                (('--strict',), '_StoreTrueAction', 'strict', False, True, 0, None, None, False, None, '--data-license must be an SPDX expression too (free text refused, exit 5)'),
                (('-f', '--force'), '_StoreTrueAction', 'force', False, True, 0, None, None, False, None, 'with -o: replace an existing output file'),
                (('--allow-damaged',), '_StoreTrueAction', 'allow_damaged', False, True, 0, None, None, False, None, 'with -o: salvage a FILE whose footer CRC does not match (the copy keeps the mismatch; the report says so)'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document'),
            ],
        },
    },
    'inspect_cmd': {
        'inspect': {
            'help': "show an .apr file's header, identity, provenance and tensors",
            'description': None,
            'defaults': {'handler': 'apr.cli.inspect_cmd.run', 'reads_checkpoints': ('file',)},
            'groups': [('positional arguments', ['file']), ('options', ['help', 'quality', 'explain', 'tensors', 'json'])],
            'exclusive': [],
            "actions": [
                ((), '_StoreAction', 'file', None, None, None, None, None, True, None, 'the .apr file'),
                (('--quality',), '_StoreTrueAction', 'quality', False, True, 0, None, None, False, None, 'add the 100-point quality score'),
                (('--explain',), '_StoreTrueAction', 'explain', False, True, 0, None, None, False, None, 'with --quality: the stamp command for each missing point'),
                (('--tensors',), '_StoreTrueAction', 'tensors', False, True, 0, None, None, False, None, 'list every tensor (text mode; JSON always lists them)'),
                (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print one JSON document'),
            ],
        },
    },
    'contracts_cmd': {
        'contracts': {
            'help': 'lint contracts, list them, and verify the suite to a GO / NO-GO / UNKNOWN verdict',
            'description': 'YAML contracts declare invariants; falsifiers bound to tests decide the verdict.',
            'defaults': {'handler': 'partial(apr.cli.contracts_cmd._usage, ArgumentParser)'},
            'groups': [('positional arguments', ['contracts_command']), ('options', ['help'])],
            'exclusive': [],
            "actions": [
                ('subcommands', 'contracts_command', 'SUBCOMMAND', 'ArgumentParser'),
            ],
            "subcommands": {
                'lint': {
                    'help': 'check contract files: YAML, schema, ids, links, versions',
                    'description': None,
                    'defaults': {'handler': 'apr.cli.contracts_cmd._lint'},
                    'groups': [('positional arguments', ['paths']), ('options', ['help', 'compat', 'strict', 'json'])],
                    'exclusive': [],
                    "actions": [
                        ((), '_StoreAction', 'paths', None, None, '*', None, None, True, None, "contract files or folders (default: the project's contracts folder)"),
                        (('--compat',), '_StoreTrueAction', 'compat', False, True, 0, None, None, False, None, "read aprender's pv styles; unknown keys are warnings"),
                        (('--strict',), '_StoreTrueAction', 'strict', False, True, 0, None, None, False, None, 'warnings fail the lint too'),
                        (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'one JSON document on stdout'),
                    ],
                },
                'list': {
                    'help': 'the contracts, their versions, statuses and falsifier counts',
                    'description': None,
                    'defaults': {'handler': 'apr.cli.contracts_cmd._list'},
                    'groups': [('positional arguments', []), ('options', ['help', 'json'])],
                    'exclusive': [],
                    "actions": [
                        (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'one JSON document on stdout'),
                    ],
                },
                'show': {
                    'help': 'one contract, invariant or falsifier in full',
                    'description': None,
                    'defaults': {'handler': 'apr.cli.contracts_cmd._show'},
                    'groups': [('positional arguments', ['id']), ('options', ['help', 'json'])],
                    'exclusive': [],
                    "actions": [
                        ((), '_StoreAction', 'id', None, None, None, None, None, True, 'ID', 'a contract name, INV-… id or FALSIFY-… id'),
                        (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'one JSON document on stdout'),
                    ],
                },
                'verify': {
                    'help': 'run the test suite under the harness and print the verdict (exit 0 GO, 1 NO-GO, 2 UNKNOWN)',
                    'description': 'Runs pytest with the contract plugin; arguments after `--` go to pytest unchanged (e.g. `apr contracts verify -- tests/format -n auto`).',
                    'defaults': {'handler': 'apr.cli.contracts_cmd._verify'},
                    'groups': [('positional arguments', ['pytest_args']), ('options', ['help', 'profile', 'falsifier', 'contract', 'artifact', 'model_card', 'mutants', 'json'])],
                    'exclusive': [],
                    "actions": [
                        (('--profile',), '_StoreAction', 'profile', None, None, None, None, None, False, None, 'the verdict profile: cpu (default), gpu, release, or one from pyproject'),
                        (('--falsifier',), '_AppendAction', 'falsifier', [], None, None, None, None, False, 'ID', 'only this falsifier'),
                        (('--contract',), '_AppendAction', 'contract', [], None, None, None, None, False, 'NAME', 'only this contract'),
                        (('--artifact',), '_StoreAction', 'artifact', None, None, None, None, None, False, 'FILE', 'verify this checkpoint: run only the artifact-level falsifiers (the readiness gates) on it; the receipt records its sha256'),
                        (('--model-card',), '_StoreAction', 'model_card', None, None, None, None, None, False, 'FILE', 'the model card that goes with --artifact'),
                        (('--mutants',), '_StoreTrueAction', 'mutants', False, True, 0, None, None, False, None, "also rerun each falsifier's tests once per declared mutant: a surviving mutant makes it VACUOUS (UNDETERMINED), so the verdict cannot be GO"),
                        (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'print the verdict receipt (JSON) on stdout'),
                        ((), '_StoreAction', 'pytest_args', None, None, '...', None, None, True, None, 'arguments for pytest, after `--`'),
                    ],
                },
                'diff': {
                    'help': 'invariants, falsifiers and mutants added, removed, changed; a weakened falsifier without a major version bump is an error (exit 5)',
                    'description': None,
                    'defaults': {'handler': 'apr.cli.contracts_cmd._diff'},
                    'groups': [('positional arguments', ['old', 'new']), ('options', ['help', 'json'])],
                    'exclusive': [],
                    "actions": [
                        ((), '_StoreAction', 'old', None, None, None, None, None, True, 'OLD', 'a contract file, a folder of them, or git:REV (the contracts folder at REV)'),
                        ((), '_StoreAction', 'new', None, None, None, None, None, True, 'NEW', 'the same kinds as OLD (e.g. contracts)'),
                        (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'one JSON document on stdout'),
                    ],
                },
                'new': {
                    'help': 'write contracts/NAME.yaml and a bound test that fails until written',
                    'description': None,
                    'defaults': {'handler': 'apr.cli.contracts_cmd._new'},
                    'groups': [('positional arguments', ['name']), ('options', ['help', 'force', 'json'])],
                    'exclusive': [],
                    "actions": [
                        ((), '_StoreAction', 'name', None, None, None, None, None, True, 'NAME', "the contract's name, e.g. apr-stamp-v1"),
                        (('--force',), '_StoreTrueAction', 'force', False, True, 0, None, None, False, None, 'overwrite existing files'),
                        (('--json',), '_StoreTrueAction', 'json', False, True, 0, None, None, False, None, 'one JSON document on stdout'),
                    ],
                },
            },
        },
    },
}


@pytest.mark.parametrize("module", list(EXPECTED))
def test_each_command_registers_its_documented_interface(module: str) -> None:
    got = registered(importlib.import_module(f"apr.cli.{module}"))
    assert list(got) == list(EXPECTED[module])
    for name, expected in EXPECTED[module].items():
        assert got[name] == expected, name
