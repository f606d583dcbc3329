"""Contract apr-cli-v1, FALSIFY-CLI-001/002: every command's ``--json`` output, success and
failure, is the one envelope and validates against the JSON Schema the package publishes for it.

The commands run in process on real files (a tiny APR checkpoint; a runnable one with a trained
tokenizer for the commands that execute the model), and each document is checked by
`apr.cli.schemas.validate_document` against the shipped file its ``schema`` names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apr.cli.main import build_parser, main
from apr.cli.output import ENVELOPE_KEYS, envelope, schema_name
from apr.cli.schemas import commands, load_schema, validate_document
from tests.readiness.builders import build_checkpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTED = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 64, 70, 130]
# Commands whose output is not a JSON document (they take no --json).
NOT_JSON = {"completion"}


class Files:
    """The inputs every case may use, built once per test in ``tmp_path``."""

    def __init__(self, root: Path, tok: dict[str, Any] | None) -> None:
        from tests.reliability import cli_targets as ct

        self.root = root
        self.tiny = root / "m.apr"
        tensors, metadata, flags = ct._base_model()
        ct.write_with_raw_metadata(self.tiny, tensors, metadata, flags)
        self.garbage = root / "garbage.apr"
        self.garbage.write_bytes(b"not an apr file at all" * 8)
        self.tok = tok

    @property
    def runnable(self) -> Path:
        path = self.root / "run.apr"
        if not path.exists():
            build_checkpoint(path, tokenizer=self.tok)
        return path

    @property
    def card(self) -> Path:
        path = self.root / "CARD.md"
        if not path.exists():
            from apr.readiness import build_card

            path.write_text(build_card(self.runnable), encoding="utf-8")
        return path

    @property
    def corpus(self) -> Path:
        path = self.root / "corpus.txt"
        path.write_text("the quick brown fox jumps over the lazy dog. " * 200, encoding="utf-8")
        return path

    @property
    def shards(self) -> Path:
        folder = self.root / "data"
        if not folder.exists():
            assert main(["tokenize", str(self.corpus), "--tokenizer", str(self.runnable), "-o", str(folder)]) == 0
        return folder


Argv = Callable[[Files], list[str]]
# (id, argv, expected exit code, needs torch)
CASES: list[tuple[str, Argv, int, bool]] = [
    ("inspect", lambda f: ["inspect", str(f.tiny), "--quality"], 0, False),
    ("inspect-missing", lambda f: ["inspect", str(f.root / "none.apr")], 3, False),
    ("inspect-typo", lambda f: ["inspect", str(f.tiny), "--qualty"], 64, False),
    ("validate", lambda f: ["validate", str(f.tiny)], 0, False),
    ("validate-garbage", lambda f: ["validate", str(f.garbage)], 5, False),
    ("stamp", lambda f: ["stamp", str(f.tiny), "--name", "n", "-o", str(f.root / "s.apr")], 0, False),
    ("stamp-recover", lambda f: ["stamp", str(f.tiny), "--recover"], 0, False),
    ("stamp-no-output", lambda f: ["stamp", str(f.tiny), "--name", "n"], 64, False),
    ("diff", lambda f: ["diff", str(f.tiny), str(f.tiny)], 0, False),
    ("diff-different", lambda f: (main(["stamp", str(f.tiny), "--name", "other", "-o", str(f.root / "o.apr")]),
                                  ["diff", str(f.tiny), str(f.root / "o.apr")])[1], 1, False),
    ("card", lambda f: ["card", str(f.tiny), "-o", str(f.root / "c.md")], 0, False),
    ("export-gguf", lambda f: ["export", str(f.tiny), "-o", str(f.root / "e.gguf")], 0, False),
    ("export-folder", lambda f: ["export", str(f.tiny), "-o", str(f.root / "hf")], 0, False),
    ("export-contradiction", lambda f: ["export", str(f.tiny), "--format", "safetensors", "-o", "x.gguf"], 64, False),
    ("import", lambda f: (main(["export", str(f.tiny), "-o", str(f.root / "hf")]),
                          ["import", str(f.root / "hf"), "-o", str(f.root / "back.apr")])[1], 0, False),
    ("tokenize", lambda f: ["tokenize", str(f.corpus), "--tokenizer", str(f.runnable), "-o", str(f.root / "t")], 0, False),
    ("contracts-list", lambda f: ["contracts", "list"], 0, False),
    ("contracts-show", lambda f: ["contracts", "show", "FALSIFY-CLI-001"], 0, False),
    ("contracts-show-missing", lambda f: ["contracts", "show", "FALSIFY-CLI-999"], 3, False),
    ("contracts-lint", lambda f: ["contracts", "lint", "contracts/apr-cli-v1.yaml"], 0, False),
    ("contracts-diff", lambda f: ["contracts", "diff", "contracts/apr-cli-v1.yaml", "contracts/apr-cli-v1.yaml"], 0, False),
    ("contracts-diff-missing", lambda f: ["contracts", "diff", "contracts/apr-cli-v1.yaml", str(f.root / "none.yaml")],
     3, False),
    ("contracts-verify-missing-artifact", lambda f: ["contracts", "verify", "--artifact", str(f.root / "none.apr")],
     3, False),
    ("contracts-typo", lambda f: ["contracts", "verfy"], 64, False),
    ("apr-typo", lambda f: ["inspct", str(f.tiny)], 64, False),
    ("apr-nothing", lambda f: [], 64, False),
    ("pretrain-missing-data", lambda f: ["pretrain", "--dataset", str(f.root / "none"), "--run-dir",
                                         str(f.root / "r"), "--init", str(f.runnable), "--seq-length", "16",
                                         "--force-under-provisioned"], 3, True),
    ("qa", lambda f: ["qa", str(f.runnable), "--skip-throughput", "--skip-format-parity"], 0, True),
    ("readiness", lambda f: ["readiness", str(f.runnable), "--model-card", str(f.card)], 0, True),
    ("run", lambda f: ["run", str(f.runnable), "the quick", "--max-tokens", "3", "--device", "cpu"], 0, True),
    ("publish-dry-run", lambda f: ["publish", "paiml/tiny", str(f.runnable), "--model-card", str(f.card),
                                   "--dry-run", "--staging", str(f.root / "stage")], 0, True),
    ("pretrain", lambda f: ["pretrain", "--dataset", str(f.shards), "--init", str(f.runnable), "--run-dir",
                            str(f.root / "run"), "--num-steps", "2", "--seq-length", "16", "--batch-size", "2",
                            "--force-under-provisioned", "--device", "cpu"], 0, True),
]


def _run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    try:
        code = main([*argv, "--json"])
    except SystemExit as done:  # argparse's usage errors leave through SystemExit
        code = int(done.code)
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.fixture()
def files(tmp_path: Path, tok_meta: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Files:
    monkeypatch.chdir(REPO_ROOT)  # the contracts commands read this project's contracts/
    monkeypatch.setenv("HF_TOKEN", "")
    monkeypatch.setattr("apr.publish.upload.hub_token", lambda: None)
    return Files(tmp_path, tok_meta)


@pytest.mark.falsifies("FALSIFY-CLI-001")
@pytest.mark.parametrize(("argv", "expected", "torch"), [pytest.param(a, c, t, id=i) for i, a, c, t in CASES])
def test_falsify_cli_001_every_command_writes_its_published_envelope(argv: Argv, expected: int, torch: bool,
                                                                     files: Files, capsys) -> None:
    if torch:
        pytest.importorskip("torch")
    words = argv(files)
    code, document = _run_json(words, capsys)
    assert code == expected, document
    validate_document(document)
    assert list(document)[:5] == list(ENVELOPE_KEYS)
    assert document["exit_code"] == code and document["ok"] is (code == 0)
    if code in (3, 4, 64):  # raised: the error object; a verdict (1, or validate's 5) is a report
        assert document["error"]["exit_code"] == code
    command = document["command"]
    assert document["schema"] == schema_name(command)
    assert command == " ".join(w for w in words[:2] if w in _paths()) or command == "apr"


def _paths() -> set[str]:
    from apr.cli.completion_cmd import command_tree

    return {word for path in command_tree(build_parser(None)) for word in path.split()}


def test_every_command_has_a_published_schema_and_a_case() -> None:
    """A command added later without a schema (or a schema no case exercises) fails here."""
    from apr.cli.completion_cmd import command_tree

    registered = {path or "apr" for path in command_tree(build_parser(None))} - NOT_JSON
    assert set(commands()) == registered
    run = {schema_name_of(case) for case in CASES}
    assert run | {"demo", "contracts new"} == registered  # demo takes minutes; new is covered below


def schema_name_of(case: tuple[str, Argv, int, bool]) -> str:
    ident = case[0]
    if ident.startswith("apr-"):
        return "apr"
    if ident.startswith("contracts-typo"):
        return "contracts"
    if ident.startswith("contracts-"):
        return "contracts " + ident.split("-")[1]
    return ident.split("-")[0]


@pytest.mark.falsifies("FALSIFY-CLI-001")
def test_falsify_cli_001_contracts_new_writes_its_envelope(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.apr-contracts]\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, document = _run_json(["contracts", "new", "demo-v1"], capsys)
    assert code == 0
    validate_document(document)
    assert document["schema"] == "apr.contracts.new/1" and document["contract"].endswith("demo-v1.yaml")


@pytest.mark.falsifies("FALSIFY-CLI-001")
@given(command=st.sampled_from(sorted(set(commands()) - {"apr", "contracts"})),
       exit_code=st.sampled_from(DOCUMENTED[1:]), key=st.sampled_from(["bytes", "sha256", "output", "input"]))
def test_falsify_cli_001_the_schemas_refuse_a_wrong_envelope(command: str, exit_code: int, key: str) -> None:
    """The schemas can fail: an ``ok`` that contradicts ``exit_code``, a negative ``bytes``, a
    short ``sha256``, an ``input`` that is a number, are each refused (errors exit non-zero)."""
    error = {"code": "x", "type": "AprError", "message": "m", "hint": None, "exit_code": exit_code}
    good = envelope(command, {"error": error}, input="m.apr", exit_code=exit_code)
    validate_document(good)
    lying = dict(good, ok=exit_code != 0)
    with pytest.raises(jsonschema.ValidationError):
        validate_document(lying)
    wrong = dict(good, **{key: {"bytes": -1, "sha256": "abc", "output": 3, "input": 7}[key]})
    with pytest.raises(jsonschema.ValidationError):
        validate_document(wrong)


@given(payload=st.dictionaries(st.text(min_size=1).filter(lambda k: k not in ENVELOPE_KEYS),
                               st.integers() | st.text() | st.none(), max_size=5),
       exit_code=st.sampled_from(DOCUMENTED))
@pytest.mark.falsifies("FALSIFY-CLI-001")
def test_falsify_cli_001_envelope_keys_come_first_and_ok_means_exit_zero(payload: dict, exit_code: int) -> None:
    document = envelope("inspect", payload, input=None, exit_code=exit_code)
    assert list(document) == [*ENVELOPE_KEYS, *payload]
    assert document["ok"] is (exit_code == 0) and document["exit_code"] == exit_code
    assert document["schema"] == "apr.inspect/1" and document["command"] == "inspect"


def test_a_payload_cannot_redefine_the_envelope() -> None:
    with pytest.raises(ValueError, match="redefines"):
        envelope("stamp", {"command": "other"})
    assert envelope("stamp", {"command": "stamp"})["command"] == "stamp"  # the same value is fine


def test_the_envelope_admits_exactly_the_documented_exit_codes() -> None:
    """The schema is hand-written: a code added to apr/cli/exit_codes.py (10 and 11 for publish) must
    be added to both of its enums, or a consumer validating the document refuses a real answer."""
    from apr.cli import exit_codes

    schema = load_schema("envelope")
    assert schema["properties"]["exit_code"]["enum"] == DOCUMENTED == sorted(exit_codes.DOCUMENTED)
    assert schema["$defs"]["error"]["properties"]["exit_code"]["enum"] == DOCUMENTED


def test_every_published_schema_is_a_valid_draft_2020_12_schema() -> None:
    for command in [*commands(), "envelope"]:
        schema = load_schema(command)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"].endswith("2020-12/schema")


def test_the_schemas_ship_as_package_data() -> None:
    text = (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"cli/schemas/*.json"' in text
    assert os.path.isfile(REPO_ROOT / "apr" / "cli" / "schemas" / "envelope.json")
