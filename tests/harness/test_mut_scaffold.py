"""``apr contracts new`` exactly (issue 23): which names it takes, the ids and paths it derives, that
it refuses before writing anything, and that it never leaves a file it did not finish or overwrite
one it did not create (unless ``--force``).

The rendered contract is checked by the harness's own linter and YAML loader (an independent
oracle), the rendered test by compiling it; ids and paths are derived from the name by hand here.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import yaml

from falsifiers.errors import ContractIOError, ContractNameError, ScaffoldExistsError
from falsifiers.lint import lint_paths
from falsifiers.scaffold import Scaffold, id_prefix, plan_scaffold, write_scaffold

PACKAGED_SCHEMA = Path(__file__).resolve().parents[2] / "falsifiers" / "schema" / "contract.schema.json"


def _plan(tmp_path: Path, name: str = "demo-v1", **kwargs: object) -> Scaffold:
    return plan_scaffold(name, contracts_dir=tmp_path / "contracts", tests_dir=tmp_path / "tests",
                         today="2026-12-07", **kwargs)  # type: ignore[arg-type]


# --- names and ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "prefix"), [
    ("apr-stamp-v1", "APR-STAMP"),
    ("demo-v12", "DEMO"),
    ("demo", "DEMO"),
    ("x-v1-v2", "X-V1"),  # only the last version suffix goes
    ("a.b-c", "A-B-C"),  # every run of other characters is one '-'
    ("a..b--c", "A-B-C"),
    ("..a..", "A"),  # and none at either end
    ("v1", "V1"),  # a version with no '-' before it is a word
    ("demo-v", "DEMO-V"),  # 'v' without digits is a word
    ("demo-x1", "DEMO-X1"),
    ("apr9-v1", "APR9"),
])
def test_the_id_prefix_is_the_name_upper_cased_without_its_version(name: str, prefix: str) -> None:
    assert id_prefix(name) == prefix


@pytest.mark.parametrize("name", ["a", "a1", "demo-v1", "apr-stamp-v1", "a.b", "a-b.c-v2", "x9-y8"])
def test_lower_case_stems_are_names(tmp_path: Path, name: str) -> None:
    assert _plan(tmp_path, name).name == name


@pytest.mark.parametrize("name", ["", "A", "Demo-v1", "1a", "-a", "a-", "a--b", "a.-b", "a_b", "a b", "a/b",
                                  "../a", "a.", "démo", "demo-v1\n", "\ndemo-v1", "demo-v1 "])
def test_anything_else_is_refused_before_a_path_is_built(tmp_path: Path, name: str) -> None:
    with pytest.raises(ContractNameError) as info:
        _plan(tmp_path, name)
    err = info.value
    assert err.message == f"{name!r} is not a contract name"
    assert err.exit_code == 2
    assert err.hint == ("use lower case words joined by '-', ending in a version, e.g. "
                        "`apr contracts new apr-stamp-v1`")
    assert not (tmp_path / "contracts").exists() and not (tmp_path / "tests").exists()


# --- the plan --------------------------------------------------------------------------------------


def test_the_plan_derives_paths_and_ids_from_the_name(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "apr.stamp-v1")
    assert plan.name == "apr.stamp-v1"
    assert plan.contract_path == tmp_path / "contracts" / "apr.stamp-v1.yaml"
    assert plan.test_path == tmp_path / "tests" / "test_apr_stamp_v1.py"
    assert (plan.invariant_id, plan.falsifier_id) == ("INV-APR-STAMP-001", "FALSIFY-APR-STAMP-001")
    assert not (tmp_path / "contracts").exists()  # planning writes nothing


def test_the_contract_is_a_linted_draft_with_the_ids_and_the_date(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "demo-v1")
    data = yaml.safe_load(plan.contract_text)
    assert data["metadata"]["version"] == "0.1.0" and data["metadata"]["status"] == "PROPOSED"
    assert data["metadata"]["changelog"] == [
        {"version": "0.1.0", "date": "2026-12-07", "changes": "drafted with `apr contracts new`"}]
    assert [i["id"] for i in data["invariants"]] == ["INV-DEMO-001"]
    (falsifier,) = data["falsification_tests"]
    assert (falsifier["id"], falsifier["invariant"], falsifier["level"]) == ("FALSIFY-DEMO-001", "INV-DEMO-001",
                                                                           "algorithm")
    assert "demo-v1" in data["metadata"]["description"]
    write_scaffold(plan)
    corpus = lint_paths([plan.contract_path], relative_to=tmp_path)
    assert [f for f in corpus.findings if f.is_error] == []
    assert list(corpus.falsifiers) == ["FALSIFY-DEMO-001"]


def test_the_modeline_points_at_the_projects_schema_when_it_has_one(tmp_path: Path) -> None:
    local = tmp_path / "contracts" / "schema" / "contract.schema.json"
    local.parent.mkdir(parents=True)
    local.write_text("{}")
    first = _plan(tmp_path).contract_text.splitlines()[0]
    assert first == "# yaml-language-server: $schema=schema/contract.schema.json"


def test_otherwise_the_modeline_points_at_the_packaged_schema(tmp_path: Path) -> None:
    (tmp_path / "contracts" / "schema").mkdir(parents=True)  # a folder, but no schema file in it
    first = _plan(tmp_path).contract_text.splitlines()[0]
    expected = Path(os.path.relpath(PACKAGED_SCHEMA, (tmp_path / "contracts").resolve())).as_posix()
    assert first == f"# yaml-language-server: $schema={expected}"
    assert (tmp_path / "contracts" / expected).resolve() == PACKAGED_SCHEMA


def test_the_test_is_bound_to_the_falsifier_and_fails_until_written(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "apr.stamp-v1")
    namespace: dict[str, object] = {}
    exec(compile(plan.test_text, os.fspath(plan.test_path), "exec"), namespace)
    function = namespace["test_falsify_apr_stamp_001"]
    marks = [(m.name, m.args) for m in function.pytestmark]  # type: ignore[attr-defined]
    assert marks == [("falsifies", ("FALSIFY-APR-STAMP-001",))]
    with pytest.raises(pytest.fail.Exception, match=r"^FALSIFY-APR-STAMP-001 has no test yet"):
        function()  # type: ignore[operator]
    assert plan.test_text.startswith(f'"""Evidence for {plan.contract_path.as_posix()} (drafted by '
                                     "`apr contracts new apr.stamp-v1`).")
    assert "INV-APR-STAMP-001 is broken" in plan.test_text


