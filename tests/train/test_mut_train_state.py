"""The training state beside a checkpoint (apr/train/train_state.py), key by key (issue 23).

The state JSON is stored and read back by another process, maybe another apr version: every key
and every refusal of a state that lies (another checkpoint's, another sampler's, a malformed one)
is checked here in-process on a one-layer model; nothing is trained.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from apr.errors import AprFileNotFoundError, ResumeError
from apr.train import train_state
from apr.train.train_state import (
    MAX_STATE_JSON_BYTES,
    SAMPLER,
    STATE_FORMAT,
    STATE_VERSION,
    DataCursor,
    Progress,
    capture_rng,
    load_train_state,
    optimizer_to_state,
    read_state_document,
    restore_optimizer,
    restore_rng,
    sha256_bytes,
    state_paths,
    verify_pair,
    write_train_state,
)

FINGERPRINT = {"world_size": 1, "run": {"seed": 7}}


def stepped_adamw() -> torch.optim.Optimizer:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.9), weight_decay=0.25)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    return optimizer


def save(folder: Path, stem: str = "epoch-000", *, progress: Progress | None = None, val_loss: float | None = 2.5,
         optimizer: torch.optim.Optimizer | None = None) -> tuple[Path, Path]:
    """A placeholder ``stem.apr`` and its state; returns ``(checkpoint, state.json)``."""
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / f"{stem}.apr"
    checkpoint.write_bytes(f"weights {stem}".encode())
    json_path = write_train_state(checkpoint, apr_sha256=hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
                                  run_id="run-1", kind="epoch", progress=progress or Progress(step=4, epoch=1),
                                  cursor=DataCursor(11, 4), optimizer=optimizer or stepped_adamw(),
                                  fingerprint=FINGERPRINT, val_loss=val_loss)
    return checkpoint, json_path


def rewrite(json_path: Path, **changes: object) -> None:
    document = json.loads(json_path.read_text())
    document.update(changes)
    json_path.write_text(json.dumps(document))


# --- the records ----------------------------------------------------------------------------------

def test_constants_are_the_stored_format() -> None:
    assert (STATE_FORMAT, STATE_VERSION, SAMPLER) == ("apr-train-state", 1, "with-replacement-seed-step-v1")
    assert MAX_STATE_JSON_BYTES == 64 * 1024 * 1024


def test_data_cursor() -> None:
    assert DataCursor(3, 5).advanced() == DataCursor(3, 6)
    assert DataCursor(3).advanced().advanced() == DataCursor(3, 2)
    assert DataCursor(3, 5).to_json() == {"sampler": "with-replacement-seed-step-v1", "seed": 3, "position": 5}


def test_progress_to_json_key_by_key() -> None:
    progress = Progress(step=9, epoch=2, tokens_seen=4608, epoch_losses=[0.5], grad_norm_max=1.5, history=[5.0, 4.0],
                        best=4.0, patience=1, checkpoints=["a.apr"], init_val_loss=6.0, stop_status="EARLY_STOP",
                        stop_detail="why")
    assert progress.to_json() == {"step": 9, "epoch": 2, "tokens_seen": 4608, "epoch_losses": [0.5],
                                  "grad_norm_max": 1.5, "history": [5.0, 4.0], "best": 4.0, "patience": 1,
                                  "checkpoints": ["a.apr"], "init_val_loss": 6.0, "stop_status": "EARLY_STOP",
                                  "stop_detail": "why"}
    fresh = Progress().to_json()
    assert (fresh["best"], fresh["init_val_loss"], fresh["step"]) == (None, None, 0)
    for value in (math.nan, math.inf, -math.inf):
        assert Progress(init_val_loss=value).to_json()["init_val_loss"] is None
    assert Progress(init_val_loss=0.0).to_json()["init_val_loss"] == 0.0
    assert Progress(best=-math.inf).to_json()["best"] is None and Progress(best=0.0).to_json()["best"] == 0.0


def test_state_paths() -> None:
    assert state_paths("d/epoch-003.apr") == (Path("d/epoch-003.state.safetensors"), Path("d/epoch-003.state.json"))
    assert state_paths(Path("a.apr.apr")) == (Path("a.apr.state.safetensors"), Path("a.apr.state.json"))


def test_sha256_bytes() -> None:
    assert sha256_bytes(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# --- generators -----------------------------------------------------------------------------------

def test_capture_rng_records_every_generator() -> None:
    random.seed(1)
    random.gauss(0.0, 1.0)  # leaves gauss_next set
    np.random.seed(2)
    np.random.standard_normal()  # leaves a cached gaussian
    version, mt, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    record, tensors = capture_rng()
    assert record == {"python": {"version": version, "gauss_next": gauss},
                      "numpy": {"kind": "MT19937", "pos": int(pos), "has_gauss": 1, "cached_gaussian": float(cached)},
                      "cuda_devices": 0}
    assert gauss is not None and has_gauss == 1
    assert set(tensors) == {"rng.python", "rng.numpy", "rng.torch"}
    assert tensors["rng.python"].dtype == torch.int64 and tensors["rng.python"].tolist() == list(mt)
    assert tensors["rng.numpy"].dtype == torch.int64 and tensors["rng.numpy"].tolist() == keys.tolist()
    assert torch.equal(tensors["rng.torch"], torch.get_rng_state())


def test_gauss_caches_come_back() -> None:
    """Both cached gaussians (Python's ``gauss_next``, numpy's ``cached_gaussian``) and the positions."""
    random.seed(3)
    random.gauss(0.0, 1.0)
    np.random.seed(4)
    np.random.standard_normal()
    np.random.randint(0, 10, size=3)
    record, tensors = capture_rng()
    record = json.loads(json.dumps(record))
    expected = (random.gauss(0.0, 1.0), float(np.random.standard_normal()), int(np.random.randint(0, 1 << 30)))
    random.seed(0)
    np.random.seed(0)
    restore_rng(record, tensors)
    assert (random.gauss(0.0, 1.0), float(np.random.standard_normal()), int(np.random.randint(0, 1 << 30))) == expected


def test_cuda_generators_are_captured_only_once_cuda_is_initialised(monkeypatch: pytest.MonkeyPatch) -> None:
    states = [torch.tensor([1], dtype=torch.uint8), torch.tensor([2], dtype=torch.uint8)]
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    record, tensors = capture_rng()
    assert record["cuda_devices"] == 0 and not any(name.startswith("rng.cuda") for name in tensors)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    record, tensors = capture_rng()
    assert record["cuda_devices"] == 2 and tensors["rng.cuda.0"] is states[0] and tensors["rng.cuda.1"] is states[1]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert capture_rng()[0]["cuda_devices"] == 0


def test_cuda_generators_are_restored_on_the_devices_present(monkeypatch: pytest.MonkeyPatch) -> None:
    record, tensors = capture_rng()
    tensors = {**tensors, "rng.cuda.0": torch.tensor([1]), "rng.cuda.1": torch.tensor([2])}
    restored: list[list[torch.Tensor]] = []
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    restore_rng({**record, "cuda_devices": 2}, tensors)
    assert restored == [[tensors["rng.cuda.0"]]]  # one device here: its generator only
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    restore_rng({**record, "cuda_devices": 2}, tensors)
    assert restored[1] == [tensors["rng.cuda.0"], tensors["rng.cuda.1"]]
    restore_rng({**record, "cuda_devices": 0}, tensors)  # saved without CUDA: nothing to put back
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restore_rng({**record, "cuda_devices": 2}, tensors)  # saved with CUDA, resumed without
    assert len(restored) == 2


# --- optimizer ------------------------------------------------------------------------------------

def test_optimizer_to_state_splits_tensors_and_the_rest() -> None:
    optimizer = stepped_adamw()
    first = optimizer.param_groups[0]["params"][0]
    optimizer.state[first]["note"] = 3  # a non-tensor state value (some optimizers keep ints)
    record, tensors = optimizer_to_state(optimizer)
    assert set(tensors) == {f"optimizer.{i}.{key}" for i in (0, 1) for key in ("step", "exp_avg", "exp_avg_sq")}
    assert record["scalars"] == {"0": {"note": 3}}
    assert torch.equal(tensors["optimizer.1.exp_avg"], optimizer.state[optimizer.param_groups[0]["params"][1]]["exp_avg"])
    assert tensors["optimizer.1.exp_avg"].data_ptr() != optimizer.state[optimizer.param_groups[0]["params"][1]][
        "exp_avg"].data_ptr()  # a copy: the next step does not change what is saved
    (group,) = record["param_groups"]
    assert group["betas"] == [0.8, 0.9] and group["weight_decay"] == 0.25 and group["params"] == [0, 1]
    json.dumps(record)  # JSON as it stands


def test_restore_optimizer_puts_back_every_value() -> None:
    optimizer = stepped_adamw()
    params = optimizer.param_groups[0]["params"]
    optimizer.state[params[0]]["note"] = 3
    optimizer.state[params[1]]["odd.key.with.dots"] = torch.tensor([3.0])
    record, tensors = optimizer_to_state(optimizer)
    record = json.loads(json.dumps(record))
    fresh = torch.optim.AdamW(params, lr=5.0)
    restore_optimizer(fresh, record, {**tensors, "rng.torch": torch.get_rng_state()})  # others' tensors ignored
    assert fresh.param_groups[0]["betas"] == (0.8, 0.9) and fresh.param_groups[0]["lr"] == 1e-2
    assert fresh.state[params[0]]["note"] == 3
    assert torch.equal(fresh.state[params[1]]["odd.key.with.dots"], torch.tensor([3.0]))
    for param in params:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(fresh.state[param][key], optimizer.state[param][key])


# --- writing ----------------------------------------------------------------------------------------

def test_write_train_state_key_by_key(tmp_path: Path) -> None:
    from safetensors import safe_open

    progress = Progress(step=4, epoch=1, best=3.0)
    checkpoint, json_path = save(tmp_path, progress=progress)
    tensors_path = tmp_path / "epoch-000.state.safetensors"
    assert json_path == tmp_path / "epoch-000.state.json"
    text = json_path.read_text(encoding="utf-8")
    document = json.loads(text)
    assert text.endswith("}\n") and text.startswith('{\n "format": "apr-train-state",\n')  # indented, one key a line
    blob = tensors_path.read_bytes()
    assert list(document) == ["format", "version", "checkpoint", "apr_sha256", "tensors_sha256", "run_id", "kind",
                              "val_loss", "progress", "data_cursor", "optimizer", "rng", "grad_scaler", "fingerprint"]
    assert document["format"] == "apr-train-state" and document["version"] == 1
    assert document["checkpoint"] == "epoch-000.apr"
    assert document["apr_sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert document["tensors_sha256"] == hashlib.sha256(blob).hexdigest()
    assert (document["run_id"], document["kind"], document["val_loss"]) == ("run-1", "epoch", 2.5)
    assert document["progress"] == progress.to_json() and document["data_cursor"] == DataCursor(11, 4).to_json()
    assert document["grad_scaler"] is None and document["fingerprint"] == FINGERPRINT
    assert set(document["optimizer"]) == {"param_groups", "scalars"}
    assert set(document["rng"]) == {"python", "numpy", "cuda_devices"}
    with safe_open(tensors_path, "pt") as handle:
        assert handle.metadata() == {"format": "apr-train-state", "apr_sha256": document["apr_sha256"]}
        assert {"rng.python", "rng.numpy", "rng.torch", "optimizer.0.exp_avg"} <= set(handle.keys())


def test_a_nan_val_loss_is_not_written_as_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save(tmp_path, val_loss=math.nan)
    assert not (tmp_path / "epoch-000.state.json").exists()


# --- reading ----------------------------------------------------------------------------------------

def test_read_state_document_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At the limit a state is read; one byte over, refused before it is parsed."""
    _, json_path = save(tmp_path)
    size = json_path.stat().st_size
    monkeypatch.setattr(train_state, "MAX_STATE_JSON_BYTES", size)
    assert read_state_document(json_path)["checkpoint"] == "epoch-000.apr"
    monkeypatch.setattr(train_state, "MAX_STATE_JSON_BYTES", size - 1)
    with pytest.raises(ResumeError) as info:
        read_state_document(json_path)
    assert info.value.message == "the training state is larger than any this trainer writes"
    assert info.value.path == str(json_path)


