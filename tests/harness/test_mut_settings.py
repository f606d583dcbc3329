"""``[tool.apr-contracts]`` exactly (issue 23): defaults, each key's type, profiles that override or
extend the built-in ones, which profile a run gets, and the error for each malformed table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from falsifiers.errors import SettingsError
from falsifiers.settings import (
    BUILTIN_PROFILES,
    PROFILE_ENV,
    Profile,
    Settings,
    find_pyproject,
    load_settings,
)


@pytest.fixture(autouse=True)
def _no_profile_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROFILE_ENV, raising=False)


def _pyproject(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_built_in_profiles() -> None:
    assert PROFILE_ENV == "APR_CONTRACTS_PROFILE"
    assert BUILTIN_PROFILES == {
        "cpu": Profile("cpu", frozenset({"cuda"}), True, "CI and CPU machines: CUDA falsifiers may stay undetermined"),
        "gpu": Profile("gpu", frozenset(), True, "the GPU machine: CUDA falsifiers must run"),
        "release": Profile("release", frozenset(), False, "publish checks: nothing pending, nothing skipped"),
    }
    assert Profile("x") == Profile("x", frozenset(), True, "")


def _defaults(root: Path, *, configured: bool) -> Settings:
    return Settings(root, root / "contracts", root / "tests", "cpu", dict(BUILTIN_PROFILES), 2 * 1024 * 1024,
                    configured)


def test_without_a_pyproject_or_its_table_the_defaults_apply(tmp_path: Path) -> None:
    assert load_settings(None, root=tmp_path) == _defaults(tmp_path, configured=False)
    assert load_settings(tmp_path / "missing.toml", root=tmp_path / "elsewhere") == _defaults(tmp_path,
                                                                                                configured=False)
    assert load_settings(None) == _defaults(Path("."), configured=False)
    path = _pyproject(tmp_path, "[project]\nname = 'x'\n\n[tool.other]\na = 1\n")
    assert load_settings(path) == _defaults(tmp_path, configured=False)
    path = _pyproject(tmp_path, "[project]\nname = 'x'\n")  # no [tool] table at all
    assert load_settings(path) == _defaults(tmp_path, configured=False)


def test_an_empty_table_opts_in_with_the_defaults(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, "[tool.apr-contracts]\n")
    assert load_settings(path) == _defaults(tmp_path, configured=True)


def test_every_key_is_read(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, """
[tool.apr-contracts]
contracts = "spec/contracts"
tests = "t"
profile = "gpu"
max-bytes = 4096
""")
    settings = load_settings(path, root=tmp_path / "ignored")
    assert settings == Settings(tmp_path, tmp_path / "spec/contracts", tmp_path / "t", "gpu", dict(BUILTIN_PROFILES),
                                4096, True)
    assert settings.resolve_profile() == BUILTIN_PROFILES["gpu"]


def test_a_profile_table_overrides_a_built_in_one_key_by_key_and_adds_new_ones(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, """
[tool.apr-contracts.profiles.cpu]
optional-requires = ["cuda", "network", 7]

[tool.apr-contracts.profiles.release]
description = "ship it"

