"""WoLF-PHC (paper 000, Algorithm 1), DMA-UBRL on the paper's setting, and the Fig. 4 baselines."""
import numpy as np
import pytest

from market.economics.baselines import genetic_outcome, random_utilities, utilities
from market.economics.stackelberg import (ActionGrid, outcome, paper_market, prosumer_utility, server_utility,
                                          uniform_equilibrium)
from market.economics.wolf_phc import WolfParams, act, dma_ubrl, learn, new_tables, rows

PAPER = paper_market()


def _learner(agents: int, actions: int):
    return rows(new_tables(agents, 1, actions), np.zeros(agents, dtype=np.int64))


@pytest.fixture(scope="module")
def paper_play():
    """DMA-UBRL with the paper's §IV-A parameters: N = 8, 2,000 episodes."""
    return dma_ubrl(PAPER, np.random.default_rng(2024))


def test_policies_stay_distributions_under_any_rewards():
    rng = np.random.default_rng(1)
    learner = _learner(5, 7)
    for _ in range(2000):
        chosen = act(learner, rng, exploration=0.1)
        learn(learner, chosen, rng.normal(0, 10, 5), rng.normal(0, 10, 5), WolfParams())
    assert (learner.policy >= 0).all()
    np.testing.assert_allclose(learner.policy.sum(axis=1), 1.0)
    np.testing.assert_allclose(learner.average.sum(axis=1), 1.0)


def test_a_losing_agent_moves_eps_lose_to_its_greedy_action_and_a_winning_one_eps_win():
    params = WolfParams()
    learner = _learner(2, 4)
    learner.q[:] = [[0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 5.0, 0.0]]
    # Agent 0's policy already favours the greedy action more than its average does: winning.
    learner.policy[0] = [0.2, 0.2, 0.4, 0.2]
    learner.average[0] = [0.25, 0.25, 0.25, 0.25]
    # Agent 1's policy favours it less than its average does: losing.
    learner.policy[1] = [0.3, 0.3, 0.1, 0.3]
    learner.average[1] = [0.1, 0.1, 0.7, 0.1]
    learner.visits[:] = 10**9  # freeze the average
    before = learner.policy.copy()
    learn(learner, np.array([0, 0]), np.zeros(2), learner.q.max(axis=1), params)
    assert learner.policy[0, 2] - before[0, 2] == pytest.approx(params.win_rate)
    assert learner.policy[1, 2] - before[1, 2] == pytest.approx(params.lose_rate)


def test_a_single_agent_learns_the_best_arm_of_a_bandit():
    rng = np.random.default_rng(7)
    payouts = np.array([1.0, 3.0, 2.0, 2.9])
    learner = _learner(1, 4)
    for _ in range(1500):
        chosen = act(learner, rng, exploration=0.05)
        learn(learner, chosen, payouts[chosen] + rng.normal(0, 0.1, 1), learner.q.max(axis=1), WolfParams())
    assert learner.policy[0, 1] > 0.95


def test_self_play_on_matching_pennies_settles_at_the_mixed_equilibrium():
    # WoLF's point: with ε_win < ε_lose the current policies stop cycling and
    # settle near (½, ½); with equal rates (plain PHC) they swing from 0 to 1.
    rng = np.random.default_rng(3)
    params = WolfParams(learning_rate=0.1, discount=0.0, win_rate=0.001, lose_rate=0.004)
    learner = _learner(2, 2)
    swing = 0.0
    for step in range(20_000):
        a = act(learner, rng, exploration=0.05)
        matcher_wins = 1.0 if a[0] == a[1] else -1.0
        learn(learner, a, np.array([matcher_wins, -matcher_wins]), learner.q.max(axis=1), params)
        if step >= 10_000:
            swing = max(swing, float(np.abs(learner.policy - 0.5).max()))
    assert swing < 0.25
    np.testing.assert_allclose(learner.average, 0.5, atol=0.05)


def test_dma_ubrl_ends_within_two_percent_of_the_analytic_equilibrium(paper_play):
    analytic = uniform_equilibrium(PAPER)
    assert paper_play.prices == pytest.approx(analytic.prices, rel=0.02)
    assert paper_play.demands == pytest.approx(analytic.demands, rel=0.02)


def test_dma_ubrl_is_reproducible_from_its_seed():
    first = dma_ubrl(PAPER, np.random.default_rng(5), episodes=200, follower_steps=3)
    second = dma_ubrl(PAPER, np.random.default_rng(5), episodes=200, follower_steps=3)
    assert first.prices == second.prices and first.demands == second.demands
    np.testing.assert_array_equal(first.demand_trace, second.demand_trace)


def _brute_force(market, objective):
    """The grid profile maximising one side's utility: the price by enumeration,
    each demand separately (both utilities are sums of one term per prosumer)."""
    grid = ActionGrid()
    demands = np.asarray(grid.demands)
    best = None
    for price in grid.prices:
        if objective == "server":
            chosen = np.full(len(market.intentions), demands.max() if price > market.unit_cost else demands.min())
        else:
            chosen = demands[np.argmax(prosumer_utility(demands[:, None], price, market), axis=0)]
        value = (server_utility(price, chosen, market) if objective == "server"
                 else prosumer_utility(chosen, price, market).sum())
        if best is None or value > best[0]:
            best = (value, price, chosen)
    return best


@pytest.mark.parametrize("objective", ["server", "prosumers"])
def test_one_sided_genetic_algorithm_finds_that_sides_optimum(objective):
    found = genetic_outcome(PAPER, objective, np.random.default_rng(11))
    value, price, demands = _brute_force(PAPER, objective)
    assert found.prices[0] == price
    np.testing.assert_array_equal(found.demands, demands)


def test_random_play_utilities_are_the_average_over_random_draws():
    grid, rng = ActionGrid(), np.random.default_rng(9)
    prices = rng.choice(grid.prices, 100_000)
    demands = rng.choice(grid.demands, (100_000, 8))
    exact = random_utilities(PAPER)
    assert exact.server == pytest.approx(server_utility(prices[:, None], demands, PAPER).mean(), rel=0.01)
    assert exact.prosumers == pytest.approx(prosumer_utility(demands, prices[:, None], PAPER).mean(), rel=0.02)


def test_dma_ubrl_balances_what_each_one_sided_optimum_sacrifices(paper_play):
    # Fig. 4: optimising one side only is poor for the other side; DMA-UBRL is not.
    learned = utilities(outcome(np.asarray(paper_play.prices), np.asarray(paper_play.demands), PAPER))
    for_server = utilities(genetic_outcome(PAPER, "server", np.random.default_rng(1)))
    for_prosumers = utilities(genetic_outcome(PAPER, "prosumers", np.random.default_rng(1)))
    assert learned.prosumers > for_server.prosumers
    assert learned.server > for_prosumers.server
    assert learned.server > random_utilities(PAPER).server
