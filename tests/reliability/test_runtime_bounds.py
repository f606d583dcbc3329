"""contracts/reliability-v1.yaml, FALSIFY-RELIABILITY-013/014/015: bounds before work in run, qa,
pretrain, tokenize and export (issue 14, item 3, the runtime side).

* 013: a shape from metadata or a config is checked against the tensors present (and a stated
  ceiling) before any model is built; the huge claims run in a child under a 4 GiB address-space
  limit whose peak RSS is its own VmHWM (`runtime_probe`). In this process only small lies
  are used, so a mutant that drops a check fails a test instead of filling the machine.
* 014: chat templates render under time, memory and size limits; ``apr tokenize`` streams, with
  the ids of whole-file encoding and a peak RSS that does not follow the file's size.
* 015: wrongly typed tokenizer and sampling settings, and token ids outside the vocabulary, are
  the project's error at start.
"""

from __future__ import annotations

import json
import os
import resource
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from apr.cli.main import main
from apr.errors import (
    AprError, DatasetError, InferenceError, ModelConfigError, TokenizerError, UnsupportedArchitectureError,
    UsageError,
)
from apr.format import open_file, save_file
from tests.convert.tiny_hf import build_hf_folder, train_tokenizer
from tests.reliability.runtime_probe import measure

RSS_LIMIT_MIB = 512  # the child imports torch (about 230 MiB) before it refuses anything
CONFIG = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 512, "hidden_size": 64,
          "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
          "max_position_embeddings": 256, "tie_word_embeddings": True}


@dataclass(frozen=True)
class Tiny:
    """A tiny qwen2 checkpoint with its tokenizer, and copies of it with lying metadata."""

    root: Path
    model: Path
    tokenizer: Path
    dims: dict[str, int]

    def variant(self, name: str, changes: dict | None = None, *, drop: tuple[str, ...] = (), raw: bool = False) -> Path:
        """A copy with ``changes`` in its metadata; ``raw`` writes typed fields of the wrong type too
        (the writer refuses them, as a hostile file's author would not)."""
        with open_file(self.model) as reader:
            metadata = {**reader.metadata, **(changes or {})}
            tensors = {n: np.array(reader.get_tensor(n)) for n in reader.keys() if n not in drop}
        path = self.root / name
        with mock.patch("apr.format.metadata._check_value", lambda key, kind, value: value) if raw else nullcontext():
            save_file(tensors, path, metadata)
        return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Tiny:
    from apr.convert.hf_import import import_hf

    root = tmp_path_factory.mktemp("runtime-bounds")
    train_tokenizer(root / "tok")
    folder = build_hf_folder(root / "hf", "qwen2", tokenizer_from=root / "tok", hidden=32, layers=2, heads=4,
                             kv_heads=2, inter=64)
    import_hf(folder, root / "m.apr")
    with open_file(root / "m.apr") as reader:
        dims = {k: reader.metadata[k] for k in ("vocab_size", "hidden_size", "num_layers", "num_heads",
                                                  "num_kv_heads", "intermediate_size", "head_dim")}
    return Tiny(root, root / "m.apr", root / "tok", dims)


@contextmanager
def no_model_built():
    """Fail if a CausalLM is constructed inside the block (the bounds come before any module)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a model was built from metadata the tensors contradict")

    with mock.patch("apr.train.model.CausalLM", refuse):
        yield


def cli(capsys, *argv: str) -> tuple[int, str]:
    """Run `apr ARGV` in this process: its exit code and everything it printed."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out + captured.err


# --- FALSIFY-RELIABILITY-013: shapes checked against tensors and a ceiling ---------------------

DIMS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size", "head_dim")
# A head count or head_dim that lies shows as q_proj / k_proj rows != heads x head_dim.
NAMED = {"head_dim": {"head_dim", "num_heads", "num_kv_heads"}, "num_heads": {"num_heads", "num_kv_heads"},
         "num_kv_heads": {"num_heads", "num_kv_heads"}}


def _run_entry(path: Path) -> None:
    from apr.run import load_model

    load_model(path)


def _export_entry(path: Path) -> None:
    from apr.convert.hf_export import model_config_of

    with open_file(path) as reader:
        model_config_of(reader)


def _init_entry(path: Path) -> None:
    from apr.train.init_checkpoint import load_init_checkpoint

    load_init_checkpoint(path)


