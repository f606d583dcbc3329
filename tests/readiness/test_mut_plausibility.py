"""`apr.qa.plausibility`: the rope_theta / max_position_embeddings / rms_norm_eps rules (§4.2 of
docs/aprender-format.md), each range tested just below, at and just above its ends, each family rule
with its near misses, and each sentence exactly (issue 23: mutation score of apr/qa/plausibility.py).

The ranges are written here from the reference: qwen family rope_theta 10000 is Bug 210 (missing
config.json), below 100000 too low; llama family [1e3, 1e7]; any other family [1e2, 1e8];
max_position_embeddings [128, 1048576]; rms_norm_eps (0, 0.01].
"""

from __future__ import annotations

import math

import pytest

from apr.qa.plausibility import plausibility_violations

QWEN = ["qwen2", "qwen2.5", "qwen", "qwen3", "qwen3_5", "qwen3.5"]
LLAMA = ["llama", "llama2", "llama3"]
GOOD = {"max_position_embeddings": 2048, "rms_norm_eps": 1e-6}


def _v(**metadata) -> list[str]:
    return plausibility_violations({**GOOD, **metadata})


def test_a_plausible_file_has_no_violation() -> None:
    assert _v(architecture="qwen2", rope_theta=1_000_000.0) == []
    assert _v(architecture="llama", rope_theta=500_000.0) == []
    assert _v(architecture="gpt2", rope_theta=10_000.0) == []


def test_missing_rope_theta_is_the_only_violation_then() -> None:
    assert _v(architecture="qwen2") == ["rope_theta missing from APR metadata"]
    assert plausibility_violations({"architecture": "llama", "rope_theta": None}) == [
        "rope_theta missing from APR metadata"]


@pytest.mark.parametrize("arch", QWEN)
def test_qwen_with_llama_theta_is_bug_210(arch) -> None:
    assert _v(architecture=arch, rope_theta=10000) == [
        f"CRITICAL: {arch} with rope_theta=10000.0 — likely missing config.json (Bug 210); expected ~1000000.0"]


@pytest.mark.parametrize("theta", [10000.0 + 5e-7, 10000.0 - 5e-7])
def test_bug_210_matches_within_a_millionth(theta) -> None:
    assert _v(architecture="qwen2", rope_theta=theta)[0].startswith("CRITICAL: qwen2 with rope_theta=")


@pytest.mark.parametrize("theta", [10000.0 + 2e-6, 10000.0 - 2e-6, 9999.0, 10001.0])
def test_near_10000_but_not_it_is_only_too_low(theta) -> None:
    assert _v(architecture="qwen2", rope_theta=theta) == [
        f"rope_theta={theta} for qwen2 — expected ~1000000.0 (too low, will produce garbage)"]


@pytest.mark.parametrize(("theta", "low"), [(99_999.0, True), (100_000.0, False), (100_001.0, False),
                                            (1e12, False)])
def test_qwen_floor_is_100000(theta, low) -> None:
    problems = _v(architecture="qwen2.5", rope_theta=theta)
    assert problems == ([f"rope_theta={theta} for qwen2.5 — expected ~1000000.0 (too low, will produce garbage)"]
                        if low else [])


@pytest.mark.parametrize("arch", LLAMA)
@pytest.mark.parametrize(("theta", "inside"), [
    (999.0, False), (1000.0, True), (1001.0, True), (1e7 - 1, True), (1e7, True), (1e7 + 1, False),
])
def test_llama_range_is_1e3_to_1e7_inclusive(arch, theta, inside) -> None:
    problems = _v(architecture=arch, rope_theta=theta)
    assert problems == ([] if inside else [f"rope_theta={theta} for {arch} — expected within [1000, 1e7]"])


@pytest.mark.parametrize(("theta", "inside"), [
    (99.0, False), (100.0, True), (101.0, True), (1e8 - 1, True), (1e8, True), (1e8 + 1, False),
    (10000.0, True),  # 10000 is fine outside the qwen family
])
def test_other_families_range_is_1e2_to_1e8_inclusive(theta, inside) -> None:
    problems = _v(architecture="mistral", rope_theta=theta)
    assert problems == ([] if inside else [f"rope_theta={theta} for mistral — expected within [100, 1e8]"])


