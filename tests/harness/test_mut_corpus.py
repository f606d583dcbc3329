"""falsifiers.corpus in-process (issue 23, after issue 18 joined discovery, the cache and the codec):
what the cache key covers, when the cache answers, and the generic codec's rules.

A dict stands in for pytest's cache; expected values come from the module docstring's rules
(every input of the key changes it; an entry that cannot be decoded is a miss; a record is the
list of its fields in declaration order).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
from pathlib import Path
from typing import Any

import pytest

from falsifiers import corpus as corpus_module
from falsifiers.corpus import (
    CACHE_KEY,
    CODEC_VERSION,
    SnapshotCache,
    codec_schema,
    corpus_key,
    decode,
    decode_corpus,
    discover,
    display_path,
    display_paths,
    encode,
    encode_corpus,
    lint_cached,
    write_snapshot,
)
from falsifiers.records import Contract, Corpus, Finding, Location, Severity
from tests.harness.projects import contract_yaml


class DictCache:
    """pytest's cache as a dict: ``get`` and ``set`` are all `lint_cached` uses."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.writes = 0

    def get(self, key: str, default: Any) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.writes += 1
        self.data[key] = value


@pytest.fixture(autouse=True)
def fresh_decoders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test builds its decoders afresh: the table is per process, and a decoder built before
    (by another test, or a process this one was forked from) would hide how it is built."""
    monkeypatch.setattr(corpus_module, "_DECODERS", {})


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "a-v1.yaml").write_text(contract_yaml("A", [{}, {"pending": "later"}]), encoding="utf-8")
    return contracts


@pytest.fixture
def lints(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every full lint `lint_cached` does (a miss), recorded."""
    calls: list[tuple[Any, ...]] = []
    real = corpus_module._lint
    monkeypatch.setattr(corpus_module, "_lint", lambda *a: calls.append(a) or real(*a))
    return calls


# --- the key --------------------------------------------------------------------------------------


def test_the_key_changes_with_every_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    base = corpus_key([a, b], ["a.yaml", "b.yaml"], 100)
    assert corpus_key([a, b], ["a.yaml", "b.yaml"], 100) == base  # stable
    assert len(base) == 64 and int(base, 16) >= 0
    keys = {
        corpus_key([a, b], ["x.yaml", "b.yaml"], 100),  # a shown name
        corpus_key([a, b], ["a.yaml", "b.yaml"], 101),  # the size limit
        corpus_key([b, a], ["a.yaml", "b.yaml"], 100),  # which bytes go with which name
        corpus_key([a], ["a.yaml"], 100),
    }
    a.write_bytes(b"ONE")  # same size, other bytes
    keys.add(corpus_key([a, b], ["a.yaml", "b.yaml"], 100))
    monkeypatch.setattr(corpus_module, "harness_fingerprint", lambda: "another harness")
    keys.add(corpus_key([a, b], ["a.yaml", "b.yaml"], 100))
    monkeypatch.setattr(corpus_module, "codec_schema", lambda: "another codec")
    keys.add(corpus_key([a, b], ["a.yaml", "b.yaml"], 100))
    assert base not in keys and len(keys) == 7


def test_a_file_over_the_limit_is_keyed_by_its_size_alone(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"x" * 11)
    key = corpus_key([big], ["big.yaml"], 10)
    big.write_bytes(b"y" * 11)  # other bytes, same size over the limit: not read
    assert corpus_key([big], ["big.yaml"], 10) == key
    big.write_bytes(b"y" * 12)
    assert corpus_key([big], ["big.yaml"], 10) != key
    big.write_bytes(b"y" * 10)  # at the limit: read
    at = corpus_key([big], ["big.yaml"], 10)
    big.write_bytes(b"z" * 10)
    assert corpus_key([big], ["big.yaml"], 10) != at


