"""`apr.format.diff` rule by rule (issue 23): what counts as a difference (metadata of two APR files
key by key; across formats only the config keys both sides have, GGUF's float32 keys at float32;
header flags; the tensor set in file order; each common tensor's statistics, or none when the shapes
differ; a tied head read from the embedding), when the diff is "equal" (atol inclusive, a dtype
change always a change) and the JSON document `apr diff --json` prints (its keys and values are
interface). The sides are built in memory (`apr.convert.diff_sources.Side`), so each rule is tested
without writing a file; expected statistics come from NumPy's float64 definitions.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import pytest

import apr.convert.diff_sources as diff_sources
from apr.convert.diff_sources import Side
from apr.format import diff as diff_module
from apr.format.diff import CONFIG_KEYS, LAYOUT_KEYS, CheckpointDiff, TensorDiff, chunked_stats, same_config_value


def _side(fmt: str, tensors: dict[str, np.ndarray], *, metadata=None, flags=None, dtypes=None, path="x") -> Side:
    arrays = {name: np.asarray(values, np.float32) for name, values in tensors.items()}

    def pieces(name: str):
        flat = arrays[name].reshape(-1)
        for first in range(0, flat.size, 3):  # pieces of 3, so realignment matters
            yield flat[first:first + 3]

    return Side(path=path, format=fmt, metadata=dict(metadata or {}), flags=flags,
                shapes={n: list(a.shape) for n, a in arrays.items()},
                dtypes={n: (dtypes or {}).get(n, "F32") for n in arrays}, _pieces=pieces)


@pytest.fixture
def sides(monkeypatch: pytest.MonkeyPatch):
    """Make `diff_checkpoints` open the two sides given: ``sides["a"]`` and ``sides["b"]``."""
    given: dict[str, Side] = {}

    @contextlib.contextmanager
    def open_side(path):
        yield given[str(path)]

    monkeypatch.setattr(diff_sources, "open_side", open_side)
    return given


def _stats(a, b) -> tuple[float, float, float]:
    x, y = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    nx, ny, nd = np.linalg.norm(x), np.linalg.norm(y), np.linalg.norm(x - y)
    return float(np.max(np.abs(x - y))), float(nd / nx), float(x @ y / (nx * ny))


# --- constants -------------------------------------------------------------------------------------------


def test_config_keys_and_layout_keys():
    assert CONFIG_KEYS == ("architecture", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                           "intermediate_size", "vocab_size", "max_position_embeddings", "head_dim", "rope_theta",
                           "rms_norm_eps", "license")
    assert LAYOUT_KEYS == frozenset()


# --- TensorDiff and CheckpointDiff ---------------------------------------------------------------------------


def test_tensor_equal_is_atol_inclusive_and_needs_equal_shapes():
    same = TensorDiff("t", ([2], [2]), ("F32", "F32"), 0.5, 0.1, 0.9)
    assert same.equal(0.5) is True and same.equal(0.75) is True and same.equal(0.25) is False
    assert TensorDiff("t", ([2], [2]), ("F32", "F32"), 0.0, 0.0, 1.0).equal(0.0) is True
    assert TensorDiff("t", ([2], [1, 2]), ("F32", "F32"), 0.0, 0.0, 1.0).equal(1.0) is False
    assert TensorDiff("t", ([2], [2]), ("F32", "F32"), None, None, None).equal(1.0) is False


def test_tensor_to_dict_keys_and_values():
    t = TensorDiff("w", ([2, 3], [3, 2]), ("F32", "Q8_0"), 0.25, 0.5, 0.75)
    assert t.to_dict() == {"name": "w", "shape": [[2, 3], [3, 2]], "dtype": ["F32", "Q8_0"], "max_abs": 0.25,
                           "rel_l2": 0.5, "cosine": 0.75}
    assert list(t.to_dict()) == ["name", "shape", "dtype", "max_abs", "rel_l2", "cosine"]


def _t(name, max_abs=0.0, dtypes=("F32", "F32"), shapes=([2], [2])):
    return TensorDiff(name, shapes, dtypes, max_abs, 0.0, 1.0)


def test_changed_tensors_are_those_past_atol_or_of_another_dtype():
    d = CheckpointDiff(a="a", b="b", atol=0.5,
                       tensors=[_t("same"), _t("at", 0.5), _t("past", 0.75), _t("dtype", 0.0, ("F32", "F16")),
                                _t("shape", None, shapes=([2], [3]))])
    assert [t.name for t in d.changed_tensors] == ["past", "dtype", "shape"]
    assert d.equal is False
    assert CheckpointDiff(a="a", b="b", atol=0.5, tensors=[_t("same"), _t("at", 0.5)]).equal is True


@pytest.mark.parametrize("field", ["metadata", "flags", "only_a", "only_b", "tensors"])
def test_any_one_difference_makes_it_unequal(field):
    values = {"metadata": {"k": (1, 2)}, "flags": (["LZ4"], []), "only_a": ["x"], "only_b": ["y"],
              "tensors": [_t("t", 1.0)]}
    assert CheckpointDiff(a="a", b="b", atol=0.0).equal is True
    assert CheckpointDiff(a="a", b="b", atol=0.0, **{field: values[field]}).equal is False


def test_the_json_document_of_two_apr_files():
    d = CheckpointDiff(a="a.apr", b="b.apr", atol=0.5, metadata={"z": (1, 2), "a": ("x", None)},
                       flags=(["LZ4"], []), only_a=["p", "o"], only_b=["q"],
                       tensors=[_t("same"), _t("past", 0.75)])
    assert d.to_dict() == {
        "command": "diff", "a": "a.apr", "b": "b.apr", "formats": ["apr", "apr"], "atol": 0.5, "equal": False,
        "metadata_compared": "all keys",
        "metadata": {"a": {"a": "x", "b": None}, "z": {"a": 1, "b": 2}},
        "flags": {"a": ["LZ4"], "b": []},
        "only_in_a": ["p", "o"], "only_in_b": ["q"],
        "tensors_compared": 2,
        "tensors_changed": [_t("past", 0.75).to_dict()],
    }
    assert list(d.to_dict()["metadata"]) == ["a", "z"]  # sorted


def test_the_json_document_across_formats_and_of_an_equal_diff():
    d = CheckpointDiff(a="a.apr", b="b.gguf", atol=0.0, formats=("apr", "gguf"), tensors=[_t("same")])
    assert d.to_dict() == {
        "command": "diff", "a": "a.apr", "b": "b.gguf", "formats": ["apr", "gguf"], "atol": 0.0, "equal": True,
        "metadata_compared": "config keys both sides have", "metadata": {}, "flags": None,
        "only_in_a": [], "only_in_b": [], "tensors_compared": 1, "tensors_changed": [],
    }
    for formats in (("gguf", "apr"), ("safetensors", "safetensors")):
        d.formats = formats
        assert d.to_dict()["metadata_compared"] == "config keys both sides have"


# --- statistics ------------------------------------------------------------------------------------------


def test_statistics_of_zero_sides():
    assert chunked_stats([np.zeros(3)], [np.zeros(3)]) == (0.0, 0.0, 1.0)
    assert chunked_stats([np.zeros(2)], [np.array([3.0, 4.0])]) == (4.0, math.inf, 0.0)
    assert chunked_stats([np.array([3.0, 4.0])], [np.zeros(2)]) == (4.0, 1.0, 0.0)
    assert chunked_stats([], []) == (0.0, 0.0, 1.0)
    assert chunked_stats([np.zeros(0)], [np.zeros(0)]) == (0.0, 0.0, 1.0)


def test_statistics_accumulate_over_pieces():
    a = np.array([1.0, -2.0, 3.0, 0.5, 7.0], np.float32)
    b = np.array([1.5, -2.0, 1.0, 0.5, 6.0], np.float32)
    got = chunked_stats([a[:2], a[2:3], a[3:]], [b[:2], b[2:3], b[3:]])
    assert got == pytest.approx(_stats(a, b), rel=1e-15)
    assert got[0] == 2.0  # the largest difference is in the middle piece
    # the first piece's largest difference survives later smaller ones
    assert chunked_stats([np.array([9.0]), np.array([1.0])], [np.array([0.0]), np.array([1.0])])[0] == 9.0
    with pytest.raises(ValueError):
        chunked_stats([a[:2], a[2:]], [b])  # pieces must line up


def test_statistics_are_float64():
    a = np.array([1.0, 1e-8], np.float32)
    b = np.array([1.0, 0.0], np.float32)
    max_abs, rel, cosine = chunked_stats([a], [b])
    assert max_abs == float(np.float32(1e-8)) and rel == pytest.approx(float(np.float32(1e-8)), rel=1e-12)
    assert cosine == pytest.approx(1.0 / math.sqrt(1.0 + float(np.float32(1e-8)) ** 2), rel=1e-15)
    big = np.full(4, 1e30, np.float32)  # float32 products would overflow
    assert chunked_stats([big], [big]) == (0.0, 0.0, pytest.approx(1.0))


def test_realigned_gives_pieces_of_exactly_size():
    pieces = [np.arange(0, 3), np.arange(3, 4), np.arange(4, 9), np.zeros(0), np.arange(9, 10).reshape(1, 1)]
    out = list(diff_module._realigned(pieces, size=4))
    assert [p.tolist() for p in out] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [p.tolist() for p in diff_module._realigned([np.arange(8)], size=4)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert list(diff_module._realigned([], size=4)) == []
    default = list(diff_module._realigned([np.zeros((1 << 20) + 5, np.float32)]))
    assert [p.size for p in default] == [1 << 20, 5]


# --- same_config_value ---------------------------------------------------------------------------------------


def test_float32_keys_compare_at_float32_and_others_exactly():
    assert same_config_value("rms_norm_eps", 1e-5, float(np.float32(1e-5))) is True
    assert same_config_value("rope_theta", 10000, 10000.0) is True
    assert same_config_value("rope_theta", 10000.0, 10000.5) is False
    assert same_config_value("rms_norm_eps", 1e-5, 1e-6) is False
    # other keys: exact, even for floats a float32 cannot tell apart
    assert same_config_value("hidden_size", 1e-5, float(np.float32(1e-5))) is False
    assert same_config_value("num_heads", 8, 8) is True
    # a float32 key with a value that is not a number: compared as is
    assert same_config_value("rope_theta", "1e4", "1e4") is True
    assert same_config_value("rope_theta", "1e4", 1e4) is False
    assert same_config_value("rope_theta", 1e4, "1e4") is False
    assert same_config_value("rope_theta", [1.0], [1.0]) is True


# --- diff_checkpoints --------------------------------------------------------------------------------------


W = np.arange(12, dtype=np.float32).reshape(3, 4) / 8
V = np.array([0.5, -1.0, 2.0], np.float32)


def test_two_apr_files_compare_every_metadata_key(sides):
    sides["a"] = _side("apr", {"w": W}, metadata={"name": "m", "license": "MIT", "only_a": 1, "same": 2},
                       flags=["LZ4"])
    sides["b"] = _side("apr", {"w": W}, metadata={"name": "n", "license": "MIT", "only_b": 3, "same": 2},
                       flags=["LZ4"])
    d = diff_module.diff_checkpoints("a", "b")
    assert (d.a, d.b, d.atol, d.formats) == ("a", "b", 0.0, ("apr", "apr"))
    assert d.metadata == {"name": ("m", "n"), "only_a": (1, None), "only_b": (None, 3)}
    assert d.flags is None and d.only_a == [] and d.only_b == []
    assert [(t.name, t.max_abs) for t in d.tensors] == [("w", 0.0)]


def test_paths_are_kept_as_strings(sides, tmp_path: Path):
    sides[str(tmp_path / "a")] = _side("apr", {})
    sides[str(tmp_path / "b")] = _side("apr", {})
    d = diff_module.diff_checkpoints(tmp_path / "a", tmp_path / "b", atol=0.25)
    assert (d.a, d.b, d.atol) == (str(tmp_path / "a"), str(tmp_path / "b"), 0.25)
    assert d.equal is True


def test_across_formats_only_the_config_keys_both_sides_have(sides):
    sides["a"] = _side("apr", {}, metadata={"architecture": "llama", "rope_theta": 10000.0, "rms_norm_eps": 1e-5,
                                            "num_heads": 8, "vocab_size": 100, "name": "m", "license": "MIT"})
    sides["b"] = _side("gguf", {}, metadata={"architecture": "llama", "rope_theta": 5e5,
                                             "rms_norm_eps": float(np.float32(1e-5)), "num_heads": 4,
                                             "name": "other", "hidden_size": 64})
    d = diff_module.diff_checkpoints("a", "b")
    assert d.formats == ("apr", "gguf")
    # vocab_size and license: one side only; name, hidden_size: not compared across formats; the eps: float32-equal
    assert d.metadata == {"rope_theta": (10000.0, 5e5), "num_heads": (8, 4)}
    sides["b"] = _side("safetensors", {}, metadata={"architecture": "llama", "license": "Apache-2.0"})
    assert diff_module.diff_checkpoints("a", "b").metadata == {"license": ("MIT", "Apache-2.0")}


@pytest.mark.parametrize(("flags_a", "flags_b", "expected"), [
    (["LZ4"], ["LZ4"], None), (["LZ4"], [], (["LZ4"], [])), ([], ["SIGNED"], ([], ["SIGNED"])),
    (["LZ4"], None, None), (None, ["LZ4"], None), (None, None, None)])
def test_flags_compare_only_when_both_sides_have_them(sides, flags_a, flags_b, expected):
    sides["a"] = _side("apr", {}, flags=flags_a)
    sides["b"] = _side("apr", {}, flags=flags_b)
    assert diff_module.diff_checkpoints("a", "b").flags == expected


def test_the_tensor_sets_in_file_order_and_each_common_tensor_compared(sides):
    moved = W.copy()
    moved[2, 3] += 0.5
    sides["a"] = _side("apr", {"z": V, "w": W, "only_a2": V, "r": W, "only_a1": V})
    sides["b"] = _side("apr", {"only_b": V, "r": W.reshape(4, 3), "w": moved, "z": V},
                       dtypes={"z": "F16"})
    seen: list[tuple[int, int]] = []
    d = diff_module.diff_checkpoints("a", "b", atol=0.0, progress=lambda i, n: seen.append((i, n)))
    assert d.only_a == ["only_a2", "only_a1"] and d.only_b == ["only_b"]
    assert [t.name for t in d.tensors] == ["z", "w", "r"]  # a's order
    z, w, r = d.tensors
    assert (z.shape, z.dtype, z.max_abs, z.rel_l2, z.cosine) == (([3], [3]), ("F32", "F16"), 0.0, 0.0, 1.0)
    assert (w.shape, w.dtype) == (([3, 4], [3, 4]), ("F32", "F32"))
    assert (w.max_abs, w.rel_l2, w.cosine) == pytest.approx(_stats(W, moved), rel=1e-12)
    assert w.max_abs == 0.5
    assert (r.shape, r.max_abs, r.rel_l2, r.cosine) == (([3, 4], [4, 3]), None, None, None)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert [t.name for t in d.changed_tensors] == ["z", "w", "r"] and d.equal is False


def test_a_tied_head_is_read_from_the_embedding_on_either_side(sides):
    embed = np.arange(6, dtype=np.float32).reshape(3, 2)
    head = embed + np.float32(0.25)
    for first, second in (("a", "b"), ("b", "a")):
        sides[first] = _side("apr", {"model.embed_tokens.weight": embed, "lm_head.weight": head})
        sides[second] = _side("gguf", {"model.embed_tokens.weight": embed})
        d = diff_module.diff_checkpoints("a", "b")
        assert d.only_a == [] and d.only_b == []
        names = [t.name for t in d.tensors]
        assert sorted(names) == ["lm_head.weight", "model.embed_tokens.weight"]
        tied = next(t for t in d.tensors if t.name == "lm_head.weight")
        assert tied.shape == ([3, 2], [3, 2]) and tied.max_abs == 0.25


def test_no_alias_without_an_embedding_or_when_both_hold_a_head(sides):
    head = np.ones((3, 2), np.float32)
    sides["a"] = _side("apr", {"lm_head.weight": head})
    sides["b"] = _side("gguf", {"other": head})
    d = diff_module.diff_checkpoints("a", "b")
    assert d.only_a == ["lm_head.weight"] and d.only_b == ["other"]
    # both hold a head: each is compared as it is, the embedding is not read in its place
    embed = np.zeros((3, 2), np.float32)
    sides["a"] = _side("apr", {"model.embed_tokens.weight": embed, "lm_head.weight": head})
    sides["b"] = _side("gguf", {"model.embed_tokens.weight": embed, "lm_head.weight": head * 2})
    d = diff_module.diff_checkpoints("a", "b")
    assert [(t.name, t.max_abs) for t in d.tensors] == [("model.embed_tokens.weight", 0.0), ("lm_head.weight", 1.0)]


def test_realigned_splits_a_piece_that_overfills_the_one_begun():
    """3 values held, then a piece of 7: one value completes the first piece of 4, the next 4 make
    the second, 2 are left. Asked for lazily, so a wrong first piece fails before anything else runs."""
    pieces = diff_module._realigned([np.arange(3), np.arange(3, 10)], size=4)
    assert next(pieces).tolist() == [0, 1, 2, 3]
    assert next(pieces).tolist() == [4, 5, 6, 7]
    assert [p.tolist() for p in pieces] == [[8, 9]]


def test_statistics_refuse_sides_with_a_different_number_of_pieces():
    """Pieces are compared pair by pair: a side with a piece more is not silently cut short."""
    a = np.arange(4, dtype=np.float32)
    with pytest.raises(ValueError):
        chunked_stats([a[:2], a[2:]], [a[:2]])
    with pytest.raises(ValueError):
        chunked_stats([a[:2]], [a[:2], a[2:]])