@pytest.mark.parametrize("existing", ["contract", "test"])
def test_an_existing_file_is_refused_unless_forced(tmp_path: Path, existing: str) -> None:
    plan = _plan(tmp_path)
    target = plan.contract_path if existing == "contract" else plan.test_path
    target.parent.mkdir(parents=True)
    target.write_text("mine\n")
    with pytest.raises(ScaffoldExistsError) as info:
        _plan(tmp_path)
    err = info.value
    assert err.message == f"{target} already exists; nothing was written"
    assert err.path == os.fspath(target) and err.exit_code == 5
    assert err.hint == "pick another name, or pass --force to overwrite both files"
    assert target.read_text() == "mine\n"
    assert _plan(tmp_path, force=True) == plan


@pytest.mark.parametrize("taken", ["INV-DEMO-001", "FALSIFY-DEMO-001"])
def test_an_id_another_contract_declares_is_refused_even_when_forced(tmp_path: Path, taken: str) -> None:
    for force in (False, True):
        with pytest.raises(ScaffoldExistsError) as info:
            _plan(tmp_path, taken_ids={"FALSIFY-OTHER-001", taken}, force=force)
        assert info.value.message == f"the id {taken} is already declared by another contract; nothing was written"
        assert info.value.path is None and info.value.hint == "pick a name whose prefix is not in use"
    assert _plan(tmp_path, taken_ids={"FALSIFY-DEMO-002", "INV-DEMO-0011", "demo-v1"}).falsifier_id == "FALSIFY-DEMO-001"


# --- writing ---------------------------------------------------------------------------------------


def _scaffold(tmp_path: Path, contract: str = "contract\n", test: str = "test\n") -> Scaffold:
    return Scaffold("demo-v1", tmp_path / "c" / "demo-v1.yaml", tmp_path / "t" / "test_demo_v1.py",
                    "INV-DEMO-001", "FALSIFY-DEMO-001", contract, test)


