"""`apr contracts lint|list|show|verify|new|diff`: the contract harness from the command line.

stdout carries the result (a table, or one JSON document with ``--json``); people's messages and
pytest's own output go to stderr. Exit codes: lint 0 clean / 5 errors found; verify GO 0, NO-GO 1,
UNKNOWN 2; a name or path that does not exist 3. `ContractError` is the harness's error root (it
does not derive from `AprError`, since `falsifiers` works without `apr`), so each handler renders
it here with `apr.cli.output.render_error`, the renderer of every `AprError`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apr.cli import exit_codes

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "contracts",
        help="lint contracts, list them, and verify the suite to a GO / NO-GO / UNKNOWN verdict",
        description="YAML contracts declare invariants; falsifiers bound to tests decide the verdict.",
    )
    parser.set_defaults(handler=functools.partial(_usage, parser))
    sub = parser.add_subparsers(dest="contracts_command", metavar="SUBCOMMAND", parser_class=type(parser))

    lint = sub.add_parser("lint", help="check contract files: YAML, schema, ids, links, versions")
    lint.add_argument("paths", nargs="*", help="contract files or folders (default: the project's contracts folder)")
    lint.add_argument("--compat", action="store_true", help="read aprender's pv styles; unknown keys are warnings")
    lint.add_argument("--strict", action="store_true", help="warnings fail the lint too")
    lint.add_argument("--json", action="store_true", help="one JSON document on stdout")
    lint.set_defaults(handler=_guard(_lint))

    listing = sub.add_parser("list", help="the contracts, their versions, statuses and falsifier counts")
    listing.add_argument("--json", action="store_true", help="one JSON document on stdout")
    listing.set_defaults(handler=_guard(_list))

    show = sub.add_parser("show", help="one contract, invariant or falsifier in full")
    show.add_argument("id", metavar="ID", help="a contract name, INV-… id or FALSIFY-… id")
    show.add_argument("--json", action="store_true", help="one JSON document on stdout")
    show.set_defaults(handler=_guard(_show))

    verify = sub.add_parser(
        "verify",
        help="run the test suite under the harness and print the verdict (exit 0 GO, 1 NO-GO, 2 UNKNOWN)",
        description="Runs pytest with the contract plugin; arguments after `--` go to pytest unchanged "
        "(e.g. `apr contracts verify -- tests/format -n auto`).",
    )
    verify.add_argument("--profile", help="the verdict profile: cpu (default), gpu, release, or one from pyproject")
    verify.add_argument("--falsifier", action="append", default=[], metavar="ID", help="only this falsifier")
    verify.add_argument("--contract", action="append", default=[], metavar="NAME", help="only this contract")
    verify.add_argument("--artifact", metavar="FILE",
                        help="verify this checkpoint: run only the artifact-level falsifiers (the readiness gates) "
                        "on it; the receipt records its sha256")
    verify.add_argument("--model-card", metavar="FILE", help="the model card that goes with --artifact")
    verify.add_argument("--mutants", action="store_true",
                        help="also rerun each falsifier's tests once per declared mutant: a surviving mutant makes "
                        "it VACUOUS (UNDETERMINED), so the verdict cannot be GO")
    verify.add_argument("--json", action="store_true", help="print the verdict receipt (JSON) on stdout")
    verify.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments for pytest, after `--`")
    verify.set_defaults(handler=_guard(_verify))

    diff = sub.add_parser("diff", help="invariants, falsifiers and mutants added, removed, changed; "
                          "a weakened falsifier without a major version bump is an error (exit 5)")
    diff.add_argument("old", metavar="OLD", help="a contract file, a folder of them, or git:REV (the contracts folder at REV)")
    diff.add_argument("new", metavar="NEW", help="the same kinds as OLD (e.g. contracts)")
    diff.add_argument("--json", action="store_true", help="one JSON document on stdout")
    diff.set_defaults(handler=_guard(_diff))

    new = sub.add_parser("new", help="write contracts/NAME.yaml and a bound test that fails until written")
    new.add_argument("name", metavar="NAME", help="the contract's name, e.g. apr-stamp-v1")
    new.add_argument("--force", action="store_true", help="overwrite existing files")
    new.add_argument("--json", action="store_true", help="one JSON document on stdout")
    new.set_defaults(handler=_guard(_new))


# --- plumbing -------------------------------------------------------------------------------------


def _command(args: argparse.Namespace) -> str:
    """The command as typed (``"contracts lint"``): names its JSON envelope (``apr.contracts.lint/1``)."""
    sub = getattr(args, "contracts_command", None)
    return f"contracts {sub}" if sub else "contracts"


def _payload(document: dict[str, Any]) -> dict[str, Any]:
    """A harness document (lint, the verdict receipt) under the CLI's envelope: its own ``schema``
    names the file format (``apr-contracts/verdict/1`` for a written receipt) and is kept as
    ``receipt_schema``; the envelope's ``schema`` names the command's output."""
    payload = dict(document)
    if "schema" in payload:
        payload["receipt_schema"] = payload.pop("schema")
    return payload


def _usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    parser.print_help(sys.stderr)
    return exit_codes.EXIT_USAGE


def _guard(handler: Handler) -> Handler:
    """Render a `ContractError` with `apr.cli.output.render_error`, the renderer of every `AprError`."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from falsifiers.errors import ContractError

        try:
            return handler(args)
        except ContractError as error:
            from apr.cli.output import render_error

            render_error(error, as_json=getattr(args, "json", False), command=_command(args))
            return error.exit_code

    return run