[tool.apr-contracts.profiles.nightly]
allow-pending = false
""")
    profiles = load_settings(path).profiles
    assert profiles["cpu"] == Profile("cpu", frozenset({"cuda", "network", "7"}), True,
                                      "CI and CPU machines: CUDA falsifiers may stay undetermined")
    assert profiles["release"] == Profile("release", frozenset(), False, "ship it")
    assert profiles["nightly"] == Profile("nightly", frozenset(), False, "")
    assert profiles["gpu"] == BUILTIN_PROFILES["gpu"]
    assert BUILTIN_PROFILES["cpu"].optional_requires == frozenset({"cuda"})  # the built-in table is untouched


@pytest.mark.parametrize(("body", "message", "hint"), [
    ('contract = "c"', "unknown key 'contract' in [tool.apr-contracts]", "did you mean 'contracts'?"),
    ('zzz = 1', "unknown key 'zzz' in [tool.apr-contracts]",
     "known keys: contracts, tests, profile, profiles, max-bytes"),
    ('[tool.apr-contracts.profiles.cpu]\nallow_pending = true',
     "unknown key 'allow_pending' in [tool.apr-contracts.profiles.cpu]", "did you mean 'allow-pending'?"),
    ('[tool.apr-contracts.profiles.x]\nzzz = true', "unknown key 'zzz' in [tool.apr-contracts.profiles.x]",
     "known keys: optional-requires, allow-pending, description"),
    ('profile = "cpus"', "unknown profile 'cpus'", "did you mean 'cpu'? known profiles: cpu, gpu, release"),
    ('profile = "zzzzzz"', "unknown profile 'zzzzzz'", "known profiles: cpu, gpu, release"),
])
def test_an_unknown_key_or_profile_is_an_error_with_a_did_you_mean(tmp_path: Path, body: str, message: str,
                                                                   hint: str) -> None:
    path = _pyproject(tmp_path, f"[tool.apr-contracts]\n{body}\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(path)
    assert (raised.value.message, raised.value.hint) == (message, hint)
    if "profile '" not in message:
        assert raised.value.path == os.fspath(path)


@pytest.mark.parametrize(("body", "message"), [
    ("contracts = 1", "'contracts' in [tool.apr-contracts] must be a str, not int 1"),
    ("tests = ['t']", "'tests' in [tool.apr-contracts] must be a str, not list ['t']"),
    ("profile = true", "'profile' in [tool.apr-contracts] must be a str, not bool True"),
    ("max-bytes = true", "'max-bytes' in [tool.apr-contracts] must be a int, not bool True"),
    ("max-bytes = 1.5", "'max-bytes' in [tool.apr-contracts] must be a int, not float 1.5"),
    ("profiles = 1", "'profiles' in [tool.apr-contracts] must be a dict, not int 1"),
    ("profiles = {cpu = 1}", "[tool.apr-contracts.profiles.cpu] must be a table"),
    ("profiles = {cpu = {optional-requires = 'cuda'}}",
     "'optional-requires' in [tool.apr-contracts] must be a list, not str 'cuda'"),
    ("profiles = {cpu = {allow-pending = 1}}", "'allow-pending' in [tool.apr-contracts] must be a bool, not int 1"),
    ("profiles = {cpu = {description = 2}}", "'description' in [tool.apr-contracts] must be a str, not int 2"),
])
def test_a_value_of_the_wrong_type_is_an_error_naming_key_type_and_value(tmp_path: Path, body: str,
                                                                         message: str) -> None:
    path = _pyproject(tmp_path, f"[tool.apr-contracts]\n{body}\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(path)
    assert raised.value.message == message and raised.value.path == os.fspath(path)


def test_a_bad_default_profile_is_an_error_even_when_the_environment_names_a_good_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROFILE_ENV, "gpu")
    with pytest.raises(SettingsError) as raised:
        load_settings(_pyproject(tmp_path, '[tool.apr-contracts]\nprofile = "bogus"\n'))
    assert raised.value.message == "unknown profile 'bogus'"


def test_a_max_bytes_of_zero_is_an_int(tmp_path: Path) -> None:
    assert load_settings(_pyproject(tmp_path, "[tool.apr-contracts]\nmax-bytes = 0\n")).max_bytes == 0


def test_a_pyproject_that_is_not_toml_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _pyproject(tmp_path, "[tool.apr-contracts\n")
    with pytest.raises(SettingsError) as raised:
        load_settings(path)
    assert raised.value.message.startswith(f"cannot read {path}: ") and raised.value.path == os.fspath(path)
    assert isinstance(raised.value.__cause__, ValueError)


def test_the_profile_is_the_named_one_else_the_environments_else_the_default(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(_pyproject(tmp_path, '[tool.apr-contracts]\nprofile = "gpu"\n'))
    assert settings.resolve_profile().name == "gpu"
    monkeypatch.setenv(PROFILE_ENV, "release")
    assert settings.resolve_profile().name == "release"
    assert settings.resolve_profile("cpu").name == "cpu"
    monkeypatch.setenv(PROFILE_ENV, "")
    assert settings.resolve_profile().name == "gpu"
    monkeypatch.setenv(PROFILE_ENV, "gpus")
    with pytest.raises(SettingsError) as raised:
        settings.resolve_profile()
    assert (raised.value.message, raised.value.hint) == ("unknown profile 'gpus'",
                                                         "did you mean 'gpu'? known profiles: cpu, gpu, release")


def test_the_nearest_pyproject_at_or_above_a_folder(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    (project / "src" / "pyproject.toml").mkdir()  # a folder of that name is not the file
    assert find_pyproject(project / "src" / "deep") == project / "pyproject.toml"
    assert find_pyproject(project) == project / "pyproject.toml"
    inner = project / "src" / "deep" / "pyproject.toml"
    inner.write_text("")
    assert find_pyproject(os.fspath(project / "src" / "deep")) == inner
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    assert find_pyproject(lonely) in (None, *[p / "pyproject.toml" for p in lonely.resolve().parents])
    assert find_pyproject(lonely) != lonely / "pyproject.toml"