ENTRIES = {"run": _run_entry, "export": _export_entry, "pretrain --init": _init_entry}


@pytest.mark.falsifies("FALSIFY-RELIABILITY-013")
@settings(max_examples=30)  # each example writes and opens a checkpoint: 7 fields x 3 entries is covered
@given(field=st.sampled_from(DIMS), lie=st.integers(1, 4096), entry=st.sampled_from(sorted(ENTRIES)))
@example(field="num_layers", lie=64, entry="run")
def test_falsify_reliability_013_lying_dimension_refused_before_build(tiny, field, lie, entry):
    assume(lie != tiny.dims[field])
    path = tiny.variant("lie.apr", {field: lie})
    with no_model_built(), pytest.raises(AprError) as info:
        ENTRIES[entry](path)
    assert info.value.field in NAMED.get(field, {field}), (info.value.field, str(info.value))
    assert info.value.exit_code == 5


@pytest.mark.falsifies("FALSIFY-RELIABILITY-013")
def test_falsify_reliability_013_error_names_field_claim_and_tensors(tiny, capsys):
    for changes, words in (({"num_layers": 10**9}, ["num_layers", "1000000000", "2 layers"]),
                           ({"num_layers": 2**63}, ["num_layers", str(2**63), "2 layers"]),
                           ({"vocab_size": 2**40}, ["vocab_size", str(2**40), f"{tiny.dims['vocab_size']} rows"]),
                           ({"hidden_size": 48}, ["hidden_size", "48", "32 columns"])):
        path = tiny.variant("claim.apr", changes)
        for argv in (["run", path, "hi"], ["export", path, "--format", "gguf", "-o", tiny.root / "x.gguf"],
                     ["pretrain", "--dataset", tiny.root / "none", "--run-dir", tiny.root / "rd", "--init", path]):
            code, err = cli(capsys, *argv)
            assert code == 5, (argv, err)
            assert all(word in err for word in words), (argv, err)
        assert not (tiny.root / "x.gguf").exists() and not (tiny.root / "rd").exists()
    code, err = cli(capsys, "qa", tiny.variant("claim.apr", {"num_layers": 10**9}))
    assert code == 1 and "num_layers = 1000000000" in err  # NO-GO, each model gate naming the lie


@pytest.mark.falsifies("FALSIFY-RELIABILITY-013")
def test_falsify_reliability_013_unconfirmed_dimension_bounded_by_ratio(tiny):
    """No embedding to pin vocab_size: the claim may imply at most 10x the values present.

    `apr run` never gets that far (the registry refuses a file without its embedding by name,
    before any shape is trusted), so the bound is attacked directly as well."""
    from apr.run import load_model
    from apr.train.bounds import check_against_tensors
    from apr.train.config import ModelConfig

    path = tiny.variant("noembed.apr", {"vocab_size": 2**40}, drop=("model.embed_tokens.weight", "lm_head.weight"))
    with no_model_built(), pytest.raises(UnsupportedArchitectureError) as refused:
        load_model(path)
    assert "1 missing tensor: model.embed_tokens.weight" in refused.value.message
    with open_file(path) as reader:
        shapes = {name: tuple(reader.entry(name).shape) for name in reader.keys()}
        config = ModelConfig.from_metadata(reader.metadata)  # no names: the shape alone
    with pytest.raises(ModelConfigError) as info:
        check_against_tensors(config, shapes, path=path)
    assert info.value.field == "vocab_size" and "10x" in info.value.message and "parameters" in info.value.message


@pytest.mark.falsifies("FALSIFY-RELIABILITY-013")
def test_falsify_reliability_013_config_past_the_ceiling_refused(tmp_path, monkeypatch):
    from apr.train import bounds
    from apr.train.config import ModelConfig

    path = tmp_path / "config.json"
    path.write_text(json.dumps({**CONFIG, "hidden_size": 8192, "num_hidden_layers": 1000,
                                "intermediate_size": 8192, "num_attention_heads": 64, "num_key_value_heads": 8}))
    with pytest.raises(ModelConfigError) as info:
        ModelConfig.from_config_file(path)
    assert info.value.field == "--config" and "ceiling" in info.value.message and "2**35" in info.value.message
    # under the ceiling but over this machine's memory (stated as 1 GiB here): refused too
    path.write_text(json.dumps({**CONFIG, "hidden_size": 1024, "num_hidden_layers": 24,
                                "intermediate_size": 4096, "num_attention_heads": 16, "num_key_value_heads": 16}))
    monkeypatch.setattr(bounds, "physical_memory", lambda: 2**30)
    with pytest.raises(ModelConfigError, match="GiB of memory"):
        ModelConfig.from_config_file(path)
    monkeypatch.setattr(bounds, "physical_memory", lambda: 2**40)
    assert ModelConfig.from_config_file(path).num_layers == 24