def test_both_files_are_written_in_utf8_with_their_folders_and_nothing_else(tmp_path: Path) -> None:
    scaffold = _scaffold(tmp_path, "contract é\n", "test ✓\n")
    write_scaffold(scaffold)
    assert scaffold.contract_path.read_bytes() == "contract é\n".encode()
    assert scaffold.test_path.read_bytes() == "test ✓\n".encode()
    assert os.listdir(tmp_path / "c") == ["demo-v1.yaml"] and os.listdir(tmp_path / "t") == ["test_demo_v1.py"]


def test_each_file_is_staged_complete_and_synced_under_a_name_no_glob_picks_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A staged file never ends in .yaml or .py: a lint or a pytest run meanwhile must not read it."""
    scaffold = _scaffold(tmp_path, "c" * 5000, "t" * 7000)
    synced: list[int] = []
    renamed: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)  # everything is on the file by the time it is synced
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        renamed.append((src, os.fspath(dst)))
        assert len(synced) == 2  # both staged before the first rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_scaffold(scaffold)
    assert synced == [5000, 7000]
    assert [dst for _, dst in renamed] == [os.fspath(scaffold.contract_path), os.fspath(scaffold.test_path)]
    for (src, _), final in zip(renamed, (scaffold.contract_path, scaffold.test_path), strict=True):
        staged = Path(src)
        assert staged.parent == final.parent
        assert staged.name.startswith(f".{final.name}.") and staged.name.endswith(".tmp")


def test_a_forced_rewrite_replaces_both_files(tmp_path: Path) -> None:
    write_scaffold(_scaffold(tmp_path, "one\n", "one\n"))
    write_scaffold(_scaffold(tmp_path, "two\n", "two\n"))
    assert (tmp_path / "c" / "demo-v1.yaml").read_text() == "two\n"
    assert (tmp_path / "t" / "test_demo_v1.py").read_text() == "two\n"


def test_a_second_rename_failing_keeps_a_file_that_was_there_before(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what this call created is removed: an overwritten (forced) contract is not deleted."""
    scaffold = _scaffold(tmp_path, "new\n", "new\n")
    scaffold.contract_path.parent.mkdir()
    scaffold.contract_path.write_text("old\n")
    real = os.replace

    def refuse_test(src: str, dst: str) -> None:
        if Path(dst) == scaffold.test_path:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", refuse_test)
    with pytest.raises(ContractIOError) as info:
        write_scaffold(scaffold)
    assert scaffold.contract_path.read_text() == "new\n"  # forced over: kept, not deleted
    assert os.listdir(tmp_path / "c") == ["demo-v1.yaml"] and os.listdir(tmp_path / "t") == []
    err = info.value
    assert err.message == "cannot write: No space left on device (ENOSPC); nothing was written"
    assert err.path == os.fspath(scaffold.test_path) and err.exit_code == 7 and err.code == "io-error"
    assert err.hint == (f"check that {scaffold.test_path.parent} is writable and its disk has free space "
                        f"(df -h {scaffold.test_path.parent}), then rerun")
    assert isinstance(err.__cause__, OSError) and err.__cause__.errno == errno.ENOSPC


def test_a_folder_that_cannot_be_made_names_its_file_and_leaves_no_staged_contract(tmp_path: Path) -> None:
    scaffold = _scaffold(tmp_path)
    (tmp_path / "t").write_text("a file where the tests folder should be")
    with pytest.raises(ContractIOError) as info:
        write_scaffold(scaffold)
    assert info.value.path == os.fspath(scaffold.test_path)
    assert info.value.message.endswith("(EEXIST); nothing was written")
    assert os.listdir(tmp_path / "c") == []


@pytest.mark.parametrize(("error", "reason"), [
    (OSError("plain"), "plain"),  # no errno: the error's text, no code
    (OSError(99999, "Odd failure"), "Odd failure"),  # an errno with no name
    (OSError(errno.EACCES, "Permission denied"), "Permission denied (EACCES)"),
])
def test_the_reason_names_the_errno_when_it_has_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    error: OSError, reason: str) -> None:
    def refuse(*args: object) -> None:
        raise error

    monkeypatch.setattr(os, "replace", refuse)
    scaffold = _scaffold(tmp_path)
    with pytest.raises(ContractIOError) as info:
        write_scaffold(scaffold)
    assert info.value.message == f"cannot write: {reason}; nothing was written"
    assert info.value.path == os.fspath(scaffold.contract_path)
    assert os.listdir(tmp_path / "c") == [] and os.listdir(tmp_path / "t") == []


