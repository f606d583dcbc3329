"""`apr demo [-o DIR] [--json]`: the README's main job — the whole GO / NO-GO story, offline.

On an embedded default (CPython's own standard-library sources as the corpus), it runs the
commands a person would type, printing each one: train a byte-level BPE, tokenize, train a tiny
qwen2 from scratch, resume from a checkpoint through the `--init` gates, stamp provenance,
`inspect --quality`, `qa`, export to safetensors and GGUF, write a model card, `readiness`
→ GO, and (in a source checkout) `contracts verify --artifact`: the same gates as contract
falsifiers, the verdict bound to the file's sha256. About two minutes on two CPU cores; it says where its files went.

Its folder goes through the output policy (`apr.format.outputs`): a new or empty folder, or one a
previous `apr demo` wrote, whose recorded files are removed first; any other non-empty folder is
refused (the demo has no ``--force`` and never deletes or overwrites a file it did not write). The
folder's manifest is written before the first step and refreshed after each one, so a demo that
stops half-way is still recognised by the next.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import shutil
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from apr.cli import exit_codes
from apr.cli.output import emit_result, err, escape, out
from apr.errors import AprError, OutputExistsError

# A real, always-present corpus: plain-text-like stdlib modules (~90 KB train, ~20 KB held out).
TRAIN_FILES = ("textwrap.py", "string.py", "shlex.py", "fnmatch.py", "heapq.py", "bisect.py", "glob.py", "colorsys.py")
VAL_FILES = ("sched.py", "stat.py")

DEMO_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "vocab_size": 512,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 256,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
_RUN = ["--batch-size", "8", "--seq-length", "64", "--device", "cpu", "--seed", "7", "--lr", "5e-3"]
DEMO_COMMAND = "apr demo"  # the owner named in the folder's manifest


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole story on an embedded default: train, stamp, qa, export, readiness")
    p.add_argument("-o", "--output", default="demo-out", help="folder for the demo's files (default: demo-out)")
    p.add_argument("--json", action="store_true", help="print one JSON document (the step results)")
    p.set_defaults(handler=run, needs_extras=("train",))


class _Story:
    def __init__(self, root: Path, quiet: bool) -> None:
        self.root = root
        self.quiet = quiet
        self.steps: list[dict[str, Any]] = []

    def apr(self, title: str, argv: list[str], *, expect: int = 0, capture: bool = False) -> str:
        """Run one `apr` command in-process, print it like a shell transcript, check its exit code."""
        from apr.cli.main import main

        shown = "apr " + " ".join(shlex.quote(a) for a in argv)
        if not self.quiet:
            err().print(f"\n[bold cyan]▶ {escape(title)}[/]\n[bold]$ {escape(shown)}[/]", markup=True, highlight=False)
        start = time.perf_counter()
        buffer = io.StringIO()
        from apr.format.outputs import record_tree

        try:
            with contextlib.redirect_stdout(buffer) if (capture or self.quiet) else contextlib.nullcontext():
                code = main(argv)
        finally:
            record_tree(self.root, DEMO_COMMAND)  # what this step wrote is the demo's, for the next run
        text = buffer.getvalue()
        self.steps.append({"step": title, "command": shown, "exit_code": code,
                           "seconds": round(time.perf_counter() - start, 2)})
        if code != expect:
            raise AprError(f"demo step failed: `{shown}` exited {code}, expected {expect}",
                           hint="run that command alone to see its full output")
        return text


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """``contextlib.chdir`` of Python 3.11, which the 3.10 floor lacks."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _project_root() -> Path | None:
    """The source checkout holding contracts/ and the readiness artifact tests, if apr runs from one."""
    root = Path(__file__).resolve().parents[2]  # apr/cli/demo_cmd.py -> the checkout
    if (root / "contracts" / "publish-readiness-v1.yaml").is_file() and \
            (root / "tests" / "test_publish_readiness_artifact.py").is_file():
        return root
    return None


def claim_folder(root: Path, inputs: tuple[Path, ...] = ()) -> list[str]:
    """Make ``root`` the demo's: new, empty, or a previous demo's (its recorded files removed, the
    list returned); refuse anything else. The manifest is written at once, claiming the folder.

    Raises:
        OutputExistsError: ``root`` holds files the demo did not write (nothing is touched), or the
            output of another command.
        OutputIsInputError: ``root`` holds or lies inside an input (the stdlib corpus files).
    """
    from apr.format.outputs import check_folder_output, describe_foreign, record_tree, remove_previous

    root.parent.mkdir(parents=True, exist_ok=True)
    target = check_folder_output(root, command=DEMO_COMMAND, force=True, inputs=inputs)
    if target.foreign:
        raise OutputExistsError(
            f"output folder is not empty and is not a previous `apr demo` folder: {describe_foreign(target.foreign)}",
            path=root, field="-o",
            hint="choose a new or empty folder, e.g. apr demo -o demo-out-2 (the demo never deletes or overwrites "
            "files it did not write; files left by an interrupted demo step are listed here too)")
    removed = remove_previous(target)
    root.mkdir(exist_ok=True)
    record_tree(root, DEMO_COMMAND)
    return removed


def run(args: argparse.Namespace) -> int:
    root = Path(args.output).resolve()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    claim_folder(root, tuple(stdlib / name for name in (*TRAIN_FILES, *VAL_FILES)))
    story = _Story(root, quiet=args.json)
    from apr.format.outputs import record_tree

    try:
        return _tell(args, root, story, stdlib)
    finally:
        record_tree(root, DEMO_COMMAND)


