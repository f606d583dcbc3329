"""Session fixtures for the trainer's tests (helpers and constants live in `train_fixtures`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train_fixtures import STDLIB, TINY_CONFIG, TINY_RUN, TRAIN_FILES, VAL_FILES, run_cli, train_bpe


@pytest.fixture(scope="session")
def corpus_files() -> list[Path]:
    return [STDLIB / name for name in TRAIN_FILES]


@pytest.fixture(scope="session")
def val_files() -> list[Path]:
    return [STDLIB / name for name in VAL_FILES]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("train")


@pytest.fixture(scope="session")
def tokenizer_dir(workdir: Path, corpus_files: list[Path]) -> Path:
    return train_bpe(corpus_files, workdir / "tokenizer")


@pytest.fixture(scope="session")
def config_path(workdir: Path) -> Path:
    path = workdir / "config.json"
    path.write_text(json.dumps(TINY_CONFIG))
    return path


@pytest.fixture(scope="session")
def dataset_dir(workdir: Path, tokenizer_dir: Path, corpus_files: list[Path]) -> Path:
    out = workdir / "data"
    code, _ = run_cli(["tokenize", *map(str, corpus_files), "--tokenizer", str(tokenizer_dir), "-o", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def val_dir(workdir: Path, tokenizer_dir: Path, val_files: list[Path]) -> Path:
    out = workdir / "val"
    code, _ = run_cli(["tokenize", *map(str, val_files), "--tokenizer", str(tokenizer_dir), "-o", str(out)])
    assert code == 0
    return out


def _pretrain(run_dir: Path, dataset_dir: Path, val_dir: Path, tokenizer_dir: Path, config_path: Path,
              *flags: str) -> dict:
    """`apr pretrain --json` from scratch in-process; returns its report."""
    import io
    from contextlib import redirect_stdout

    from apr.cli.main import main

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = main(["pretrain", "--dataset", str(dataset_dir), "--val-shard", str(val_dir),
                     "--tokenizer", str(tokenizer_dir), "--run-dir", str(run_dir), "--config", str(config_path),
                     "--mode", "from-scratch", *flags, *TINY_RUN, "--json"])
    assert code == 0, buffer.getvalue()
    return json.loads(buffer.getvalue())


@pytest.fixture(scope="session")
def trained_run(workdir: Path, dataset_dir: Path, val_dir: Path, tokenizer_dir: Path, config_path: Path) -> dict:
    """A from-scratch run long enough to learn (~1.7 nats below ln V): 4 epochs of 50 steps.

    Returns the run's --json report, with ``run_dir`` set.
    """
    return _pretrain(workdir / "scratch-run", dataset_dir, val_dir, tokenizer_dir, config_path,
                     "--lr", "5e-3", "--warmup-steps", "10", "--num-steps", "200", "--steps-per-epoch", "50")


@pytest.fixture(scope="session")
def short_run(workdir: Path, dataset_dir: Path, val_dir: Path, tokenizer_dir: Path, config_path: Path) -> dict:
    """The same model and flags for 4 epochs of one step each: real checkpoints of the tiny config
    (identity, shapes, tokenizer, sidecars, recorded val_loss) for tests that do not need a
    *trained* model. Cheap, so the mutant runs of those tests do not pay for `trained_run`'s 200
    steps."""
    return _pretrain(workdir / "short-run", dataset_dir, val_dir, tokenizer_dir, config_path,
                     "--num-steps", "4", "--steps-per-epoch", "1")
