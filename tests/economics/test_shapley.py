"""Shapley value (eq. 3.3): the axioms, the sampled bound and the integer form."""
import math

import numpy as np
import pytest

from market.economics.coalition import CoalitionGame, form_coalitions
from market.economics.community import random_community
from consensus.rules.shapley import marginal_totals, shapley_exact_int, split_reward
from market.economics.shapley import shapley_exact, shapley_sampled


def glove_game(mask: int) -> int:
    """Players 0-1 hold left gloves, 2-4 right gloves, 5 holds nothing: a pair is worth 10."""
    left = bin(mask & 0b000011).count("1")
    right = bin(mask & 0b011100).count("1")
    return 10 * min(left, right)


def test_exact_shapley_is_efficient_symmetric_and_zero_for_null_players():
    phi = shapley_exact(6, glove_game)
    assert phi.sum() == pytest.approx(glove_game(0b111111))
    assert phi[0] == pytest.approx(phi[1]) and phi[2] == pytest.approx(phi[3]) == pytest.approx(phi[4])
    assert phi[5] == 0
    assert phi[0] > phi[2]  # left gloves are scarcer


def test_exact_shapley_of_a_graph_game_is_own_worth_plus_half_the_links():
    own = [3.0, 1.0, 0.0, 2.5]
    links = {(0, 1): 4.0, (1, 2): 2.0, (0, 3): 1.0}

    def worth(mask):
        inside = [i for i in range(4) if mask >> i & 1]
        return sum(own[i] for i in inside) + sum(w for (a, b), w in links.items() if a in inside and b in inside)

    expected = [own[i] + sum(w for pair, w in links.items() if i in pair) / 2 for i in range(4)]
    assert shapley_exact(4, worth) == pytest.approx(expected)


def test_integer_form_is_n_factorial_times_the_float_form():
    weights = shapley_exact_int(6, glove_game)
    assert all(type(w) is int for w in weights)
    assert np.asarray(weights) / math.factorial(6) == pytest.approx(shapley_exact(6, glove_game))


def test_sampled_shapley_is_efficient_and_within_its_hoeffding_bound():
    estimate = shapley_sampled(6, glove_game, value_range=10.0, samples=3000, rng=np.random.default_rng(0))
    exact = shapley_exact(6, glove_game)
    assert estimate.values.sum() == pytest.approx(glove_game(0b111111))
    assert estimate.values[5] == 0
    assert np.abs(estimate.values - exact).max() <= estimate.half_width
    assert estimate.half_width < 0.5


def test_shapley_shares_of_a_real_coalition_game_are_efficient():
    community = random_community(30, "normal", np.random.default_rng(3))
    formation = form_coalitions(community)
    game = CoalitionGame(community)
    members = max(formation.partition, key=len)
    worth = lambda mask: sum(game.solve([m for b, m in enumerate(members) if mask >> b & 1]).scores.values())
    phi = shapley_exact(len(members), worth)
    assert phi.sum() == pytest.approx(sum(game.solve(members).scores.values()))
    assert (phi >= -1e-9).all()  # the game is monotone: a member can always stay idle
    sampled = shapley_sampled(len(members), worth, value_range=20.0, samples=400, rng=np.random.default_rng(1))
    assert np.abs(sampled.values - phi).max() <= sampled.half_width


def test_integer_marginal_totals_over_given_orders():
    totals = marginal_totals(6, glove_game, [[0, 2, 1, 3, 4, 5], [5, 4, 3, 2, 1, 0]])
    assert totals == [10, 10, 10, 10, 0, 0]


def test_split_reward_is_exact_and_proportional():
    shares = split_reward(100, [1, 1, 1])
    assert shares == [34, 33, 33]
    assert split_reward(568, [52, 33, 15]) == [295, 188, 85]
    assert sum(split_reward(10**6 + 7, [3, 0, 11, 5])) == 10**6 + 7
    with pytest.raises(ValueError):
        split_reward(5, [0, 0])