def _tell(args: argparse.Namespace, root: Path, story: _Story, stdlib: Path) -> int:
    """The demo's steps, in order (see the module docstring)."""
    console = err()
    started = time.perf_counter()

    corpus, held_out = root / "corpus", root / "val-corpus"
    corpus.mkdir()
    held_out.mkdir()
    for name in TRAIN_FILES:
        shutil.copyfile(stdlib / name, corpus / name)
    for name in VAL_FILES:
        shutil.copyfile(stdlib / name, held_out / name)
    if not args.json:
        console.print(f"[bold cyan]▶ corpus[/]: {len(TRAIN_FILES)} CPython stdlib modules → {escape(corpus)}", markup=True)
    from apr.tokenizer import train_byte_level_bpe

    train_byte_level_bpe(sorted(corpus.iterdir()), root / "tokenizer")
    (root / "config.json").write_text(json.dumps(DEMO_CONFIG, indent=2) + "\n", encoding="utf-8")
    r = str(root)

    story.apr("tokenize the corpus (byte-level BPE, 512 tokens)",
              ["tokenize", *map(str, sorted(corpus.iterdir())), "--tokenizer", f"{r}/tokenizer", "-o", f"{r}/data"], capture=True)
    story.apr("tokenize the held-out text",
              ["tokenize", *map(str, sorted(held_out.iterdir())), "--tokenizer", f"{r}/tokenizer", "-o", f"{r}/val"], capture=True)
    scratch = story.apr(
        "train a tiny qwen2 from scratch",
        ["pretrain", "--dataset", f"{r}/data", "--val-shard", f"{r}/val", "--tokenizer", f"{r}/tokenizer",
         "--config", f"{r}/config.json", "--run-dir", f"{r}/runs/scratch", "--mode", "from-scratch",
         "--warmup-steps", "10", "--num-steps", "150", "--steps-per-epoch", "50", *_RUN, "--json"],
        capture=True,
    )
    scratch_report = json.loads(scratch)
    epochs = sorted((root / "runs" / "scratch" / "ckpt").glob("epoch-*.apr"))
    last = epochs[-1]
    resumed = story.apr(
        f"resume from {last.name} through the --init gates (architecture match, shapes, Chinchilla)",
        ["pretrain", "--dataset", f"{r}/data", "--val-shard", f"{r}/val", "--run-dir", f"{r}/runs/resume",
         "--init", str(last), "--warmup-steps", "5", "--num-steps", "100", "--steps-per-epoch", "50",
         "--force-under-provisioned", *_RUN, "--json"],
        capture=True,
    )
    resume_report = json.loads(resumed)
    (root / "runs" / "resume" / "report.json").write_text(json.dumps(resume_report, indent=2), encoding="utf-8")
    final = sorted((root / "runs" / "resume" / "ckpt").glob("epoch-*.apr"))[-1]
    if not args.json:
        console.print(
            f"  resume continuity: val_loss of {last.name} = {scratch_report.get('final_val_loss'):.4f}, "
            f"evaluated again after --init = {resume_report.get('init_val_loss'):.4f}; "
            f"after resuming: {resume_report.get('final_val_loss'):.4f}",
            highlight=False,
        )
    model = f"{r}/model.apr"
    story.apr("stamp provenance (SPDX-checked licenses; tensor bytes untouched)",
              ["stamp", str(final), "--license", "Apache-2.0", "--data-source", "python-stdlib",
               "--data-license", "PSF-2.0", "--name", "demo-qwen2-tiny", "-o", model])
    story.apr("inspect with the quality score", ["inspect", model, "--quality"])
    story.apr("QA gates", ["qa", model])
    (root / "export").mkdir(exist_ok=True)
    story.apr("export to a Hugging Face folder", ["export", model, "--format", "safetensors", "-o", f"{r}/export/hf"])
    story.apr("export to GGUF (Q4_K)", ["export", model, "--format", "gguf", "--quantize", "q4_k", "-o", f"{r}/export/model-q4_k.gguf"])
    story.apr("write the model card", ["card", model, "--report", f"{r}/runs/resume/report.json", "--run-dir", f"{r}/runs/resume",
                                         "-o", f"{r}/MODEL_CARD.md"])
    story.apr("publish readiness", ["readiness", model, "--model-card", f"{r}/MODEL_CARD.md"])
    project = _project_root()
    if project is not None:  # the same gates as falsifiers of contracts/publish-readiness-v1.yaml, bound to the digest
        with _working_directory(project):
            story.apr("verify the readiness contract on this file (artifact-level falsifiers, sha256 in the receipt)",
                      ["contracts", "verify", "--artifact", model, "--model-card", f"{r}/MODEL_CARD.md"])
    elif not args.json:
        console.print("[dim]▶ contracts verify --artifact: skipped (needs the project's contracts/ and tests/, "
                      "i.e. a source checkout)[/]", markup=True)
    elapsed = time.perf_counter() - started
    if args.json:
        return emit_result("demo", {"verdict": "GO", "output": r, "checkpoint": model, "seconds": round(elapsed, 1),
                                    "steps": story.steps})
    else:
        out().print(f"\n[bold green]GO[/] — the demo checkpoint is ready to publish ({elapsed:.0f} s).", markup=True)
        out().print(f"files: {r}  (checkpoint {model}, card {r}/MODEL_CARD.md, exports {r}/export/)")
    return exit_codes.GO
