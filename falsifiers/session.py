"""One pytest session's contract state: bindings at collection, outcomes as reports arrive, the verdict.

`falsifiers.plugin` builds one `ContractsSession` in ``pytest_configure`` (only in a project with
a contracts folder), stashes it and registers it as a plugin object, as pytest's ``junitxml`` does
with ``LogXML``. It binds at collection, stores bound tests' reports as they arrive (under xdist on
the controller, from the workers' serialised reports), decides the verdict in
``pytest_sessionfinish`` (never on a worker) by the rules of `falsifiers.binding` and
`falsifiers.verdict`, sets the exit status, writes ``--contracts-json`` and prints the table
(`falsifiers.report`). The decisions are the pure
functions of those modules; this class only gathers their inputs and acts on their answers.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from falsifiers._evidence import PROPERTY, WORKER_KEY, attach_evidence

if TYPE_CHECKING:  # pragma: no cover
    from falsifiers.artifact import ArtifactRecord
    from falsifiers.mutation import MutantResult
    from falsifiers.records import Corpus, Falsifier, Mutant
    from falsifiers.settings import Profile, Settings
    from falsifiers.verdict import VerdictReport


class ContractsSession:
    """Everything the harness knows during one pytest session (registered as a plugin object)."""

    def __init__(self, config: pytest.Config, settings: Settings, profile: Profile) -> None:
        from falsifiers.corpus_cache import SNAPSHOT_ENV, SnapshotCache, lint_cached

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
        self.artifact: ArtifactRecord | None = None
        if self.is_worker:
            self.mode = config.workerinput.get("apr_contracts_mode", "full")  # type: ignore[attr-defined]
            shared = config.workerinput.get("apr_contracts_artifact")  # type: ignore[attr-defined]
            if shared:
                from falsifiers.artifact import ArtifactRecord

                self.artifact = ArtifactRecord.from_dict(shared)
        else:
            self.mode = _scope_mode(config)
            if config.getoption("apr_artifact"):
                from falsifiers.artifact import digest_artifact

                self.artifact = digest_artifact(config.getoption("apr_artifact"), config.getoption("apr_model_card"))
        self.artifact_falsifiers: set[str] = set()  # artifact-level ids whose tests take the apr_artifact fixture
        self.mutant: tuple[Falsifier, Mutant] | None = None
        self.restore_hypothesis: Any = None
        if config.getoption("apr_apply_mutant"):
            from falsifiers.mutation import quiet_hypothesis, resolve_mutant

            self.mutant = resolve_mutant(self.corpus, config.getoption("apr_apply_mutant"))
            self.restore_hypothesis = quiet_hypothesis()  # after every check: a usage error leaves nothing to undo
            if self.selection is None:
                self.selection = {self.mutant[0].id}
        # What the verdict covers, decided once: the receipt's "scope", the table's note and which
        # falsifiers `_verdict` judges all read it.
        self.scope = ("selected" if self.selection is not None else "artifact" if self.artifact is not None
                      else self.mode)
        self.mutant_results: list[MutantResult] | None = None
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
        from falsifiers.claims import artifact_falsifiers, read_claim

        claims = {item.nodeid: claim for item in items if (claim := read_claim(item)) is not None}
        result = yield
        from falsifiers.binding import bind_falsifiers
        from falsifiers.claims import to_claims

        declared = self.corpus.falsifiers
        invalid = frozenset(c.name for c in self.corpus.contracts if not c.is_valid)
        bindings = bind_falsifiers(declared, to_claims(claims), invariants=self.corpus.invariants,
                                   require_all=self.mode == "full", unchecked_contracts=invalid)
        problems = bindings.problems
        self.bindings = dict(bindings.tests)
        self.claimed = {declared[i].contract for i in self.bindings}
        self.artifact_falsifiers = artifact_falsifiers(items, claims, declared)
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
            from falsifiers.report import receipt

            scope_contracts = {o.falsifier.contract for o in report.falsifiers}
            scope_contracts |= {i.contract.name for i in report.invalid_contracts}
            document = receipt(report, [c for c in self.corpus.contracts if c.name in scope_contracts],
                               scope=self.scope, exit_code=final, pytest_exit=int(exitstatus),
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
        from falsifiers.report import render_verdict

        terminalreporter.write(render_verdict(self.report, width=width, color=color, verbose=verbose))
        if self.receipt_path:
            terminalreporter.write_line(f"contracts receipt written to {self.receipt_path}")

    # --- helpers ----------------------------------------------------------------------------------

    def _resolve_selection(self) -> set[str] | None:
        ids = list(self.config.getoption("apr_falsifier") or [])
        names = list(self.config.getoption("apr_contract") or [])
        if not ids and not names:
            return None
        from falsifiers.binding import nearest_id
        from falsifiers.errors import SelectionError

        chosen: set[str] = set()
        for ident in ids:
            if ident not in self.corpus.falsifiers:
                nearest = nearest_id(ident, self.corpus.falsifiers)
                raise SelectionError(f"--falsifier {ident}: no contract declares it",
                                     hint=f"did you mean {nearest}?" if nearest else "see `apr contracts list`")
            chosen.add(ident)
        for name in names:
            contract = self.corpus.contract(name)
            if contract is None:
                nearest = nearest_id(name, [c.name for c in self.corpus.contracts])
                raise SelectionError(f"--contract {name}: no such contract",
                                     hint=f"did you mean {nearest}?" if nearest else "see `apr contracts list`")
            chosen.update(f.id for f in contract.falsifiers)
        return chosen

    def _run_mutants(self) -> list[MutantResult]:
        """Rerun each corroborated falsifier's bound tests once per mutant (child pytests, N at a time)."""
        from falsifiers.mutant_runs import plan_runs, run_mutants
        from falsifiers.phases import total_duration

        assert self.report is not None
        outcomes = {o.falsifier.id: o.outcome.value for o in self.report.falsifiers}
        durations = {nodeid: total_duration(phases) for nodeid, phases in self.phases.items()}
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
        from falsifiers.corpus_cache import write_snapshot

        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="apr-corpus-") as folder:
            snapshot = Path(folder) / "corpus.json"
            write_snapshot(snapshot, self.corpus, self.settings.contracts_dir, relative_to=Path(self.config.rootpath),
                           max_bytes=self.settings.max_bytes)
            progress = None
            if reporter is not None:
                from falsifiers.mutant_progress import MutantProgress

                on_terminal = reporter.isatty() if callable(getattr(reporter, "isatty", None)) else False
                progress = MutantProgress([run.falsifier.contract for run in runs], reporter.write_line,
                                          (lambda line: reporter.rewrite(line, erase=True)) if on_terminal else None)
            done = run_mutants(runs, rootdir=self.config.rootpath, profile=self.profile.name, jobs=jobs, extra=extra,
                               corpus_snapshot=snapshot, progress=progress)
        self.mutant_note = f"mutants: {len(runs)} run in {time.perf_counter() - started:.1f} s, {jobs} at a time"
        return [*done, *not_run]

    def _scope_notes(self) -> list[str]:
        if self.scope == "paths":
            return ["scope: contracts with tests among the given paths (run without paths for the full verdict)"]
        return []

    def _verdict(self, session: pytest.Session, exitstatus: int) -> VerdictReport | None:
        from falsifiers.verdict import InvalidContract, compute_verdict

        contracts = self.corpus.contracts
        if self.scope == "selected":
            assert self.selection is not None
            in_scope = [f for f in self.corpus.falsifiers.values() if f.id in self.selection]
            names = {f.contract for f in in_scope}
        elif self.scope == "artifact":
            in_scope = [f for f in self.corpus.falsifiers.values() if f.id in self.artifact_falsifiers]
            names = {f.contract for f in in_scope}
        else:
            names = {c.name for c in contracts} if self.scope == "full" else set(self.claimed)
            in_scope = [f for c in contracts if c.name in names for f in c.falsifiers]
        unique = list({f.id: f for f in in_scope}.values())
        invalid = [InvalidContract(c, _first_error(self.corpus, c.path)) for c in contracts
                   if c.name in names and not c.is_valid]
        if not unique and not invalid:
            return None  # nothing in scope: no verdict, pytest's own exit status stands
        from falsifiers.phases import results_of

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
            from falsifiers.artifact import artifact_change, digest_artifact
            from falsifiers.errors import ContractError

            try:
                after: ArtifactRecord | None = digest_artifact(self.artifact.path)
            except ContractError:
                after = None
            changed = artifact_change(self.artifact, after)
        vacuous = None
        if self.mutant_results is not None:
            from falsifiers.mutation import vacuous_reasons

            vacuous = vacuous_reasons(self.mutant_results)
        if self.mutant_note:
            notes.append(self.mutant_note)
        if self.mutant is not None:
            notes.append(f"mutant applied: {self.mutant[0].id}:{self.mutant[1].name} (a REFUTED outcome means killed)")
        return compute_verdict(unique, self.bindings, self.selected, results, self.profile, invalid=invalid,
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




def _scope_mode(config: pytest.Config) -> str:
    """``full`` when pytest collects the whole suite (no paths, or paths covering ``testpaths``)."""
    if config.args_source is not pytest.Config.ArgsSource.ARGS:
        return "full"
    root = Path(config.rootpath)
    testpaths = [root / p for p in (config.getini("testpaths") or ["."])]
    given = []
    for arg in config.args:
        if "::" in arg:
            return "paths"
        given.append(Path(config.invocation_params.dir, arg).resolve())
    covered = all(any(g == t.resolve() or g in t.resolve().parents for g in given) for t in testpaths)
    return "full" if covered else "paths"


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


__all__ = ["ContractsSession"]