def test_an_unreadable_file_is_part_of_the_key_not_an_error(tmp_path: Path) -> None:
    gone = tmp_path / "gone.yaml"
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    missing = corpus_key([gone], ["gone.yaml"], 10)
    assert missing != corpus_key([folder], ["gone.yaml"], 10)  # ENOENT and EISDIR differ
    gone.write_bytes(b"")
    assert corpus_key([gone], ["gone.yaml"], 10) != missing  # an empty file is not a missing one


# --- the cache ------------------------------------------------------------------------------------


def test_without_a_cache_every_run_lints(folder: Path, lints: list[tuple[Any, ...]]) -> None:
    first = lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 20, cache=None)
    assert lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 20, cache=None) == first
    assert lints == [(folder, folder.parent, 1 << 20)] * 2
    assert set(first.falsifiers) == {"FALSIFY-A-001", "FALSIFY-A-002"}


def test_a_hit_is_decoded_and_a_miss_is_linted_and_stored(folder: Path, lints: list[tuple[Any, ...]]) -> None:
    cache = DictCache()
    first = lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 20, cache=cache)
    assert len(lints) == 1 and cache.writes == 1
    entry = cache.data[CACHE_KEY]
    files = discover([folder])
    assert entry["key"] == corpus_key(files, display_paths(files, folder.parent), 1 << 20)
    assert json.loads(entry["corpus"]) == encode_corpus(first)
    assert ", " not in entry["corpus"] and ": " not in entry["corpus"]  # compact text
    assert lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 20, cache=cache) == first
    assert len(lints) == 1 and cache.writes == 1  # answered from the cache
    lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 19, cache=cache)  # another key
    assert len(lints) == 2 and cache.writes == 2


@pytest.mark.parametrize("damage", [
    lambda entry: "not a dict",
    lambda entry: {**entry, "key": "stale"},
    lambda entry: {"corpus": entry["corpus"]},
    lambda entry: {**entry, "corpus": json.loads(entry["corpus"])},  # not text
    lambda entry: {**entry, "corpus": "[1, 2"},  # ValueError
    lambda entry: {**entry, "corpus": "{}"},  # KeyError
    lambda entry: {**entry, "corpus": '{"contracts": 5, "findings": []}'},  # TypeError
    lambda entry: {**entry, "corpus": '{"contracts": [], "findings": [["error", "c"]]}'},  # ValueError (zip strict)
    lambda entry: {**entry, "corpus": '{"contracts": [], "findings": [["no-such-severity", "c", "m", null, null, []]]}'},
], ids=["not-dict", "stale-key", "no-key", "not-text", "bad-json", "no-contracts", "not-a-list", "short-row",
        "bad-enum"])
def test_an_entry_that_does_not_match_or_decode_is_a_miss(folder: Path, lints: list[tuple[Any, ...]], damage) -> None:  # type: ignore[no-untyped-def]
    cache = DictCache()
    good = lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 20, cache=cache)
    cache.data[CACHE_KEY] = damage(cache.data[CACHE_KEY])
    assert lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 20, cache=cache) == good
    assert len(lints) == 2 and cache.writes == 2
    assert lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 20, cache=cache) == good  # repaired
    assert len(lints) == 2


def test_the_size_limit_reaches_the_lint(folder: Path) -> None:
    size = (folder / "a-v1.yaml").stat().st_size
    limited = lint_cached(folder, relative_to=folder.parent, max_bytes=size - 1, cache=None)
    assert not limited.contracts[0].is_valid
    assert [f.message for f in limited.findings] == [
        f"the file is {size:,} bytes; a contract may be at most {size - 1:,} bytes"]
    assert lint_cached(folder, relative_to=folder.parent, max_bytes=size, cache=None).findings == ()


def test_the_stored_text_keeps_non_ascii_characters_as_they_are() -> None:
    entry = corpus_module._entry("k", Corpus.of([], [Finding(Severity.ERROR, "c", "naïve ü")]))
    assert entry == {"key": "k", "corpus": '{"contracts":[],"findings":[["error","c","naïve ü",null,null,[]]]}'}


