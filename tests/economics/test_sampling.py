"""Weighted random sampling for miner and aggregator selection (eqs. 3.16, 4.18)."""
import pytest
from scipy.stats import chisquare

from consensus.sampling import derive_seed, shuffled, uniform_below, weighted_choice


def test_same_seed_same_draw_and_seeds_spread_draws():
    weights = [5, 1, 7, 3]
    seeds = [derive_seed(b"parent-hash", k) for k in range(50)]
    assert [weighted_choice(weights, s) for s in seeds] == [weighted_choice(weights, s) for s in seeds]
    assert len({weighted_choice(weights, s) for s in seeds}) == len(weights)


def test_empirical_frequencies_match_the_weights():
    weights = [10, 20, 30, 40, 0]
    draws = [weighted_choice(weights, derive_seed(b"chi-square", k)) for k in range(4000)]
    counts = [draws.count(i) for i in range(len(weights))]
    assert counts[4] == 0
    expected = [4000 * w / 100 for w in weights[:4]]
    assert chisquare(counts[:4], expected).pvalue > 0.001


def test_uniform_below_covers_its_range_without_bias():
    draws = [uniform_below(6, derive_seed(b"die", k)) for k in range(3000)]
    assert set(draws) == set(range(6))
    assert chisquare([draws.count(v) for v in range(6)]).pvalue > 0.001


def test_weights_must_be_non_negative_integers_with_a_positive_total():
    with pytest.raises(TypeError):
        weighted_choice([1.5, 2], b"s")
    with pytest.raises(ValueError):
        weighted_choice([3, -1], b"s")
    with pytest.raises(ValueError):
        weighted_choice([0, 0], b"s")


def test_shuffled_is_a_deterministic_permutation():
    order = shuffled(12, b"seed")
    assert sorted(order) == list(range(12))
    assert order == shuffled(12, b"seed")
    assert order != shuffled(12, b"other seed")
