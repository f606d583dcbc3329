"""`apr run` in-process (issue 23: the module had no mutation figure): the text it streams or
reports is what the generator gives for the flags passed, the JSON document states the flags, the
token count and the time, and a device it cannot use is refused with its exit code and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.stamp_builders import run_cli as _run
from apr.run import generate_text, load_model
from apr.run.generate import SamplingConfig


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from apr.convert.hf_import import import_hf
    from tests.convert.tiny_hf import build_hf_folder, train_tokenizer

    root = tmp_path_factory.mktemp("run")
    train_tokenizer(root / "tok")
    folder = build_hf_folder(root / "qwen2", "qwen2", tokenizer_from=root / "tok")
    import_hf(folder, root / "m.apr")
    return root / "m.apr"


def _expected(model: Path, prompt: str, sampling: SamplingConfig, *, chat: bool = False) -> tuple[str, int]:
    """The generator's own text for these settings, and its token count by the tokenizers library."""
    from tokenizers import Tokenizer

    loaded = load_model(model)
    text = "".join(generate_text(loaded, prompt, sampling, chat=chat))
    tok = Tokenizer.from_str(loaded.tokenizer.to_str())
    return text, len(tok.encode(text, add_special_tokens=False).ids)


class _Clock:
    """``time.perf_counter`` for the command: the given instants, in turn."""

    def __init__(self, *instants: float) -> None:
        self._instants = list(instants)

    def perf_counter(self) -> float:
        return self._instants.pop(0)


SAMPLED = ["--max-tokens", "6", "--temperature", "0.9", "--top-k", "20", "--top-p", "0.8", "--seed", "7"]


