"""PoEG proof scores, savings and payments (eqs. 3.4–3.8, 3.16–3.24), float and integer forms."""
import math

import numpy as np
import pytest

from consensus.sampling import derive_seed
from market.economics.coalition import CoalitionGame, form_coalitions
from market.economics.community import random_community
from market.economics.line_loss import FloatLosses, fraction
from market.economics.rules.community import Community
from market.economics.rules.line_loss import IntLosses, LossModel
from market.economics.rules.poeg import (InvalidPlan, Plan, check_plan, coalition_score, member_savings, member_scores,
                                         mining_reward, select_miner, singleton_score, slash, to_wh)
from market.economics.settlement import propose, recompute


def _pair_community():
    """P0 sells 4 kWh 3 km east of the EDC; P1 needs 6 kWh 1 km north of P0; P2 idles."""
    return Community(production_wh=(9_000, 1_000, 2_000), consumption_wh=(5_000, 7_000, 2_000),
                     x_m=(3_000, 3_000, -500), y_m=(0, 1_000, 0))


def test_loss_rate_spans_the_reported_range():
    model = LossModel()
    assert model.ppm(0) == 18_000 and model.ppm(14_142) == 56_000 and model.ppm(28_000) == 56_000
    assert fraction(model, 1.0) == pytest.approx(0.0207)


def test_scores_of_a_two_member_coalition_by_hand():
    community = _pair_community()
    ints, floats = IntLosses(community), FloatLosses(community)
    # loss rates: P0–EDC 3000 m → 2.61 %, P1–EDC 3162 m → 2.6537 %, P0–P1 1000 m → 2.07 %
    assert singleton_score(ints, 0) == 4_000 - 4_000 * 26_100 // 10**6 == 3_896
    assert singleton_score(ints, 1) == 0 and singleton_score(ints, 2) == 0
    plan = Plan((0, 1), ((0, 1, 4_000),))
    # seller: alone 104 Wh, in coalition half of 82 Wh; buyer: alone 159 Wh, in coalition 2 kWh from the EDC (53 Wh) + 41
    assert member_savings(plan, ints) == {0: 104 - 41, 1: 159 - (53 + 41)}
    assert member_scores(plan, ints) == {0: 3_896 + 63, 1: 65}
    assert coalition_score(plan, ints) == 3_896 + 63 + 65
    float_plan = Plan((0, 1), ((0, 1, 4.0),))
    assert member_savings(float_plan, floats)[0] == pytest.approx(4 * 0.0261 - 2 * 0.0207)
    buyer_rate = 0.018 + 0.0027 * math.sqrt(10.0)  # the float form keeps the fractional metre
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
