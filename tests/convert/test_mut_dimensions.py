"""apr/convert/dimensions.py (issue 23): every ceiling below/at/above, the float rules at their
edges, the tensor checks with near misses, and the implied-parameter bound at exactly 10×.
Expected values are computed here from the inputs (an independent formula), never read back."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apr.convert import dimensions as dm
from apr.errors import ConvertError

CEILINGS = {
    "hidden_size": 2**20, "num_layers": 2**16, "num_heads": 2**16, "num_kv_heads": 2**16,
    "vocab_size": 2**24, "intermediate_size": 2**22, "max_position_embeddings": 2**24,
    "head_dim": 2**16, "num_experts": 2**16, "num_experts_per_tok": 2**16, "moe_intermediate_size": 2**22,
}


def spell(key: str) -> str:
    return f"cfg.{key}"


def refusal(metadata, shapes, source="config.json", path="m/config.json"):
    with pytest.raises(ConvertError) as info:
        dm.check_dimensions(metadata, shapes, source=source, path=path, spell=spell, hint="fix the config")
    err = info.value
    assert err.hint == "fix the config" and err.path == path
    header = f"{source} does not describe the tensors beside it; nothing was written:\n    "
    assert err.message.startswith(header), err.message
    return err, err.message[len(header):].split("\n    ")


def test_constants():
    assert dm.CEILINGS == CEILINGS
    assert dm.IMPLIED_PARAMS_FACTOR == 10


# ---- implied parameters ---------------------------------------------------------------------------

def oracle(m):
    def g(k):
        v = m.get(k)
        return v if type(v) is int and v > 0 else 0
    hidden, heads = g("hidden_size"), g("num_heads")
    kv = g("num_kv_heads") or heads
    hd = g("head_dim") or (hidden // heads if heads else 0)
    if g("num_experts"):
        mlp = 2 * hidden * g("num_experts") * (g("moe_intermediate_size") or g("intermediate_size"))
    else:
        mlp = 2 * hidden * g("intermediate_size")
    return g("vocab_size") * hidden + g("num_layers") * (2 * hidden * heads * hd + 2 * hidden * kv * hd + mlp)


dims = st.one_of(st.none(), st.integers(-2, 40), st.booleans(), st.just(3.0))


@given(st.fixed_dictionaries({}, optional={k: dims for k in (
    "vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "intermediate_size",
    "num_experts", "moe_intermediate_size")}))
@example({"vocab_size": 10, "hidden_size": 4, "num_layers": 1, "num_heads": 2, "intermediate_size": 8})
@example({"vocab_size": 3, "hidden_size": 5, "num_layers": 2, "num_heads": 2, "num_kv_heads": 1, "head_dim": 7,
          "intermediate_size": 11, "num_experts": 3, "moe_intermediate_size": 13})
@example({"hidden_size": 5, "num_layers": 2, "num_heads": 2, "intermediate_size": 11, "num_experts": 3})
@example({"hidden_size": 6, "num_layers": 1, "num_heads": 4, "head_dim": True, "num_kv_heads": -1})
@example({"hidden_size": 4, "num_layers": 1, "num_kv_heads": 2})  # no heads: head_dim 0, not 1
def test_implied_parameters_formula(metadata):
    assert dm.implied_parameters(metadata) == oracle(metadata)


def test_implied_parameters_by_hand():
    # V·H + L·(2·H·heads·hd + 2·H·kv·hd + 2·H·I) = 10·4 + 1·(2·4·2·2 + 2·4·2·2 + 2·4·8) = 40 + 128
    assert dm.implied_parameters({"vocab_size": 10, "hidden_size": 4, "num_layers": 1, "num_heads": 2,
                                  "intermediate_size": 8}) == 168
    # experts: the MLP term is 2·H·E·moe_I = 2·4·3·5
    assert dm.implied_parameters({"hidden_size": 4, "num_layers": 1, "num_experts": 3,
                                  "moe_intermediate_size": 5, "intermediate_size": 100}) == 120
    assert dm.implied_parameters({"hidden_size": 4, "num_layers": 1, "num_experts": 3,
                                  "intermediate_size": 7}) == 168
    # kv heads without heads: no head_dim can be derived, so attention counts 0
    assert dm.implied_parameters({"hidden_size": 4, "num_layers": 1, "num_kv_heads": 2}) == 0


# ---- ranges ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(CEILINGS))
def test_each_ceiling_below_at_above(key):
    ceiling = CEILINGS[key]
    for good in (1, 2, ceiling - 1, ceiling):
        assert dm._range_problems({key: good}, spell) == []
    for bad in (0, -1, ceiling + 1):
        assert dm._range_problems({key: bad}, spell) == [(key, f"cfg.{key} = {bad} is outside 1 … {ceiling}")]
    for bad in (True, 2.0, "4", [4]):
        assert dm._range_problems({key: bad}, spell) == [(key, f"cfg.{key} = {bad!r} is not an integer")]


@pytest.mark.parametrize(("value", "ok"), [
    (1e-30, True), (5e-324, True), (10000, True), (1e308, True),
    (0, False), (0.0, False), (-1.0, False), (math.inf, False), (math.nan, False), (True, False), ("1", False),
])
def test_rope_theta_must_be_finite_and_positive(value, ok):
    problems = dm._range_problems({"rope_theta": value}, spell)
    assert problems == ([] if ok else [("rope_theta", f"cfg.rope_theta = {value!r} must be a finite number > 0")])


@pytest.mark.parametrize(("value", "ok"), [
    (1e-6, True), (0.5, True), (math.nextafter(1.0, 0.0), True), (5e-324, True),
    (0, False), (0.0, False), (1, False), (1.0, False), (-1e-6, False), (math.nan, False), (math.inf, False),
    (False, False), (None, True),
])
def test_rms_norm_eps_must_be_in_open_unit_interval(value, ok):
    problems = dm._range_problems({"rms_norm_eps": value}, spell)
    assert problems == ([] if ok else [("rms_norm_eps", f"cfg.rms_norm_eps = {value!r} must be a finite number in (0, 1)")])


@pytest.mark.parametrize(("heads", "kv", "bad"), [
    (8, 2, False), (8, 8, False), (8, 1, False), (8, 3, True), (7, 2, True), (2, 4, True),
    (8, 0, False),  # kv out of range: its own problem, no division rule
    (2**16 + 8, 3, False),  # heads above the ceiling: not a 'good' count
    (2**16, 3, True),  # at the ceiling: checked
    (9, 2**16, True),
])
def test_kv_heads_must_divide_heads(heads, kv, bad):
    problems = [p for p in dm._range_problems({"num_heads": heads, "num_kv_heads": kv}, spell)
                if "divide" in p[1]]
    expected = [("num_kv_heads", f"cfg.num_kv_heads = {kv} does not divide cfg.num_heads = {heads} "
                                  "(each kv head serves whole query heads)")]
    assert problems == (expected if bad else [])


@pytest.mark.parametrize(("experts", "per_token", "bad"), [
    (8, 2, False), (8, 8, False), (8, 9, True), (1, 2, True), (0, 2, False), (8, 2**16 + 1, False),
    (5, 2**16, True), (2**16 + 1, 2**16 + 2, False),
])
def test_experts_per_token_at_most_experts(experts, per_token, bad):
    problems = [p for p in dm._range_problems({"num_experts": experts, "num_experts_per_tok": per_token}, spell)
                if "more than" in p[1]]
    expected = [("num_experts_per_tok", f"cfg.num_experts_per_tok = {per_token} is more than "
                                         f"cfg.num_experts = {experts}")]
    assert problems == (expected if bad else [])


def test_unknown_keys_are_not_range_checked():
    assert dm._range_problems({"rope_type": -5, "model_type": "x"}, spell) == []


# ---- layers and schemes ---------------------------------------------------------------------------

@pytest.mark.parametrize(("names", "indices"), [
    (["model.layers.0.a", "model.layers.1.b", "model.layers.10.c"], {0, 1, 10}),
    (["model.layers.01.a", "model.layers.x.a", "model.layers.3", "other.layers.2.a", "model.layers.4.a"], {4}),
    (["model.layers.0x.a"], set()),
])
def test_layer_indices(names, indices):
    assert dm.layer_indices(names, "model.layers.") == indices


@pytest.mark.parametrize(("indices", "text"), [
    (set(), "no layer tensors"),
    ({0}, "1 layer (p.0)"),
    ({0, 1, 2}, "3 layers (p.0 … p.2)"),
    ({1}, "1 layers numbered 1 … 1, with 0 missing"),
    ({0, 2, 5}, "3 layers numbered 0 … 5, with 1, 3, 4 missing"),
    ({0, 9}, "2 layers numbered 0 … 9, with 1, 2, 3, 4, 5 missing"),
])
def test_layers_text(indices, text):
    assert dm._layers_text(indices, "p.") == text


@pytest.mark.parametrize(("shapes", "scheme"), [
    ({"model.embed_tokens.weight": (4, 2)}, ("model.embed_tokens.weight", "model.layers.")),
    ({"model.layers.0.x": (1,)}, ("model.embed_tokens.weight", "model.layers.")),
    ({"transformer.wte.weight": (4, 2)}, ("transformer.wte.weight", "transformer.h.")),
    ({"transformer.h.3.attn": (1,)}, ("transformer.wte.weight", "transformer.h.")),
    ({"gpt_neox.embed_in.weight": (4, 2)}, ("gpt_neox.embed_in.weight", "gpt_neox.layers.")),
    ({"gpt_neox.layers.0.x": (1,)}, ("gpt_neox.embed_in.weight", "gpt_neox.layers.")),
    ({"model.layers.x.y": (1,)}, None),
    ({"model.decoder.embed_tokens.weight": (4, 2), "model.decoder.layers.0.x": (1,)}, None),
    ({}, None),
])
def test_scheme(shapes, scheme):
    assert dm._scheme(shapes) == scheme


# ---- the tensors' word ----------------------------------------------------------------------------

def llama(layers=2, vocab=16, hidden=8, heads=2, kv=1, head_dim=4, inter=12):
    shapes = {"model.embed_tokens.weight": (vocab, hidden), "lm_head.weight": (vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes[p + "self_attn.q_proj.weight"] = (heads * head_dim, hidden)
        shapes[p + "self_attn.k_proj.weight"] = (kv * head_dim, hidden)
        shapes[p + "self_attn.v_proj.weight"] = (kv * head_dim, hidden)
        shapes[p + "self_attn.o_proj.weight"] = (hidden, heads * head_dim)
        shapes[p + "mlp.gate_proj.weight"] = (inter, hidden)
        shapes[p + "mlp.up_proj.weight"] = (inter, hidden)
        shapes[p + "mlp.down_proj.weight"] = (hidden, inter)
    meta = {"vocab_size": vocab, "hidden_size": hidden, "num_layers": layers, "num_heads": heads,
            "num_kv_heads": kv, "intermediate_size": inter, "rope_theta": 10000.0, "rms_norm_eps": 1e-6}
    return meta, shapes


def test_a_consistent_model_passes():
    meta, shapes = llama()
    dm.check_dimensions(meta, shapes, source="config.json", path=None, spell=spell, hint="h")
    dm.check_dimensions({**meta, "head_dim": 4}, shapes, source="config.json", path=None, spell=spell, hint="h")


@pytest.mark.parametrize(("layers", "text"), [
    (3, "cfg.num_layers = 3, but the tensors hold 2 layers (model.layers.0 … model.layers.1)"),
    (1, "cfg.num_layers = 1, but the tensors hold 2 layers (model.layers.0 … model.layers.1)"),
])
def test_layer_count_must_match(layers, text):
    meta, shapes = llama()
    err, lines = refusal({**meta, "num_layers": layers}, shapes)
    assert lines == [text]
    assert err.field == "cfg.num_layers"


def test_layers_with_a_gap_are_refused_even_when_the_count_matches():
    meta, shapes = llama(layers=3)
    shapes = {k: v for k, v in shapes.items() if not k.startswith("model.layers.1.")}
    _, lines = refusal({**meta, "num_layers": 2}, shapes)
    assert lines == ["cfg.num_layers = 2, but the tensors hold 2 layers numbered 0 … 2, with 1 missing"]


@pytest.mark.parametrize("name", ["model.embed_tokens.weight", "lm_head.weight"])
def test_embedding_rows_and_width(name):
    meta, shapes = llama()
    shapes[name] = (17, 9)
    other = {k: v for k, v in shapes.items()}
    err, lines = refusal(meta, other)
    assert lines[:2] == [f"cfg.vocab_size = 16, but {name} has 17 rows", f"cfg.hidden_size = 8, but {name} is 9 wide"]
    assert err.field == "cfg.vocab_size"


def test_a_one_dimensional_embedding_is_not_read():
    meta, shapes = llama()
    shapes["lm_head.weight"] = (16 * 8,)
    dm.check_dimensions(meta, shapes, source="s", path=None, spell=spell, hint="h")


def test_intermediate_size_from_gate_and_up():
    meta, shapes = llama()
    for part in ("gate_proj", "up_proj"):
        bad = dict(shapes)
        bad[f"model.layers.1.mlp.{part}.weight"] = (13, 8)
        _, lines = refusal(meta, bad)
        assert lines == [f"cfg.intermediate_size = 12, but model.layers.1.mlp.{part}.weight has 13 rows"]
    bad = dict(shapes)
    bad["model.layers.0.mlp.up_proj.weight"] = (13 * 8,)  # 1-D: not read
    dm.check_dimensions(meta, bad, source="s", path=None, spell=spell, hint="h")


Q0, K0 = "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight"


def test_kv_heads_from_k_proj_with_derived_head_dim():
    meta, shapes = llama()  # q 8 rows, k 4 rows
    err, lines = refusal({**meta, "num_heads": 4}, shapes)  # derived head_dim 8 / 4 = 2: q fits, k does not
    assert lines == [f"cfg.num_kv_heads = 1 × head_dim 2 (cfg.hidden_size / cfg.num_heads) = 2, but {K0} has 4 rows"]
    assert err.field == "cfg.num_kv_heads"


def test_a_stated_head_dim_is_blamed_when_q_and_k_both_disagree():
    meta, shapes = llama()
    err, lines = refusal({**meta, "head_dim": 3}, shapes)
    assert lines == [f"cfg.head_dim = 3, but {Q0} has 8 rows for 2 heads and {K0} 4 rows for 1 kv heads"]
    assert err.field == "cfg.head_dim"


def test_a_derived_head_dim_blames_both_counts():
    meta, shapes = llama(head_dim=8)  # q 16 rows, k 8 rows, hidden 8: derived head_dim 4
    _, lines = refusal(meta, shapes)
    assert lines == [
        f"cfg.num_heads = 2 × head_dim 4 (cfg.hidden_size / cfg.num_heads) = 8, but {Q0} has 16 rows",
        f"cfg.num_kv_heads = 1 × head_dim 4 (cfg.hidden_size / cfg.num_heads) = 4, but {K0} has 8 rows",
    ]
    dm.check_dimensions({**meta, "head_dim": 8}, shapes, source="s", path=None, spell=spell, hint="h")


def test_a_stated_head_dim_with_only_q_wrong_blames_the_heads():
    meta, shapes = llama()
    _, lines = refusal({**meta, "num_heads": 3, "head_dim": 4}, shapes)
    assert lines == [f"cfg.num_heads = 3 × head_dim 4 = 12, but {Q0} has 8 rows"]


@pytest.mark.parametrize("head_dim", [None, 0])
def test_without_a_head_dim_the_counts_must_divide_the_rows(head_dim):
    meta, shapes = llama()
    meta = {**meta, "num_heads": 3, "num_kv_heads": 3}  # 8 % 3: no derived head_dim
    if head_dim is not None:
        meta["head_dim"] = head_dim
    _, lines = refusal(meta, shapes)
    assert lines[:2] == [f"cfg.num_heads = 3 does not divide the 8 rows of {Q0}",
                         f"cfg.num_kv_heads = 3 does not divide the 4 rows of {K0}"]


def test_counts_that_divide_the_rows_pass_without_head_dim():
    meta, shapes = llama(hidden=8, heads=2, kv=1, head_dim=4)
    shapes[Q0] = (9, 8)  # odd q rows, but 9 % 3 == 0 and hidden 8 % 3 != 0: no derived head_dim
    meta = {**meta, "num_heads": 3, "num_kv_heads": 1}
    _, lines = refusal(meta, shapes)
    assert not any("q_proj" in line for line in lines if "model.layers.0." in line)


def test_one_dimensional_projections_are_not_read():
    meta, shapes = llama()
    shapes[Q0] = (64,)
    shapes[K0] = (32,)
    dm.check_dimensions(meta, shapes, source="s", path=None, spell=spell, hint="h")


def test_projection_checks_stop_after_twelve_problems():
    meta, shapes = llama(layers=7, head_dim=8)  # every layer: num_heads and num_kv_heads problems (2 each)
    shapes["model.layers.6.mlp.gate_proj.weight"] = (13, 8)  # only in layer 6, after the 12th problem
    _, lines = refusal(meta, shapes)
    assert [line.split(" ")[0] for line in lines] == ["cfg.num_heads", "cfg.num_kv_heads"]
    shapes["model.layers.5.mlp.gate_proj.weight"] = (13, 8)  # in layer 5: reported
    _, lines = refusal(meta, shapes)
    assert [line.split(" ")[0] for line in lines] == ["cfg.num_heads", "cfg.num_kv_heads", "cfg.intermediate_size"]


@pytest.mark.parametrize(("names", "count"), [
    ([".mlp.experts.0.", ".mlp.experts.1.", ".mlp.experts.2."], 3),
    ([".block_sparse_moe.experts.0.", ".block_sparse_moe.experts.5."], 2),
    ([".mlp.experts.0.", ".mlp.experts.0."], 1),
])
def test_expert_count_from_layer_zero(names, count):
    meta, shapes = llama(layers=1)
    for i, n in enumerate(names):
        shapes[f"model.layers.0{n}w{i}.weight"] = (1,)
    shapes["model.layers.1.mlp.experts.9.w.weight"] = (1,)  # another layer: not counted
    meta = {**meta, "num_layers": 2}
    _, lines = refusal({**meta, "num_experts": count + 1}, shapes)
    assert f"cfg.num_experts = {count + 1}, but layer 0 holds {count} experts" in lines
    dm.check_dimensions({**meta, "num_experts": count}, shapes, source="s", path=None, spell=spell, hint="h")


@pytest.mark.parametrize("name", ["model.layers.0.mlp.expert.0.w", "model.layers.0.mlp.experts.01.w",
                                  "model.layers.0.mlp.experts.x.w", "model.layers.0.experts.0.w"])
def test_expert_near_misses_are_not_counted(name):
    meta, shapes = llama(layers=1)
    shapes[name] = (1,)
    dm.check_dimensions({**meta, "num_experts": 4}, shapes, source="s", path=None, spell=spell, hint="h")


def test_a_tensor_problem_hides_the_range_problem_of_its_key_only():
    meta, shapes = llama()
    _, lines = refusal({**meta, "num_layers": 2**16 + 1, "rope_theta": 0.0}, shapes)
    assert lines == ["cfg.num_layers = 65537, but the tensors hold 2 layers (model.layers.0 … model.layers.1)",
                     "cfg.rope_theta = 0.0 must be a finite number > 0"]


def test_at_most_twelve_problems_are_listed():
    meta = {key: 0 for key in CEILINGS} | {"rope_theta": 0, "rms_norm_eps": 0}
    err, lines = refusal(meta, {})
    assert len(lines) == 12
    assert lines == [f"cfg.{k} = 0 is outside 1 … {c}" for k, c in CEILINGS.items()] + [
        "cfg.rope_theta = 0 must be a finite number > 0"]
    assert err.field == "cfg.hidden_size"


# ---- implied parameters against the tensors present -----------------------------------------------

def test_implied_bound_at_exactly_ten_times_passes():
    dm.check_dimensions({"vocab_size": 100, "hidden_size": 2}, {"w": (10,), "v": (2, 5)}, source="s", path=None,
                        spell=spell, hint="h")  # 200 == 10 × (10 + 2·5)
    _, lines = refusal({"vocab_size": 201, "hidden_size": 1}, {"w": (10,), "v": (2, 5)})
    assert lines == ["cfg.vocab_size = 201, cfg.hidden_size = 1 imply at least 201 parameters, more than 10× the 20 "
                     "in the tensors"]


@given(st.integers(1, 50), st.integers(1, 50), st.integers(1, 50))
@example(10, 100, 1)
@example(10, 101, 1)
def test_implied_bound(present, vocab, hidden):
    meta = {"vocab_size": vocab, "hidden_size": hidden}
    implied = vocab * hidden
    if implied <= 10 * present:
        dm.check_dimensions(meta, {"w": (present,)}, source="s", path=None, spell=spell, hint="h")
    else:
        err, lines = refusal(meta, {"w": (present,)})
        assert lines == [f"cfg.vocab_size = {vocab}, cfg.hidden_size = {hidden} imply at least {implied:,} "
                         f"parameters, more than 10× the {present:,} in the tensors"]
        assert err.field == "cfg.vocab_size"


def test_implied_bound_lists_keys_in_order_and_names_num_layers():
    meta = {"intermediate_size": 51, "num_layers": 1, "hidden_size": 1, "rope_theta": 1.0, "max_position_embeddings": 9,
            "num_experts_per_tok": 1}
    err, lines = refusal(meta, {"w": (10,)})
    assert lines == ["cfg.hidden_size = 1, cfg.num_layers = 1, cfg.intermediate_size = 51 imply at least 102 "
                     "parameters, more than 10× the 10 in the tensors"]
    assert err.field == "cfg.num_layers"


def test_implied_bound_lists_every_dimension_key():
    keys = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim",
            "intermediate_size", "num_experts", "moe_intermediate_size")
    meta = {k: 2 for k in keys} | {"max_position_embeddings": 2}
    _, lines = refusal(meta, {"w": (1,)})
    # 2·2 + 2·(2·2·2·2 + 2·2·2·2 + 2·2·2·2)
    assert lines == [", ".join(f"cfg.{k} = 2" for k in keys) + " imply at least 100 parameters, more than "
                     "10× the 1 in the tensors"]


def test_thousands_separators():
    _, lines = refusal({"vocab_size": 1001, "hidden_size": 1000}, {"w": (10, 10)})
    assert lines == ["cfg.vocab_size = 1001, cfg.hidden_size = 1000 imply at least 1,001,000 parameters, "
                     "more than 10× the 100 in the tensors"]


# ---- vocabulary -----------------------------------------------------------------------------------

def test_a_tokenizer_larger_than_the_embedding_is_refused():
    with pytest.raises(ConvertError) as info:
        dm.check_vocabulary(19, {"vocab_size": 16}, source="tok", path="m/config.json", hint="use the right one")
    err = info.value
    assert (err.field, err.path, err.hint) == ("vocab_size", "m/config.json", "use the right one")
    assert err.message == ("the tokenizer from tok has 19 tokens but the embedding has 16 rows: token ids 16 … 18 "
                           "would index past it; nothing was written")


@pytest.mark.parametrize(("tokens", "meta"), [(16, {"vocab_size": 16}), (1, {"vocab_size": 16}), (99, {}),
                                              (99, {"vocab_size": "16"}), (99, {"vocab_size": 16.0})])
def test_a_tokenizer_that_fits_or_an_unknown_size_passes(tokens, meta):
    dm.check_vocabulary(tokens, meta, source="tok", path=None, hint="h")
