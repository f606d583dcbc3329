"""The plugin end to end, in isolated pytester projects (contracts/harness-v1.yaml)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.harness.projects import Project, contract_yaml, passing_test

# --- a skip is never a pass ---------------------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-HARNESS-001")
def test_only_test_skipped_exits_unknown(project: Project) -> None:
    project.contract("skip-v1", contract_yaml("SKIP"))
    project.test("test_skip", """
        import pytest

        @pytest.mark.falsifies("FALSIFY-SKIP-001")
        def test_falsify_skip_001():
            pytest.skip("no data on this machine")
    """)
    result = project.run("--contracts-json=verdict.json")
    assert result.ret == 2
    assert project.outcomes() == {"FALSIFY-SKIP-001": "UNDETERMINED"}
    receipt = project.receipt()
    assert receipt["verdict"] == "UNKNOWN"
    assert "skipped: no data on this machine" in receipt["falsifiers"][0]["reason"]
    result.stdout.fnmatch_lines(["*verdict: UNKNOWN*"])


@pytest.mark.falsifies("FALSIFY-HARNESS-001")
def test_cuda_falsifier_is_listed_not_dropped_under_cpu_profile(project: Project) -> None:
    project.contract("gpu-v1", contract_yaml("GPU", [{}, {"requires": ["cuda"]}]))
    project.test("test_gpu", passing_test("GPU") + """
@pytest.mark.falsifies("FALSIFY-GPU-002")
def test_falsify_gpu_002():
    pytest.skip("no CUDA device")