@pytest.mark.falsifies("FALSIFY-RELIABILITY-013")
@given(st.fixed_dictionaries({"family": st.sampled_from(["llama", "qwen2", "qwen3"]), "vocab_size": st.integers(1, 64),
                              "hidden_size": st.integers(1, 16), "num_layers": st.integers(1, 4),
                              "num_kv_heads": st.integers(1, 4), "groups": st.integers(1, 3),
                              "intermediate_size": st.integers(1, 16), "head_dim": st.sampled_from([2, 4, 6]),
                              "tie_word_embeddings": st.booleans()}))
def test_falsify_reliability_013_closed_form_parameter_count(spec):
    """param_count (arithmetic, safe on any claim) equals the count of the enumerated shapes."""
    from apr.train.config import ModelConfig

    groups = spec.pop("groups")
    config = ModelConfig(num_heads=spec["num_kv_heads"] * groups, **spec)
    assert config.param_count == sum(int(np.prod(s)) for s in config.parameter_shapes().values())


@pytest.mark.falsifies("FALSIFY-RELIABILITY-013")
def test_falsify_reliability_013_kv_cache_follows_tokens_not_the_claimed_context(tiny, monkeypatch):
    """max_position_embeddings is not backed by any tensor: a cache of 2**40 positions starts
    small and grows as tokens come, with the logits of the plain forward."""
    import torch

    from apr.run import load_model
    from apr.train import kv_cache

    loaded = load_model(tiny.variant("context.apr", {"max_position_embeddings": 2**40}))
    monkeypatch.setattr(kv_cache, "INITIAL_CACHE_TOKENS", 4)
    cache = kv_cache.KVCache(loaded.model, 1, 2**40)
    assert cache.keys.shape[3] == 4 and cache.capacity == 2**40
    ids = torch.tensor([[(7 * i) % tiny.dims["vocab_size"] for i in range(23)]])
    chunks = [loaded.model(ids[:, a:b], cache=cache)
              for a, b in ((0, 3), (3, 4), (4, 13), (13, 23))]
    assert cache.keys.shape[3] == 26 and cache.length == 23  # 4 -> 13 (what is needed) -> 26 (double)
    with torch.no_grad():
        full = loaded.model(ids)
    assert torch.allclose(torch.cat(chunks, dim=1), full, atol=1e-4)


@pytest.mark.falsifies("FALSIFY-RELIABILITY-013")
def test_falsify_reliability_013_huge_claims_peak_rss_bounded(tiny, tmp_path):
    """The reproducers of issue 14, each in one child: refused (exit 5, NO-GO for qa) within 512 MiB."""
    layers = tiny.variant("layers1e9.apr", {"num_layers": 10**9})
    claims = [layers, tiny.variant("layers2e63.apr", {"num_layers": 2**63}),
              tiny.variant("vocab2e40.apr", {"vocab_size": 2**40}),
              tiny.variant("hidden2e40.apr", {"hidden_size": 2**40})]
    noembed = tiny.variant("noembed2e40.apr", {"vocab_size": 2**40}, drop=("model.embed_tokens.weight", "lm_head.weight"))
    config = tmp_path / "huge.json"
    config.write_text(json.dumps({**CONFIG, "num_hidden_layers": 10**9}))
    out = tmp_path / "out"
    out.mkdir()
    commands = [["run", str(path), "hi"] for path in claims]
    commands += [["qa", str(layers)],
                 ["export", str(claims[2]), "--format", "gguf", "-o", str(out / "v.gguf")],
                 ["export", str(noembed), "--format", "gguf", "-o", str(out / "n.gguf")],
                 ["export", str(layers), "--format", "safetensors", "-o", str(out / "st")],
                 ["pretrain", "--dataset", str(tmp_path / "none"), "--run-dir", str(out / "a"), "--init", str(layers)],
                 ["pretrain", "--dataset", str(tmp_path / "none"), "--run-dir", str(out / "b"), "--config", str(config)]]
    result = measure(commands, timeout=180.0)
    print(f"peak RSS of the child: {result.peak_rss_mib} MiB")
    assert result.outcome == "exited", result.detail
    assert result.codes == [5, 5, 5, 5, 1, 5, 5, 5, 5, 5], result.detail
    assert result.peak_rss_mib <= RSS_LIMIT_MIB, result.peak_rss_mib
    assert list(out.iterdir()) == []


