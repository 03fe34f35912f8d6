"""The household trading game of paper 001 (eqs. 1–3) and `gridnode sim households`."""
import json
import subprocess
import sys

import numpy as np
import pytest

from market.economics.household_data import House
from market.economics.households import (GameParams, Route, Slot, best_response_dynamics, comfort, equilibrium_day,
                                         habit_day, indoor_temperature, paper_community, payoff, payoffs, peak_cut,
                                         settle, slot_equilibrium, strategies, thermostat_cooling_kw)

PARAMS = GameParams()


@pytest.fixture(scope="module")
def community():
    return paper_community()


@pytest.fixture(scope="module")
def days(community):
    return habit_day(community), equilibrium_day(community)


def test_comfort_is_zero_outside_the_bounds_and_peaks_at_one_in_the_middle():
    assert comfort([10.0, 15.0, 27.0, 30.0]).tolist() == [0.0, 0.0, 0.0, 0.0]
    assert float(comfort(21.0)) == pytest.approx(1.0)
    temperatures = np.linspace(15.0, 27.0, 1201)
    assert comfort(temperatures).max() <= 1.0 + 1e-12  # the "s.t." of eq. 2
    assert float(comfort(18.0)) == pytest.approx(float(comfort(24.0)))


def test_payoff_rewards_community_sales_and_punishes_main_grid_trade():
    c = 0.8
    assert float(payoff(0.0, 0.0, c)) == pytest.approx(PARAMS.omega * c)  # E_main = 0 branch
    assert float(payoff(1.0, 2.0, c)) == pytest.approx(PARAMS.lam * c / 2.0)
    assert float(payoff(0.5, 1.0, c)) > float(payoff(-0.5, 1.0, c))  # selling beats buying
    assert float(payoff(0.0, 1.0, c)) > float(payoff(0.0, 2.0, c))  # less main-grid trade is better
    # Below the meter's resolution 1/ω an exchange is zero, so the branches meet.
    assert float(payoff(0.0, 1.0 / PARAMS.omega, c)) == pytest.approx(float(payoff(0.0, 0.0, c)))
    assert float(payoff(2.0, 0.0, 0.0)) == 0.0  # no comfort, no payoff


def test_settlement_balances_the_community_and_every_household():
    routes = [Route.SELL_COMMUNITY, Route.SELL_COMMUNITY, Route.BUY_COMMUNITY, Route.BUY_MAIN, Route.IDLE]
    net = np.array([1.0, 3.0, -2.0, -1.5, 0.4])
    settled = settle(routes, net)
    assert settled.community.sum() == pytest.approx(0.0)
    np.testing.assert_allclose(settled.community + settled.main + settled.curtailed, net)
    np.testing.assert_allclose(settled.community, [0.5, 1.5, -2.0, 0.0, 0.0])  # pro rata 2 of 4 offered
    np.testing.assert_allclose(settled.main, [0.0, 0.0, 0.0, -1.5, 0.0])
    short = settle([Route.SELL_COMMUNITY, Route.BUY_COMMUNITY, Route.BUY_COMMUNITY], np.array([1.0, -1.0, -3.0]))
    np.testing.assert_allclose(short.community, [1.0, -0.25, -0.75])
    np.testing.assert_allclose(short.main, [0.0, -0.75, -2.25])  # buyers' shortfall from the main grid


def test_the_thermostat_holds_the_setpoint_and_more_cooling_means_a_cooler_home():
    houses = (House(), House(resistance_c_per_kw=1.0, cooling_max_kw=4.5))
    cooling = thermostat_cooling_kw(33.0, houses)
    np.testing.assert_allclose(indoor_temperature(33.0, cooling, houses), [21.0, 21.0])
    warmer, cooler = indoor_temperature(33.0, np.array([1.0, 1.0]), houses), indoor_temperature(33.0, 2.0, houses)
    assert (cooler < warmer).all()


def test_best_response_dynamics_finds_a_pure_equilibrium_or_reports_none():
    # Prisoner's dilemma: (defect, defect) is the only pure equilibrium.
    dilemma = {(0, 0): (3, 3), (0, 1): (0, 5), (1, 0): (5, 0), (1, 1): (1, 1)}
    assert best_response_dynamics([2, 2], lambda p: np.array(dilemma[p], float), (0, 0)) == (1, 1)
    # Matching pennies has none, and play cycles.
    pennies = {(0, 0): (1, -1), (0, 1): (-1, 1), (1, 0): (-1, 1), (1, 1): (1, -1)}
    assert best_response_dynamics([2, 2], lambda p: np.array(pennies[p], float), (0, 0)) is None


def test_every_slot_is_a_nash_equilibrium_checked_by_brute_force(community, days):
    _, after = days
    for t, profile in enumerate(after.strategies):
        assert after.equilibrium[t]
        slot = community.slot(t)
        played = payoffs(slot, profile)
        for i in range(len(profile)):
            for deviation in strategies(slot, i):
                deviated = list(profile)
                deviated[i] = deviation
                assert payoffs(slot, deviated)[i] <= played[i] * (1 + 1e-9) + 1e-12, (t, i, deviation)


def test_equilibrium_play_keeps_every_home_comfortable(days):
    _, after = days
    assert ((after.indoor_c > PARAMS.t_min) & (after.indoor_c < PARAMS.t_max)).all()


