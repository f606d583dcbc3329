"""`apr demo`'s command module (apr/cli/demo_cmd.py), issue 23: the commands the story runs, in
order and with their exact arguments, the files it writes itself (the corpus copies, config.json,
the resume report), its ``--json`` document and text ending, a failed step's exit, and where
``contracts verify`` runs.

A real demo trains two models (minutes), so here every `apr` command the story runs is a recording
stand-in for `apr.cli.main.main` that writes the files the next steps read (a stand-in tokenizer
trainer too); `_Story.apr` itself, the folder policy and the story's own writes run for real. The
real commands have their own tests; tests/reliability/test_output_policy.py checks the folder policy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from apr.cli import demo_cmd
from apr.cli.main import build_parser
from apr.cli.main import main as real_main

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SCRATCH = {"final_val_loss": 4.25, "init_val_loss": 6.0}
RESUMED = {"init_val_loss": 4.2509, "final_val_loss": 3.875, "status": "OK"}


class Commands:
    """The stand-in `apr` main: records each call and writes what the next steps read."""

    def __init__(self, codes: dict[str, int] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.codes = codes or {}
        self.resume_epochs = 2

    def __call__(self, argv: list[str]) -> int:
        self.calls.append({"argv": list(argv), "cwd": os.getcwd()})
        command = argv[0]
        if command == "pretrain":
            run_dir = Path(argv[argv.index("--run-dir") + 1])
            count = 3 if "--init" not in argv else self.resume_epochs
            (run_dir / "ckpt").mkdir(parents=True)
            for epoch in range(count):
                (run_dir / "ckpt" / f"epoch-{epoch:03d}.apr").write_bytes(b"weights")
            sys.stdout.write(json.dumps(SCRATCH if "--init" not in argv else RESUMED) + "\n")
            return self.codes.get(command, 0)
        elif "-o" in argv:
            target = Path(argv[argv.index("-o") + 1])
            if command == "tokenize" or (target.suffix == "" and command == "export"):
                target.mkdir(parents=True)
                (target / "part").write_text(command)
            else:
                target.write_text(command)
        sys.stdout.write(f"[{command} output]\n")
        return self.codes.get(command, 0)


@pytest.fixture()
def commands(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Commands:
    import apr.cli.main
    import apr.tokenizer

    recorder = Commands()
    monkeypatch.setattr(apr.cli.main, "main", recorder)
    trained: list[tuple[list[Path], Path]] = []

    def train_bpe(files: list[Path], out_dir: Path) -> Path:
        trained.append((list(files), Path(out_dir)))
        Path(out_dir).mkdir()
        (Path(out_dir) / "tokenizer.json").write_text("{}")
        return Path(out_dir)

    monkeypatch.setattr(apr.tokenizer, "train_byte_level_bpe", train_bpe)
    recorder.trained = trained  # type: ignore[attr-defined]
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.setattr(demo_cmd, "_project_root", lambda: project)
    recorder.project = project  # type: ignore[attr-defined]
    return recorder


def demo(tmp_path: Path, capsys, *flags: str) -> tuple[int, str, str, Path]:
    out = tmp_path / "demo-out"
    capsys.readouterr()
    code = real_main(["demo", "-o", str(out), *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, out


def expected_argvs(r: Path, project: Path | None) -> list[list[str]]:
    corpus = [str(r / "corpus" / n) for n in sorted(demo_cmd.TRAIN_FILES)]
    held_out = [str(r / "val-corpus" / n) for n in sorted(demo_cmd.VAL_FILES)]
    run = ["--batch-size", "8", "--seq-length", "64", "--device", "cpu", "--seed", "7", "--lr", "5e-3"]
    model = f"{r}/model.apr"
    argvs = [
        ["tokenize", *corpus, "--tokenizer", f"{r}/tokenizer", "-o", f"{r}/data"],
        ["tokenize", *held_out, "--tokenizer", f"{r}/tokenizer", "-o", f"{r}/val"],
        ["pretrain", "--dataset", f"{r}/data", "--val-shard", f"{r}/val", "--tokenizer", f"{r}/tokenizer",
         "--config", f"{r}/config.json", "--run-dir", f"{r}/runs/scratch", "--mode", "from-scratch",
         "--warmup-steps", "10", "--num-steps", "150", "--steps-per-epoch", "50", *run, "--json"],
        ["pretrain", "--dataset", f"{r}/data", "--val-shard", f"{r}/val", "--run-dir", f"{r}/runs/resume",
         "--init", f"{r}/runs/scratch/ckpt/epoch-002.apr", "--warmup-steps", "5", "--num-steps", "100",
         "--steps-per-epoch", "50", "--force-under-provisioned", *run, "--json"],
        ["stamp", f"{r}/runs/resume/ckpt/epoch-001.apr", "--license", "Apache-2.0", "--data-source", "python-stdlib",
         "--data-license", "PSF-2.0", "--name", "demo-qwen2-tiny", "-o", model],
        ["inspect", model, "--quality"],
        ["qa", model],
        ["export", model, "--format", "safetensors", "-o", f"{r}/export/hf"],
        ["export", model, "--format", "gguf", "--quantize", "q4_k", "-o", f"{r}/export/model-q4_k.gguf"],
        ["card", model, "--report", f"{r}/runs/resume/report.json", "--run-dir", f"{r}/runs/resume",
         "-o", f"{r}/MODEL_CARD.md"],
        ["readiness", model, "--model-card", f"{r}/MODEL_CARD.md"],
    ]
    if project is not None:
        argvs.append(["contracts", "verify", "--artifact", model, "--model-card", f"{r}/MODEL_CARD.md"])
    return argvs


TITLES = [
    "tokenize the corpus (byte-level BPE, 512 tokens)",
    "tokenize the held-out text",
    "train a tiny qwen2 from scratch",
    "resume from epoch-002.apr through the --init gates (architecture match, shapes, Chinchilla)",
    "stamp provenance (SPDX-checked licenses; tensor bytes untouched)",
    "inspect with the quality score",
    "QA gates",
    "export to a Hugging Face folder",
    "export to GGUF (Q4_K)",
    "write the model card",
    "publish readiness",
    "verify the readiness contract on this file (artifact-level falsifiers, sha256 in the receipt)",
]


def test_the_story_runs_every_command_in_order(tmp_path: Path, capsys, commands: Commands) -> None:
    code, _out, err, root = demo(tmp_path, capsys, "--json")
    assert code == 0, err
    assert [c["argv"] for c in commands.calls] == expected_argvs(root, commands.project)  # type: ignore[attr-defined]
    cwds = [c["cwd"] for c in commands.calls]
    assert cwds[-1] == str(commands.project) and os.getcwd() != str(commands.project)  # type: ignore[attr-defined]
    assert len(set(cwds[:-1])) == 1 and cwds[0] != str(commands.project)  # type: ignore[attr-defined]
    trained = commands.trained  # type: ignore[attr-defined]
    assert trained == [([root / "corpus" / n for n in sorted(demo_cmd.TRAIN_FILES)], root / "tokenizer")]


def test_the_json_document(tmp_path: Path, capsys, commands: Commands) -> None:
    code, out, err, root = demo(tmp_path, capsys, "--json")
    document = json.loads(out)  # one document: every step's own output was captured
    assert (code, document["schema"], document["command"], document["exit_code"]) == (0, "apr.demo/1", "demo", 0)
    assert (document["verdict"], document["output"]) == ("GO", str(root))
    assert document["checkpoint"] == f"{root}/model.apr"
    assert isinstance(document["seconds"], float) and 0 <= document["seconds"] < 60
    assert document["seconds"] == round(document["seconds"], 1)
    steps = document["steps"]
    assert [s["step"] for s in steps] == TITLES
    argvs = expected_argvs(root, commands.project)  # type: ignore[attr-defined]
    assert [s["command"] for s in steps] == ["apr " + " ".join(a) for a in argvs]
    assert all(s["exit_code"] == 0 and set(s) == {"step", "command", "exit_code", "seconds"} for s in steps)
    assert all(isinstance(s["seconds"], float) and s["seconds"] >= 0 for s in steps)
    assert err == ""  # --json: the story prints nothing of its own


def test_the_story_writes_its_own_files(tmp_path: Path, capsys, commands: Commands) -> None:
    code, _out, _err, root = demo(tmp_path, capsys, "--json")
    assert code == 0
    for folder, names in (("corpus", demo_cmd.TRAIN_FILES), ("val-corpus", demo_cmd.VAL_FILES)):
        assert sorted(p.name for p in (root / folder).iterdir()) == sorted(names)
        for name in names:
            assert (root / folder / name).read_bytes() == (STDLIB / name).read_bytes()
    config = (root / "config.json").read_text(encoding="utf-8")
    assert json.loads(config) == demo_cmd.DEMO_CONFIG and config.endswith("}\n")
    assert config == json.dumps(demo_cmd.DEMO_CONFIG, indent=2) + "\n"
    report = (root / "runs" / "resume" / "report.json").read_text(encoding="utf-8")
    assert report == json.dumps(RESUMED, indent=2)
    # every file the story wrote is recorded as the demo's: a second demo reclaims the folder
    manifest = json.loads((root / ".apr-output.json").read_text())
    assert manifest["command"] == "apr demo"
    assert {"config.json", "model.apr", "MODEL_CARD.md", "runs/resume/report.json",
            "corpus/textwrap.py"} <= set(manifest["files"])
    commands.calls.clear()
    code, *_ = demo(tmp_path, capsys, "--json")
    assert code == 0 and len(commands.calls) == 12


def test_the_text_transcript(tmp_path: Path, capsys, commands: Commands) -> None:
    code, out, err, root = demo(tmp_path, capsys)
    assert code == 0, err
    # captured steps (tokenize, pretrain) keep their output; the others print theirs
    for command in ("stamp", "inspect", "qa", "export", "card", "readiness", "contracts"):
        assert f"[{command} output]" in out
    assert "[tokenize output]" not in out and "[pretrain output]" not in out
    assert f"files: {root}  (checkpoint {root}/model.apr, card {root}/MODEL_CARD.md, exports {root}/export/)" in out
    lines = out.splitlines()
    assert any(line.startswith("GO — the demo checkpoint is ready to publish (") for line in lines)
    for title in TITLES:
        assert f"▶ {title}" in err
    assert f"$ apr stamp {root}/runs/resume/ckpt/epoch-001.apr" in err
    assert f"▶ corpus: {len(demo_cmd.TRAIN_FILES)} CPython stdlib modules → {root / 'corpus'}" in err
    assert ("resume continuity: val_loss of epoch-002.apr = 4.2500, evaluated again after --init = 4.2509; "
            "after resuming: 3.8750") in " ".join(err.split())


def test_outside_a_source_checkout_verify_is_skipped(tmp_path: Path, capsys, commands: Commands,
                                                     monkeypatch) -> None:
    monkeypatch.setattr(demo_cmd, "_project_root", lambda: None)
    code, out, err, root = demo(tmp_path, capsys)
    assert code == 0
    assert [c["argv"] for c in commands.calls] == expected_argvs(root, None)
    assert "contracts verify --artifact: skipped" in err and "[dim]" not in err  # the style read as markup
    commands.calls.clear()
    code, out, err, root = demo(tmp_path / "again", capsys, "--json")
    assert code == 0 and "skipped" not in err and len(json.loads(out)["steps"]) == 11


@pytest.mark.parametrize("as_json", [False, True])
def test_a_failed_step_stops_the_story(tmp_path: Path, capsys, commands: Commands, as_json: bool) -> None:
    commands.codes["qa"] = 1
    code, out, err, root = demo(tmp_path, capsys, *(["--json"] if as_json else []))
    assert code == 1
    assert [c["argv"][0] for c in commands.calls][-1] == "qa"  # nothing after the failed step
    message = f"demo step failed: `apr qa {root}/model.apr` exited 1, expected 0"
    if as_json:
        error = json.loads(out)["error"]
        assert error["message"] == message and error["exit_code"] == 1
        assert error["hint"] == "run that command alone to see its full output"
    else:
        assert message in " ".join(err.split())
    manifest = json.loads((root / ".apr-output.json").read_text())
    assert "model.apr" in manifest["files"]  # what the steps wrote is still the demo's


def test_a_step_that_raises_still_records_what_it_wrote(tmp_path: Path, commands: Commands, monkeypatch) -> None:
    root = tmp_path / "story"
    demo_cmd.claim_folder(root)
    story = demo_cmd._Story(root, quiet=True)

    def raising(argv: list[str]) -> int:
        (root / "partial.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    import apr.cli.main

    monkeypatch.setattr(apr.cli.main, "main", raising)
    with pytest.raises(KeyboardInterrupt):
        story.apr("a step", ["qa", "x"])
    assert "partial.bin" in json.loads((root / ".apr-output.json").read_text())["files"]
    assert story.steps == []


def test_story_apr_returns_the_captured_output(tmp_path: Path, commands: Commands) -> None:
    root = tmp_path / "story"
    demo_cmd.claim_folder(root)
    loud = demo_cmd._Story(root, quiet=False)
    assert (loud.root, loud.quiet, loud.steps) == (root, False, [])
    assert loud.apr("t", ["qa", "m"], capture=True) == "[qa output]\n"
    assert loud.apr("t", ["qa", "m"]) == ""  # not captured: printed, not returned
    commands.codes["qa"] = 5
    assert loud.apr("t", ["qa", "m"], expect=5, capture=True) == "[qa output]\n"
    assert [s["exit_code"] for s in loud.steps] == [0, 0, 5]
    quiet = demo_cmd._Story(root, quiet=True)
    assert quiet.apr("t", ["qa", "m"], expect=5) == "[qa output]\n"  # quiet captures everything
    assert quiet.steps[0]["command"] == "apr qa m"
    assert quiet.apr("t", ["qa", "a b"], expect=5) and quiet.steps[1]["command"] == "apr qa 'a b'"


def test_the_stdlib_folder_is_refused_as_the_output(capsys) -> None:
    code = real_main(["demo", "-o", str(STDLIB), "--json"])
    error = json.loads(capsys.readouterr().out)["error"]
    assert (code, error["code"], error["exit_code"]) == (5, "output-is-input", 5)


def test_run_claims_the_folder_with_the_corpus_as_inputs(tmp_path: Path, monkeypatch) -> None:
    seen: list[tuple[Path, tuple[Path, ...]]] = []
    monkeypatch.setattr(demo_cmd, "claim_folder", lambda root, inputs=(): seen.append((root, inputs)) or [])
    monkeypatch.setattr(demo_cmd, "_tell", lambda args, root, story, stdlib: 7)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    args = argparse.Namespace(output="out", json=True)
    assert demo_cmd.run(args) == 7
    names = (*demo_cmd.TRAIN_FILES, *demo_cmd.VAL_FILES)
    assert seen == [(tmp_path / "out", tuple(STDLIB / n for n in names))]
    assert json.loads((tmp_path / "out" / ".apr-output.json").read_text())["command"] == "apr demo"


def test_the_parser() -> None:
    args = build_parser().parse_args(["demo"])
    assert (args.output, args.json, args.handler, args.needs_extras) == ("demo-out", False, demo_cmd.run, ("train",))
    args = build_parser().parse_args(["demo", "-o", "x", "--json"])
    assert (args.output, args.json) == ("x", True)
    assert build_parser().parse_args(["demo", "--output", "y"]).output == "y"


@pytest.mark.parametrize("present", [(), ("contracts",), ("tests",), ("contracts", "tests")])
def test_the_project_root_needs_both_files(tmp_path: Path, monkeypatch, present: tuple[str, ...]) -> None:
    (tmp_path / "apr" / "cli").mkdir(parents=True)
    (tmp_path / "contracts").mkdir()
    (tmp_path / "tests").mkdir()
    if "contracts" in present:
        (tmp_path / "contracts" / "publish-readiness-v1.yaml").write_text("x")
    else:
        (tmp_path / "contracts" / "publish-readiness-v1.yaml").mkdir()  # not a file
    if "tests" in present:
        (tmp_path / "tests" / "test_publish_readiness_artifact.py").write_text("x")
    monkeypatch.setattr(demo_cmd, "__file__", str(tmp_path / "apr" / "cli" / "demo_cmd.py"))
    assert demo_cmd._project_root() == (tmp_path if len(present) == 2 else None)


def test_the_working_directory_is_restored(tmp_path: Path) -> None:
    before = os.getcwd()
    with pytest.raises(RuntimeError), demo_cmd._working_directory(tmp_path):
        assert os.getcwd() == str(tmp_path)
        raise RuntimeError
    assert os.getcwd() == before


# --- the folder claim, and the transcript's form ----------------------------------------------

def test_a_foreign_folder_is_refused_naming_its_files(tmp_path: Path, capsys, commands: Commands) -> None:
    root = tmp_path / "demo-out"
    root.mkdir()
    (root / "notes.md").write_text("the user's")
    code = real_main(["demo", "-o", str(root), "--json"])
    error = json.loads(capsys.readouterr().out)["error"]
    assert (code, error["exit_code"], error["field"], error["path"]) == (5, 5, "-o", str(root))
    assert error["message"] == ("output folder is not empty and is not a previous `apr demo` folder: "
                                "1 entry ('notes.md')")
    assert error["hint"] == ("choose a new or empty folder, e.g. apr demo -o demo-out-2 (the demo never deletes or "
                             "overwrites files it did not write; files left by an interrupted demo step are listed "
                             "here too)")
    assert commands.calls == [] and sorted(p.name for p in root.iterdir()) == ["notes.md"]


def test_the_claim_makes_missing_parents_and_names_the_demo(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "demo-out"
    assert demo_cmd.claim_folder(root) == []
    assert root.is_dir()
    assert json.loads((root / ".apr-output.json").read_text())["command"] == "apr demo"


def test_each_step_records_its_files_as_the_demos(tmp_path: Path, commands: Commands) -> None:
    root = tmp_path / "story"
    demo_cmd.claim_folder(root)
    story = demo_cmd._Story(root, quiet=True)
    story.apr("t", ["card", "m", "-o", str(root / "card.md")])
    manifest = json.loads((root / ".apr-output.json").read_text())
    assert manifest["command"] == "apr demo" and "card.md" in manifest["files"]
    [step] = story.steps
    assert 0 <= step["seconds"] < 60 and step["seconds"] == round(step["seconds"], 2)


def test_the_transcript_is_rendered_not_printed_as_markup(tmp_path: Path, capsys, commands: Commands) -> None:
    root = tmp_path / "story"
    demo_cmd.claim_folder(root)
    capsys.readouterr()
    demo_cmd._Story(root, quiet=False).apr("a [step]", ["qa", "m[1]"])
    err = capsys.readouterr().err
    assert "▶ a [step]" in err and "$ apr qa 'm[1]'" in err  # escaped text shown as given
    assert "[bold" not in err and "[/]" not in err  # the style tags were read as markup


def test_a_small_stdlib_folder_is_refused_as_the_output(tmp_path: Path, monkeypatch, capsys) -> None:
    """The corpus files are inputs: the folder holding them cannot be the demo's (a stand-in stdlib
    folder, so a mutant that forgets the inputs fails at once instead of walking the real one)."""
    stdlib = tmp_path / "stdlib"
    stdlib.mkdir()
    for name in (*demo_cmd.TRAIN_FILES, *demo_cmd.VAL_FILES):
        (stdlib / name).write_text("x = 1\n")
    monkeypatch.setattr(demo_cmd.sysconfig, "get_paths", lambda: {"stdlib": str(stdlib)})
    code = real_main(["demo", "-o", str(stdlib), "--json"])
    error = json.loads(capsys.readouterr().out)["error"]
    assert (code, error["code"]) == (5, "output-is-input")
    assert sorted(p.name for p in stdlib.iterdir()) == sorted((*demo_cmd.TRAIN_FILES, *demo_cmd.VAL_FILES))


def test_a_resumed_run_that_stopped_early_is_stamped_from_its_last_epoch(tmp_path: Path, capsys,
                                                                         commands: Commands) -> None:
    commands.resume_epochs = 1  # an early stop after the first epoch of the resumed run
    code, _out, err, root = demo(tmp_path, capsys, "--json")
    assert code == 0, err
    stamp = next(c["argv"] for c in commands.calls if c["argv"][0] == "stamp")
    assert stamp[1] == f"{root}/runs/resume/ckpt/epoch-000.apr"