def test_an_oversized_state_is_not_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over the limit the file is refused for its size, not read: invalid JSON there gives the size
    refusal, not a parse error."""
    path = tmp_path / "x.state.json"
    path.write_bytes(b"{" * 11)
    monkeypatch.setattr(train_state, "MAX_STATE_JSON_BYTES", 10)
    with pytest.raises(ResumeError) as info:
        read_state_document(path)
    assert info.value.message == "the training state is larger than any this trainer writes"


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe{}", None])
def test_an_unreadable_state(tmp_path: Path, data: bytes | None) -> None:
    path = tmp_path / "x.state.json"
    if data is not None:
        path.write_bytes(data)
    with pytest.raises(ResumeError) as info:
        read_state_document(path)
    assert info.value.message.startswith("the training state cannot be read: ")
    assert info.value.hint == "resume from an earlier checkpoint of the run, or start anew with --init"
    assert info.value.path == str(path) and info.value.exit_code == 5


@pytest.mark.parametrize(("document", "message"), [
    ([], "not an 'apr-train-state' document"),
    ({"format": "apr-train-stat", "version": 1}, "not an 'apr-train-state' document"),
    ({"version": 1}, "not an 'apr-train-state' document"),
    ({"format": "apr-train-state"}, "training state version None; this trainer reads 1"),
    ({"format": "apr-train-state", "version": "1"}, "training state version '1'; this trainer reads 1"),
])
def test_another_document_or_version(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "x.state.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ResumeError) as info:
        read_state_document(path)
    assert info.value.message == message and info.value.path == str(path)
    if "version" in message:
        assert info.value.hint == "resume with the apr version that wrote it, or start anew with --init"


@pytest.mark.parametrize("key", ["checkpoint", "apr_sha256", "tensors_sha256", "run_id", "kind", "progress",
                                 "data_cursor", "optimizer", "rng", "fingerprint"])
def test_every_required_key(tmp_path: Path, key: str) -> None:
    _, json_path = save(tmp_path)
    document = json.loads(json_path.read_text())
    del document[key]
    json_path.write_text(json.dumps(document))
    with pytest.raises(ResumeError) as info:
        read_state_document(json_path)
    assert (info.value.message, info.value.field, info.value.path) == (f"the training state has no {key!r}", key,
                                                                       str(json_path))


def test_optional_keys_may_be_absent(tmp_path: Path) -> None:
    _, json_path = save(tmp_path)
    document = json.loads(json_path.read_text())
    for key in ("val_loss", "grad_scaler"):
        del document[key]
    json_path.write_text(json.dumps(document))
    assert read_state_document(json_path) == document
    assert load_train_state(json_path).val_loss is None


# --- the three files belong together ---------------------------------------------------------------

def test_load_train_state_reads_back_what_was_written(tmp_path: Path) -> None:
    optimizer = stepped_adamw()
    progress = Progress(step=4, epoch=1, history=[3.0], best=3.0, checkpoints=["epoch-000.apr"])
    checkpoint, json_path = save(tmp_path, progress=progress, optimizer=optimizer)
    state = load_train_state(str(json_path))
    assert state.checkpoint == checkpoint and state.apr_sha256 == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert (state.run_id, state.kind, state.val_loss) == ("run-1", "epoch", 2.5)
    assert state.progress == progress and state.cursor == DataCursor(11, 4)
    assert type(state.cursor.seed) is int and type(state.cursor.position) is int
    assert state.fingerprint == FINGERPRINT and state.document == json.loads(json_path.read_text())
    assert torch.equal(state.tensors["optimizer.0.exp_avg"],
                       optimizer.state[optimizer.param_groups[0]["params"][0]]["exp_avg"])


def test_cursor_values_are_integers(tmp_path: Path) -> None:
    _, json_path = save(tmp_path)
    rewrite(json_path, data_cursor={"sampler": SAMPLER, "seed": 11.0, "position": "4"})
    state = load_train_state(json_path)
    assert state.cursor == DataCursor(11, 4) and type(state.cursor.seed) is int and type(state.cursor.position) is int


@pytest.mark.parametrize("name", [5, None, "sub/epoch-000.apr", "../epoch-000.apr", "epoch-000.bin", "epoch-000"])
def test_the_checkpoint_must_be_a_apr_beside_the_state(tmp_path: Path, name: object) -> None:
    _, json_path = save(tmp_path)
    rewrite(json_path, checkpoint=name)
    with pytest.raises(ResumeError) as info:
        load_train_state(json_path)
    assert info.value.message == f"the training state names checkpoint {name!r}, not a .apr beside it"
    assert (info.value.field, info.value.path) == ("checkpoint", str(json_path))


@pytest.mark.parametrize("missing", ["epoch-000.apr", "epoch-000.state.safetensors"])
def test_a_missing_partner_file(tmp_path: Path, missing: str) -> None:
    _, json_path = save(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(AprFileNotFoundError) as info:
        load_train_state(json_path)
    assert info.value.message == "the training state names a file that is not there"
    assert info.value.path == str(tmp_path / missing)
    assert info.value.hint == "resume from another checkpoint; epoch-000.state.json cannot be used alone"


def test_a_folder_in_place_of_a_partner_file(tmp_path: Path) -> None:
    _, json_path = save(tmp_path)
    (tmp_path / "epoch-000.state.safetensors").unlink()
    (tmp_path / "epoch-000.state.safetensors").mkdir()
    with pytest.raises(AprFileNotFoundError):
        load_train_state(json_path)


def test_another_checkpoint_is_refused(tmp_path: Path) -> None:
    checkpoint, json_path = save(tmp_path)
    recorded = json.loads(json_path.read_text())["apr_sha256"]
    checkpoint.write_bytes(b"other weights")
    actual = hashlib.sha256(b"other weights").hexdigest()
    with pytest.raises(ResumeError) as info:
        load_train_state(json_path)
    assert info.value.message == (f"the training state does not belong to this checkpoint: its state records sha256 "
                                  f"{recorded[:16]}..., epoch-000.apr has {actual[:16]}...")
    assert (info.value.field, info.value.path) == ("apr_sha256", str(checkpoint))
    assert info.value.hint == ("the .apr was replaced after its state was written; resume from another checkpoint, "
                               "or start a new run from these weights with --init")


def test_another_tensors_file_is_refused(tmp_path: Path) -> None:
    _, json_path = save(tmp_path)
    tensors_path = tmp_path / "epoch-000.state.safetensors"
    save(tmp_path / "other")
    tensors_path.write_bytes((tmp_path / "other" / "epoch-000.state.safetensors").read_bytes())
    with pytest.raises(ResumeError) as info:
        load_train_state(json_path)
    assert info.value.message == "epoch-000.state.safetensors is not the tensors file its state records"
    assert (info.value.field, info.value.path) == ("tensors_sha256", str(tensors_path))
    assert info.value.hint == "resume from another checkpoint of the run"


def test_verify_pair_returns_the_checkpoints_digest(tmp_path: Path) -> None:
    checkpoint, json_path = save(tmp_path)
    tensors_path = tmp_path / "epoch-000.state.safetensors"
    document = json.loads(json_path.read_text())
    assert verify_pair(document, checkpoint, tensors_path, tensors_path.read_bytes()) == document["apr_sha256"]


def test_another_sampler_is_refused(tmp_path: Path) -> None:
    _, json_path = save(tmp_path)
    rewrite(json_path, data_cursor={"sampler": "shuffled-epochs-v0", "seed": 1, "position": 0})
    with pytest.raises(ResumeError) as info:
        load_train_state(json_path)
    assert info.value.message == ("data cursor of sampler 'shuffled-epochs-v0'; this trainer draws with "
                                  "'with-replacement-seed-step-v1'")
    assert (info.value.field, info.value.path) == ("data_cursor", str(json_path))


def test_a_malformed_progress_is_refused(tmp_path: Path) -> None:
    _, json_path = save(tmp_path)
    rewrite(json_path, progress={"step": 4, "learning_rate": 0.1})
    with pytest.raises(ResumeError) as info:
        load_train_state(json_path)
    assert info.value.message.startswith("the training state's progress is malformed: ")
    assert "learning_rate" in info.value.message
    assert (info.value.field, info.value.path) == ("progress", str(json_path))


def test_a_parameter_with_only_non_tensor_state(tmp_path: Path) -> None:
    """Scalars of a parameter index that has no tensor in the state are restored too."""
    params = list(torch.nn.Linear(2, 1).parameters())
    record, _ = optimizer_to_state(torch.optim.SGD(params, lr=0.5))  # plain SGD keeps no state
    record = {**record, "scalars": {"1": {"note": 3}}}
    fresh = torch.optim.SGD(params, lr=5.0)
    restore_optimizer(fresh, record, {})
    assert dict(fresh.state[params[1]]) == {"note": 3} and params[0] not in fresh.state
    assert fresh.param_groups[0]["lr"] == 0.5


class _DeviceRecorder(torch.Tensor):
    """A tensor that records the device each ``.to`` call asks for."""

    asked: list[object] = []  # noqa: RUF012 - shared by the instances torch creates

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is torch.Tensor.to:
            cls.asked.append(args[1] if len(args) > 1 else (kwargs or {}).get("device"))
        return super().__torch_function__(func, types, args, kwargs or {})


def test_the_saved_optimizer_tensors_are_moved_to_the_cpu() -> None:
    """A CUDA run's AdamW state is saved from host memory: each tensor is asked to move to the CPU."""

    class Stub:
        def state_dict(self) -> dict:
            value = torch.ones(2).as_subclass(_DeviceRecorder)
            return {"state": {0: {"exp_avg": value}}, "param_groups": [{"params": [0], "betas": (0.9, 0.95)}]}

    _DeviceRecorder.asked.clear()
    record, tensors = optimizer_to_state(Stub())  # type: ignore[arg-type]
    assert _DeviceRecorder.asked == ["cpu"]
    assert torch.equal(tensors["optimizer.0.exp_avg"], torch.ones(2))
    assert record == {"param_groups": [{"params": [0], "betas": [0.9, 0.95]}], "scalars": {}}