# --- FALSIFY-RELIABILITY-014: chat templates under limits; tokenize streams ----------------------

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.mark.falsifies("FALSIFY-RELIABILITY-014")
@pytest.mark.parametrize("template, stopped_by", [
    ("{{ 'x' * 2000000000 }}", "memory"),
    ("{% for i in range(100000) %}{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }}"
     "{% endfor %}", "characters"),
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "within 2 s of CPU time"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursed"),
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
])
def test_falsify_reliability_014_chat_template_bombs_stopped(monkeypatch, template, stopped_by):
    from apr.run import chat

    # the nested loops would spin for hours: the CPU budget stops them after 2 s of CPU (1.5, rounded
    # up). Every other bomb must be stopped by its own limit, whatever the machine's load (the budget
    # is CPU time, so a slow start of the renderer on a busy machine is not charged; at load ~18 a
    # wall-clock budget once turned "recursed" into "did not finish within")
    monkeypatch.setattr(chat, "RENDER_SECONDS", 1.5 if stopped_by.startswith("within") else 120.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InferenceError) as info:
        chat.render_chat(template, MESSAGES)
    assert info.value.field == "chat_template" and stopped_by in info.value.message, info.value.message
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 64, grown_mib  # the bomb went off in the renderer's process, not here


@pytest.mark.falsifies("FALSIFY-RELIABILITY-014")
def test_falsify_reliability_014_the_wall_clock_is_only_a_backstop(monkeypatch):
    """A renderer that has not ended by `RENDER_WALL_SECONDS` is killed and named, whatever its CPU."""
    from apr.run import chat

    monkeypatch.setattr(chat, "RENDER_SECONDS", 120.0)
    monkeypatch.setattr(chat, "RENDER_WALL_SECONDS", 0.5)
    with pytest.raises(InferenceError) as info:
        chat.render_chat("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", MESSAGES)
    assert info.value.field == "chat_template"
    assert info.value.message == "the model's chat template did not finish rendering within 0.5 s"


@pytest.mark.falsifies("FALSIFY-RELIABILITY-014")
def test_falsify_reliability_014_real_templates_still_render(tiny, capsys):
    from apr.run import chat
    from tests.convert.tiny_hf import CHATML

    assert chat.render_chat(CHATML, MESSAGES) == chat.chatml(MESSAGES)
    text = chat.render_chat("{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}{% endfor %}",
                            [{"role": "user", "content": "naïve \ud800 東京"}], bos_token="<s>")
    assert text == "<s>[user] naïve \ud800 東京"
    code, err = cli(capsys, "run", tiny.variant("bomb.apr", {"chat_template": "{{ 'x' * 2000000000 }}"}), "hi", "--chat")
    assert code == 8 and "chat template" in err
    assert cli(capsys, "run", tiny.model, "hi", "--chat", "--max-tokens", "2")[0] == 0


def _text(size: int) -> str:
    """Lines of words (with blank lines and indentation) of about ``size`` characters."""
    rng = np.random.default_rng(size)
    words = ["The", "capital", "of", "France", "is", "Paris.", "def", "f(x):", "return", "x", "**", "2", "naïve",
             "東京", "—", "    ", "", "\t"]
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(words, rng.integers(0, 12)))
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)[:size]


@pytest.fixture(scope="module")
def texts(tiny) -> dict[str, Path]:
    paths = {}
    for name, size in (("small", 128 * 1024), ("large", 1024 * 1024)):
        paths[name] = tiny.root / f"{name}.txt"
        paths[name].write_text(_text(size), encoding="utf-8")
    return paths


