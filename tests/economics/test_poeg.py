"""PoEG proof scores, savings and payments (eqs. 3.4–3.8, 3.16–3.24), float and integer forms."""
import math

import numpy as np
import pytest

from consensus.sampling import derive_seed
from market.economics.coalition import CoalitionGame, form_coalitions
from market.economics.community import random_community
from market.economics.line_loss import FloatLosses, fraction
from consensus.rules.community import Community
from consensus.rules.line_loss import FLOOR_PPM, PPM, IntLosses, LossModel
from consensus.rules.poeg import (InvalidPlan, Plan, check_plan, coalition_score, member_savings, member_scores,
                                         mining_reward, select_miner, singleton_score, slash, to_wh)
from market.economics.settlement import propose, recompute


def _pair_community():
    """P0 sells 4 kWh 3 km east of the EDC; P1 needs 6 kWh 1 km north of P0; P2 idles."""
    return Community(production_wh=(9_000, 1_000, 2_000), consumption_wh=(5_000, 7_000, 2_000),
                     x_m=(3_000, 3_000, -500), y_m=(0, 1_000, 0))


def test_default_loss_is_eq_3_11_per_km_only_and_the_floor_is_an_option():
    """Eq. 3.11 prices a transfer at C·dist_ij: no loss next door, proportional to the line, capped at
    the top of the thesis's 1.8–5.6 % range. The floored reading spans that whole range."""
    faithful = LossModel()
    assert not faithful.floored and faithful.ppm(0) == 0
    assert faithful.ppm(2_000) == 2 * faithful.ppm(1_000) == 2 * faithful.per_km_ppm
    assert faithful.ppm(14_142) < faithful.cap_ppm == faithful.ppm(28_000) == 56_000  # every EDC leg below the cap
    assert fraction(faithful, 1.0) == pytest.approx(faithful.per_km_ppm / PPM)
    floored = LossModel(base_ppm=FLOOR_PPM)
    assert floored.floored
    assert floored.ppm(0) == 18_000 and floored.ppm(14_142) == 56_000 and floored.ppm(28_000) == 56_000
    assert fraction(floored, 1.0) == pytest.approx(0.0207)


@pytest.mark.parametrize("fields", [{"base_ppm": -1}, {"per_km_ppm": 2.7}, {"cap_ppm": PPM + 1},
                                    {"base_ppm": 60_000}])
def test_loss_model_rejects_what_is_not_an_integer_rate(fields):
    with pytest.raises(ValueError, match="LossModel"):
        LossModel(**fields)


def test_scores_of_a_two_member_coalition_by_hand():
    """Eq. 3.11's reading (the default): every rate is 0.27 %/km times the metres."""
    community = _pair_community()
    ints, floats = IntLosses(community), FloatLosses(community)
    # loss rates: P0–EDC 3000 m → 0.81 %, P1–EDC 3162 m → 0.8537 %, P0–P1 1000 m → 0.27 %
    assert singleton_score(ints, 0) == 4_000 - 4_000 * 8_100 // 10**6 == 3_968
    assert singleton_score(ints, 1) == 0 and singleton_score(ints, 2) == 0
    plan = Plan((0, 1), ((0, 1, 4_000),))
    # seller: alone 32 Wh, in coalition half of 10 Wh; buyer: alone 51 Wh, in coalition 2 kWh from the EDC (17 Wh) + 5
    assert member_savings(plan, ints) == {0: 32 - 5, 1: 51 - (17 + 5)}
    assert member_scores(plan, ints) == {0: 3_968 + 27, 1: 29}
    assert coalition_score(plan, ints) == 3_968 + 27 + 29
    float_plan = Plan((0, 1), ((0, 1, 4.0),))
    assert member_savings(float_plan, floats)[0] == pytest.approx(4 * 0.0081 - 2 * 0.0027)
    buyer_rate = 0.0027 * math.sqrt(10.0)  # the float form keeps the fractional metre
    assert member_savings(float_plan, floats)[1] == pytest.approx(4 * buyer_rate - 2 * 0.0027)


