"""The plugin's hooks exactly (issue 23), in-process: the options it adds, what ``pytest_configure``
registers (and only where the project has contracts), what ``pytest_unconfigure`` takes back, and
which ``pyproject.toml`` it reads.

"A plugin installed into someone's environment stays silent and free until their project opts in":
here, a project without a contracts folder gets no session, no helper and no error, while a
project with one gets exactly one session under the name the other hooks look up. Each config is
made by pytester in this process (``parseconfig``/``parseconfigure``), so mutmut sees the hooks.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _pytest.config.argparsing import Parser

from falsifiers import plugin
from falsifiers.mutation import INHERIT_ENV
from falsifiers.session import ContractsSession
from tests.harness.projects import Project, contract_yaml, passing_test

FAULT = {"name": "rename-harness", "target": "falsifiers.report.HARNESS", "replacement": "falsifiers.mutation:VACUOUS"}


@pytest.fixture(autouse=True)
def _no_inherited_mutant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INHERIT_ENV, raising=False)


def _parser() -> Parser:
    parser = Parser(_ispytest=True)
    plugin.pytest_addoption(parser)
    return parser


def _helpers(config: pytest.Config) -> dict[str, Any]:
    names = ("apr-contracts-session", "apr-contracts-worker-evidence", "apr-contracts-mutant-patch")
    return {name: config.pluginmanager.get_plugin(name) for name in names}


# --- options ---------------------------------------------------------------------------------------


def test_the_options_their_destinations_and_defaults() -> None:
    namespace = vars(_parser().parse([]))
    assert {k: v for k, v in namespace.items() if k.startswith("apr_")} == {
        "apr_falsifier": [], "apr_contract": [], "apr_contracts_json": None, "apr_contracts_profile": None,
        "apr_artifact": None, "apr_model_card": None, "apr_mutants": False, "apr_mutants_jobs": None,
        "apr_apply_mutant": None,
    }


def test_each_option_reads_its_value() -> None:
    namespace = _parser().parse([
        "--falsifier", "FALSIFY-A-001", "--falsifier=FALSIFY-B-002", "--contract", "a-v1", "--contract=b-v1",
        "--contracts-json", "r.json", "--contracts-profile=gpu", "--artifact", "m.apr", "--model-card=card.md",
        "--mutants", "--mutants-jobs", "3", "--apply-mutant=FALSIFY-A-001:m",
    ])
    assert (namespace.apr_falsifier, namespace.apr_contract) == (["FALSIFY-A-001", "FALSIFY-B-002"], ["a-v1", "b-v1"])
    assert (namespace.apr_contracts_json, namespace.apr_contracts_profile) == ("r.json", "gpu")
    assert (namespace.apr_artifact, namespace.apr_model_card) == ("m.apr", "card.md")
    assert namespace.apr_mutants is True
    assert namespace.apr_mutants_jobs == 3  # an int, not the text
    assert namespace.apr_apply_mutant == "FALSIFY-A-001:m"


def test_the_options_sit_in_their_own_help_group_with_a_metavar_each() -> None:
    parser = _parser()
    (group,) = [g for g in parser._groups if g.name == "apr-contracts"]
    assert group._arggroup.title == "contract verdicts (apr-contracts)"  # the --help heading
    metavars = {option.names()[0]: option.attrs().get("metavar") for option in group.options}
    assert metavars == {"--falsifier": "ID", "--contract": "NAME", "--contracts-json": "PATH",
                        "--contracts-profile": "NAME", "--artifact": "FILE", "--model-card": "FILE",
                        "--mutants": None, "--mutants-jobs": "N", "--apply-mutant": "FALSIFIER:NAME"}
    assert all(option.attrs().get("help") for option in group.options)


def test_a_mutants_jobs_that_is_no_number_is_a_usage_error() -> None:
    with pytest.raises(pytest.UsageError):
        _parser().parse(["--mutants-jobs", "two"])


# --- pytest_configure: silent without contracts -----------------------------------------------------


def test_a_project_without_contracts_gets_the_marker_and_nothing_else(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.apr-contracts]\n")  # opted in, but no contracts folder
    config = pytester.parseconfigure()
    assert plugin.MARKER_HELP in config.getini("markers")
    assert plugin.STATE_KEY not in config.stash
    assert _helpers(config) == dict.fromkeys(_helpers(config))  # all None
    config._ensure_unconfigure()  # and nothing to take back


@pytest.mark.parametrize("option", ["--falsifier=FALSIFY-A-001", "--contract=a-v1"])
def test_a_selection_without_contracts_is_a_usage_error_naming_the_folder(pytester: pytest.Pytester,
                                                                          option: str) -> None:
    pytester.makepyprojecttoml("[tool.apr-contracts]\n")
    with pytest.raises(pytest.UsageError) as info:
        pytester.parseconfigure(option)
    assert str(info.value) == ("--falsifier/--contract given, but there is no contracts folder at "
                               f"{pytester.path / 'contracts'}")


def test_a_broken_settings_table_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.apr-contracts]\ncontract = "x"\n')
    with pytest.raises(pytest.UsageError, match="did you mean 'contracts'"):
        pytester.parseconfigure()


# --- pytest_configure: a project with contracts -----------------------------------------------------


def test_a_project_with_contracts_gets_one_session_under_its_name(project: Project) -> None:
    project.contract("one-v1", contract_yaml("ONE"))
    project.test("test_one", passing_test("ONE"))
    config = project.pytester.parseconfigure("--contracts-profile=gpu")
    session = config.stash[plugin.STATE_KEY]
    assert isinstance(session, ContractsSession)
    assert _helpers(config) == {"apr-contracts-session": session, "apr-contracts-worker-evidence": None,
                                "apr-contracts-mutant-patch": None}
    assert session.profile.name == "gpu"
    assert session.settings.contracts_dir == project.root / "contracts"
    assert list(session.corpus.falsifiers) == ["FALSIFY-ONE-001"]
    config._ensure_unconfigure()
    assert plugin.STATE_KEY not in config.stash
    assert _helpers(config) == dict.fromkeys(_helpers(config))


def test_the_profile_defaults_to_the_projects(project: Project) -> None:
    project.contract("one-v1", contract_yaml("ONE"))
    (project.root / "pyproject.toml").write_text(
        (project.root / "pyproject.toml").read_text() + 'profile = "release"\n')
    config = project.pytester.parseconfigure()
    assert config.stash[plugin.STATE_KEY].profile.name == "release"
    config._ensure_unconfigure()


def test_an_unknown_profile_is_a_usage_error(project: Project) -> None:
    project.contract("one-v1", contract_yaml("ONE"))
    with pytest.raises(pytest.UsageError, match="nightly"):
        project.pytester.parseconfigure("--contracts-profile=nightly")


def test_an_xdist_worker_also_gets_the_evidence_helper(project: Project) -> None:
    project.contract("one-v1", contract_yaml("ONE"))
    config = project.pytester.parseconfig()
    config.workerinput = {"apr_contracts_mode": "paths"}  # type: ignore[attr-defined]
    config._do_configure()
    helpers = _helpers(config)
    assert helpers["apr-contracts-session"] is config.stash[plugin.STATE_KEY]
    assert isinstance(helpers["apr-contracts-worker-evidence"], plugin._WorkerEvidence)
    assert helpers["apr-contracts-mutant-patch"] is None
    config._ensure_unconfigure()
    assert _helpers(config) == dict.fromkeys(_helpers(config))


def test_a_code_mutant_gets_its_patch_helper_and_hypothesis_is_restored(project: Project,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from falsifiers import mutation

    restored: list[str] = []
    monkeypatch.setattr(mutation, "quiet_hypothesis", lambda: lambda: restored.append("restored"))
    project.contract("mut-v1", contract_yaml("MUT", [{"mutants": [FAULT]}]))
    config = project.pytester.parseconfigure("--apply-mutant=FALSIFY-MUT-001:rename-harness")
    patch = _helpers(config)["apr-contracts-mutant-patch"]
    assert isinstance(patch, plugin._MutantPatch)
    assert (patch.falsifier.id, patch.mutant.name) == ("FALSIFY-MUT-001", "rename-harness")
    assert (patch.falsifier, patch.mutant) == config.stash[plugin.STATE_KEY].mutant
    assert restored == []
    config._ensure_unconfigure()
    assert restored == ["restored"]  # the session's Hypothesis profile is put back once
    assert _helpers(config) == dict.fromkeys(_helpers(config))


def test_an_artifact_mutant_needs_no_patch_helper(project: Project) -> None:
    mutant = {"name": "flip", "artifact": "flip_data_byte"}
    project.contract("art-v1", contract_yaml("ART", [{"level": "artifact", "mutants": [mutant]}]))
    config = project.pytester.parseconfigure("--apply-mutant=FALSIFY-ART-001:flip")
    assert config.stash[plugin.STATE_KEY].mutant[1].artifact == "flip_data_byte"
    assert _helpers(config)["apr-contracts-mutant-patch"] is None
    config._ensure_unconfigure()


def test_the_patch_helper_keeps_what_it_was_given() -> None:
    falsifier, mutant = object(), object()
    patch = plugin._MutantPatch(falsifier, mutant)  # type: ignore[arg-type]
    assert patch.falsifier is falsifier and patch.mutant is mutant


# --- an inherited mutant (a pytest started by a test under a mutant) ---------------------------------


def test_an_inherited_mutant_is_patched_in_before_anything_else(pytester: pytest.Pytester,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import falsifiers.report

    monkeypatch.setattr(falsifiers.report, "HARNESS", "apr-contracts")  # put back at teardown: never undone
    monkeypatch.setenv(INHERIT_ENV, json.dumps(FAULT))
    pytester.makepyprojecttoml("[tool.apr-contracts]\n")  # no contracts: it is patched in anyway
    pytester.parseconfigure()
    assert falsifiers.report.HARNESS == "VACUOUS"


def test_a_malformed_inherited_mutant_is_a_usage_error(pytester: pytest.Pytester,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INHERIT_ENV, "{not json")
    pytester.makepyprojecttoml("[tool.apr-contracts]\n")
    with pytest.raises(pytest.UsageError, match=f"^{INHERIT_ENV} is not a mutant this harness wrote"):
        pytester.parseconfigure()


# --- which pyproject.toml ---------------------------------------------------------------------------


def _config(inipath: Path | None, rootpath: Path) -> Any:
    return SimpleNamespace(inipath=inipath, rootpath=rootpath)


def test_the_ini_file_is_read_when_it_is_a_pyproject(tmp_path: Path) -> None:
    elsewhere = tmp_path / "sub" / "pyproject.toml"  # need not exist: pytest found it
    assert plugin._pyproject(_config(elsewhere, tmp_path)) == elsewhere  # type: ignore[arg-type]


def test_another_ini_file_falls_back_to_the_roots_pyproject(tmp_path: Path) -> None:
    for inipath in (tmp_path / "pytest.ini", tmp_path / "pyproject.toml.bak", None):
        assert plugin._pyproject(_config(inipath, tmp_path)) is None  # type: ignore[arg-type]
    (tmp_path / "pyproject.toml").write_text("[tool.apr-contracts]\n")
    for inipath in (tmp_path / "pytest.ini", None):
        assert plugin._pyproject(_config(inipath, tmp_path)) == tmp_path / "pyproject.toml"  # type: ignore[arg-type]
    (tmp_path / "pyproject.toml").unlink()
    (tmp_path / "pyproject.toml").mkdir()  # a folder of that name is not a file
    assert plugin._pyproject(_config(None, tmp_path)) is None  # type: ignore[arg-type]


def test_a_projects_pytest_ini_still_finds_its_contracts_settings(pytester: pytest.Pytester) -> None:
    """pytest.ini wins as the ini file, but the settings come from pyproject.toml next to it."""
    pytester.makeini("[pytest]\n")
    pytester.makepyprojecttoml('[tool.apr-contracts]\ncontracts = "specs"\n')
    (pytester.path / "specs").mkdir()
    (pytester.path / "specs" / "one-v1.yaml").write_text(contract_yaml("ONE"))
    config = pytester.parseconfigure("-p", "falsifiers.plugin")
    assert config.stash[plugin.STATE_KEY].settings.contracts_dir == pytester.path / "specs"
    config._ensure_unconfigure()


def test_without_a_pyproject_the_contracts_folder_is_under_the_rootdir_not_the_current_folder(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\n")  # the rootdir's marker; no pyproject.toml anywhere
    (pytester.path / "contracts").mkdir()
    (pytester.path / "contracts" / "one-v1.yaml").write_text(contract_yaml("ONE"))
    below = pytester.path / "tests" / "unit"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    config = pytester.parseconfigure("-p", "falsifiers.plugin")
    assert config.rootpath == pytester.path
    assert config.stash[plugin.STATE_KEY].settings.contracts_dir == pytester.path / "contracts"
    config._ensure_unconfigure()


def test_the_help_of_each_option() -> None:
    """What `pytest --help` tells a user about each option (a change of wording is a deliberate edit here)."""
    (group,) = [g for g in _parser()._groups if g.name == "apr-contracts"]
    assert {option.names()[0]: option.attrs()["help"] for option in group.options} == {
        "--falsifier": "run only the tests bound to this falsifier (repeatable); the verdict covers only it",
        "--contract": "run only the tests bound to this contract's falsifiers (repeatable)",
        "--contracts-json": "write the versioned verdict receipt (JSON) to PATH",
        "--contracts-profile": "the profile that judges undetermined falsifiers (cpu, gpu, release, or "
                               "[tool.apr-contracts.profiles.NAME]); default from pyproject or $APR_CONTRACTS_PROFILE",
        "--artifact": "verify this file: run only the artifact-level falsifiers (tests taking the apr_artifact "
                      "fixture), require them, and record the file's sha256 in the receipt",
        "--model-card": "the model card that goes with --artifact (apr_artifact.model_card)",
        "--mutants": "after the verdict, rerun each corroborated falsifier's tests once per declared mutant "
                     "(each in a child pytest); a surviving mutant makes the falsifier VACUOUS (UNDETERMINED)",
        "--mutants-jobs": "mutant runs at a time (default: the number of CPUs)",
        "--apply-mutant": "run that falsifier's tests with its declared mutant applied (what --mutants runs)",
    }