@pytest.mark.falsifies("FALSIFY-RELIABILITY-014")
def test_falsify_reliability_014_tokenize_memory_independent_of_file_size(tiny, texts, tmp_path):
    """8x the text, the same peak RSS (within 32 MiB; encoding 1 MiB whole takes about 250 MiB more)."""
    rss = {}
    for name, path in texts.items():
        result = measure([["tokenize", str(path), "--tokenizer", str(tiny.tokenizer), "-o", str(tmp_path / name)]])
        assert result.outcome == "exited" and result.codes == [0], result.detail
        rss[name] = result.peak_rss_mib
    print(f"peak RSS of tokenize: {rss}")
    assert rss["large"] - rss["small"] < 32, rss
    from apr.tokenizer import build_tokenizer, read_tokenizer
    from apr.train.shards import open_dataset

    record = read_tokenizer(tiny.tokenizer)
    whole = build_tokenizer(record).encode(texts["small"].read_text(encoding="utf-8"), add_special_tokens=False).ids
    arrays, _ = open_dataset(tmp_path / "small")  # three pieces of 64 Ki characters, the ids of one
    assert np.concatenate(arrays).tolist() == whole + [record.eos_token_id]


def _pipelines() -> dict[str, dict]:
    from apr.tokenizer.stream import LLAMA3_REGEX, QWEN2_REGEX

    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    no_regex = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}

    def split(regex):
        return {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}, no_regex]}

    return {
        "gpt2": {"normalizer": None, "pre_tokenizer": byte_level},
        "smollm": {"normalizer": None, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, byte_level]}},
        "qwen2": {"normalizer": {"type": "NFC"}, "pre_tokenizer": split(QWEN2_REGEX)},
        "llama3": {"normalizer": None, "pre_tokenizer": split(LLAMA3_REGEX)},
    }


WHITESPACE_TEXT = "x.\n\n\n    y = 1\n\n  z  \n  \n\tw.\n\n\n\nclass  e:\n \n" * 30


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    """(record, tokenizer) per recognised pipeline, over one byte-level BPE whose merges join
    newline runs and indentation (ĊĊ, ĊĠĠ...), as real vocabularies' do: trained on one document
    (training from files would see one line at a time and learn no such merge)."""
    import dataclasses

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from apr.tokenizer import build_tokenizer, read_tokenizer, tokenizer_json_document

    folder = tmp_path_factory.mktemp("stream-tokenizer")
    trained = Tokenizer(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trained.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=330, min_frequency=2, special_tokens=["<|endoftext|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    trained.train_from_iterator([WHITESPACE_TEXT], trainer)
    trained.save(os.fspath(folder / "tokenizer.json"))
    base = read_tokenizer(folder)
    assert "Ċ Ċ" in base.merges  # what makes a cut inside a newline run visible
    document = tokenizer_json_document(base)
    model = {k: v for k, v in document["model"].items() if k not in ("vocab", "merges")}
    out = {}
    for name, sections in _pipelines().items():
        pipeline = {**{k: document[k] for k in ("normalizer", "pre_tokenizer", "post_processor", "decoder")},
                    "model": model, **sections}
        record = dataclasses.replace(base, pipeline=pipeline)
        out[name] = (record, build_tokenizer(record))
    return out


TEXT_ALPHABET = st.sampled_from(list("ab .,'\n\n\n\t  19<") + [
    "é", "e\u0301", "\u0301", "東", "\r\n", "\r", "\x85", "\u2028", "\u3000", "\xa0", "\x1c", "<|im_end|>", "'s",
    "ab\n\n", "  \n", ".\n", "\n1", "\n<|im_end|>", "ΣΑ"])


@pytest.mark.falsifies("FALSIFY-RELIABILITY-014")
@given(pieces=st.lists(TEXT_ALPHABET, max_size=80), read_chars=st.integers(1, 9))
@example(pieces=["x", ".", "\n", "\n", "a", " ", "\n", "a", "\n", " ", "b"], read_chars=1)
@example(pieces=["x", ".", "\n", "\n", "a", "b"], read_chars=1)  # Qwen2 takes ".\n\n" whole
@example(pieces=["a", " ", " ", "\n", " ", " ", "\n", "b"], read_chars=2)  # GPT-2 splits "  \n  " off "\n"
def test_falsify_reliability_014_streamed_ids_equal_whole_file(encoders, tmp_path_factory, pieces, read_chars):
    from apr.tokenizer.stream import encode_text_file

    text = "".join(pieces)
    path = tmp_path_factory.getbasetemp() / "stream.txt"
    path.write_bytes(text.encode("utf-8"))  # bytes: \r and \r\n reach the reader as in a real file
    expected_text = path.read_text(encoding="utf-8")  # what read_text gave before: universal newlines
    for name, (record, tokenizer) in encoders.items():
        streamed = [i for ids in encode_text_file(tokenizer, path, record, read_chars=read_chars) for i in ids]
        assert streamed == tokenizer.encode(expected_text, add_special_tokens=False).ids, (name, text)


@pytest.mark.falsifies("FALSIFY-RELIABILITY-014")
def test_falsify_reliability_014_unknown_pipelines_are_not_split(encoders):
    import dataclasses

    from apr.tokenizer.record import AddedToken
    from apr.tokenizer.stream import split_rule

    record, _ = encoders["gpt2"]
    assert split_rule(record)[0] is not None
    for change in ({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "use_regex": True}},
                   {"pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}},
                   {"normalizer": {"type": "NFKC"}},
                   {"normalizer": {"type": "Prepend", "prepend": "▁"}}):
        rule, reason = split_rule(dataclasses.replace(record, pipeline={**record.pipeline, **change}))
        assert rule is None and reason
    for token in (AddedToken(id=1, content="\n\n"), AddedToken(id=1, content="<x>", lstrip=True)):
        assert split_rule(dataclasses.replace(record, added_tokens=(token,)))[0] is None


# --- FALSIFY-RELIABILITY-015: typed settings and ids in range, refused at start ------------------

WRONG = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False, allow_infinity=False),
                  st.text(max_size=5), st.lists(st.one_of(st.integers(), st.text(max_size=3), st.none()), max_size=4),
                  st.dictionaries(st.text(max_size=3), st.one_of(st.integers(), st.text(max_size=3)), max_size=3))