def test_the_cached_corpus_keeps_only_errors(folder: Path) -> None:
    (folder / "b-v1.yaml").write_text(contract_yaml("B").replace('rule: "r"', 'rule: "r"\n    surprise: 1'),
                                      encoding="utf-8")
    from falsifiers.lint import lint_paths

    full = lint_paths([folder], relative_to=folder.parent)
    cached = lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 20, cache=None)
    assert any(not f.is_error for f in full.findings)  # the fixture has more than errors
    assert cached.findings == tuple(f for f in full.findings if f.is_error)
    assert cached.contracts == full.contracts


def test_a_snapshot_is_read_only_and_answers_only_its_key(folder: Path, tmp_path: Path,
                                                          lints: list[tuple[Any, ...]]) -> None:
    linted = lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 20, cache=None)
    path = tmp_path / "snapshot.json"
    write_snapshot(path, linted, folder, relative_to=folder.parent, max_bytes=1 << 20)
    snapshot = SnapshotCache(os.fspath(path))
    assert snapshot.path == path
    assert snapshot.get(CACHE_KEY, None) == json.loads(path.read_text(encoding="utf-8"))
    assert snapshot.get("another/key", "default") == "default"
    assert snapshot.set(CACHE_KEY, {"key": "x"}) is None
    assert snapshot.get(CACHE_KEY, None)["key"] != "x"
    path.write_text("{not json", encoding="utf-8")
    assert snapshot.get(CACHE_KEY, "default") == "default"


# --- the codec ----------------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Inner:
    name: str
    colour: Colour | None = None


@dataclasses.dataclass(frozen=True)
class Outer:
    inners: tuple[Inner, ...]
    pair: tuple[int, Colour]
    table: dict[str, Inner]
    numbers: tuple[float, ...]
    flag: bool
    anything: Any


def test_encode_is_each_records_fields_in_order() -> None:
    value = Outer((Inner("a", Colour.RED), Inner("b")), (1, Colour.RED), {"k": Inner("c")}, (0.5,), True, {"raw": [1]})
    data = encode(value)
    assert data == [[["a", "red"], ["b", None]], [1, "red"], {"k": ["c", None]}, [0.5], True, {"raw": [1]}]
    assert decode(Outer, data) == value
    assert decode(Outer, json.loads(json.dumps(data))) == value  # through JSON, where tuples are lists
    assert encode(Inner) is Inner  # a class is not a record


def test_a_decoder_is_built_once_per_type() -> None:
    first = corpus_module._decoder(tuple[Inner, ...])
    assert corpus_module._decoder(tuple[Inner, ...]) is first
    assert corpus_module._decoder(tuple[Outer, ...]) is not first


def test_decode_of_plain_types_and_optionals() -> None:
    assert decode(tuple[str, ...], ["a", "b"]) == ("a", "b")
    assert decode(tuple[Inner, ...], [["a", None]]) == (Inner("a"),)
    assert decode(Colour | None, None) is None
    assert decode(Colour | None, "red") is Colour.RED
    assert decode(int, 3) == 3
    with pytest.raises(ValueError):
        decode(tuple[int, str], [1])  # a fixed tuple's length is checked
    with pytest.raises(ValueError):
        decode(Inner, ["a"])  # and a record's, even where a field has a default


def test_the_codec_refuses_types_it_cannot_read() -> None:
    with pytest.raises(TypeError, match=r"only X \| None unions, not int \| str"):
        decode(int | str, 1)
    with pytest.raises(TypeError, match="the corpus codec cannot read <class 'bytes'>"):
        decode(bytes, b"")


def test_a_corpus_survives_the_codec() -> None:
    finding = Finding(Severity.ERROR, "c", "m", Location("a.yaml", 1, 2), "h", (Location("b.yaml"),))
    corpus = Corpus.of([], [finding])
    assert encode_corpus(corpus) == {"contracts": [], "findings": [["error", "c", "m", ["a.yaml", 1, 2], "h",
                                                                     [["b.yaml", None, None]]]]}
    assert decode_corpus(encode_corpus(corpus)) == corpus


