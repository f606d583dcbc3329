"""One set of rules decides every run (FALSIFY-HARNESS-016).

There is one binding (`falsifiers.binding.bind_falsifiers`), one verdict
(`falsifiers.verdict.compute_verdict`) and one table renderer (`falsifiers.report.render_table`, reached through
`falsifiers.report`): a GO run prints the table its own receipt renders, and a failing or unbound
test is reported by those same rules. The harness's functions are looked up on their modules at
call time, so a declared mutant reaches them (in the child pytest runs too).
"""

from __future__ import annotations

import pytest

from falsifiers.report import render_receipt
from tests.harness.projects import Project, contract_yaml


def _contracts_section(text: str) -> str:
    """The table under the ``contracts`` header, without the line naming a receipt."""
    section = text.split(" contracts ", 1)[1].split("\n", 1)[1].split("===", 1)[0]
    return "\n".join(line for line in section.splitlines() if not line.startswith("contracts receipt written"))


@pytest.mark.falsifies("FALSIFY-HARNESS-016")
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_a_go_run_prints_the_table_its_receipt_renders(project: Project, verbose: bool) -> None:
    project.contract("two-v1", contract_yaml("TWO", [{}, {}]))
    project.contract("one-v1", contract_yaml("ONE"))
    project.test("test_go", """
        import sys
        import pytest

        @pytest.mark.falsifies("FALSIFY-TWO-001", "FALSIFY-ONE-001")
        def test_falsify_two_001():
            assert 1 + 1 == 2

        @pytest.mark.falsifies("FALSIFY-TWO-002")
        @pytest.mark.parametrize("n", [1, 2])
        def test_falsify_two_002(n):
            assert n > 0
    """)
    pyproject = project.root / "pyproject.toml"  # these projects run without pytest's cache; this one needs it
    pyproject.write_text(pyproject.read_text().replace("-p no:cacheprovider ", ""))
    flags = ["-v"] if verbose else []
    project.run_subprocess(*flags)  # lints the contracts into pytest's cache
    plain = project.run_subprocess(*flags)  # warm
    with_receipt = project.run_subprocess(*flags, "--contracts-json=verdict.json")
    assert plain.ret == with_receipt.ret == 0
    document = project.receipt()
    assert document["verdict"] == "GO"
    assert _contracts_section(plain.stdout.str()) == _contracts_section(with_receipt.stdout.str())
    assert "verdict: GO (3 corroborated" in plain.stdout.str()
    rendered = render_receipt(document, width=1000, verbose=verbose)
    printed = _contracts_section(plain.stdout.str())
    assert [line.split() for line in printed.strip().splitlines()] == \
        [line.split() for line in rendered.strip().splitlines()]


@pytest.mark.falsifies("FALSIFY-HARNESS-016")
def test_a_failing_or_unbound_test_is_refuted_or_reported(project: Project) -> None:
    project.contract("red-v1", contract_yaml("RED", [{}, {}]))
    project.test("test_red", """
        import pytest

        @pytest.mark.falsifies("FALSIFY-RED-001")
        def test_falsify_red_001():
            assert 1 + 1 == 3

        @pytest.mark.falsifies("FALSIFY-RED-002")
        def test_falsify_red_002():
            pass
    """)
    result = project.run()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*FALSIFY-RED-001*REFUTED*", "*verdict: NO-GO*"])
    project.test("test_red", """
        import pytest

        @pytest.mark.falsifies("FALSIFY-RED-001", "FALSIFY-RED-01")
        def test_falsify_red_001():
            pass
    """)
    result = project.run()
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*claims falsifier FALSIFY-RED-01, which no contract declares*",
                                 "*falsifier FALSIFY-RED-002 (contract red-v1) has no test*"])
