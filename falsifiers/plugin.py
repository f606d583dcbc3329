"""The pytest plugin (``pytest11`` entry point ``apr_contracts``): hooks only, state in the stash.

Built like pytest's own ``junitxml``: ``pytest_configure`` registers the ``falsifies`` marker and,
only when the project has a contracts folder, builds one `falsifiers.session.ContractsSession`,
stashes it and registers it as a plugin. That object binds at collection, records outcomes as
reports arrive, computes the verdict in ``pytest_sessionfinish``, sets the exit status, writes
``--contracts-json`` and prints the table in ``pytest_terminal_summary``. The decisions themselves
are the pure functions in `falsifiers.binding` and `falsifiers.verdict`; the table is `falsifiers.report`'s.

A passing test meets only one hook of the harness (``pytest_runtest_logreport``, three calls): the
replay data of a failure is taken in ``pytest_exception_interact``, which pytest calls for failures
only (an xdist worker, which ships each report before that hook, registers a ``makereport`` wrapper
instead), and the ``--apply-mutant`` wrapper is registered only with that option.

Importing it imports what every run with contracts uses (session, corpus cache, binding, verdict,
report): no YAML, no jsonschema (linting, on a cache miss only), no numpy, no torch. A project
without a contracts folder pays for those imports and one ``stat`` call; one that has not opted in
(`falsifiers.entry`) never imports this module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from falsifiers.artifact import NO_ARTIFACT, ArtifactRecord, digest_artifact, mutate_artifact
from falsifiers.errors import ContractError
from falsifiers.mutation import INHERIT_ENV, apply_mutant, install_inherited_mutant
from falsifiers.records import Falsifier, Mutant
from falsifiers.session import PROPERTY, ContractsSession, attach_evidence
from falsifiers.settings import load_settings

MARKER_HELP = (
    "falsifies(*ids): this test is evidence for the named falsifiers (FALSIFY-…-NNN) declared in "
    "contracts/; a declared falsifier without a test, or a claimed id nobody declares, is a collection error"
)
STATE_KEY: pytest.StashKey[ContractsSession] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("apr-contracts", "contract verdicts (apr-contracts)")
    group.addoption("--falsifier", action="append", default=[], metavar="ID", dest="apr_falsifier",
                    help="run only the tests bound to this falsifier (repeatable); the verdict covers only it")
    group.addoption("--contract", action="append", default=[], metavar="NAME", dest="apr_contract",
                    help="run only the tests bound to this contract's falsifiers (repeatable)")
    group.addoption("--contracts-json", metavar="PATH", dest="apr_contracts_json", default=None,
                    help="write the versioned verdict receipt (JSON) to PATH")
    group.addoption("--contracts-profile", metavar="NAME", dest="apr_contracts_profile", default=None,
                    help="the profile that judges undetermined falsifiers (cpu, gpu, release, or "
                    "[tool.apr-contracts.profiles.NAME]); default from pyproject or $APR_CONTRACTS_PROFILE")
    group.addoption("--artifact", metavar="FILE", dest="apr_artifact", default=None,
                    help="verify this file: run only the artifact-level falsifiers (tests taking the apr_artifact "
                    "fixture), require them, and record the file's sha256 in the receipt")
    group.addoption("--model-card", metavar="FILE", dest="apr_model_card", default=None,
                    help="the model card that goes with --artifact (apr_artifact.model_card)")
    group.addoption("--mutants", action="store_true", dest="apr_mutants", default=False,
                    help="after the verdict, rerun each corroborated falsifier's tests once per declared mutant "
                    "(each in a child pytest); a surviving mutant makes the falsifier VACUOUS (UNDETERMINED)")
    group.addoption("--mutants-jobs", type=int, metavar="N", dest="apr_mutants_jobs", default=None,
                    help="mutant runs at a time (default: the number of CPUs)")
    group.addoption("--apply-mutant", metavar="FALSIFIER:NAME", dest="apr_apply_mutant", default=None,
                    help="run that falsifier's tests with its declared mutant applied (what --mutants runs)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    # set when this pytest was started by a test that runs under a mutant
    if os.environ.get(INHERIT_ENV):
        try:
            install_inherited_mutant()
        except ContractError as err:
            raise pytest.UsageError(str(err)) from err
    pyproject = _pyproject(config)
    try:
        settings = load_settings(pyproject, root=config.rootpath)
        if not settings.contracts_dir.is_dir():
            if config.getoption("apr_falsifier") or config.getoption("apr_contract"):
                raise pytest.UsageError(
                    f"--falsifier/--contract given, but there is no contracts folder at {settings.contracts_dir}"
                )
            return  # a project without contracts: the plugin does nothing
        profile = settings.resolve_profile(config.getoption("apr_contracts_profile"))
        session = ContractsSession(config, settings, profile)
    except ContractError as err:
        raise pytest.UsageError(str(err)) from err
    config.stash[STATE_KEY] = session
    config.pluginmanager.register(session, "apr-contracts-session")
    if session.is_worker:
        config.pluginmanager.register(_WorkerEvidence(), "apr-contracts-worker-evidence")
    if session.mutant is not None and not session.mutant[1].artifact:
        config.pluginmanager.register(_MutantPatch(*session.mutant), "apr-contracts-mutant-patch")


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(STATE_KEY, None)
    if session is not None:
        del config.stash[STATE_KEY]
        for name in ("apr-contracts-worker-evidence", "apr-contracts-mutant-patch"):
            helper = config.pluginmanager.get_plugin(name)
            if helper is not None:
                config.pluginmanager.unregister(helper)
        config.pluginmanager.unregister(session)
        if session.restore_hypothesis is not None:
            session.restore_hypothesis()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: tell each worker whether this run collects the whole suite."""
    session = node.config.stash.get(STATE_KEY, None)
    if session is not None:
        node.workerinput["apr_contracts_mode"] = session.collected.value
        if session.artifact is not None:  # one digest for the whole run: workers never re-read the file
            node.workerinput["apr_contracts_artifact"] = session.artifact.to_dict()