def test_a_household_with_a_surplus_sells_it_to_a_neighbour_rather_than_the_main_grid():
    # One home short of 1 kWh, one with 1.5 kWh spare, both already cool enough to stop cooling.
    slot = Slot(pv_kwh=(0.5, 2.0), base_kwh=(1.5, 0.5), outdoor_c=22.0, houses=(House(), House()))
    found = slot_equilibrium(slot)
    assert [move.route for move in found] == [Route.BUY_COMMUNITY, Route.SELL_COMMUNITY]
    settled = settle([move.route for move in found], slot.net_kwh(np.array([m.cooling_kw for m in found])))
    np.testing.assert_allclose(settled.main, 0.0)


MIDDAY = slice(6, 16)
"""Slots 10:00-14:30: when the paper says the households traded heavily with the main grid before the game."""


def test_the_inputs_meet_what_paper_001_states_about_the_day(community, days):
    before, after = days
    pv = community.pv_kw.sum()
    # "the total PV generation is slightly less than the total consumption", even after the game.
    assert pv < after.consumption_kw.sum() < before.consumption_kw.sum() < 1.15 * pv
    # "Before the game from 10:00 to 15:00 the households traded a lot of electricity with the main grid":
    # the peak of that trade falls there, and those 10 of the 24 slots carry more than their share of it.
    assert MIDDAY.start <= int(np.argmax(before.main_traffic_kw)) < MIDDAY.stop
    assert before.main_traffic_kw[MIDDAY].sum() > 10 / 24 * before.main_traffic_kw.sum()
    # Household 1 peaks at 7 kW (Fig. 6) in the late morning (Table 2).
    assert before.consumption_kw[0].max() == pytest.approx(7.0, abs=0.25)
    assert 10.0 <= 7.0 + 0.5 * int(np.argmax(before.consumption_kw[0])) < 12.5
    # No home's thermal model is tuned for the result: they are all the same ordinary dwelling.
    assert len(set(community.houses)) == 1


def test_the_game_cuts_household_1s_peak_and_the_main_grid_peak(days):
    before, after = days
    assert peak_cut(before.consumption_kw[0], after.consumption_kw[0]) > 0.0
    assert peak_cut(before.main_traffic_kw, after.main_traffic_kw) > 0.0
    assert peak_cut(before.grid_import_kw, after.grid_import_kw) > 0.0
    # "the trading between households and the main grid is greatly reduced"
    assert after.main_traffic_kw[MIDDAY].sum() < 0.2 * before.main_traffic_kw[MIDDAY].sum()


def test_gridnode_sim_households_reports_both_peak_cuts():
    out = subprocess.run([sys.executable, "-m", "cli.main", "sim", "households", "--json"],
                         capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(out.stdout)
    assert 0.0 < result["household1_peak_cut"] < 1.0
    assert 0.0 < result["grid_peak_cut"] < 1.0
    assert 0.0 < result["import_peak_cut"] < 1.0
    assert 10.0 <= result["grid_peak_at"]["before"] < 15.0
    assert result["pv_kwh"] < result["consumption_kwh"]["after"] < result["consumption_kwh"]["before"]
    assert result["household1_peak_kw"]["after"] < result["household1_peak_kw"]["before"]
    assert result["equilibrium_slots"] == result["slots"] == 24


def test_the_live_plan_puts_each_route_in_its_own_auction_book(community, days):
    from market.economics.households import habits
    from market.experiments.households_live import FEED_IN_PRICE, GRID_PRICE, OPERATOR, plan_slot

    _, after = days
    # 8:30 at equilibrium: community sellers and buyers, and a household buying from the main grid.
    plan = plan_slot(community, 3, after.strategies[3])
    books = dict(plan.books)
    assert set(books) == {"community", "grid-buy"}
    community_bids = [o for o in books["community"] if o.is_bid]
    (grid_ask,) = [o for o in books["community"] if o.owner == OPERATOR]
    assert grid_ask.wh == sum(o.wh for o in community_bids) and grid_ask.price == GRID_PRICE
    assert all(o.price < GRID_PRICE for o in books["community"] if not o.is_bid and o.owner != OPERATOR)
    for i, route in enumerate(plan.routes):  # every order carries the household's whole net, in Wh
        placed = [o for _, orders in plan.books for o in orders if o.owner == i]
        if route == Route.IDLE:
            assert placed == []
        else:
            (order,) = placed
            assert order.wh == abs(plan.net_wh[i]) and order.is_bid == (plan.net_wh[i] < 0)
    # Habits at 12:30: households both sell to and buy from the main grid, in two books that
    # cannot cross (one call market would match a grid buyer with a grid seller).
    habit = plan_slot(community, 11, habits(community.slot(11)))
    books = dict(habit.books)
    assert set(books) == {"grid-buy", "grid-sell"}
    (operator_bid,) = [o for o in books["grid-sell"] if o.owner == OPERATOR]
    assert operator_bid.is_bid and operator_bid.price == FEED_IN_PRICE
    assert operator_bid.wh == sum(o.wh for o in books["grid-sell"] if not o.is_bid)
    expected = habit.expected()
    assert expected["community_wh"] == 0 and sum(expected["main_wh"]) == sum(habit.net_wh)


def test_gridnode_sim_households_rejects_slots_outside_the_day():
    out = subprocess.run([sys.executable, "-m", "cli.main", "sim", "households", "--live", "--slots", "20:30"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "slots must lie in 0:24" in out.stderr