def test_a_llama_value_outside_llamas_range_but_inside_the_general_one_is_judged_by_llamas() -> None:
    assert _v(architecture="llama", rope_theta=5e7) == ["rope_theta=50000000.0 for llama — expected within [1000, 1e7]"]
    assert _v(architecture="mistral", rope_theta=5e7) == []
    # a qwen value in the llama range still fails qwen's floor (the qwen rule comes first)
    assert _v(architecture="qwen3", rope_theta=5000.0)[0].startswith("rope_theta=5000.0 for qwen3 — expected ~1000000.0")


def test_an_unknown_family_is_named_so() -> None:
    assert plausibility_violations({"rope_theta": 50.0}) == [
        "rope_theta=50.0 for unknown family — expected within [100, 1e8]"]


@pytest.mark.parametrize(("metadata", "arch"), [
    ({"architecture": "QWEN2"}, "qwen2"),  # compared in lower case
    ({"architecture": None, "hf_model_type": "Qwen2"}, "qwen2"),  # model_type when architecture is empty
    ({"architecture": "", "hf_model_type": "qwen3"}, "qwen3"),
    ({"hf_model_type": "qwen2"}, "qwen2"),
    ({"architecture": "qwen2", "hf_model_type": "llama"}, "qwen2"),  # architecture first
    ({"architecture": "llama", "hf_model_type": "qwen2"}, "llama"),
])
def test_the_family_comes_from_architecture_then_model_type(metadata, arch) -> None:
    problems = plausibility_violations({**metadata, "rope_theta": 10000.0})
    if arch.startswith("qwen"):
        assert problems == [f"CRITICAL: {arch} with rope_theta=10000.0 — likely missing config.json (Bug 210); "
                            "expected ~1000000.0"]
    else:
        assert problems == []


def test_theta_given_as_text_is_read_as_a_number() -> None:
    assert _v(architecture="llama", rope_theta="500000") == []
    assert _v(architecture="llama", rope_theta="50") == ["rope_theta=50.0 for llama — expected within [1000, 1e7]"]


@pytest.mark.parametrize(("max_pos", "inside"), [
    (127, False), (128, True), (129, True), (1048575, True), (1048576, True), (1048577, False), (0, False),
])
def test_max_position_embeddings_range(max_pos, inside) -> None:
    problems = plausibility_violations({"architecture": "llama", "rope_theta": 1e4, "max_position_embeddings": max_pos})
    assert problems == ([] if inside else [f"max_position_embeddings={max_pos} — expected within [128, 1048576]"])


def test_max_position_embeddings_as_text_and_absent() -> None:
    assert plausibility_violations({"rope_theta": 1e4, "max_position_embeddings": "64"}) == [
        "max_position_embeddings=64 — expected within [128, 1048576]"]
    assert plausibility_violations({"rope_theta": 1e4, "max_position_embeddings": None}) == []


@pytest.mark.parametrize(("eps", "inside"), [
    (0.0, False), (-1e-6, False), (5e-324, True), (1e-6, True), (0.01, True), (math.nextafter(0.01, 1.0), False),
    (0.011, False),
])
def test_rms_norm_eps_range(eps, inside) -> None:
    problems = plausibility_violations({"rope_theta": 1e4, "rms_norm_eps": eps})
    assert problems == ([] if inside else [f"rms_norm_eps={eps} — expected within (0, 0.01]"])


def test_rms_norm_eps_as_text_and_absent() -> None:
    assert plausibility_violations({"rope_theta": 1e4, "rms_norm_eps": "0.5"}) == [
        "rms_norm_eps=0.5 — expected within (0, 0.01]"]
    assert plausibility_violations({"rope_theta": 1e4, "rms_norm_eps": None}) == []


def test_every_violation_is_listed_in_order() -> None:
    assert plausibility_violations({"architecture": "qwen2", "max_position_embeddings": 64, "rms_norm_eps": 1.0}) == [
        "rope_theta missing from APR metadata",
        "max_position_embeddings=64 — expected within [128, 1048576]",
        "rms_norm_eps=1.0 — expected within (0, 0.01]",
    ]