def _settings() -> Any:
    from falsifiers.settings import find_pyproject, load_settings

    return load_settings(find_pyproject(Path.cwd()), root=Path.cwd())


def _corpus(settings: Any) -> Any:
    from falsifiers.errors import ContractNotFoundError
    from falsifiers.lint import lint_paths
    from falsifiers.loader import Limits

    if not settings.contracts_dir.is_dir():
        raise ContractNotFoundError(
            f"no contracts folder at {settings.contracts_dir}", path=settings.contracts_dir,
            hint="create one with `apr contracts new NAME`, or set [tool.apr-contracts] contracts = \"…\" "
            "in pyproject.toml",
        )
    return lint_paths([settings.contracts_dir], limits=Limits(max_bytes=settings.max_bytes),
                      relative_to=Path.cwd())


def _width() -> int:
    """The verdict table's width: the terminal's (at least 100); 120 off a terminal, where results
    are otherwise unbounded (`apr.cli.output.PIPE_WIDTH`) but long reasons should still wrap."""
    from apr.cli.output import PIPE_WIDTH, out

    width = out().width
    return 120 if width >= PIPE_WIDTH else max(width, 100)


# --- commands -------------------------------------------------------------------------------------


def _lint(args: argparse.Namespace) -> int:
    from falsifiers.lint import lint_paths
    from falsifiers.loader import Limits
    from falsifiers.report import lint_document, lint_failed, render_findings

    settings = _settings()
    paths = args.paths or [settings.contracts_dir]
    corpus = lint_paths(paths, compat_mode=args.compat, limits=Limits(max_bytes=settings.max_bytes),
                        relative_to=Path.cwd(), resolve_mutants=settings.root,
                        known_capabilities=frozenset(c for p in settings.profiles.values() for c in p.optional_requires))
    failed = lint_failed(corpus, strict=args.strict)
    code = exit_codes.EXIT_VALIDATION if failed else exit_codes.OK
    if args.json:
        from apr.cli.output import emit_result

        return emit_result(_command(args), _payload(lint_document(corpus, strict=args.strict)), exit_code=code)
    else:
        text = render_findings(corpus.findings)
        if text:
            sys.stdout.write(text + "\n")
        counts = {s: sum(1 for f in corpus.findings if f.severity.value == s) for s in ("error", "warning", "info")}
        sys.stdout.write(
            f"{len(corpus.contracts)} file(s) checked{' (compat)' if args.compat else ''}: "
            f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} note(s)\n"
        )
    return code