def test_an_error_that_is_not_the_oss_is_raised_as_it_is_after_the_cleanup(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    scaffold = _scaffold(tmp_path, "contract\n", "bad \ud800\n")  # not encodable: fails while staging
    with pytest.raises(UnicodeEncodeError):
        write_scaffold(scaffold)
    assert os.listdir(tmp_path / "c") == [] and os.listdir(tmp_path / "t") == []
    real = os.replace

    def interrupt(src: str, dst: str) -> None:
        if Path(dst) == scaffold.test_path:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_scaffold(_scaffold(tmp_path))
    assert os.listdir(tmp_path / "c") == [] and os.listdir(tmp_path / "t") == []  # the new contract went too


def test_a_cleanup_that_fails_still_reports_the_first_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    removed: list[str] = []
    real_unlink = os.unlink

    def refuse(*args: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    def unlink(path: str) -> None:
        removed.append(os.fspath(path))
        if len(removed) == 1:
            raise OSError(errno.EROFS, "Read-only file system")
        real_unlink(path)

    scaffold = _scaffold(tmp_path)
    monkeypatch.setattr(os, "replace", refuse)
    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(ContractIOError, match=r"Input/output error \(EIO\)"):
        write_scaffold(scaffold)
    assert len(removed) == 2  # the first failure did not stop the second removal
    assert os.listdir(tmp_path / "t") == []


def test_missing_folders_are_made_at_any_depth(tmp_path: Path) -> None:
    scaffold = Scaffold("demo-v1", tmp_path / "a" / "b" / "contracts" / "demo-v1.yaml",
                        tmp_path / "c" / "d" / "tests" / "test_demo_v1.py", "INV-DEMO-001", "FALSIFY-DEMO-001",
                        "contract\n", "test\n")
    write_scaffold(scaffold)
    assert scaffold.contract_path.read_text() == "contract\n" and scaffold.test_path.read_text() == "test\n"


def test_the_files_are_utf8_here_and_under_an_ascii_locale(tmp_path: Path) -> None:
    """The rendered texts hold the project's paths, which may be any text (/home/josé/...): a run
    under LC_ALL=C (CI images, cron) must write them as UTF-8, not fail or write another encoding."""
    import subprocess
    import sys

    import falsifiers.scaffold

    here = Scaffold("demo-v1", tmp_path / "here" / "demo-v1.yaml", tmp_path / "here" / "test_demo_v1.py",
                    "INV-DEMO-001", "FALSIFY-DEMO-001", "José ✓\n", "Grüße\n")
    write_scaffold(here)  # in-process too, so mutmut sees this test reach it
    assert here.contract_path.read_bytes() == "José ✓\n".encode()
    package_root = Path(falsifiers.scaffold.__file__).resolve().parents[1]  # mutmut's copy under a mutant
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0",
           "PYTHONIOENCODING": "ascii", "PYTHONPATH": os.fspath(package_root)}
    code = ("import locale, sys; from pathlib import Path; from falsifiers.scaffold import Scaffold, write_scaffold; "
            "print(locale.getpreferredencoding(False)); root = Path(sys.argv[1]); "
            "write_scaffold(Scaffold('demo-v1', root / 'c' / 'demo-v1.yaml', root / 't' / 'test_demo_v1.py', "
            "'INV-DEMO-001', 'FALSIFY-DEMO-001', 'Jos\\u00e9 \\u2713\\n', 'Gr\\u00fc\\u00dfe\\n'))")
    done = subprocess.run([sys.executable, "-c", code, os.fspath(tmp_path)], env=env, cwd=package_root,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "utf" not in done.stdout.lower(), f"the child ran under {done.stdout.strip()}, not a non-UTF-8 locale"
    assert (tmp_path / "c" / "demo-v1.yaml").read_bytes() == "José ✓\n".encode()
    assert (tmp_path / "t" / "test_demo_v1.py").read_bytes() == "Grüße\n".encode()
