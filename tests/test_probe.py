import numpy as np
import pytest

from interpret.analysis.probe import auroc, sparse_probe


def test_auroc_by_hand():
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    assert auroc([1, 1, 1], [0, 1, 0]) == 0.5


def test_a_single_planted_unit_is_found_and_needs_one_unit():
    rng = np.random.RandomState(0)
    acts = rng.randn(4000, 20)
    y = (acts[:, 3] + 0.3 * rng.randn(4000)) > 0
    r = sparse_probe(acts, y, True)
    assert r["best_unit"] == 3 and r["best_unit_score"] > 0.9
    assert r["units_for_95"] is not None and r["units_for_95"] <= 2
    assert abs(r["gap"]) < 0.03


def test_a_distributed_feature_shows_a_gap_and_needs_many_units():
    rng = np.random.RandomState(1)
    acts = rng.randn(4000, 30)
    y = acts[:, :10].sum(axis=1) > 0
    r = sparse_probe(acts, y, True)
    assert r["full_score"] > 0.97 and r["best_unit_score"] < 0.75 and r["gap"] > 0.2
    assert r["units_for_95"] >= 6


def test_ordinal_feature_uses_pearson_r():
    rng = np.random.RandomState(2)
    acts = rng.randn(3000, 15)
    y = np.round(4 * acts[:, 5] + rng.randn(3000))
    r = sparse_probe(acts, y, False)
    assert r["metric"] == "abs_pearson_r" and r["best_unit"] == 5 and r["full_score"] > 0.95
    assert r["units_for_95"] == 1


def test_too_short_or_constant_is_refused():
    with pytest.raises(ValueError, match="too few"):
        sparse_probe(np.zeros((20, 3)), np.zeros(20), True)
    with pytest.raises(ValueError, match="constant"):
        sparse_probe(np.random.randn(500, 3), np.zeros(500), True)


def test_no_units_count_when_the_full_probe_is_below_chance():
    rng = np.random.RandomState(4)
    acts = rng.randn(3000, 10)
    y = rng.rand(3000) > 0.5  # unrelated to every unit; this seed lands just below 0.5 held out
    r = sparse_probe(acts, y, True)
    assert r["full_score"] < 0.5 and r["units_for_95"] is None