@pytest.fixture
def apr_artifact(request: pytest.FixtureRequest) -> ArtifactRecord:
    """The file given by ``--artifact`` (path, sha256, size, model_card); skips when there is none.

    The record is the one digested at session start (on the xdist controller), so every test of a
    run speaks about the same bytes; the harness re-checks the digest when the session ends.
    """
    session = request.config.stash.get(STATE_KEY, None)
    record = session.artifact if session is not None else None
    if record is None:
        path = request.config.getoption("apr_artifact")
        if not path:
            pytest.skip(NO_ARTIFACT)
        record = digest_artifact(path, request.config.getoption("apr_model_card"))
    mutant = session.mutant if session is not None else None
    if mutant is not None and mutant[1].artifact:  # an artifact mutant: the tests get a faulty copy
        folder = request.getfixturevalue("tmp_path_factory").mktemp("artifact-mutant")
        record = mutate_artifact(record, mutant[1], folder)
    return record


class _WorkerEvidence:
    """xdist worker: evidence must be on the report before the worker sends it to the controller.

    A worker serialises each report in ``pytest_runtest_logreport``, before pytest calls
    ``pytest_exception_interact``; so here a ``makereport`` wrapper (outermost: after Hypothesis has
    added its sections) does it. Elsewhere the session object uses ``pytest_exception_interact``,
    which runs only for failures: passing tests pay nothing.
    """

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        attach_evidence(item, call, report)
        return report


class _MutantPatch:
    """``--apply-mutant`` (code mutants): the fault is patched in around each of the falsifier's
    bound tests, then restored. Registered only then: other runs do not pay a wrapper per test."""

    def __init__(self, falsifier: Falsifier, mutant: Mutant) -> None:
        self.falsifier = falsifier
        self.mutant = mutant

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Any:
        if (PROPERTY, self.falsifier.id) not in item.user_properties:
            return (yield)
        with apply_mutant(self.mutant):
            return (yield)


# --- pure helpers -----------------------------------------------------------------------------------


def _pyproject(config: pytest.Config) -> Path | None:
    inipath = config.inipath
    if inipath is not None and inipath.name == "pyproject.toml":
        return Path(inipath)
    candidate = Path(config.rootpath) / "pyproject.toml"
    return candidate if candidate.is_file() else None
