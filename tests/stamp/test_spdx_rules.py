"""Rule-by-rule tests of apr/stamp/spdx.py (issue 23): each accepted license form, its near misses,
the precedence between the forms, and the error record of each rejection.

The oracle for SPDX is the `license-expression` library itself (its id list, its aliases, its
canonical spelling), read here directly rather than through the module's table; the Hugging Face
ids and the placeholders are the module's documented lists, written out as literals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from license_expression import get_spdx_licensing

from apr.errors import LicenseError, ValidationError
from apr.stamp.spdx import (
    HF_HUB_LICENSES,
    _spdx_id_table,
    spdx_license_ids,
    suggest_license,
    validate_license,
)

ORACLE = get_spdx_licensing()
KNOWN = ORACLE.known_symbols
LICENSE_KEYS = sorted(k for k, s in KNOWN.items() if not s.is_exception)
EXCEPTION_KEYS = sorted(k for k, s in KNOWN.items() if s.is_exception)
# the common ids of aprender's allow-list (docs/aprender-format.md §2), canonical spelling
COMMON = ["Apache-2.0", "MIT", "BSD-2-Clause", "BSD-3-Clause", "MPL-2.0", "LGPL-2.1-only", "LGPL-3.0-only",
          "GPL-2.0-only", "GPL-3.0-only", "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0", "CC0-1.0", "Unlicense", "ISC"]
PLACEHOLDERS = ["", "unknown", "tbd", "todo", "proprietary", "none", "noassertion", "custom", "n/a", "other"]


def rejected(value: str, flag: str = "--license") -> LicenseError:
    with pytest.raises(LicenseError) as info:
        validate_license(value, flag=flag)
    err = info.value
    assert isinstance(err, ValidationError) and err.exit_code == 5
    assert (err.value, err.field) == (value, flag)
    assert err.message.startswith(f"{flag} {value!r} ")
    return err


def generic_hint_given(err: LicenseError, flag: str) -> None:
    assert err.suggestion is None
    assert f"`{flag} Apache-2.0`" in err.hint and f'`{flag} "Apache-2.0 OR MIT"`' in err.hint
    assert f"`{flag} LicenseRef-<name>`" in err.hint and "https://spdx.org/licenses/" in err.hint


def suggestion_hint_given(err: LicenseError, flag: str, suggestion: str) -> None:
    assert err.suggestion == suggestion
    assert err.hint == f"did you mean {suggestion!r}? e.g. `{flag} {suggestion}`"


# ---------------------------------------------------------------------------- the id table -------

@dataclass
class Sym:
    aliases: tuple[str, ...] = ()
    is_exception: bool = False
    extra: dict = field(default_factory=dict)


def test_id_table_rules_on_a_synthetic_list():
    table = _spdx_id_table({
        "Key-1": Sym(("alias-a", "Alias+", "noshape", "with space-x", "under_score-1", "LicenseRef-foo-1", "key-2",
                      "", "ok.1-x")),
        "Key-2": Sym(("alias-a", "key-1")),  # a later key takes its spelling back; a taken alias stays taken
        "K3": Sym(()),
    })
    assert table == {"key-1": "Key-1", "alias-a": "Key-1", "alias+": "Key-1", "key-2": "Key-2", "ok.1-x": "Key-1",
                     "k3": "K3"}


def test_id_table_keys_win_over_aliases_seen_later():
    assert _spdx_id_table({"A-1": Sym(()), "B-1": Sym(("a-1", "b+"))}) == {"a-1": "A-1", "b-1": "B-1", "b+": "B-1"}


def test_id_table_of_the_library():
    table = _spdx_id_table(KNOWN)
    for key in KNOWN:
        assert table[key.lower()] == key
    # deprecated SPDX ids (aliases with a hyphen or plus) resolve to the current id
    assert (table["gpl-2.0"], table["gpl-2.0+"], table["lgpl-2.1"], table["agpl-3.0"]) == (
        "GPL-2.0-only", "GPL-2.0-or-later", "LGPL-2.1-only", "AGPL-3.0-only")
    # loose aliases: no version (no hyphen), or a LicenseRef- of the scancode list
    for alias in ("gpl", "nunit", "licenseref-agpl", "licenseref-scancode-3dslicer-1.0"):
        assert alias not in table
    # every entry is the lower-case spelling of a key or of one of that key's aliases
    for spelled, key in table.items():
        assert spelled == key.lower() or spelled in {a.lower() for a in KNOWN[key].aliases}


def test_spdx_license_ids_partition_the_library():
    assert spdx_license_ids() == LICENSE_KEYS
    assert spdx_license_ids(exceptions=True) == EXCEPTION_KEYS
    assert spdx_license_ids(exceptions=False) == LICENSE_KEYS
    assert "MIT" in LICENSE_KEYS and "LLVM-exception" in EXCEPTION_KEYS


# ------------------------------------------------------------------------ accepted forms ---------

@pytest.mark.parametrize("hub", ["llama2", "llama3", "llama3.1", "gemma"])
def test_hub_ids_are_accepted_lower_case(hub):
    assert HF_HUB_LICENSES == ("llama2", "llama3", "llama3.1", "gemma")
    for typed in (hub, hub.upper(), hub.title(), f"  {hub}\t", f" {hub.upper()} "):
        assert validate_license(typed) == hub


@pytest.mark.parametrize("near", ["llama", "llama3.2", "llama-3", "gemma2", "llama 3", "Llama3 OR MIT", "gemma-1.0"])
def test_hub_id_near_misses_are_rejected(near):
    rejected(near)


@given(key=st.sampled_from(LICENSE_KEYS), case=st.sampled_from(["same", "lower", "upper", "swap"]),
       pad=st.sampled_from(["", " ", "\t ", "\n"]))
@example(key="Apache-2.0", case="lower", pad=" ")
@example(key="LicenseRef-scancode-net-snmp", case="same", pad="")  # a LicenseRef- the list has as a key
@example(key="MIT", case="swap", pad="")
def test_any_id_in_any_case_becomes_the_librarys_spelling(key, case, pad):
    typed = {"same": key, "lower": key.lower(), "upper": key.upper(), "swap": key.swapcase()}[case]
    assert validate_license(pad + typed + pad) == key


@pytest.mark.parametrize("alias,current", [("GPL-2.0", "GPL-2.0-only"), ("gpl-2.0+", "GPL-2.0-or-later"),
                                           ("LGPL-3.0", "LGPL-3.0-only"), ("GFDL-1.3", "GFDL-1.3-only"),
                                           ("BSD-2", "BSD-2-Clause"), ("Net-SNMP", "LicenseRef-scancode-net-snmp")])
def test_deprecated_ids_become_the_current_id(alias, current):
    assert validate_license(alias) == current == str(ORACLE.validate(alias).normalized_expression)


@given(ids=st.lists(st.sampled_from(COMMON), min_size=2, max_size=4, unique=True), op=st.sampled_from(["AND", "OR"]),
       lower=st.booleans())
@example(ids=["MIT", "Apache-2.0"], op="OR", lower=True)
@example(ids=["Apache-2.0", "MIT", "ISC"], op="AND", lower=False)
def test_expressions_render_canonically(ids, op, lower):
    typed = f" {op.lower() if lower else op} ".join(i.lower() if lower else i for i in ids)
    expected = f" {op} ".join(ids)
    assert validate_license(typed) == expected == str(ORACLE.validate(typed).normalized_expression)


@pytest.mark.parametrize("typed,canonical", [
    ("mit or apache-2.0", "MIT OR Apache-2.0"),
    ("(mit or apache-2.0) and bsd-3-clause", "(MIT OR Apache-2.0) AND BSD-3-Clause"),
    ("mit or apache-2.0 and bsd-3-clause", "MIT OR (Apache-2.0 AND BSD-3-Clause)"),
    ("apache-2.0 with llvm-exception", "Apache-2.0 WITH LLVM-exception"),
    ("(MIT)", "MIT"),
    ("LicenseRef-acme-model-1.0", "LicenseRef-acme-model-1.0"),
    ("LicenseRef-acme OR mit", "LicenseRef-acme OR MIT"),
    ("LicenseRef-a AND LicenseRef-a", "LicenseRef-a AND LicenseRef-a"),  # the same ref twice is one symbol
    ("LicenseRef-a OR LicenseRef-b.2", "LicenseRef-a OR LicenseRef-b.2"),
    ("LicenseRef-scancode-net-snmp or mit", "LicenseRef-scancode-net-snmp OR MIT"),
])
def test_expression_forms(typed, canonical):
    assert validate_license(typed) == canonical
    assert validate_license(canonical) == canonical  # stamping twice stores the same bytes


# ------------------------------------------------------------------------ rejected forms ---------

@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
@pytest.mark.parametrize("flag", ["--license", "--data-license"])
def test_placeholders_are_rejected_without_a_guess(placeholder, flag):
    for typed in {placeholder, placeholder.upper(), f"  {placeholder.title()} "}:
        err = rejected(typed, flag)
        generic_hint_given(err, flag)  # "none" and "custom" are close to ids (Noweb, VOSTROM): no guess here
        assert "placeholder" in err.message


def test_default_flag_is_license():
    with pytest.raises(LicenseError) as info:
        validate_license("whatever")
    assert info.value.field == "--license" and info.value.message.startswith("--license 'whatever' ")


@pytest.mark.parametrize("typed,named,suggestion", [
    ("Apache2", "Apache2", "Apache-2.0"),
    ("(Apache2)", "Apache2", "Apache-2.0"),
    ("Apache2 OR MIT", "Apache2", "Apache-2.0"),
    ("MIT License", "License", "MIT"),  # two symbols: the guess is made from the whole text
    ("mit licence", "licence", "MIT"),
    ("apache license 2.0", "apache", "Apache-2.0"),
    ("GPL", "GPL", "NGPL"),  # a loose alias names no version
    ("MIT OR Foo1 OR Bar2", "Foo1", None),
    ("xyzzy", "xyzzy", None),
    ("licenseref-acme", "licenseref-acme", None),  # LicenseRef- is case-sensitive
    ("LicenseRef-", "LicenseRef-", None),
    ("LicenseRef-a_b", "LicenseRef-a_b", None),
    ("DocumentRef-x:LicenseRef-y", "DocumentRef-x:LicenseRef-y", None),
    ("X", "X", None),  # tokens that are neither parentheses nor operators are symbols, however short
    ("XX", "XX", None),
])
@pytest.mark.parametrize("flag", ["--license", "--data-license"])
def test_unknown_ids_are_named(typed, named, suggestion, flag):
    err = rejected(typed, flag)
    assert f"names {named!r}, which is not an SPDX license id" in err.message
    if suggestion is None:
        assert err.suggestion == suggest_license(named)  # whatever difflib finds for the token itself
        if err.suggestion is None:
            generic_hint_given(err, flag)
    else:
        suggestion_hint_given(err, flag, suggestion)


@pytest.mark.parametrize("typed,ref,key", [
    ("LicenseRef-AGPL", "LicenseRef-AGPL", "AGPL-3.0-or-later"),
    ("LicenseRef-scancode-3dslicer-1.0 OR MIT", "LicenseRef-scancode-3dslicer-1.0", "3D-Slicer-1.0"),
    ("MIT AND LicenseRef-AGPL-3.0", "LicenseRef-AGPL-3.0", "AGPL-3.0-only"),
])
def test_a_licenseref_the_list_has_as_an_alias_names_the_id(typed, ref, key):
    assert ORACLE.parse(ref).key == key  # the library's own reading of the alias
    err = rejected(typed)
    assert f"names {ref!r}" in err.message and repr(key) in err.message
    suggestion_hint_given(err, "--license", key)


@pytest.mark.parametrize("typed,suggestion", [
    ("(MIT", "MIT"), ("MIT AND", None), ("()", None), ("MIT MIT", None), ("AND", None), ("MIT WITH", None),
    ("LLVM-exception", None), ("MIT WITH GPL-2.0", None), ("MIT ()", None), ("( )", None),
])
def test_malformed_expressions_are_rejected(typed, suggestion):
    err = rejected(typed)
    assert "is not a valid SPDX expression (" in err.message
    if suggestion is not None:
        suggestion_hint_given(err, "--license", suggestion)
    if typed in ("MIT AND", "()", "( )"):  # license-expression raises on these: reported, not crashed
        assert "(incomplete expression)" in err.message


# ------------------------------------------------------------------------ did-you-mean -----------

@pytest.mark.parametrize("typed,expected", [
    ("Apache2", "Apache-2.0"), ("APACHE-2.0", "Apache-2.0"), ("  mit  ", "MIT"), ("MIT Licence", "MIT"),
    ("MIT License", "MIT"), ("apache license 2.0", "Apache-2.0"), ("Apache  License  2.0", "Apache-2.0"),
    ("gpl-2.0", "GPL-2.0-only"), ("cc-by 4.0", "CC-BY-4.0"),
    ("xyzzy", None), ("qqqq", None), ("", None),
])
def test_suggest_license(typed, expected):
    assert suggest_license(typed) == expected


def test_suggestions_are_canonical_ids():
    for typed in ("apache2", "bsd3", "mpl 2", "gpl3", "Unlicensed"):
        guess = suggest_license(typed)
        assert guess in KNOWN, (typed, guess)


@pytest.mark.parametrize("typed,token", [("GPL OR", "GPL"), ("OR GPL", "GPL"), ("with GPL", "GPL"), ("( bsd3 )", "bsd3"),
                                         ("bsd3 and", "bsd3"), ("(Apache2)", "Apache2")])
def test_one_unknown_symbol_is_guessed_from_itself_not_from_the_operators_around_it(typed, token):
    err = rejected(typed)
    assert f"names {token!r}" in err.message
    assert err.suggestion == suggest_license(token) is not None
