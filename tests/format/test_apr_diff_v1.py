"""Contract apr-diff-v1: `apr diff` of two APR checkpoints (expected values from the inputs and
numpy's float64 definitions, never read back from the diff)."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from apr.cli.main import main
from apr.format import save_file
import apr.format.diff as diff_module
from apr.format.diff import diff_checkpoints

BASE = {"architecture": "llama", "license": "MIT", "name": "m"}
STAMP = {"--license": ("license", st.sampled_from(["Apache-2.0", "MIT", "BSD-3-Clause"])),
         "--data-source": ("data_source", st.text("abcxyz -", min_size=1, max_size=8)),
         "--name": ("name", st.text("abcxyz", min_size=1, max_size=6)),
         "--description": ("description", st.text("abc ", min_size=1, max_size=6))}


def _tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"a.weight": rng.standard_normal((4, 3)).astype(np.float32),
            "b.weight": rng.standard_normal((5,)).astype(np.float32)}


def _diff(_capsys, a: Path, b: Path, *extra: str) -> tuple[int, dict]:
    """`apr diff --json` in-process, its stdout captured here (usable inside Hypothesis tests)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(io.StringIO()):
        code = main(["diff", str(a), str(b), "--json", *extra])
    return code, json.loads(buffer.getvalue())


@pytest.mark.falsifies("FALSIFY-DIFF-001")
@settings(max_examples=12)
@given(data=st.data())
def test_falsify_diff_001_a_stamped_copy_differs_in_exactly_the_stamped_keys(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("d")
    source = folder / "a.apr"
    save_file(_tensors(), source, dict(BASE))
    flags = data.draw(st.lists(st.sampled_from(sorted(STAMP)), min_size=1, max_size=4, unique=True))
    values = {flag: data.draw(STAMP[flag][1]) for flag in flags}
    argv = ["stamp", str(source), "-o", str(folder / "b.apr")]
    assume("--" not in values.values())  # argparse reads it as the end of options (a usage error, tests/cli)
    for flag, value in values.items():
        argv.append(f"{flag}={value}")  # one word: a free-text value may start with "-" ("-a")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0
    code, doc = _diff(None, source, folder / "b.apr")
    expected = {STAMP[f][0]: {"a": BASE.get(STAMP[f][0]), "b": v} for f, v in values.items()
                if BASE.get(STAMP[f][0]) != v}
    assert doc["metadata"] == expected
    assert (doc["tensors_changed"], doc["only_in_a"], doc["only_in_b"], doc["tensors_compared"]) == ([], [], [], 2)
    assert code == (1 if expected else 0) and doc["equal"] is (not expected)
    same_code, same = _diff(None, source, source)
    assert (same_code, same["equal"], same["metadata"], same["tensors_changed"]) == (0, True, {}, [])


_arrays = hnp.arrays(np.float32, st.integers(1, 12), elements=st.floats(-1e3, 1e3, width=32))


@pytest.mark.falsifies("FALSIFY-DIFF-002")
@given(x=_arrays, data=st.data())
@example(x=np.zeros(3, np.float32), data=None)
def test_falsify_diff_002_statistics_are_their_float64_definitions(x, data):
    y = x if data is None else data.draw(hnp.arrays(np.float32, x.shape, elements=st.floats(-1e3, 1e3, width=32)))
    a, b = x.astype(np.float64), y.astype(np.float64)
    max_abs, rel, cosine = diff_module.tensor_stats(x, y)  # looked up here: a declared mutant reaches it
    assert max_abs == float(np.max(np.abs(a - b)))
    na, nb, nd = np.linalg.norm(a), np.linalg.norm(b), np.linalg.norm(a - b)
    assert rel == (nd / na if na else (0.0 if nd == 0 else math.inf))
    assert cosine == (float(a @ b / (na * nb)) if na and nb else (1.0 if na == nb == 0 else 0.0))


@pytest.mark.falsifies("FALSIFY-DIFF-002")
@pytest.mark.parametrize(("delta", "atol", "changed"), [
    (0.25, 0.5, False), (0.5, 0.5, False), (0.75, 0.5, True), (0.5, 0.0, True), (0.0, 0.0, False)])
def test_falsify_diff_002_one_element_around_atol(tmp_path: Path, capsys, delta, atol, changed) -> None:
    tensors = _tensors()
    moved = {k: v.copy() for k, v in tensors.items()}
    moved["a.weight"][2, 1] += np.float32(delta)
    save_file(tensors, tmp_path / "a.apr", dict(BASE))
    save_file(moved, tmp_path / "b.apr", dict(BASE))
    step = float(np.float32(tensors["a.weight"][2, 1] + np.float32(delta)) - float(tensors["a.weight"][2, 1]))
    code, doc = _diff(capsys, tmp_path / "a.apr", tmp_path / "b.apr", "--atol", str(atol))
    assert code == (1 if changed else 0)
    if changed:
        [only] = doc["tensors_changed"]
        assert only["name"] == "a.weight" and only["max_abs"] == abs(step) and only["shape"] == [[4, 3], [4, 3]]
    else:
        assert doc["tensors_changed"] == []
    result = diff_checkpoints(tmp_path / "a.apr", tmp_path / "b.apr", atol=atol)
    assert [t.name for t in result.changed_tensors] == (["a.weight"] if changed else [])


@pytest.mark.falsifies("FALSIFY-DIFF-003")
@pytest.mark.parametrize("change", ["add", "drop", "reshape"])
def test_falsify_diff_003_tensor_set_changes_are_listed(tmp_path: Path, capsys, change) -> None:
    tensors = _tensors()
    other = dict(tensors)
    if change == "add":
        other["c.weight"] = np.ones(2, np.float32)
    elif change == "drop":
        del other["b.weight"]
    else:
        other["a.weight"] = tensors["a.weight"].reshape(3, 4)  # same values, another shape
    save_file(tensors, tmp_path / "a.apr", dict(BASE))
    save_file(other, tmp_path / "b.apr", dict(BASE))
    code, doc = _diff(capsys, tmp_path / "a.apr", tmp_path / "b.apr")
    assert code == 1 and doc["equal"] is False
    assert doc["only_in_b"] == (["c.weight"] if change == "add" else [])
    assert doc["only_in_a"] == (["b.weight"] if change == "drop" else [])
    reshaped = [t for t in doc["tensors_changed"] if t["max_abs"] is None]
    assert [t["name"] for t in reshaped] == (["a.weight"] if change == "reshape" else [])
    if change == "reshape":
        assert reshaped[0]["shape"] == [[4, 3], [3, 4]]


def test_missing_invalid_and_bad_atol(tmp_path: Path, capsys) -> None:
    save_file(_tensors(), tmp_path / "a.apr", dict(BASE))
    (tmp_path / "junk.apr").write_bytes(b"not an apr file at all" * 4)
    capsys.readouterr()
    assert main(["diff", str(tmp_path / "a.apr"), str(tmp_path / "missing.apr")]) == 3
    assert main(["diff", str(tmp_path / "a.apr"), str(tmp_path / "junk.apr")]) == 4
    assert main(["diff", str(tmp_path / "a.apr"), str(tmp_path / "a.apr"), "--atol", "nan"]) == 64
    capsys.readouterr()
    assert main(["diff", str(tmp_path / "a.apr"), str(tmp_path / "a.apr")]) == 0
    assert "same: 0 metadata key(s), 0 tensor(s) changed, 2 equal" in capsys.readouterr().out


@pytest.mark.parametrize("chunk", [1, 3, 7, 12, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_iter_float32_pieces_are_the_tensor(tmp_path: Path, chunk: int, dtype) -> None:
    from apr.format import open_file

    values = (np.arange(12, dtype=np.float32).reshape(3, 4) / 7).astype(dtype)
    save_file({"t": values, "empty": np.zeros((0, 4), dtype)}, tmp_path / "m.apr", dict(BASE))
    with open_file(tmp_path / "m.apr") as reader:
        pieces = list(reader.iter_float32("t", chunk))
        assert [p.size for p in pieces] == [min(chunk, 12 - i) for i in range(0, 12, chunk)]
        assert all(p.dtype == np.float32 for p in pieces)
        np.testing.assert_array_equal(np.concatenate(pieces), values.astype(np.float32).ravel())
        assert list(reader.iter_float32("empty", chunk)) == []


def test_a_difference_past_the_first_piece_is_found(tmp_path: Path, capsys) -> None:
    """A tensor of 1.2 M elements spans two pieces of the streaming scan; its last element moves."""
    base = np.linspace(-1, 1, 1_200_000, dtype=np.float32)
    moved = base.copy()
    moved[-1] += np.float32(0.5)
    save_file({"big": base}, tmp_path / "a.apr", dict(BASE))
    save_file({"big": moved}, tmp_path / "b.apr", dict(BASE))
    code, doc = _diff(None, tmp_path / "a.apr", tmp_path / "b.apr")
    [only] = doc["tensors_changed"]
    assert code == 1 and only["max_abs"] == float(moved[-1]) - float(base[-1])
    a64, b64 = base.astype(np.float64), moved.astype(np.float64)
    assert only["rel_l2"] == pytest.approx(np.linalg.norm(a64 - b64) / np.linalg.norm(a64), rel=1e-12)
    assert only["cosine"] == pytest.approx(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)), rel=1e-12)