""")
    result = project.run("--contracts-json=verdict.json")
    assert result.ret == 0, result.stdout.str()
    cuda = next(f for f in project.receipt()["falsifiers"] if f["id"] == "FALSIFY-GPU-002")
    assert cuda["outcome"] == "UNDETERMINED" and cuda["required"] is False
    assert cuda["reason"].startswith("requires cuda; not required by profile cpu")
    # The GPU and release profiles require it: the same run is UNKNOWN there.
    assert project.run("--contracts-profile=gpu").ret == 2
    assert project.run("--contracts-profile=release").ret == 2


# --- bindings are checked in both directions ------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-HARNESS-002")
def test_deleting_the_bound_test_is_a_collection_error(project: Project) -> None:
    project.contract("bind-v1", contract_yaml("BIND"))
    test_file = project.test("test_bind", passing_test("BIND"))
    assert project.run().ret == 0
    test_file.unlink()
    project.test("test_other", "def test_unrelated():\n    pass\n")
    result = project.run("--contracts-json=verdict.json")
    assert result.ret == 2
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR collecting contracts/bind-v1.yaml*",
        "contracts/bind-v1.yaml:*: falsifier FALSIFY-BIND-001 (contract bind-v1) has no test*",
    ])
    assert project.receipt()["verdict"] == "UNKNOWN"


@pytest.mark.falsifies("FALSIFY-HARNESS-002")
def test_renamed_id_names_the_test_file_and_the_yaml_line(project: Project) -> None:
    project.contract("rename-v1", contract_yaml("RENAME"))
    project.test("test_rename", passing_test("RENAME"))
    path = project.root / "contracts" / "rename-v1.yaml"
    path.write_text(path.read_text().replace("FALSIFY-RENAME-001", "FALSIFY-RENAME-002"))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "FALSIFY-RENAME-002" in text)
    result = project.run()
    assert result.ret == 2
    out = result.stdout.str()
    assert "tests/test_rename.py:4: tests/test_rename.py::test_falsify_rename_001 claims falsifier " \
           "FALSIFY-RENAME-001, which no contract declares" in out
    assert f"did you mean FALSIFY-RENAME-002? (declared at contracts/rename-v1.yaml:{line}:" in out
    assert f"contracts/rename-v1.yaml:{line}:9: falsifier FALSIFY-RENAME-002 (contract rename-v1) has no test" in out


def test_pending_falsifier_needs_no_test_but_is_undetermined(project: Project) -> None:
    project.contract("pend-v1", contract_yaml("PEND", [{}, {"pending": "needs the real checkpoint"}]))
    project.test("test_pend", passing_test("PEND"))
    assert project.run("--contracts-json=verdict.json").ret == 0  # cpu tolerates pending
    pending = project.receipt()["falsifiers"][1]
    assert (pending["outcome"], pending["required"]) == ("UNDETERMINED", False)
    assert project.run("--contracts-profile=release").ret == 2


def test_claiming_an_invariant_id_explains_the_mistake(project: Project) -> None:
    project.contract("inv-v1", contract_yaml("INV"))
    project.test("test_inv", """
        import pytest

        @pytest.mark.falsifies("INV-INV-001")
        def test_wrong_kind_of_id():
            pass
    """)
    result = project.run()
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*INV-INV-001 is an invariant; claim its falsifier instead: FALSIFY-INV-001*"])


# --- verdict rules ------------------------------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-HARNESS-006")
@pytest.mark.parametrize("workers", [0, 2], ids=["serial", "xdist"])
def test_failure_refutes_and_reports_the_minimal_example(project: Project, workers: int) -> None:
    """Serially the replay data is read in pytest_exception_interact; an xdist worker must attach it
    before it sends the report, so there a makereport wrapper does: both paths are checked."""
    project.contract("hyp-v1", contract_yaml("HYP"))
    project.test("test_hyp", """
        import pytest
        from hypothesis import given, settings, strategies as st

        @pytest.mark.falsifies("FALSIFY-HYP-001")
        @settings(database=None, print_blob=True)
        @given(st.integers())
        def test_falsify_hyp_001(x):
            assert x < 100
    """)
    if workers:
        result = project.run_subprocess("--contracts-json=verdict.json", "-n", str(workers))
    else:
        result = project.run("--contracts-json=verdict.json")
    assert result.ret == 1
    falsifier = project.receipt()["falsifiers"][0]
    assert falsifier["outcome"] == "REFUTED"
    test = falsifier["tests"][0]
    assert "x=100" in test["minimal_example"]
    assert test["reproduce_failure"].startswith("@reproduce_failure(")
    result.stdout.fnmatch_lines(["*REFUTED*", "*x=100*", "*verdict: NO-GO*"])


@pytest.mark.falsifies("FALSIFY-HARNESS-006")
def test_health_check_is_undetermined_not_refuted(project: Project) -> None:
    project.contract("health-v1", contract_yaml("HEALTH"))
    project.test("test_health", """
        import pytest
        from hypothesis import HealthCheck, assume, given, settings, strategies as st

        @pytest.mark.falsifies("FALSIFY-HEALTH-001")
        @settings(database=None, suppress_health_check=[h for h in HealthCheck if h is not HealthCheck.filter_too_much])
        @given(st.integers())
        def test_falsify_health_001(x):
            assume(x == 123456789)
    """)
    result = project.run("--contracts-json=verdict.json")
    falsifier = project.receipt()["falsifiers"][0]
    assert falsifier["outcome"] == "UNDETERMINED", falsifier
    assert "health check" in falsifier["reason"]
    assert result.ret == 2


def test_unbound_failing_test_still_fails_the_run(project: Project) -> None:
    project.contract("ok-v1", contract_yaml("OK"))
    project.test("test_ok", passing_test("OK") + "\ndef test_plain():\n    assert False\n")
    result = project.run("--contracts-json=verdict.json")
    assert project.receipt()["verdict"] == "GO"
    assert result.ret == 1


# --- isolation, parallelism, selection ----------------------------------------------------------


@pytest.mark.falsifies("FALSIFY-HARNESS-007")
def test_malformed_contract_leaves_other_outcomes_unchanged(project: Project) -> None:
    project.contract("good-v1", contract_yaml("GOOD", [{}, {}]))
    project.test("test_good", passing_test("GOOD") + """