TOKENIZER_KEYS = {
    "tokenizer.vocabulary": lambda v: not isinstance(v, list) or any(not isinstance(t, str) for t in v),
    "tokenizer.merges": lambda v: v is not None and (not isinstance(v, list) or any(
        not isinstance(m, str) or m.count(" ") != 1 for m in v)),
    "tokenizer.model_type": lambda v: v is not None and not isinstance(v, str),
    "tokenizer.added_tokens": lambda v: v is not None and (not isinstance(v, list) or bool(v)),
    "tokenizer.bos_token_id": lambda v: v is not None,
    "tokenizer.eos_token_id": lambda v: v is not None,
    "tokenizer.pipeline": lambda v: v is not None and (not isinstance(v, dict) or any(
        k in ("normalizer", "pre_tokenizer", "post_processor", "decoder", "model") and val is not None
        for k, val in v.items())),
    "tokenizer.vocab_size": lambda v: v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0),
}
# Model settings the runtime reads besides the dimensions (013): wrong types must be errors too.
MODEL_KEYS = ("rope_theta", "rms_norm_eps", "max_position_embeddings", "tied_embeddings", "generation_config",
              "chat_template", "architecture")


@pytest.mark.falsifies("FALSIFY-RELIABILITY-015")
@given(key=st.sampled_from(sorted(TOKENIZER_KEYS)), value=WRONG)
@example(key="tokenizer.added_tokens", value=5)
@example(key="tokenizer.added_tokens", value=[{"id": 1, "content": "x", "special": "yes"}])
@example(key="tokenizer.pipeline", value={"model": "BPE"})
def test_falsify_reliability_015_wrongly_typed_tokenizer_key_refused(tiny, key, value):
    """Every value a generated key gets here is invalid for it (ids: any, since the vocabulary has
    320 entries and WRONG's integers are out of range or of the wrong kind most of the time)."""
    from apr.run import load_model

    assume(TOKENIZER_KEYS[key](value))
    if key.endswith("_token_id"):
        assume(not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < tiny.dims["vocab_size"]))
    path = tiny.variant("typed.apr", {key: value})
    with no_model_built(), pytest.raises(TokenizerError) as info:
        load_model(path)
    assert info.value.field.startswith(key) or info.value.field == "tokenizer.vocabulary", (key, info.value)


