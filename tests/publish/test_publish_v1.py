"""Contract apr-publish-v1: `apr publish` refuses NO-GO, stages the repository, makes one commit.

Real checkpoints (a real tokenizer), real exports, read back with safetensors, gguf and
huggingface_hub; the Hub itself is a recording fake (FALSIFY-PUBLISH-004 is the live tier).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from apr.cli.main import main
from apr.readiness import build_card
from tests.readiness.builders import build_checkpoint

pytest.importorskip("torch")  # readiness runs the model (the train extra)

REPO = "paiml/albor-370m-v1"
HF_FILES = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}


class FakeHub:
    """Records every HfApi call `apr publish` makes."""

    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def __init__(self, token: str | None = None) -> None:
        FakeHub.calls.append(("HfApi", {"token": token}))

    def create_repo(self, repo_id: str, **kwargs: Any) -> None:
        FakeHub.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        FakeHub.calls.append(("create_branch", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs: Any) -> Any:
        FakeHub.calls.append(("upload_folder", kwargs))
        return type("Info", (), {"commit_url": f"https://huggingface.co/{kwargs['repo_id']}/commit/abc"})()


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch):
    import huggingface_hub

    FakeHub.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHub)
    monkeypatch.setattr("apr.publish.upload.hub_token", lambda: "hf_test_token")
    return FakeHub


def _card(checkpoint: Path, tmp_path: Path) -> Path:
    card = tmp_path / "CARD.md"
    card.write_text(build_card(checkpoint), encoding="utf-8")
    return card


def _publish(capsys, *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["publish", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture()
def good(tmp_path: Path, tok_meta) -> Path:
    return build_checkpoint(tmp_path / "good.apr", tokenizer=tok_meta)


@pytest.mark.falsifies("FALSIFY-PUBLISH-001")
def test_falsify_publish_001_no_go_stages_and_uploads_nothing(tmp_path: Path, tok_meta, hub, capsys) -> None:
    bad = build_checkpoint(tmp_path / "bad.apr", tokenizer=tok_meta, overrides={"license": None})
    card = _card(build_checkpoint(tmp_path / "ref.apr", tokenizer=tok_meta), tmp_path)
    code, doc = _publish(capsys, REPO, str(bad), "--model-card", str(card), "--staging", str(tmp_path / "stage"))
    assert code == 1 and doc["verdict"] == "NO-GO" and doc["uploaded"] is False and doc["files"] == []
    assert "quality" in doc["readiness"]["blockers"]
    assert all(g["fix"] for g in doc["readiness"]["gates"] if not g["passed"] and not g["skipped"])
    assert not (tmp_path / "stage").exists() and hub.calls == []
    capsys.readouterr()
    assert main(["publish", REPO, str(bad), "--model-card", str(card), "--staging", str(tmp_path / "stage")]) == 1
    assert "nothing staged or uploaded" in capsys.readouterr().out and hub.calls == []


@pytest.mark.falsifies("FALSIFY-PUBLISH-002")
@pytest.mark.parametrize("formats", [("apr", "safetensors", "gguf"), ("apr",), ("safetensors",), ("gguf", "apr")])
def test_falsify_publish_002_staging_is_the_repository(tmp_path: Path, good: Path, formats, capsys) -> None:
    import gguf
    from huggingface_hub import ModelCard
    from safetensors.numpy import load_file

    from apr.format import open_file

    stage = tmp_path / "stage"
    code, doc = _publish(capsys, REPO, str(good), "--model-card", str(_card(good, tmp_path)), "--dry-run",
                         "--staging", str(stage), "--formats", ",".join(formats), "--quantize", "q8_0")
    assert code == 0 and doc["verdict"] == "GO" and doc["uploaded"] is False and doc["dry_run"] is True
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    expected = {"README.md"} | ({"albor-370m-v1.apr"} if "apr" in formats else set()) \
        | (HF_FILES if "safetensors" in formats else set()) | ({"albor-370m-v1-q8_0.gguf"} if "gguf" in formats else set())
    assert {f["path"] for f in doc["files"]} == expected
    assert {p.name for p in stage.iterdir()} == expected | {".apr-publish.json"}
    assert {f["path"]: f["bytes"] for f in doc["files"]} == {p: (stage / p).stat().st_size for p in expected}
    data = ModelCard.load(stage / "README.md").data
    assert (data.apr_sha256, data.apr_readiness, data.library_name) == (digest, "GO", "apr")
    assert doc["sha256"] == digest and set(formats) - {"apr"} <= set(data.tags) and "apr" in data.tags
    if "apr" in formats:
        assert (stage / "albor-370m-v1.apr").read_bytes() == good.read_bytes()
    with open_file(good) as reader:
        names = set(reader.keys())
        tokens = list(reader.metadata["tokenizer.vocabulary"])
        if "safetensors" in formats:
            tensors = load_file(stage / "model.safetensors")
            assert set(tensors) | {"lm_head.weight"} >= names - {"lm_head.weight"}
            for name in tensors:
                np.testing.assert_array_equal(tensors[name], reader.get_float32(name))
    if "gguf" in formats:
        field = gguf.GGUFReader(stage / "albor-370m-v1-q8_0.gguf").fields["tokenizer.ggml.tokens"]
        assert [bytes(field.parts[i]).decode() for i in field.data][: len(tokens)] == tokens


@pytest.mark.falsifies("FALSIFY-PUBLISH-003")
@pytest.mark.parametrize(("revision", "private"), [(None, False), ("v1", True)])
def test_falsify_publish_003_one_commit_with_a_token(tmp_path: Path, good: Path, hub, capsys, revision,
                                                     private) -> None:
    stage = tmp_path / "stage"
    argv = [REPO, str(good), "--model-card", str(_card(good, tmp_path)), "--staging", str(stage),
            "--commit-message", "first"] + (["--revision", revision] if revision else []) + (
                ["--private"] if private else [])
    code, doc = _publish(capsys, *argv)
    assert code == 0 and doc["uploaded"] is True
    assert doc["commit"] == {"repo": REPO, "revision": revision,
                             "commit_url": f"https://huggingface.co/{REPO}/commit/abc"}
    assert hub.calls == [
        ("HfApi", {"token": "hf_test_token"}),
        ("create_repo", {"repo_id": REPO, "repo_type": "model", "private": private, "exist_ok": True}),
        *([("create_branch", {"repo_id": REPO, "branch": revision, "repo_type": "model", "exist_ok": True})]
          if revision else []),
        ("upload_folder", {"folder_path": str(stage), "repo_id": REPO, "repo_type": "model", "revision": revision,
                           "commit_message": "first", "ignore_patterns": [".apr-publish.json"]}),
    ]


@pytest.mark.falsifies("FALSIFY-PUBLISH-003")
def test_falsify_publish_003_no_call_without_a_token_or_with_dry_run(tmp_path: Path, good: Path, hub, capsys,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    card = _card(good, tmp_path)
    code, doc = _publish(capsys, REPO, str(good), "--model-card", str(card), "--staging", str(tmp_path / "a"),
                         "--dry-run")
    assert (code, doc["uploaded"], hub.calls) == (0, False, [])
    monkeypatch.setattr("apr.publish.upload.hub_token", lambda: None)
    capsys.readouterr()
    assert main(["publish", REPO, str(good), "--model-card", str(card), "--staging", str(tmp_path / "b")]) == 0
    text = capsys.readouterr().out
    assert "no Hugging Face token" in text and f"create_repo({REPO!r}, exist_ok=True)" in text and hub.calls == []


@pytest.mark.falsifies("FALSIFY-PUBLISH-003")
def test_falsify_publish_003_foreign_staging_refused_an_earlier_one_rebuilt(tmp_path: Path, good: Path,
                                                                            capsys) -> None:
    card = _card(good, tmp_path)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    code, doc = _publish(capsys, REPO, str(good), "--model-card", str(card), "--staging", str(foreign),
                         "--dry-run")
    assert code == 5 and doc["error"]["type"] == "OutputExistsError"
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"] and (foreign / "notes.txt").read_text() == "keep me"
    stage = tmp_path / "stage"
    for _ in range(2):  # an earlier publish's staging is ours: rebuilt, same files
        code, doc = _publish(capsys, REPO, str(good), "--model-card", str(card), "--staging", str(stage),
                             "--dry-run", "--formats", "apr")
        assert code == 0 and {p.name for p in stage.iterdir()} == {"README.md", "albor-370m-v1.apr",
                                                                   ".apr-publish.json"}
    (stage / "extra.bin").write_bytes(b"x")  # a file the user added: refused, kept
    code, doc = _publish(capsys, REPO, str(good), "--model-card", str(card), "--staging", str(stage), "--dry-run")
    assert code == 5 and "extra.bin" in doc["error"]["message"] and (stage / "extra.bin").exists()
    assert not list(tmp_path.glob(".stage.tmp-*"))


@pytest.mark.parametrize(("argv", "field"), [
    (["not-a-repo"], "REPO"), (["a/b--c"], "REPO"), (["a/b", "--formats", "apr,onnx"], "--formats"),
    (["a/b", "--formats", ","], "--formats"),
])
def test_bad_arguments_are_usage_errors(tmp_path: Path, good: Path, capsys, argv, field) -> None:
    repo, *rest = argv
    code, doc = _publish(capsys, repo, str(good), "--model-card", str(_card(good, tmp_path)), *rest)
    assert code == 64 and doc["error"]["field"] == field
    assert not list(tmp_path.glob("*.publish"))


def test_repo_ids_as_the_hub_takes_them() -> None:
    from apr.errors import UsageError
    from apr.publish import check_repo_id

    for good_id in ("paiml/albor-370m-v1", "a/b", "A1/b.c_d-e", "o/" + "n" * 96):
        assert check_repo_id(good_id) == good_id
    for bad_id in ("paiml", "/b", "a/", "a/b/c", "a/-b", "a/b-", "a/b..c", "a/b.git", "a b/c", "o/" + "n" * 97):
        with pytest.raises(UsageError):
            check_repo_id(bad_id)


@pytest.mark.falsifies("FALSIFY-PUBLISH-004")
def test_falsify_publish_004_live(tmp_path: Path, good: Path, capsys) -> None:
    repo = os.environ.get("HF_PUBLISH_TEST_REPO")
    if not os.environ.get("HF_TOKEN") or not repo:
        pytest.skip("requires network and hf-token: HF_TOKEN and HF_PUBLISH_TEST_REPO are not set")
    from huggingface_hub import HfApi

    code, doc = _publish(capsys, repo, str(good), "--model-card", str(_card(good, tmp_path)), "--staging",
                         str(tmp_path / "stage"))
    assert code == 0 and doc["uploaded"] is True
    listed = set(HfApi().list_repo_files(repo))
    assert {f["path"] for f in doc["files"]} <= listed


def test_formats_parse_in_canonical_order() -> None:
    from apr.publish.staging import parse_formats

    for combo in itertools.permutations(["gguf", "apr", "safetensors"], 2):
        assert parse_formats(",".join(combo)) == tuple(f for f in ("apr", "safetensors", "gguf") if f in combo)


def test_a_refused_staging_folder_is_refused_before_the_gates_run(tmp_path: Path, good: Path, capsys,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def no_gates(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the readiness gates ran for a publish whose staging folder is refused")

    monkeypatch.setattr("apr.readiness.run_readiness", no_gates)
    code, doc = _publish(capsys, REPO, str(good), "--model-card", str(_card(good, tmp_path)), "--staging",
                         str(good), "--dry-run")
    assert code == 5 and doc["error"]["type"] == "OutputExistsError"
