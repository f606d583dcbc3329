"""One pytest session's contract state: scope, bindings, outcomes as reports arrive, the verdict.

`falsifiers.plugin` builds one `ContractsSession` in ``pytest_configure`` (only in a project with
a contracts folder), stashes it and registers it as a plugin object, as pytest's ``junitxml`` does
with ``LogXML``. It decides the run's `Scope` once, binds at collection, stores bound tests' reports
as they arrive (under xdist on the controller, from the workers' serialised reports), turns them
into `TestResult` records when the session ends (`results_of`), decides the verdict in
``pytest_sessionfinish`` (never on a worker) by the rules of `falsifiers.binding` and
`falsifiers.verdict`, sets the exit status, writes ``--contracts-json`` and prints the table
(`falsifiers.report`). The decisions are the pure functions of those modules; this class only
gathers their inputs and acts on their answers.

A failed report of a bound test carries replay data (`attach_evidence`): Hypothesis attaches its
falsifying example and ``@reproduce_failure`` blob to the exception as notes (PEP 678), and keeps
the seed it generated on the test function. Nothing here imports Hypothesis: a health check is
recognised by the exception's class name.
"""

from __future__ import annotations

import enum
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Modules whose functions a declared mutant patches are imported whole and their functions looked
# up on them at call time (``binding.bind_falsifiers``), so that the patch reaches this caller.
from falsifiers import artifact, binding, mutation, verdict
from falsifiers.corpus import SNAPSHOT_ENV, SnapshotCache, lint_cached, write_snapshot
from falsifiers.errors import ContractError, SelectionError
from falsifiers.records import Corpus, Falsifier, Mutant
from falsifiers.report import receipt, render_verdict
from falsifiers.settings import Profile, Settings
from falsifiers.verdict import InvalidContract, TestResult, TestStatus, VerdictReport

if TYPE_CHECKING:  # pragma: no cover
    from falsifiers.mutant_runs import MutantProgress

PROPERTY = "falsifier"  # JUnit XML <property name="falsifier" value="FALSIFY-…"/> on every bound test
WORKER_KEY = "apr_contracts"  # what an xdist worker sends its controller in workeroutput
EVIDENCE_ATTR = "apr_contracts_evidence"  # on failed reports; plain data, so xdist carries it


class Scope(str, enum.Enum):
    """What one run's verdict covers: decided once per session (`decide_scope`), then only read.

    The receipt's ``scope``, the table's note, whether every declared falsifier must be bound and
    which falsifiers are judged all follow from it. ``str`` values: the receipt and the xdist
    workers get the same text as before.
    """

    FULL = "full"  # the whole suite was collected: every contract, every falsifier must be bound
    PATHS = "paths"  # pytest was given paths: the contracts with a test among them
    SELECTED = "selected"  # --falsifier / --contract / --apply-mutant: those falsifiers
    ARTIFACT = "artifact"  # --artifact alone: the falsifiers whose tests take the apr_artifact fixture


def decide_scope(collected: Scope, *, selected: bool, artifact: bool) -> Scope:
    """The scope of a run that collected ``collected`` (FULL or PATHS) with these options."""
    if selected:
        return Scope.SELECTED
    if artifact:
        return Scope.ARTIFACT
    return collected