def _diff(args: argparse.Namespace) -> int:
    from falsifiers.contract_diff import diff_contracts, render_text

    result = diff_contracts(args.old, args.new, contracts_dir=_settings().contracts_dir)
    code = exit_codes.EXIT_VALIDATION if result.errors else exit_codes.OK
    if args.json:
        from apr.cli.output import emit_result

        payload = {k: v for k, v in result.to_dict().items() if k not in ("command", "ok")}  # the envelope's
        return emit_result(_command(args), payload, input=[args.old, args.new], exit_code=code)
    sys.stdout.write(render_text(result) + "\n")
    return code


def _list(args: argparse.Namespace) -> int:
    corpus = _corpus(_settings())
    rows = [
        {
            "name": c.name, "version": c.version, "status": c.status.value if c.status else None, "path": c.path,
            "valid": c.is_valid, "invariants": len(c.invariants), "falsifiers": len(c.falsifiers),
            "pending": sum(1 for f in c.falsifiers if f.pending),
        }
        for c in corpus.contracts
    ]
    if args.json:
        from apr.cli.output import emit_result

        return emit_result(_command(args), {"contracts": rows})
    from rich.table import Table

    from apr.cli.output import out

    table = Table(pad_edge=False)
    for column in ("contract", "version", "status", "invariants", "falsifiers", "pending", "lint", "path"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["version"] or "?", row["status"] or "?", str(row["invariants"]),
                      str(row["falsifiers"]), str(row["pending"]), "ok" if row["valid"] else "errors", row["path"])
    out().print(table)
    return exit_codes.OK


def _show(args: argparse.Namespace) -> int:
    from falsifiers.binding import nearest_id
    from falsifiers.errors import ContractNotFoundError

    settings = _settings()
    corpus = _corpus(settings)
    ident = args.id
    document: dict[str, Any]
    if corpus.contract(ident) is not None:
        c = corpus.contract(ident)
        document = {"kind": "contract", "name": c.name, "path": c.path, "version": c.version,
                    "status": c.status.value if c.status else None, "description": c.description,
                    "depends_on": list(c.depends_on), "references": list(c.references), "valid": c.is_valid,
                    "invariants": [{"id": i.id, "statement": i.statement, "location": str(i.location)}
                                   for i in c.invariants],
                    "falsifiers": [_falsifier_dict(f, settings) for f in c.falsifiers]}
    elif ident in corpus.invariants:
        i = corpus.invariants[ident]
        document = {"kind": "invariant", "id": i.id, "contract": i.contract, "statement": i.statement,
                    "location": str(i.location),
                    "falsifiers": [f.id for f in corpus.falsifiers.values() if i.id in f.invariants]}
    elif ident in corpus.falsifiers:
        document = {"kind": "falsifier", **_falsifier_dict(corpus.falsifiers[ident], settings)}
    else:
        every = [c.name for c in corpus.contracts] + list(corpus.invariants) + list(corpus.falsifiers)
        nearest = nearest_id(ident, every)
        raise ContractNotFoundError(f"no contract, invariant or falsifier {ident!r}",
                                    hint=f"did you mean {nearest!r}?" if nearest else "see `apr contracts list`")
    if args.json:
        from apr.cli.output import emit_result

        return emit_result(_command(args), document)
    else:
        sys.stdout.write(_as_text(document))
    return exit_codes.OK


def _falsifier_dict(f: Any, settings: Any) -> dict[str, Any]:
    return {"id": f.id, "contract": f.contract, "invariants": list(f.invariants), "rule": f.rule,
            "prediction": f.prediction, "if_fails": f.if_fails, "level": f.level.value, "requires": list(f.requires),
            "pending": f.pending, "location": str(f.location),
            "mutants": [m.name for m in f.mutants], "claimed_by": _claimed_by(f.id, settings.tests_dir)}