def test_codec_schema_names_every_record_and_field() -> None:
    schema = codec_schema()
    assert schema.startswith(f"{CODEC_VERSION};")
    names = [part.split("(", 1)[0] for part in schema.split(";")[1:]]
    assert names == sorted(["Contract", "Finding", "Location", "Invariant", "Falsifier", "Mutant"])
    assert "Finding(severity:Severity,code:str,message:str,location:Location | None,hint:str | None," \
           "related:tuple[Location, ...])" in schema
    assert codec_schema((Inner,)) == f"{CODEC_VERSION};Inner(name:str,colour:Colour | None)"
    assert codec_schema((Outer,)) == (f"{CODEC_VERSION};Inner(name:str,colour:Colour | None);"
                                      "Outer(inners:tuple[Inner, ...],pair:tuple[int, Colour],table:dict[str, Inner],"
                                      "numbers:tuple[float, ...],flag:bool,anything:Any)")


def test_contracts_round_trip_through_the_codec(folder: Path) -> None:
    linted = lint_cached(folder, relative_to=folder.parent, max_bytes=1 << 20, cache=None)
    assert decode(tuple[Contract, ...], json.loads(json.dumps(encode(linted.contracts)))) == linted.contracts


# --- discovery ------------------------------------------------------------------------------------------


def test_discover_takes_each_file_once_by_its_normal_path(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    one = tmp_path / "c" / "one.yml"
    one.write_text("x: 1\n")
    (tmp_path / "c" / "two.YAML").write_text("x: 1\n")  # the suffix is matched as written
    (tmp_path / "c" / ".hidden.yaml").write_text("x: 1\n")
    (tmp_path / "c" / "folder.yaml").mkdir()  # a folder with a contract's name is entered, not taken
    (tmp_path / "c" / "folder.yaml" / "inner.yaml").write_text("x: 1\n")
    found = discover([tmp_path / "c", tmp_path / "c" / ".." / "c" / "one.yml", one])
    assert found == [tmp_path / "c" / "folder.yaml" / "inner.yaml", one]


def test_display_path_of_one_file(tmp_path: Path) -> None:
    assert display_path(tmp_path / "sub" / "b.yaml", tmp_path) == "sub/b.yaml"
    assert display_path(tmp_path / "b.yaml", tmp_path) == "b.yaml"
    assert display_path(tmp_path / "b.yaml", None) == os.fspath(tmp_path / "b.yaml")


def test_display_paths_at_the_root_are_bare_names(tmp_path: Path) -> None:
    files = [tmp_path / "a.yaml", tmp_path / "sub" / "b.yaml", tmp_path / "c.yaml"]
    assert display_paths(files, tmp_path) == ["a.yaml", "sub/b.yaml", "c.yaml"]
    assert display_paths(files, tmp_path / "sub") == ["../a.yaml", "b.yaml", "../c.yaml"]


def test_a_missing_path_names_itself_and_the_default(tmp_path: Path) -> None:
    from falsifiers.errors import ContractNotFoundError

    missing = tmp_path / "missing"
    with pytest.raises(ContractNotFoundError) as raised:
        discover([missing])
    assert raised.value.path == os.fspath(missing)
    assert raised.value.hint == ("pass a contract file or a folder of them (default: the `contracts` folder named "
                                 "under [tool.apr-contracts] in pyproject.toml)")


def test_a_file_on_another_drive_is_shown_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Windows `os.path.relpath` raises ValueError across drives: the path is shown as given."""
    plain, linked = tmp_path / "a.yaml", tmp_path / "l.yaml"
    plain.write_text("x: 1\n")
    os.symlink(plain, linked)

    def across_drives(path: object, start: object = None) -> str:
        raise ValueError("path is on mount 'C:', start on mount 'D:'")
    monkeypatch.setattr(os.path, "relpath", across_drives)
    assert display_paths([plain, linked], tmp_path / "elsewhere") == [os.fspath(plain), os.fspath(linked)]