def test_scores_of_a_two_member_coalition_by_hand_with_the_floor():
    community = _pair_community()
    floored = LossModel(base_ppm=FLOOR_PPM)
    ints, floats = IntLosses(community, floored), FloatLosses(community, floored)
    # loss rates: P0–EDC 3000 m → 2.61 %, P1–EDC 3162 m → 2.6537 %, P0–P1 1000 m → 2.07 %
    assert singleton_score(ints, 0) == 4_000 - 4_000 * 26_100 // 10**6 == 3_896
    plan = Plan((0, 1), ((0, 1, 4_000),))
    # seller: alone 104 Wh, in coalition half of 82 Wh; buyer: alone 159 Wh, in coalition 2 kWh from the EDC (53 Wh) + 41
    assert member_savings(plan, ints) == {0: 104 - 41, 1: 159 - (53 + 41)}
    assert coalition_score(plan, ints) == 3_896 + 63 + 65
    float_plan = Plan((0, 1), ((0, 1, 4.0),))
    buyer_rate = 0.018 + 0.0027 * math.sqrt(10.0)
    assert member_savings(float_plan, floats)[1] == pytest.approx(4 * buyer_rate - 2 * 0.0207)


@pytest.mark.parametrize("dist", ["normal", "uniform", "lognormal"])
def test_integer_and_float_scores_agree_within_the_fixed_point_resolution(dist):
    community = random_community(40, dist, np.random.default_rng(2))
    formation = form_coalitions(community)
    game = CoalitionGame(community)
    ints = IntLosses(community)
    for solution in formation.solutions:
        plan = to_wh(solution.plan)
        check_plan(plan, community)
        int_scores = member_scores(plan, ints)
        assert all(type(v) is int for v in int_scores.values())
        for i, score in solution.scores.items():
            # each trade floored to 1 Wh, each loss product floored to 1 Wh: a few Wh per trade at most
            trades = sum(1 for s, b, _ in plan.trades if i in (s, b)) + 1
            assert abs(score * 1000 - int_scores[i]) <= 3 * trades + 2
        assert singleton_score(ints, plan.members[0]) == pytest.approx(
            singleton_score(game.losses, plan.members[0]) * 1000, abs=1)


def test_integer_and_float_settlements_agree():
    community = random_community(30, "uniform", np.random.default_rng(4))
    formation = form_coalitions(community)
    game = CoalitionGame(community)
    for k in range(3):
        seed = derive_seed(b"slot", k)
        proposed, verified = propose(game, formation, seed, np.random.default_rng(k)), recompute(game, formation, seed)
        assert proposed.miner == verified.miner
        assert verified.reward == pytest.approx(proposed.reward * 1000, abs=len(formation.partition) * 5)
        assert sum(verified.shares.values()) == verified.reward
        assert sum(proposed.shares.values()) == pytest.approx(proposed.reward)
        for i, share in proposed.shares.items():
            assert abs(share * 1000 - verified.shares[i]) <= 5
        for x, y in zip(proposed.payoffs, verified.payoffs):  # money: price · (kWh vs Wh/1000)
            assert abs(x - y) <= 25 * 0.03 + 1


def test_mining_reward_is_delta_of_the_market_saving():
    ints = IntLosses(_pair_community())
    assert mining_reward(5_680, 100_000, ints) == 568
    with pytest.raises(ValueError):
        mining_reward(5_680, 0, ints)


def test_miner_draw_and_reselection_after_a_penalty():
    scores = [0, 3_220, 0, 7_680, 2_810]
    seed = b"parent"
    miner = select_miner(scores, seed)
    assert miner in (1, 3, 4) and miner == select_miner(scores, seed)
    again = select_miner(scores, seed, excluded={miner})
    assert again not in (miner, 0, 2)
    last = select_miner(scores, seed, excluded={1, 3})
    assert last == 4
    stakes, slashed = slash([10, 20, 30, 40, 50], {1, 3})
    assert stakes == (10, 0, 30, 0, 50) and slashed == 60


def test_validator_rejects_plans_that_break_the_balance_rules():
    community = _pair_community()
    check_plan(Plan((0, 1), ((0, 1, 4_000),)), community)
    with pytest.raises(InvalidPlan, match="balance"):
        check_plan(Plan((0, 1), ((0, 1, 4_001),)), community)
    with pytest.raises(InvalidPlan, match="seller to a buyer"):
        check_plan(Plan((0, 1), ((1, 0, 10),)), community)
    with pytest.raises(InvalidPlan, match="leaves the coalition"):
        check_plan(Plan((0, 2), ((0, 1, 10),)), community)
    with pytest.raises(InvalidPlan, match="whole number"):
        check_plan(Plan((0, 1), ((0, 1, 1.5),)), community)
