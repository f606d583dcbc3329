"""apr/cli/exit_codes.py against aprender's table (docs/aprender-format.md, Appendix A, apr-cli's
`crates/apr-cli/src/error.rs`), the verdict codes (GO 0 / NO-GO 1 / UNKNOWN 2), Ctrl-C 130 and the
internal-error code 70 (sysexits.h EX_SOFTWARE). The expected numbers are transcribed here from
those sources, not read from the module, and the transcription itself is checked against the page.

The constants are module-level, so mutmut 3 makes no mutants of them: these tests are what pins
them. Each error class's code, and each code as the command line returns it (text and --json),
is checked too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import apr.errors as errors
from apr.cli import exit_codes
from apr.cli.guard import exit_code_for
from apr.cli.main import main

# aprender apr-cli, Appendix A: error variant -> exit code.
APPENDIX_A = {
    "FileNotFound": 3, "NotAFile": 3, "InvalidFormat": 4, "ValidationFailed": 5, "ModelLoadFailed": 6, "Io": 7,
    "InferenceFailed": 8, "FeatureDisabled": 9, "NetworkError": 10, "HttpNotFound": 11, "Aprender": 1,
}
# Our constant for each aprender variant we use (10/11: `apr publish`'s Hub errors).
OURS = {
    "EXIT_NETWORK": "NetworkError", "EXIT_HTTP_NOT_FOUND": "HttpNotFound",
    "EXIT_NOT_FOUND": "FileNotFound", "EXIT_INVALID_FORMAT": "InvalidFormat", "EXIT_VALIDATION": "ValidationFailed",
    "EXIT_MODEL_LOAD": "ModelLoadFailed", "EXIT_IO": "Io", "EXIT_INFERENCE": "InferenceFailed",
    "EXIT_FEATURE_DISABLED": "FeatureDisabled", "EXIT_GENERIC": "Aprender",
}
OTHER = {"OK": 0, "GO": 0, "NO_GO": 1, "UNKNOWN": 2, "EXIT_USAGE": 64, "INTERRUPTED": 130, "INTERNAL_ERROR": 70,
         "EXIT_INTERNAL": 70}

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "aprender-format.md"


@pytest.mark.parametrize(("name", "variant"), sorted(OURS.items()))
def test_error_codes_follow_aprender(name: str, variant: str) -> None:
    assert getattr(exit_codes, name) == APPENDIX_A[variant]


@pytest.mark.parametrize(("name", "code"), sorted(OTHER.items()))
def test_verdict_usage_interrupt_and_internal_codes(name: str, code: int) -> None:
    assert getattr(exit_codes, name) == code


def test_transcription_matches_the_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    appendix = text[text.index("## Appendix A."):text.index("## Appendix B.")]
    found: dict[str, int] = {}
    for variants, code in re.findall(r"((?:[A-Z][A-Za-z]+)(?: / [A-Z][A-Za-z]+)*)(?: \([^)]*\))? → (\d+)", appendix):
        for variant in variants.split(" / "):
            found[variant] = int(code)
    assert found == APPENDIX_A


def test_documented_is_exactly_the_table() -> None:
    assert exit_codes.DOCUMENTED == frozenset({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 64, 70, 130})


def test_every_public_name_is_exported() -> None:
    assert set(exit_codes.__all__) == {"DOCUMENTED", *OURS, *OTHER}
    assert all(hasattr(exit_codes, name) for name in exit_codes.__all__)


# Each error class's code: the aprender variant it corresponds to (refuse_overwrite is exit 5 there).
CLASS_CODES = {
    "AprError": 1, "AprFileNotFoundError": 3, "OutputExistsError": 5, "AprIOError": 7, "FormatError": 4,
    "ChecksumError": 4, "DamagedInputError": 5, "ArchitectureMismatchError": 5, "UsageError": 64,
    "ValidationError": 5, "ChinchillaGateError": 5, "DatasetError": 4, "TrainingAbortedError": 1,
    "ConvertError": 5, "MissingTokenizerError": 6, "InferenceError": 8, "InternalError": 70,
    "HubError": 10, "HubNotFoundError": 11,
}


@pytest.mark.parametrize(("name", "code"), sorted(CLASS_CODES.items()))
def test_error_class_codes(name: str, code: int) -> None:
    assert getattr(errors, name).exit_code == code


def _subclasses(cls: type) -> list[type]:
    return [cls] + [s for sub in cls.__subclasses__() for s in _subclasses(sub)]


def test_every_error_class_exits_with_a_documented_code() -> None:
    classes = [c for c in _subclasses(errors.AprError) if c.__module__ == "apr.errors"]
    assert len(classes) >= len(CLASS_CODES)
    assert {c.__name__: c.exit_code for c in classes if c.exit_code not in exit_codes.DOCUMENTED} == {}


# --- the codes as the command line returns them, text and --json ---------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_not_found_and_invalid_format_exit_codes(tmp_path: Path, capsys, as_json: bool) -> None:
    flag = ["--json"] if as_json else []
    garbage = tmp_path / "garbage.apr"
    garbage.write_bytes(b"not an apr file at all, just some bytes" * 4)
    for path, code in ((tmp_path / "missing.apr", 3), (garbage, 4)):
        assert main(["inspect", str(path), *flag]) == code
        captured = capsys.readouterr()
        if as_json:
            assert json.loads(captured.out)["error"]["exit_code"] == code
        else:
            assert captured.out == "" and "error" in captured.err


def test_usage_exit_code(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["inspect", "--no-such-flag"])
    assert info.value.code == 64  # sysexits EX_USAGE: never the UNKNOWN verdict's 2
    assert main([]) == 64
    capsys.readouterr()


@pytest.mark.parametrize("as_json", [False, True])
def test_guard_codes_for_interrupt_and_bugs(capsys, as_json: bool) -> None:
    assert exit_code_for(KeyboardInterrupt(), as_json=as_json) == 130
    assert exit_code_for(RuntimeError("boom"), as_json=as_json) == 70
    out = capsys.readouterr().out
    if as_json:
        assert json.loads(out)["error"]["exit_code"] == 70
