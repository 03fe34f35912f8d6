"""The elecoin Stackelberg game of paper 000 (eqs. 2–7) and `gridnode sim stackelberg`."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from market.economics.stackelberg import (ActionGrid, best_response, discriminated_equilibrium, grid_equilibrium,
                                          interior_uniform_price, leader_utility, paper_market, prosumer_utility,
                                          server_utility, uniform_equilibrium)

PAPER = paper_market()
# Markets where demand bounds bind, so the closed form of eq. 6 alone would be wrong.
CLAMPED = [paper_market(4, spread=0.3), paper_market(8, unit_price=0.5), paper_market(8, unit_price=0.7),
           paper_market(8, spread=0.15)]


def _numerical_demand(price: float, i: int, market) -> float:
    """argmax over [x_min, x_max] of prosumer i's utility (eq. 3), by scipy."""
    def loss(x: float) -> float:
        demands = np.asarray(best_response(price, market), dtype=float)
        demands[i] = x
        return -float(prosumer_utility(demands, price, market)[i])
    return minimize_scalar(loss, bounds=market.demand_bounds, method="bounded", options={"xatol": 1e-9}).x


@pytest.mark.parametrize("price", [10.0, 12.5, 16.0, 17.0, 18.3, 19.0])
@pytest.mark.parametrize("market", [PAPER, paper_market(4, spread=0.3)])
def test_closed_form_best_response_matches_a_numerical_argmax(price, market):
    closed = best_response(price, market)
    numerical = [_numerical_demand(price, i, market) for i in range(len(market.intentions))]
    np.testing.assert_allclose(closed, numerical, atol=1e-5)


def test_unclamped_best_response_is_eq_4():
    market = PAPER
    w = np.asarray(market.intentions)
    np.testing.assert_allclose(best_response(17.0, market, clamp=False),
                               market.theta / (market.eta * 17.0) - market.unit_price / w)


def test_leader_utility_without_bounds_is_concave_with_the_curvature_of_eq_7():
    market = PAPER
    n, h = len(market.intentions), 1e-3
    for p in np.linspace(10.0, 19.0, 10):
        second = (leader_utility(p + h, market, clamp=False) - 2 * leader_utility(p, market, clamp=False)
                  + leader_utility(p - h, market, clamp=False)) / h**2
        eq7 = -2 * market.k / p**3 * n * market.theta / (market.eta * market.unit_price)
        assert second < 0
        assert second == pytest.approx(eq7, rel=1e-4)


def test_paper_setting_has_an_interior_equilibrium_at_the_closed_form_price():
    analytic = uniform_equilibrium(PAPER)
    assert analytic.prices[0] == pytest.approx(interior_uniform_price(PAPER))
    assert 10.0 < analytic.prices[0] < 19.0
    assert all(20.0 < x < 50.0 for x in analytic.demands)


@pytest.mark.parametrize("market", [PAPER, *CLAMPED])
def test_uniform_price_maximises_the_leaders_utility(market):
    solved = uniform_equilibrium(market)
    prices = np.linspace(*market.price_bounds, 20_001)
    dense = max(leader_utility(p, market) for p in prices)
    bounded = minimize_scalar(lambda p: -leader_utility(p, market), bounds=market.price_bounds, method="bounded")
    assert solved.server_utility >= dense - 1e-9
    assert solved.server_utility >= -bounded.fun - 1e-9
    assert solved.server_utility == pytest.approx(leader_utility(solved.prices[0], market))


@pytest.mark.parametrize("market", [PAPER, *CLAMPED])
def test_discriminated_prices_each_maximise_that_prosumers_profit(market):
    solved = discriminated_equilibrium(market)
    prices = np.linspace(*market.price_bounds, 9_001)
    for i, price in enumerate(solved.prices):
        single = replace(market, intentions=(market.intentions[i],))
        assert leader_utility(price, single) >= max(leader_utility(p, single) for p in prices) - 1e-9


@pytest.mark.parametrize("market", [PAPER, *CLAMPED])
def test_price_discrimination_never_pays_the_server_less_than_one_price(market):
    assert discriminated_equilibrium(market).server_utility >= uniform_equilibrium(market).server_utility - 1e-9


def test_discriminated_prices_rise_with_intention_where_no_bound_binds():
    # p_i* = √(kθw_i/(ηQ²)): the keener prosumer pays more.
    market = PAPER
    solved = discriminated_equilibrium(market)
    w = np.asarray(market.intentions)
    closed_form = np.sqrt(market.k * market.theta * w / (market.eta * market.unit_price**2))
    np.testing.assert_allclose(solved.prices, closed_form)


def test_grid_equilibrium_is_the_best_grid_price_given_the_best_grid_answers():
    market, grid = PAPER, ActionGrid()
    best = grid_equilibrium(market, grid)
    demands = np.asarray(grid.demands)
    for price in grid.prices:
        answers = [demands[np.argmax(prosumer_utility(demands[:, None], price, market)[:, i])]
                   for i in range(len(market.intentions))]
        assert server_utility(price, np.asarray(answers), market) <= best.server_utility + 1e-9
    assert abs(best.prices[0] - uniform_equilibrium(market).prices[0]) <= 0.5


def test_gridnode_sim_stackelberg_reports_the_equilibrium_and_the_learned_play(tmp_path):
    plot = tmp_path / "stackelberg.png"
    out = subprocess.run([sys.executable, "-m", "cli.main", "sim", "stackelberg", "--json", "--seed", "3",
                          "--episodes", "150", "--follower-steps", "4", "--counts", "2,4", "--unit-prices", "0.5,0.6",
                          "--plot", str(plot)], capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout)
    assert result["analytic"]["price"] == pytest.approx(uniform_equilibrium(PAPER).prices[0], rel=1e-3)
    assert len(result["analytic"]["demands"]) == len(result["learned"]["demands"]) == 8
    assert result["learned"]["price"] in ActionGrid().prices
    assert all(20 <= x <= 50 for x in result["learned"]["demands"])
    assert set(result["figure3"]) == {"unified", "discriminated"}
    assert [row["prosumers"] for row in result["figure4_prosumers"]] == [2, 4]
    assert [row["unit_price"] for row in result["figure4_unit_price"]] == [0.5, 0.6]
    for row in result["figure4_prosumers"] + result["figure4_unit_price"]:
        # A GA serving one side beats the other GA on that side's utility.
        assert row["ga_server"]["server"] > row["ga_prosumers"]["server"]
        assert row["ga_prosumers"]["prosumers"] > row["ga_server"]["prosumers"]
    assert plot.stat().st_size > 10_000