@pytest.mark.falsifies("FALSIFY-RELIABILITY-015")
@given(key=st.sampled_from(MODEL_KEYS), value=WRONG)
def test_falsify_reliability_015_wrongly_typed_model_setting_is_an_apr_error(tiny, key, value):
    from apr.run import load_model

    path = tiny.variant("typed.apr", {key: value}, raw=True)
    try:
        loaded = load_model(path)
    except AprError as err:
        assert err.exit_code in (4, 5, 6), err
        return
    from apr.run import prompt_ids, stop_ids_for

    stop_ids_for(loaded, chat=True)  # a lenient key is ignored, never a crash downstream
    if not isinstance(loaded.metadata.get("chat_template"), str):
        assert prompt_ids(loaded, "hi", chat=True)


@pytest.mark.falsifies("FALSIFY-RELIABILITY-015")
def test_falsify_reliability_015_added_tokens_5_refused_by_every_command(tiny, tmp_path, capsys):
    bad = tiny.variant("added5.apr", {"tokenizer.added_tokens": 5})
    (tmp_path / "t.txt").write_text("hello world\n")
    (tmp_path / "card.md").write_text("# card\n")
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    commands = [["run", bad, "hi"], ["qa", bad], ["readiness", bad, "--model-card", tmp_path / "card.md"],
                ["export", bad, "--format", "safetensors", "-o", tmp_path / "st"],
                ["export", bad, "--format", "gguf", "-o", tmp_path / "m.gguf"],
                ["tokenize", tmp_path / "t.txt", "--tokenizer", bad, "-o", tmp_path / "data"],
                ["pretrain", "--dataset", tmp_path / "none", "--run-dir", tmp_path / "r1", "--init", bad],
                ["pretrain", "--dataset", tmp_path / "none", "--run-dir", tmp_path / "r2", "--tokenizer", bad,
                 "--config", tmp_path / "config.json"]]
    for argv in commands:
        code, err = cli(capsys, *argv)
        assert code != 0 and "tokenizer.added_tokens" in err, (argv[0], code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.md", "config.json", "t.txt"]


SAMPLING_FLAGS = {"--temperature": st.one_of(st.floats(max_value=-1e-300), st.just(float("nan")), st.just(float("inf")),
                                             st.just(float("-inf"))),
                  "--top-p": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True),
                                       st.just(float("nan"))),
                  "--top-k": st.integers(max_value=-1), "--max-tokens": st.integers(max_value=0),
                  "--seed": st.one_of(st.integers(max_value=-1), st.integers(min_value=2**64))}


@pytest.mark.falsifies("FALSIFY-RELIABILITY-015")
@given(data=st.data(), flag=st.sampled_from(sorted(SAMPLING_FLAGS)))
def test_falsify_reliability_015_bad_sampling_value_names_its_flag(data, flag):
    from apr.run.generate import SamplingConfig

    value = data.draw(SAMPLING_FLAGS[flag])
    with pytest.raises(UsageError) as info:
        SamplingConfig(**{flag[2:].replace("-", "_"): value})
    assert info.value.field == flag


@pytest.mark.falsifies("FALSIFY-RELIABILITY-015")
@given(temperature=st.floats(min_value=0.0, max_value=1e308, allow_subnormal=True),
       top_k=st.integers(0, 2**70), top_p=st.floats(min_value=1e-9, max_value=1.0),
       logits=st.lists(st.integers(-1000, 1000).map(float), min_size=2, max_size=40))
@example(temperature=1e-45, top_k=0, top_p=1.0, logits=[1.0, 3.0, 2.0])
@example(temperature=5e-324, top_k=0, top_p=1.0, logits=[1.0, 3.0, 2.0])
def test_falsify_reliability_015_any_valid_sampling_picks_a_token(temperature, top_k, top_p, logits):
    import torch

    from apr.run.generate import SamplingConfig, pick_token

    sampling = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, seed=3)
    generator = torch.Generator().manual_seed(3)
    scores = torch.tensor(logits)
    token = pick_token(scores, sampling, generator)
    assert 0 <= token < len(logits)
    if temperature < 1e-30:  # the limit of sampling as the temperature falls is greedy decoding
        assert scores[token] == scores.max()


@pytest.mark.falsifies("FALSIFY-RELIABILITY-015")
def test_falsify_reliability_015_run_with_extreme_sampling_flags(tiny, capsys):
    for flags, expected in ((["--temperature", "1e-45"], 0), (["--temperature", "0"], 0), (["--temperature", "1e308"], 0),
                            (["--temperature", "nan"], 64), (["--temperature", "inf"], 64), (["--temperature", "-1"], 64),
                            (["--temperature", "1", "--top-k", "99999999999999999999"], 0),
                            (["--temperature", "1", "--top-p", "1e-300"], 0),
                            (["--seed", "99999999999999999999999"], 64)):
        code, err = cli(capsys, "run", tiny.model, "hi", "--max-tokens", "2", *flags)
        assert code == expected, (flags, err)


