"""`--keep-last K` (apr/train/retention.py), in-process on hand-written state files (issue 23).

What retention may delete is the one thing that must never go wrong: only this run's checkpoints
(its ``run_id`` in a readable state), only beyond the last K and the best epoch, and every file of a
pruned checkpoint with its state JSON first. Nothing is trained; the states are the JSON documents
`read_state_document` accepts, beside placeholder files whose bytes are checked afterwards.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apr.train.retention import Kept, choose_kept, prune_checkpoints, run_checkpoints
from apr.train.train_state import STATE_FORMAT, STATE_VERSION, DataCursor, Progress

RUN = "run-ours"
OTHER = "run-other"


def write_checkpoint(folder: Path, stem: str, *, step: int, kind: str, run_id: str = RUN,
                     val_loss: float | None = None, sidecar: bool | None = None) -> dict[str, bytes]:
    """``stem.apr``, its state pair and (for an epoch checkpoint, by default) its metadata sidecar;
    returns every file written, by name, with its bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {"format": STATE_FORMAT, "version": STATE_VERSION, "checkpoint": f"{stem}.apr", "apr_sha256": "0",
                "tensors_sha256": "0", "run_id": run_id, "kind": kind, "val_loss": val_loss,
                "progress": Progress(step=step).to_json(), "data_cursor": DataCursor(7, step).to_json(),
                "optimizer": {}, "rng": {}, "fingerprint": {}}
    files = {f"{stem}.apr": f"apr {stem}".encode(), f"{stem}.state.safetensors": f"tensors {stem}".encode(),
             f"{stem}.state.json": json.dumps(document).encode()}
    if sidecar if sidecar is not None else kind == "epoch":
        files[f"{stem}.metadata.json"] = f"sidecar {stem}".encode()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


# --- choose_kept ----------------------------------------------------------------------------------

ENTRY = st.tuples(st.integers(0, 30), st.booleans(),
                  st.one_of(st.none(), st.sampled_from([math.nan, math.inf, -math.inf]), st.floats(0.5, 9.0)))


@given(rows=st.lists(ENTRY, max_size=9, unique_by=lambda row: (row[0], row[1])), keep_last=st.integers(-2, 11))
def test_kept_is_the_last_k_by_step_and_the_best_epoch(rows: list, keep_last: int) -> None:
    """An entry is kept iff fewer than K entries come after it (by step, an epoch checkpoint after a
    step one of the same step), or it is the epoch checkpoint of lowest finite val_loss (the earliest
    of equals). Stated by counting, independently of the slice the function takes."""
    entries = [Kept(step=step, is_epoch=is_epoch, val_loss=val, checkpoint=Path(f"{step}-{is_epoch}"))
               for step, is_epoch, val in rows]
    finite = [e for e in entries if e.is_epoch and e.val_loss is not None and math.isfinite(e.val_loss)]
    best = None
    if finite:
        lowest = min(e.val_loss for e in finite)  # type: ignore[type-var]
        best = min((e for e in finite if e.val_loss == lowest), key=lambda e: e.step).checkpoint
    expected = {e.checkpoint for e in entries
                if sum((o.step, o.is_epoch) > (e.step, e.is_epoch) for o in entries) < keep_last or e.checkpoint == best}
    assert choose_kept(entries, keep_last) == expected


def test_keep_last_zero_keeps_only_the_best_epoch() -> None:
    entries = [Kept(4, True, 3.0, Path("e4")), Kept(8, True, 2.0, Path("e8")), Kept(9, False, None, Path("s9"))]
    assert choose_kept(entries, 0) == {Path("e8")}
    assert choose_kept(entries, 1) == {Path("e8"), Path("s9")}
    assert choose_kept(entries[2:], 0) == set()  # no epoch scored: nothing at all


def test_a_step_checkpoint_never_counts_as_the_best_epoch() -> None:
    """A step checkpoint carrying a val_loss (a near miss: only epoch checkpoints are scored)."""
    entries = [Kept(2, False, 0.1, Path("s2")), Kept(4, True, 5.0, Path("e4")), Kept(6, False, None, Path("s6"))]
    assert choose_kept(entries, 1) == {Path("s6"), Path("e4")}


def test_an_epoch_after_a_step_checkpoint_of_the_same_step() -> None:
    entries = [Kept(8, True, None, Path("e8")), Kept(8, False, None, Path("s8")), Kept(7, False, None, Path("s7"))]
    assert choose_kept(entries, 1) == {Path("e8")}
    assert choose_kept(entries, 2) == {Path("e8"), Path("s8")}


# --- run_checkpoints --------------------------------------------------------------------------------