@pytest.mark.falsifies("FALSIFY-GOOD-002")
def test_falsify_good_002():
    assert False
""")
    project.run("--contracts-json=before.json")
    before = project.outcomes("before.json")
    project.contract("bad-v1", "metadata:\n  version: 1.0.0\n\tstatus: oops\nfalsification_tests:\n  - id: FALSIFY-BAD-001\n")
    project.test("test_bad", """
        import pytest

        @pytest.mark.falsifies("FALSIFY-BAD-001")
        def test_falsify_bad_001():
            pass
    """)
    result = project.run("--contracts-json=after.json")
    after = project.receipt("after.json")
    assert {k: v for k, v in project.outcomes("after.json").items() if k.startswith("FALSIFY-GOOD")} == before
    assert after["invalid_contracts"][0]["name"] == "bad-v1"
    assert "contracts/bad-v1.yaml:3:1" in after["invalid_contracts"][0]["reason"]
    assert after["verdict"] == "NO-GO" and result.ret == 1  # GOOD-002 still refutes
    result.stdout.fnmatch_lines(["*contracts/bad-v1.yaml:3:1: error?yaml-syntax?*tab*"])


@pytest.mark.falsifies("FALSIFY-HARNESS-008")
def test_xdist_gives_the_same_verdict_as_serial(project: Project) -> None:
    pytest.importorskip("xdist")
    project.contract("par-v1", contract_yaml("PAR", [{}, {}, {}, {"pending": "later"}]))
    project.test("test_par", passing_test("PAR") + """
@pytest.mark.falsifies("FALSIFY-PAR-002")
@pytest.mark.parametrize("n", range(6))
def test_falsify_par_002(n):
    assert n != 4

@pytest.mark.falsifies("FALSIFY-PAR-003")
def test_falsify_par_003():
    pytest.skip("not here")
""")
    serial = project.run_subprocess("--contracts-json=serial.json")
    parallel = project.run_subprocess("-n", "2", "--contracts-json=parallel.json")
    assert serial.ret == parallel.ret == 1

    def stable(name: str) -> dict:
        doc = project.receipt(name)
        return {
            "verdict": doc["verdict"], "exit_code": doc["exit_code"],
            "falsifiers": [{k: f[k] for k in ("id", "outcome", "reason", "required", "nodeids")}
                           | {"tests": sorted((t["nodeid"], t["status"]) for t in f["tests"])}
                           for f in doc["falsifiers"]],
        }

    assert stable("serial.json") == stable("parallel.json")
    assert project.outcomes("parallel.json")["FALSIFY-PAR-002"] == "REFUTED"


@pytest.mark.falsifies("FALSIFY-HARNESS-008")
def test_xdist_reports_a_binding_error_once(project: Project) -> None:
    pytest.importorskip("xdist")
    project.contract("once-v1", contract_yaml("ONCE"))
    project.test("test_once", passing_test("ONCE") + """
@pytest.mark.falsifies("FALSIFY-ONCE-009")
def test_typo():
    pass
""")
    result = project.run_subprocess("-n", "2")
    assert result.ret == 2
    assert result.stdout.str().count("ERROR collecting tests/test_once.py") == 1  # not once per worker


def test_select_by_falsifier_and_contract(project: Project) -> None:
    project.contract("sel-v1", contract_yaml("SEL", [{}, {}]))
    project.contract("other-v1", contract_yaml("OTHER"))
    project.test("test_sel", passing_test("SEL") + passing_test("OTHER") + """
@pytest.mark.falsifies("FALSIFY-SEL-002")
def test_falsify_sel_002():
    assert False