def test_json_reports_the_text_the_flags_and_the_time(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.cli.run_cmd.time", _Clock(10.0, 12.5))
    code, stdout, _ = _run(["run", str(model), "The capital of France", *SAMPLED, "--device", "cpu", "--json"])
    assert code == 0
    sampling = SamplingConfig(max_tokens=6, temperature=0.9, top_k=20, top_p=0.8, seed=7)
    text, tokens = _expected(model, "The capital of France", sampling)
    document = json.loads(stdout)  # one document: nothing was streamed before it
    assert document["schema"] == "apr.run/1" and document["input"] == str(model) and document["exit_code"] == 0
    assert document["prompt"] == "The capital of France" and document["chat"] is False
    assert document["text"] == text and document["tokens"] == tokens and tokens > 0
    assert document["seconds"] == 2.5 and document["device"] == "cpu"
    assert document["sampling"] == {"max_tokens": 6, "temperature": 0.9, "top_k": 20, "top_p": 0.8, "seed": 7}


def test_the_defaults_are_greedy_on_the_cpu(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = []

    def generator(loaded: object, prompt: str, sampling: SamplingConfig, *, chat: bool = False):
        seen.append((prompt, sampling, chat))
        yield from ("Par", "is")

    monkeypatch.setattr("apr.run.generate_text", generator)
    code, stdout, _ = _run(["run", str(model), "hello", "--json"])
    assert code == 0
    assert seen == [("hello", SamplingConfig(max_tokens=128, temperature=0.0, top_k=0, top_p=1.0, seed=0), False)]
    document = json.loads(stdout)
    assert document["sampling"] == {"max_tokens": 128, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": 0}
    assert document["device"] == "cpu" and document["text"] == "Paris"


def test_nothing_generated_is_zero_tokens(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.run.generate_text", lambda *a, **k: iter(()))
    code, stdout, stderr = _run(["run", str(model), "hello"])
    assert code == 0 and stdout == "\n" and stderr.startswith("0 tokens in ")


def test_chat_wraps_the_prompt_in_the_template(model: Path) -> None:
    code, stdout, _ = _run(["run", str(model), "What is the capital of France?", "--chat", "--max-tokens", "5", "--json"])
    assert code == 0
    document = json.loads(stdout)
    assert document["chat"] is True
    text = _expected(model, "What is the capital of France?", SamplingConfig(max_tokens=5), chat=True)[0]
    assert document["text"] == text
    assert text != _expected(model, "What is the capital of France?", SamplingConfig(max_tokens=5))[0]


def test_text_mode_streams_the_text_then_times_it_on_stderr(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.cli.run_cmd.time", _Clock(1.0, 3.0))
    code, stdout, stderr = _run(["run", str(model), "The capital of France", *SAMPLED])
    assert code == 0
    sampling = SamplingConfig(max_tokens=6, temperature=0.9, top_k=20, top_p=0.8, seed=7)
    text, tokens = _expected(model, "The capital of France", sampling)
    assert stdout == text + "\n"
    assert stderr == f"{tokens} tokens in 2.00s ({tokens / 2:.1f} tok/s)\n"


def test_no_time_elapsed_is_a_rate_of_zero(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.cli.run_cmd.time", _Clock(5.0, 5.0))
    code, _, stderr = _run(["run", str(model), "hi", "--max-tokens", "3"])
    assert code == 0
    assert stderr.endswith(" tokens in 0.00s (0.0 tok/s)\n")


def test_a_device_that_is_not_there_is_an_inference_error(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from apr.errors import UsageError

    asked = []

    def no_cuda(spec: str) -> object:
        asked.append(spec)
        raise UsageError(f"--device {spec} asked for CUDA, but torch sees no CUDA device", field="--device")

    monkeypatch.setattr("apr.train.device.resolve_device", no_cuda)
    code, stdout, _ = _run(["run", str(model), "hi", "--device", "cuda:3", "--json"])
    assert asked == ["cuda:3"]
    assert code == 8
    error = json.loads(stdout)["error"]
    assert error["exit_code"] == 8 and error["field"] == "--device" and error["hint"] == "use --device cpu"
    assert "cuda:3" in error["message"]


def test_the_device_resolved_is_the_one_reported(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr("apr.train.device.resolve_device", lambda spec: torch.device("cpu"))
    code, stdout, _ = _run(["run", str(model), "hi", "--device", "auto", "--max-tokens", "2", "--json"])
    assert code == 0 and json.loads(stdout)["device"] == "cpu"


def test_the_model_is_loaded_on_the_device_resolved(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import apr.run

    real = apr.run.load_model
    loads: list[tuple[str, object]] = []

    def recording(path: str, *args: object, **kwargs: object) -> object:
        loads.append((path, kwargs.get("device", args[0] if args else "not given")))
        return real(path, device="cpu")

    monkeypatch.setattr("apr.train.device.resolve_device", lambda spec: torch.device("cpu"))
    monkeypatch.setattr("apr.run.load_model", recording)
    code, _, _ = _run(["run", str(model), "hi", "--device", "auto", "--max-tokens", "2", "--json"])
    assert code == 0 and loads == [(str(model), "cpu")]


def test_seconds_are_rounded_to_milliseconds(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.cli.run_cmd.time", _Clock(10.0, 12.12345))
    code, stdout, _ = _run(["run", str(model), "hi", "--max-tokens", "2", "--json"])
    assert code == 0 and json.loads(stdout)["seconds"] == 2.123


def test_a_run_under_a_second_has_its_true_rate(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("apr.run.generate_text", lambda *a, **k: iter(("Paris", " is")))
    monkeypatch.setattr("apr.cli.run_cmd.time", _Clock(1.0, 1.5))
    code, stdout, stderr = _run(["run", str(model), "hi"])
    from tokenizers import Tokenizer

    tokens = len(Tokenizer.from_str(load_model(model).tokenizer.to_str()).encode("Paris is", add_special_tokens=False).ids)
    assert code == 0 and stdout == "Paris is\n"
    assert stderr == f"{tokens} tokens in 0.50s ({tokens * 2:.1f} tok/s)\n"