def _dataset_with_id(tmp_path: Path, bad_id: int, vocab: int) -> Path:
    """A dataset whose manifest and shard headers say ``vocab`` but which holds ``bad_id``."""
    from apr.train.shards import write_dataset

    folder = tmp_path / "data"
    tokens = np.arange(6000) % 200
    write_dataset(folder, tokens, vocab_size=max(vocab, bad_id + 1), eos_token_id=None, shard_tokens=4000)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["vocab_size"] = vocab
    (folder / "manifest.json").write_text(json.dumps(manifest))
    shard = folder / "shard-00001.bin"
    data = bytearray(shard.read_bytes())
    data[32 + 2 * 123: 32 + 2 * 124] = int(bad_id).to_bytes(2, "little")
    shard.write_bytes(bytes(data))
    return folder


@pytest.mark.falsifies("FALSIFY-RELIABILITY-015")
def test_falsify_reliability_015_token_ids_past_vocab_refused_at_start(tiny, tmp_path, capsys):
    from apr.train.shards import open_dataset

    data = _dataset_with_id(tmp_path, 5000, 512)
    with pytest.raises(DatasetError) as info:
        open_dataset(data)
    assert "token id 5000 at position 123" in info.value.message and "[0, 512)" in info.value.message
    assert info.value.path.endswith("shard-00001.bin")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(CONFIG))
    code, err = cli(capsys, "pretrain", "--dataset", data, "--run-dir", tmp_path / "run", "--config", config,
                    "--tokenizer", tiny.tokenizer, "--num-steps", "2", "--batch-size", "2", "--seq-length", "16",
                    "--device", "cpu")
    assert code == 4 and "token id 5000" in err and not (tmp_path / "run").exists()


@pytest.mark.falsifies("FALSIFY-RELIABILITY-015")
def test_falsify_reliability_015_loop_refuses_ids_before_building(tiny, tmp_path, monkeypatch):
    """A plan built by hand (library use) with ids past the model's vocabulary: refused at start."""
    from apr.train import loop
    from apr.train.batches import split_tokens
    from apr.train.config import ModelConfig
    from apr.train.plan import PretrainOptions

    config = ModelConfig("qwen2", vocab_size=64, hidden_size=8, num_layers=1, num_heads=2, num_kv_heads=1,
                         intermediate_size=8, head_dim=4)
    split = split_tokens([np.arange(4000) % 100], None, batch_size=2, seq_length=8)
    plan = mock.Mock(model_config=config, split=split, options=PretrainOptions(dataset="d", run_dir=str(tmp_path)))
    monkeypatch.setattr(loop, "build_model", mock.Mock(side_effect=AssertionError("model built")))
    with pytest.raises(DatasetError, match=r"outside the vocabulary \[0, 64\)"):
        next(loop.run_pretrain(plan, ctx=mock.Mock()))


def test_tokenize_os_errors_are_apr_errors(tiny, texts, tmp_path, monkeypatch, capsys):
    """Issue 14's reproducers for tokenize (an unreadable text, a full disk, an output under a
    file): exit codes, not tracebacks (FALSIFY-RELIABILITY-017 injects every write error)."""
    import errno

    from apr.tokenizer import stream

    real_open = open

    class Failing:
        def __init__(self, *args, **kwargs):
            self.handle = real_open(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, size=-1):
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(stream, "open", Failing, raising=False)
    code, err = cli(capsys, "tokenize", texts["small"], "--tokenizer", tiny.tokenizer, "-o", tmp_path / "a")
    assert code == 7 and "Input/output error" in err and str(texts["small"]) in err
    monkeypatch.undo()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    code, err = cli(capsys, "tokenize", texts["small"], "--tokenizer", tiny.tokenizer, "-o", tmp_path / "b")
    assert code == 7 and "space" in err
    monkeypatch.undo()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = cli(capsys, "tokenize", texts["small"], "--tokenizer", tiny.tokenizer, "-o", blocker / "sub")
    assert code in (3, 5, 7), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