""")
    result = project.run("--falsifier=FALSIFY-SEL-001", "--contracts-json=verdict.json")
    assert result.ret == 0
    result.assert_outcomes(passed=1, deselected=2)
    assert project.outcomes() == {"FALSIFY-SEL-001": "CORROBORATED"}
    assert project.run("--contract=sel-v1").ret == 1
    bad = project.run("--falsifier=FALSIFY-SEL-01")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--falsifier FALSIFY-SEL-01: no contract declares it", "*did you mean FALSIFY-SEL-001?"])


@pytest.mark.falsifies("FALSIFY-HARNESS-010")
def test_no_contracts_folder_is_a_no_op(pytester: pytest.Pytester) -> None:
    # opted in (falsifiers.entry registers the plugin), yet no contracts/: the plugin's own guard decides
    pytester.makepyprojecttoml("[tool.apr-contracts]\n")
    pytester.makepyfile(test_x="""
        import pytest

        @pytest.mark.falsifies("FALSIFY-NOWHERE-001")
        def test_x():
            pass
    """)
    result = pytester.runpytest("--strict-markers", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.assert_outcomes(passed=1)
    assert "verdict" not in result.stdout.str()


@pytest.mark.falsifies("FALSIFY-HARNESS-010")
def test_plugin_import_is_cheap() -> None:
    code = ("import sys, falsifiers.plugin; "
            "print([m for m in ('torch', 'numpy', 'yaml', 'jsonschema', 'rich') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.falsifies("FALSIFY-HARNESS-011")
def test_receipt_names_versions_hashes_and_junit_properties(project: Project) -> None:
    import hashlib
    import xml.etree.ElementTree as ET

    path = project.contract("rec-v1", contract_yaml("REC"))
    project.test("test_rec", passing_test("REC"))
    assert project.run("--contracts-json=verdict.json", "--junitxml=junit.xml").ret == 0
    receipt = project.receipt()
    assert receipt["schema"] == "apr-contracts/verdict/1"
    assert {"harness", "python", "numpy", "torch", "pytest", "hypothesis"} <= set(receipt["environment"])
    assert receipt["contracts"][0]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert receipt["falsifiers"][0]["nodeids"] == ["tests/test_rec.py::test_falsify_rec_001"]
    properties = {(p.get("name"), p.get("value")) for p in ET.parse(project.root / "junit.xml").iter("property")}
    assert ("falsifier", "FALSIFY-REC-001") in properties and ("contract", "rec-v1") in properties


def test_programmatic_run_and_narrowed_paths(project: Project) -> None:
    project.contract("prog-v1", contract_yaml("PROG"))
    project.contract("far-v1", contract_yaml("FAR"))
    project.test("test_prog", passing_test("PROG"))
    project.test("test_far", passing_test("FAR").replace("assert 1 + 1 == 2", "assert False"))
    # Narrowed to one file: far-v1 is out of scope (neither a collection error nor a refutation).
    code = pytest.main([str(project.root / "tests" / "test_prog.py"), f"--rootdir={project.root}",
                        f"--contracts-json={project.root / 'verdict.json'}", "-q", "-p", "no:cacheprovider"])
    assert code == 0
    assert project.outcomes() == {"FALSIFY-PROG-001": "CORROBORATED"}
    assert json.loads((project.root / "verdict.json").read_text())["scope"] == "paths"


def test_the_harness_fingerprint_follows_any_edit_of_its_sources(tmp_path, monkeypatch) -> None:
    import os

    from falsifiers import corpus

    (tmp_path / "schema").mkdir()
    source = tmp_path / "lint.py"
    source.write_text("RULES = 1\n")
    (tmp_path / "schema" / "contract.schema.json").write_text("{}")
    monkeypatch.setattr(corpus, "_PACKAGE", tmp_path)
    first = corpus.harness_fingerprint()
    assert corpus.harness_fingerprint() == first  # stable while nothing changes
    stat = source.stat()
    source.write_text("RULES = 2\n")  # same size: only the modification time tells
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    second = corpus.harness_fingerprint()
    assert second != first
    (tmp_path / "schema" / "contract.schema.json").write_text('{"type": "object"}')
    assert corpus.harness_fingerprint() != second


def test_cached_corpus_is_the_linted_one_and_follows_edits(project: Project) -> None:
    from falsifiers.corpus import decode_corpus, encode_corpus
    from falsifiers.lint import lint_paths

    project.contract("cache-v1", contract_yaml("CACHE", [{}, {"pending": "later", "requires": ["cuda"]}]))
    project.contract("broken-v1", "metadata: [\n")
    corpus = lint_paths([project.root / "contracts"], relative_to=project.root)
    assert decode_corpus(encode_corpus(corpus)) == corpus
    # With pytest's cache on, a second run is answered from it, and an edit is still seen.
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(" -p no:cacheprovider", ""))
    (project.root / "contracts" / "broken-v1.yaml").unlink()
    project.test("test_cache", passing_test("CACHE"))
    assert project.run().ret == 0
    assert project.run().ret == 0
    path = project.root / "contracts" / "cache-v1.yaml"
    path.write_text(path.read_text().replace("FALSIFY-CACHE-001", "FALSIFY-CACHE-003"))
    result = project.run()
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*claims falsifier FALSIFY-CACHE-001, which no contract declares"])


def test_a_damaged_cache_entry_is_linted_again(project: Project) -> None:
    """An entry whose corpus text does not decode is a miss: the files are linted again, and a
    failing test is still refuted."""
    from falsifiers.corpus import CACHE_KEY

    project.contract("dmg-v1", contract_yaml("DMG"))
    project.test("test_dmg", passing_test("DMG"))
    pyproject = project.root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(" -p no:cacheprovider", ""))
    assert project.run().ret == 0
    entry = next((project.root / ".pytest_cache" / "v").rglob(CACHE_KEY.rsplit("/", 1)[1]))
    good = json.loads(entry.read_text())
    for damaged in ({**good, "corpus": "[1, 2"}, {**good, "corpus": '{"contracts": [{"name": 5}]}'}):
        entry.write_text(json.dumps(damaged))
        project.test("test_dmg", passing_test("DMG").replace("assert 1 + 1 == 2", "assert 1 + 1 == 3"))
        result = project.run()
        assert result.ret == 1
        result.stdout.fnmatch_lines(["*FALSIFY-DMG-001*REFUTED*", "*verdict: NO-GO*"])
        project.test("test_dmg", passing_test("DMG"))
        entry.write_text(json.dumps(damaged))
        assert project.run().ret == 0


def test_a_mutant_childs_snapshot_answers_for_unchanged_contracts_only(project: Project, monkeypatch) -> None:
    """--mutants children read their parent's corpus snapshot instead of linting again; a contract
    edited since is a miss and a full lint (the snapshot is never written to)."""
    from falsifiers import corpus as cache_module

    project.contract("snap-v1", contract_yaml("SNAP", [{}, {"pending": "later"}]))
    folder, root = project.root / "contracts", project.root
    corpus = cache_module._lint(folder, root, 1 << 20)
    snapshot = root / "snapshot.json"
    cache_module.write_snapshot(snapshot, corpus, folder, relative_to=root, max_bytes=1 << 20)
    before = snapshot.read_bytes()
    linted = []
    real_lint = cache_module._lint
    monkeypatch.setattr(cache_module, "_lint", lambda *a: linted.append(a) or real_lint(*a))
    cache = cache_module.SnapshotCache(snapshot)
    assert cache_module.lint_cached(folder, relative_to=root, max_bytes=1 << 20, cache=cache) == corpus
    assert linted == []  # answered by the snapshot
    path = folder / "snap-v1.yaml"
    path.write_text(path.read_text().replace("FALSIFY-SNAP-002", "FALSIFY-SNAP-009"))
    edited = cache_module.lint_cached(folder, relative_to=root, max_bytes=1 << 20, cache=cache)
    assert len(linted) == 1 and "FALSIFY-SNAP-009" in edited.falsifiers
    assert edited == real_lint(folder, root, 1 << 20) and edited != corpus
    assert snapshot.read_bytes() == before
    assert cache_module.SnapshotCache(root / "missing.json").get(cache_module.CACHE_KEY, None) is None