def test_only_this_runs_readable_states_are_candidates(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Another run's state and an unreadable one sort first: each is skipped, and the listing goes on."""
    write_checkpoint(tmp_path, "a-other", step=1, kind="epoch", run_id=OTHER, val_loss=0.5)
    (tmp_path / "b-broken.state.json").write_text("{not json")
    write_checkpoint(tmp_path, "epoch-000", step=4, kind="epoch", val_loss=3.5)
    write_checkpoint(tmp_path, "step-0000002", step=2, kind="step")
    (tmp_path / "stray.apr").write_bytes(b"no state")
    with caplog.at_level(logging.WARNING, logger="apr.train.retention"):
        entries = run_checkpoints(tmp_path, RUN)
    assert entries == [Kept(step=4, is_epoch=True, val_loss=3.5, checkpoint=tmp_path / "epoch-000.apr"),
                       Kept(step=2, is_epoch=False, val_loss=None, checkpoint=tmp_path / "step-0000002.apr")]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert str(tmp_path / "b-broken.state.json") in caplog.records[0].getMessage()
    assert "cannot be read" in caplog.records[0].getMessage()
    assert run_checkpoints(tmp_path, OTHER) == [Kept(1, True, 0.5, tmp_path / "a-other.apr")]
    assert run_checkpoints(tmp_path, "nobody") == []


def test_the_checkpoint_is_the_one_its_state_names(tmp_path: Path) -> None:
    """The ``.apr`` comes from the state's ``checkpoint`` field, not from the JSON file's name."""
    write_checkpoint(tmp_path, "epoch-001", step=8, kind="epoch", val_loss=2.0)
    document = json.loads((tmp_path / "epoch-001.state.json").read_text())
    (tmp_path / "renamed.state.json").write_text(json.dumps(document))
    (tmp_path / "epoch-001.state.json").unlink()
    assert run_checkpoints(str(tmp_path), RUN) == [Kept(8, True, 2.0, tmp_path / "epoch-001.apr")]


# --- prune_checkpoints ----------------------------------------------------------------------------

def test_prune_removes_every_file_of_the_pruned_and_nothing_else(tmp_path: Path) -> None:
    """K = 1 with the best epoch early: the last step checkpoint and epoch-000 stay, the rest of the
    run goes with all its files (a step checkpoint has no sidecar: no error), strangers stay byte for byte."""
    ours = {}
    ours["epoch-000"] = write_checkpoint(tmp_path, "epoch-000", step=4, kind="epoch", val_loss=2.0)
    ours["epoch-001"] = write_checkpoint(tmp_path, "epoch-001", step=8, kind="epoch", val_loss=3.0)
    ours["step-0000006"] = write_checkpoint(tmp_path, "step-0000006", step=6, kind="step")
    ours["step-0000010"] = write_checkpoint(tmp_path, "step-0000010", step=10, kind="step")
    strangers = write_checkpoint(tmp_path, "other-000", step=1, kind="epoch", run_id=OTHER, val_loss=9.0)
    (tmp_path / "init.apr").write_bytes(b"init weights")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "broken.state.json").write_text("[]")
    before = contents(tmp_path)
    removed = prune_checkpoints(tmp_path, run_id=RUN, keep_last=1)
    assert removed == [tmp_path / "epoch-001.apr", tmp_path / "step-0000006.apr"]  # in the listing's order
    gone = set(ours["epoch-001"]) | set(ours["step-0000006"])
    assert gone == {"epoch-001.apr", "epoch-001.state.json", "epoch-001.state.safetensors", "epoch-001.metadata.json",
                    "step-0000006.apr", "step-0000006.state.json", "step-0000006.state.safetensors"}
    assert contents(tmp_path) == {name: data for name, data in before.items() if name not in gone}
    assert set(strangers) <= set(contents(tmp_path))
    assert prune_checkpoints(tmp_path, run_id=RUN, keep_last=1) == []  # nothing left to prune


def test_prune_tolerates_files_already_gone(tmp_path: Path) -> None:
    """A deletion cut short before leaves a state whose other files are missing: pruned again, no error."""
    write_checkpoint(tmp_path, "epoch-000", step=4, kind="epoch", val_loss=None)
    write_checkpoint(tmp_path, "epoch-001", step=8, kind="epoch", val_loss=None)
    for suffix in (".apr", ".state.safetensors", ".metadata.json"):
        (tmp_path / f"epoch-000{suffix}").unlink()
    assert prune_checkpoints(tmp_path, run_id=RUN, keep_last=1) == [tmp_path / "epoch-000.apr"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch-001.apr", "epoch-001.metadata.json",
                                                         "epoch-001.state.json", "epoch-001.state.safetensors"]


def test_the_state_goes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deletion cut short after the state JSON leaves files `--resume` no longer picks, never a
    state without its checkpoint: the JSON is unlinked before the tensors, the ``.apr`` and the sidecar."""
    write_checkpoint(tmp_path, "epoch-000", step=4, kind="epoch", val_loss=None)
    write_checkpoint(tmp_path, "epoch-001", step=8, kind="epoch", val_loss=None)
    order: list[str] = []
    real_unlink = Path.unlink

    def recording_unlink(self: Path, missing_ok: bool = False) -> None:
        order.append(self.name)
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", recording_unlink)
    prune_checkpoints(tmp_path, run_id=RUN, keep_last=1)
    assert order == ["epoch-000.state.json", "epoch-000.state.safetensors", "epoch-000.apr", "epoch-000.metadata.json"]


def test_prune_logs_each_removal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_checkpoint(tmp_path, "step-0000002", step=2, kind="step")
    write_checkpoint(tmp_path, "step-0000004", step=4, kind="step")
    with caplog.at_level(logging.INFO, logger="apr.train.retention"):
        prune_checkpoints(tmp_path, run_id=RUN, keep_last=1)
    assert [r.getMessage() for r in caplog.records] == [f"--keep-last removed {tmp_path / 'step-0000002.apr'}"]


def test_fewer_checkpoints_than_k_are_all_kept() -> None:
    """Regression (issue 23, found by the property above): with 3 checkpoints and ``--keep-last 4`` the
    slice started at index -1 and kept 1 of them, deleting 2 the run had been told to keep."""
    entries = [Kept(step, False, None, Path(f"s{step}")) for step in (2, 4, 6)]
    for keep_last in (3, 4, 5, 6, 7):
        assert choose_kept(entries, keep_last) == {Path("s2"), Path("s4"), Path("s6")}
    assert choose_kept(entries, 2) == {Path("s4"), Path("s6")}