class ContractsSession:
    """Everything the harness knows during one pytest session (registered as a plugin object)."""

    def __init__(self, config: pytest.Config, settings: Settings, profile: Profile) -> None:
        self.config = config
        self.settings = settings
        self.profile = profile
        self.is_worker = hasattr(config, "workerinput")
        # `falsifiers.runner` prints the table from the receipt (TABLE_ENV). Taken out of the
        # environment here, so a pytest that one of this run's tests starts prints its own.
        self.table_to_caller = os.environ.pop("APR_CONTRACTS_TABLE", None) == "receipt"
        # pytest's cache (absent under -p no:cacheprovider) answers for an unchanged contracts folder;
        # xdist workers only read it, so they never race the controller's write. A mutant child runs
        # without it and reads the snapshot its parent wrote instead.
        cache = getattr(config, "cache", None)
        if cache is None and os.environ.get(SNAPSHOT_ENV):
            cache = SnapshotCache(os.environ[SNAPSHOT_ENV])
        self.corpus: Corpus = lint_cached(settings.contracts_dir, relative_to=Path(config.rootpath),
                                          max_bytes=settings.max_bytes,
                                          cache=_ReadOnlyCache(cache) if cache is not None and self.is_worker else cache)
        self.selection = self._resolve_selection()
        self.artifact: artifact.ArtifactRecord | None = None
        if self.is_worker:
            # what the controller collected (`collected_scope` there): workers are given node ids
            self.collected = Scope(config.workerinput.get("apr_contracts_mode", "full"))  # type: ignore[attr-defined]
            shared = config.workerinput.get("apr_contracts_artifact")  # type: ignore[attr-defined]
            if shared:
                self.artifact = artifact.ArtifactRecord.from_dict(shared)
        else:
            self.collected = collected_scope(config)
            if config.getoption("apr_artifact"):
                self.artifact = artifact.digest_artifact(config.getoption("apr_artifact"),
                                                         config.getoption("apr_model_card"))
        self.artifact_falsifiers: set[str] = set()  # artifact-level ids whose tests take the apr_artifact fixture
        self.mutant: tuple[Falsifier, Mutant] | None = None
        self.restore_hypothesis: Any = None
        if config.getoption("apr_apply_mutant"):
            self.mutant = mutation.resolve_mutant(self.corpus, config.getoption("apr_apply_mutant"))
            self.restore_hypothesis = mutation.quiet_hypothesis()  # after every check: a usage error leaves nothing to undo
            if self.selection is None:
                self.selection = {self.mutant[0].id}
        self.scope = decide_scope(self.collected, selected=self.selection is not None,
                                  artifact=self.artifact is not None)
        self.mutant_results: list[mutation.MutantResult] | None = None
        self.mutant_note = ""
        self.bindings: dict[str, tuple[str, ...]] = {}
        self.selected: set[str] = set()
        self.claimed: set[str] = set()  # contracts with at least one claiming test
        self.problems: list[str] = []
        self.phases: dict[str, dict[str, pytest.TestReport]] = {}  # bound tests' reports: node id -> phase -> report
        self.failed_tests = 0
        self.report: VerdictReport | None = None
        self.receipt_path: str | None = None

    # --- collection -----------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> Any:
        # Claims are read before -k/-m deselect anything: a deselected test still binds.
        claims = {item.nodeid: claim for item in items if (claim := binding.read_claim(item)) is not None}
        result = yield
        declared = self.corpus.falsifiers
        invalid = frozenset(c.name for c in self.corpus.contracts if not c.is_valid)
        bindings = binding.bind_falsifiers(declared, binding.to_claims(claims), invariants=self.corpus.invariants,
                                           require_all=self.collected is Scope.FULL, unchecked_contracts=invalid)
        problems = bindings.problems
        self.bindings = dict(bindings.tests)
        self.claimed = {declared[i].contract for i in self.bindings}
        self.artifact_falsifiers = binding.artifact_falsifiers(items, claims, declared)
        chosen = self.selection
        if chosen is None and self.artifact is not None:
            chosen = self.artifact_falsifiers  # --artifact alone: the run is about that file only
        if chosen is not None:
            keep = [i for i in items if i.nodeid in claims and set(claims[i.nodeid][0]) & chosen]
            kept = {id(i) for i in keep}
            dropped = [i for i in items if id(i) not in kept]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
            items[:] = keep
        for item in items:
            claim = claims.get(item.nodeid)
            if claim is None:
                continue
            self.selected.add(item.nodeid)
            for ident in claim[0]:
                item.user_properties.append((PROPERTY, ident))
                known = declared.get(ident)
                if known is not None:
                    item.user_properties.append(("contract", known.contract))
        self.problems = [p.message for p in problems]
        for problem in problems:
            report = pytest.CollectReport(problem.nodeid, "failed", longrepr=problem.message, result=[])
            config.hook.pytest_collectreport(report=report)
        if problems and not config.option.continue_on_collection_errors:
            items[:] = []  # as pytest does for any collection error; xdist workers run nothing either
        if self.is_worker:
            config.workeroutput[WORKER_KEY] = {  # type: ignore[attr-defined]
                "bindings": {k: list(v) for k, v in self.bindings.items()},
                "selected": sorted(self.selected),
                "claimed": sorted(self.claimed),
                "problems": self.problems,
                "artifact_falsifiers": sorted(self.artifact_falsifiers),
            }
        return result

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist controller: merge what each worker collected (they collect the same suite)."""
        data = getattr(node, "workeroutput", {}).get(WORKER_KEY)
        if not data:
            return
        for ident, nodeids in data["bindings"].items():
            self.bindings[ident] = tuple(sorted(set(self.bindings.get(ident, ())) | set(nodeids)))
        self.selected.update(data["selected"])
        self.claimed.update(data["claimed"])
        self.artifact_falsifiers.update(data.get("artifact_falsifiers", ()))
        for problem in data["problems"]:
            if problem not in self.problems:
                self.problems.append(problem)

    # --- running ----------------------------------------------------------------------------------

    def pytest_exception_interact(self, node: pytest.Item | pytest.Collector, call: pytest.CallInfo[Any],
                                  report: pytest.TestReport | pytest.CollectReport) -> None:
        """A failure (only failures reach this hook): its replay data, read with the report at the end."""
        if isinstance(node, pytest.Item) and isinstance(report, pytest.TestReport) and not self.is_worker:
            attach_evidence(node, call, report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Called three times per test: kept to a loop and a store (reports are read at the end).
        if self.is_worker:
            return
        for key, _ in report.user_properties:
            if key == PROPERTY:
                self.phases.setdefault(report.nodeid, {})[report.when] = report
                return
        if report.failed:
            self.failed_tests += 1  # a test bound to no falsifier: pytest's exit 1 must survive

    # --- the verdict ------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker or self.config.option.collectonly:
            return
        report = self.report = self._verdict(session, int(exitstatus))
        if report is None:
            return
        if self.config.getoption("apr_mutants") and self.mutant is None:
            self.mutant_results = self._run_mutants()
            report = self.report = self._verdict(session, int(exitstatus))
            if report is None:
                return
        final = _final_exit(int(session.exitstatus), report.exit_code, self.failed_tests)
        session.exitstatus = final
        path = self.config.getoption("apr_contracts_json")
        if path:
            scope_contracts = {o.falsifier.contract for o in report.falsifiers}
            scope_contracts |= {i.contract.name for i in report.invalid_contracts}
            document = receipt(report, [c for c in self.corpus.contracts if c.name in scope_contracts],
                               scope=self.scope.value, exit_code=final, pytest_exit=int(exitstatus),
                               findings=self.corpus.findings)
            _write_json(path, document)
            self.receipt_path = path

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self.report is None:
            return
        if self.table_to_caller:
            return
        errors = [f for f in self.corpus.findings if f.is_error]
        if errors:
            terminalreporter.write_sep("-", f"contract errors ({len(errors)})", red=True)
            for finding in errors[:50]:
                terminalreporter.write_line(finding.render())
        writer = self.config.get_terminal_writer()
        terminalreporter.write_sep("=", "contracts", bold=True)
        width, color, verbose = max(writer.fullwidth, 80), writer.hasmarkup, self.config.option.verbose > 0
        terminalreporter.write(render_verdict(self.report, width=width, color=color, verbose=verbose))
        if self.receipt_path:
            terminalreporter.write_line(f"contracts receipt written to {self.receipt_path}")

    # --- helpers ----------------------------------------------------------------------------------

    def _resolve_selection(self) -> set[str] | None:
        ids = list(self.config.getoption("apr_falsifier") or [])
        names = list(self.config.getoption("apr_contract") or [])
        if not ids and not names:
            return None
        chosen: set[str] = set()
        for ident in ids:
            if ident not in self.corpus.falsifiers:
                nearest = binding.nearest_id(ident, self.corpus.falsifiers)
                raise SelectionError(f"--falsifier {ident}: no contract declares it",
                                     hint=f"did you mean {nearest}?" if nearest else "see `apr contracts list`")
            chosen.add(ident)
        for name in names:
            contract = self.corpus.contract(name)
            if contract is None:
                nearest = binding.nearest_id(name, [c.name for c in self.corpus.contracts])
                raise SelectionError(f"--contract {name}: no such contract",
                                     hint=f"did you mean {nearest}?" if nearest else "see `apr contracts list`")
            chosen.update(f.id for f in contract.falsifiers)
        return chosen

    def _run_mutants(self) -> list[mutation.MutantResult]:
        """Rerun each corroborated falsifier's bound tests once per mutant (child pytests, N at a time)."""
        # Imported here, not at the top: ~5 ms (python -X importtime, 2026-12-06) that only --mutants needs.
        from falsifiers.mutant_runs import MutantProgress, plan_runs, run_mutants

        assert self.report is not None
        outcomes = {o.falsifier.id: o.outcome.value for o in self.report.falsifiers}
        durations = {nodeid: reports_duration(phases) for nodeid, phases in self.phases.items()}
        runs, not_run = plan_runs([o.falsifier for o in self.report.falsifiers], outcomes, self.bindings, durations)
        jobs = self.config.getoption("apr_mutants_jobs") or os.cpu_count() or 1
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"apr-contracts: running {len(runs)} mutant(s), {jobs} at a time")
        extra = []
        if self.artifact is not None:
            extra.append(f"--artifact={self.artifact.path}")
            if self.artifact.model_card:
                extra.append(f"--model-card={self.artifact.model_card}")
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="apr-corpus-") as folder:
            snapshot = Path(folder) / "corpus.json"
            write_snapshot(snapshot, self.corpus, self.settings.contracts_dir, relative_to=Path(self.config.rootpath),
                           max_bytes=self.settings.max_bytes)
            progress: MutantProgress | None = None
            if reporter is not None:
                on_terminal = reporter.isatty() if callable(getattr(reporter, "isatty", None)) else False
                progress = MutantProgress([run.falsifier.contract for run in runs], reporter.write_line,
                                          (lambda line: reporter.rewrite(line, erase=True)) if on_terminal else None)
            done = run_mutants(runs, rootdir=self.config.rootpath, profile=self.profile.name, jobs=jobs, extra=extra,
                               corpus_snapshot=snapshot, progress=progress)
        self.mutant_note = f"mutants: {len(runs)} run in {time.perf_counter() - started:.1f} s, {jobs} at a time"
        return [*done, *not_run]

    def _scope_notes(self) -> list[str]:
        if self.scope is Scope.PATHS:
            return ["scope: contracts with tests among the given paths (run without paths for the full verdict)"]
        return []

    def _verdict(self, session: pytest.Session, exitstatus: int) -> VerdictReport | None:
        contracts = self.corpus.contracts
        if self.scope is Scope.SELECTED:
            assert self.selection is not None
            in_scope = [f for f in self.corpus.falsifiers.values() if f.id in self.selection]
            names = {f.contract for f in in_scope}
        elif self.scope is Scope.ARTIFACT:
            in_scope = [f for f in self.corpus.falsifiers.values() if f.id in self.artifact_falsifiers]
            names = {f.contract for f in in_scope}
        else:
            names = {c.name for c in contracts} if self.scope is Scope.FULL else set(self.claimed)
            in_scope = [f for c in contracts if c.name in names for f in c.falsifiers]
        unique = list({f.id: f for f in in_scope}.values())
        invalid = [InvalidContract(c, _first_error(self.corpus, c.path)) for c in contracts
                   if c.name in names and not c.is_valid]
        if not unique and not invalid:
            return None  # nothing in scope: no verdict, pytest's own exit status stands
        results = results_of(self.phases)
        stopped = None
        if self.problems:
            stopped = "not run: binding errors at collection"
        elif session.shouldfail or session.shouldstop:
            stopped = f"the session stopped early: {session.shouldfail or session.shouldstop}"
        elif exitstatus == pytest.ExitCode.INTERRUPTED:
            stopped = "the session was interrupted"
        notes = self._scope_notes()
        changed = None
        if self.artifact is not None:
            try:
                after: artifact.ArtifactRecord | None = artifact.digest_artifact(self.artifact.path)
            except ContractError:
                after = None
            changed = artifact.artifact_change(self.artifact, after)
        vacuous = None
        if self.mutant_results is not None:
            vacuous = mutation.vacuous_reasons(self.mutant_results)
        if self.mutant_note:
            notes.append(self.mutant_note)
        if self.mutant is not None:
            notes.append(f"mutant applied: {self.mutant[0].id}:{self.mutant[1].name} (a REFUTED outcome means killed)")
        return verdict.compute_verdict(unique, self.bindings, self.selected, results, self.profile, invalid=invalid,
                               problems=self.problems, stopped=stopped, notes=notes,
                               awaiting_artifact=() if self.artifact is not None else self.artifact_falsifiers,
                               artifact=self.artifact, artifact_changed=changed, vacuous=vacuous,
                               mutants=self.mutant_results)