def _claimed_by(ident: str, tests_dir: Path) -> list[str]:
    """Where the id is written in test files (a static scan; `pytest --falsifier ID --co` is exact)."""
    found = []
    if tests_dir.is_dir():
        for path in sorted(tests_dir.rglob("*.py")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if ident not in text:
                continue
            for number, line in enumerate(text.splitlines(), start=1):
                if f'"{ident}"' in line or f"'{ident}'" in line:
                    found.append(f"{path.relative_to(tests_dir.parent).as_posix()}:{number}")
    return found


def _as_text(document: dict[str, Any], indent: str = "") -> str:
    lines = []
    for key, value in document.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            lines.append(f"{indent}{key}:")
            for item in value:
                lines.append(_as_text(item, indent + "    ").replace(indent + "    ", indent + "  - ", 1).rstrip("\n"))
        elif isinstance(value, list):
            lines.append(f"{indent}{key}: {', '.join(map(str, value)) if value else '—'}")
        else:
            lines.append(f"{indent}{key}: {value if value not in (None, '') else '—'}")
    return "\n".join(lines) + "\n"


def _verify(args: argparse.Namespace) -> int:
    from falsifiers.report import render_receipt
    from falsifiers.runner import run_verify

    pytest_args = list(args.pytest_args)
    if pytest_args[:1] == ["--"]:
        pytest_args = pytest_args[1:]
    if args.model_card and not args.artifact:
        from falsifiers.errors import SelectionError

        raise SelectionError("--model-card needs --artifact", hint="apr contracts verify --artifact MODEL.apr "
                             "--model-card CARD.md")
    for flag, value in (("--artifact", args.artifact), ("--model-card", args.model_card)):
        if value is not None and not Path(value).is_file():  # say so here, not through pytest's usage error
            from falsifiers.errors import ArtifactNotFoundError

            raise ArtifactNotFoundError(f"{flag} {value}: no such file", path=value,
                                        hint="give the path of an existing file")
    code, document = run_verify(pytest_args, profile=args.profile, falsifiers=args.falsifier,
                                contracts=args.contract, artifact=args.artifact, model_card=args.model_card,
                                mutants=args.mutants)
    if args.json:
        from apr.cli.output import emit_result

        return emit_result(_command(args), _payload(document), exit_code=code)
    else:
        sys.stdout.write(render_receipt(document, width=_width(), color=sys.stdout.isatty(),
                                        verbose=getattr(args, "verbose", 0) > 0))
    return code


def _new(args: argparse.Namespace) -> int:
    from falsifiers.scaffold import plan_scaffold, write_scaffold

    settings = _settings()
    taken: set[str] = set()
    if settings.contracts_dir.is_dir():
        corpus = _corpus(settings)
        replaced = args.name if args.force else None  # --force rewrites NAME itself: its own ids are not taken
        taken = {i for i, f in corpus.falsifiers.items() if f.contract != replaced} | {
            i for i, v in corpus.invariants.items() if v.contract != replaced}
    scaffold = plan_scaffold(args.name, contracts_dir=settings.contracts_dir, tests_dir=settings.tests_dir,
                             taken_ids=taken, today=_dt.date.today().isoformat(), force=args.force)
    from apr.format.outputs import check_file_output

    for target in (scaffold.contract_path, scaffold.test_path):  # the output policy (a folder there is refused)
        check_file_output(target, force=args.force, flag="NAME", parent_must_exist=False)
    write_scaffold(scaffold)
    document = {"contract": scaffold.contract_path.as_posix(), "test": scaffold.test_path.as_posix(),
                "invariant": scaffold.invariant_id, "falsifier": scaffold.falsifier_id}
    if args.json:
        from apr.cli.output import emit_result

        return emit_result(_command(args), document)
    else:
        sys.stdout.write(f"wrote {document['contract']} and {document['test']}\n")
        sys.stderr.write(f"next: state {scaffold.invariant_id} in the contract and write the test for "
                         f"{scaffold.falsifier_id}; until then the verdict is NO-GO\n")
    return exit_codes.OK
