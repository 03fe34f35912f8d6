"""The PoW Poisson mining model of paper 000 (eq. 1)."""
import math
from dataclasses import replace

import numpy as np
import pytest

from consensus.pow_model import (MiningParams, block_reward, hash_shares, mining_utility, optimal_block_size,
                                 win_probability)


def test_hash_shares_are_proportional_to_hash_rate_and_sum_to_one():
    shares = hash_shares([30.0, 10.0, 60.0])
    assert shares == pytest.approx((0.3, 0.1, 0.6))
    assert math.fsum(shares) == pytest.approx(1.0)


@pytest.mark.parametrize("rates", [[], [0.0, 0.0], [5.0, -1.0]])
def test_hash_shares_reject_rates_that_define_no_shares(rates):
    with pytest.raises(ValueError):
        hash_shares(rates)


def test_paper_defaults_give_a_block_worth_800_that_survives_with_probability_e_to_minus_2():
    params = MiningParams()  # R_f = 200, r = 3, s = 200, λ = 0.01, l = 1
    assert block_reward(params) == 800.0
    assert win_probability(1.0, params) == pytest.approx(math.exp(-2.0))
    assert mining_utility(0.25, params) == pytest.approx(800.0 * 0.25 * math.exp(-2.0))


def test_servers_together_win_less_than_every_block_because_big_blocks_get_orphaned():
    params = MiningParams()
    shares = hash_shares([1.0, 2.0, 3.0, 4.0])
    total = sum(win_probability(share, params) for share in shares)
    assert total == pytest.approx(math.exp(-params.propagation * params.puzzle * params.block_size))
    assert total < 1.0


def test_win_probability_falls_with_block_size():
    sizes = [0.0, 50.0, 100.0, 200.0, 400.0]
    chances = [win_probability(0.5, MiningParams(block_size=s)) for s in sizes]
    assert chances[0] == 0.5
    assert all(a > b for a, b in zip(chances, chances[1:]))


@pytest.mark.parametrize("params", [MiningParams(), MiningParams(fixed_reward=50.0, reward_per_tx=5.0,
                                                                 propagation=0.02)])
def test_optimal_block_size_is_the_numerical_argmax_of_eq_1(params):
    sizes = np.arange(0.0, 500.0, 0.05)
    utilities = [mining_utility(1.0, replace(params, block_size=s)) for s in sizes]
    assert optimal_block_size(params) == pytest.approx(sizes[int(np.argmax(utilities))], abs=0.05)


def test_optimal_block_size_is_empty_when_the_fixed_reward_dominates():
    # R_f/r ≥ 1/(λl): every transaction costs more in orphan risk than it pays.
    params = MiningParams(fixed_reward=1000.0, reward_per_tx=1.0, propagation=0.01)
    assert optimal_block_size(params) == 0.0
    assert mining_utility(1.0, replace(params, block_size=0.0)) > mining_utility(1.0, params)