class _ReadOnlyCache:
    """pytest's cache for an xdist worker: reads pass through, writes are dropped."""

    def __init__(self, cache: Any) -> None:
        self._cache = cache

    def get(self, key: str, default: Any) -> Any:
        return self._cache.get(key, default)

    def set(self, key: str, value: Any) -> None:
        return None




def collected_scope(config: pytest.Config) -> Scope:
    """FULL when pytest collects the whole suite (no paths, or paths covering ``testpaths``), else PATHS."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return Scope.FULL
    root = Path(config.rootpath)
    testpaths = [root / p for p in (config.getini("testpaths") or ["."])]
    given = []
    for arg in config.args:
        if "::" in arg:
            return Scope.PATHS
        given.append(Path(config.invocation_params.dir, arg).resolve())
    covered = all(any(g == t.resolve() or g in t.resolve().parents for g in given) for t in testpaths)
    return Scope.FULL if covered else Scope.PATHS


def _final_exit(status: int, verdict_exit: int, failed_tests: int) -> int:
    """The session's exit status: the verdict's (``verdict_exit``: 0 GO, 1 NO-GO, 2 UNKNOWN), unless
    pytest itself could not run properly."""
    if status in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        return status
    if verdict_exit == 1 or failed_tests:
        return int(pytest.ExitCode.TESTS_FAILED)  # 1: NO-GO, or a test bound to nothing failed
    if verdict_exit == 2:
        return 2  # UNKNOWN
    return status  # GO: 0, or pytest's own complaint about something outside the contracts


def _first_error(corpus: Corpus, path: str) -> str:
    for finding in corpus.findings:
        if finding.is_error and finding.location is not None and finding.location.path == path:
            return f"{finding.location}: {finding.message}"
    return "its contract file has errors"


def _write_json(path: str, document: dict[str, Any]) -> None:
    """Temporary file, fsync, rename: a failed write keeps the previous receipt and leaves no temporary.

    Not `apr.format.atomic`: `falsifiers` does not import `apr` (it imports numpy, which cannot be
    loaded twice in one process, and pytester's in-process runs re-import what a run imported).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, ensure_ascii=False, default=str)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# --- a failure's replay data -----------------------------------------------------------------------

_REPRODUCE = re.compile(r"@reproduce_failure\([^)]*\)")
_SEED = re.compile(r"(@seed\(\d+\)|--hypothesis-seed=\d+)")
_LIMIT = 2000
_EXAMPLE_PREFIXES = ("Falsifying example", "Failing test case", "Falsifying explicit example")


def failure_evidence(item: Any, call: Any, report: Any) -> dict[str, Any]:
    """Plain data (it crosses from xdist workers) describing one failed report of a bound test."""
    exc = call.excinfo.value if call.excinfo is not None else None
    names = {cls.__name__ for cls in type(exc).__mro__} if exc is not None else set()
    notes = [str(n) for n in getattr(exc, "__notes__", []) or []]
    text = "\n".join(notes) + "\n" + "\n".join(content for title, content in report.sections if "ypothesis" in title)
    example = next((n.strip() for n in notes if n.lstrip().startswith(_EXAMPLE_PREFIXES)), None)
    reproduce = _REPRODUCE.search(text)
    return {
        "health_check": "FailedHealthCheck" in names,
        "reason": _first_line(exc) if exc is not None else "failed",
        "example": example[:_LIMIT] if example else None,
        "reproduce": reproduce.group(0)[:_LIMIT] if reproduce else None,
        "seed": _seed(item, text),
    }


def _first_line(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    first = message[0] if message else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


def _seed(item: Any, text: str) -> str | None:
    found = _SEED.search(text)
    if found:
        return found.group(1)
    forced = item.config.getoption("hypothesis_seed", None) if hasattr(item, "config") else None
    if forced is not None:
        return f"--hypothesis-seed={forced}"
    function = getattr(item, "obj", None)
    generated = getattr(function, "_hypothesis_internal_use_generated_seed", None)
    if generated is not None:
        return f"--hypothesis-seed={generated}"
    explicit = getattr(function, "_hypothesis_internal_use_seed", None)
    if explicit is not None:
        return f"@seed({explicit})"
    if getattr(function, "hypothesis", None) is not None:
        settings = getattr(function, "_hypothesis_internal_use_settings", None)
        if settings is None and "hypothesis" in sys.modules:
            settings = sys.modules["hypothesis"].settings.default
        if settings is not None and getattr(settings, "derandomize", False):
            return "derandomize=True: rerunning replays it"
    return None


def attach_evidence(item: Any, call: Any, report: Any) -> None:
    """Put replay data (Hypothesis example, seed, blob) on a bound test's failed report."""
    if report.failed and any(k == PROPERTY for k, _ in item.user_properties):
        setattr(report, EVIDENCE_ATTR, failure_evidence(item, call, report))


# --- a bound test's reports -> one TestResult ------------------------------------------------------


def reports_duration(phases: dict[str, Any]) -> float:
    """Seconds a test took, its phases together (a report without a duration counts 0)."""
    return sum(float(getattr(report, "duration", 0.0) or 0.0) for report in phases.values())


def _skip_reason(report: Any) -> str:
    if isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return ""


def results_of(phases_by_test: dict[str, dict[str, Any]]) -> dict[str, TestResult]:
    """What happened to each bound test; a test whose three phases passed is decided at once."""
    results = {}
    for nodeid, phases in phases_by_test.items():
        if passed_cleanly(phases):
            duration = phases["setup"].duration + phases["call"].duration + phases["teardown"].duration
            results[nodeid] = TestResult(nodeid, TestStatus.PASSED, duration, "call")
        else:
            results[nodeid] = result_of(nodeid, phases)
    return results


def passed_cleanly(phases: dict[str, Any]) -> bool:
    """Setup, call and teardown all reported and passed, and not an xpass: `result_of` says PASSED."""
    call = phases.get("call")
    return (call is not None and call.outcome == "passed" and len(phases) == 3
            and phases["setup"].outcome == "passed" and phases["teardown"].outcome == "passed"
            and not hasattr(call, "wasxfail"))


def result_of(nodeid: str, phases: dict[str, Any]) -> TestResult:
    """What happened to one bound test, from its setup/call/teardown reports."""
    duration = reports_duration(phases)
    for when in ("setup", "call", "teardown"):
        phase = phases.get(when)
        if phase is None or phase.outcome != "failed":
            continue
        evidence = getattr(phase, EVIDENCE_ATTR, None) or {}
        status = TestStatus.HEALTH_CHECK if evidence.get("health_check") else TestStatus.FAILED
        return TestResult(nodeid, status, duration, when, evidence.get("reason", "") or "failed",
                          evidence.get("seed"), evidence.get("reproduce"), evidence.get("example"))
    for when in ("setup", "call"):
        phase = phases.get(when)
        if phase is not None and phase.outcome == "skipped":
            wasxfail = getattr(phase, "wasxfail", None)
            if wasxfail is not None:
                return TestResult(nodeid, TestStatus.XFAILED, duration, when, wasxfail or "xfail")
            return TestResult(nodeid, TestStatus.SKIPPED, duration, when, _skip_reason(phase))
    call = phases.get("call")
    if call is not None and call.outcome == "passed":
        wasxfail = getattr(call, "wasxfail", None)
        if wasxfail is not None:
            return TestResult(nodeid, TestStatus.XPASSED, duration, "call", wasxfail or "xpass")
        return TestResult(nodeid, TestStatus.PASSED, duration, "call")
    return TestResult(nodeid, TestStatus.SKIPPED, duration, "setup", "did not reach the test body")


__all__ = ["EVIDENCE_ATTR", "PROPERTY", "WORKER_KEY", "ContractsSession", "Scope", "attach_evidence",
           "collected_scope", "decide_scope", "failure_evidence", "passed_cleanly", "reports_duration", "result_of",
           "results_of"]
