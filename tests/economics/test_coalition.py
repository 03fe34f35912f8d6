"""Coalition LP (eqs. 3.11–3.15) and merge-and-split (Algorithm 3)."""
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from market.economics.coalition import (CoalitionGame, form_coalitions, profitable_merge, profitable_split)
from market.economics.community import random_community
from market.economics.rules.poeg import alone_loss, edc_residuals, member_losses, singleton_score


def _mixed_coalitions(game, count, rng):
    """Random member sets with at least two sellers and two buyers (the general LP case)."""
    bal = game.balance
    sellers, buyers = np.flatnonzero(bal > 0), np.flatnonzero(bal < 0)
    for _ in range(count):
        k, m = rng.integers(2, min(5, len(sellers)) + 1), rng.integers(2, min(6, len(buyers)) + 1)
        yield sorted(rng.choice(sellers, k, replace=False).tolist() + rng.choice(buyers, m, replace=False).tolist())


@pytest.mark.parametrize("solver", ["cbc", "highs"])
def test_every_lp_solution_balances_energy_and_respects_the_constraints(solver):
    community = random_community(40, "normal", np.random.default_rng(7))
    game = CoalitionGame(community, solver=solver)
    for members in _mixed_coalitions(game, 6, np.random.default_rng(1)):
        solution = game.solve(members)
        residual = edc_residuals(solution.plan, game.losses)
        for seller, buyer, energy in solution.plan.trades:
            assert game.balance[seller] > 0 > game.balance[buyer] and energy > 0
        for i in members:  # (3.12)-(3.14): inside trades plus the EDC leg equal the balance
            assert residual[i] >= -1e-9
        total_loss = sum(member_losses(solution.plan, game.losses).values())
        alone = sum(alone_loss(game.losses, i) for i in members)
        assert total_loss == pytest.approx(alone - solution.gain, abs=1e-9)
        assert solution.gain >= 0


def test_cbc_highs_and_the_closed_form_reach_the_same_optimum():
    community = random_community(40, "uniform", np.random.default_rng(3))
    cbc, highs = CoalitionGame(community, solver="cbc"), CoalitionGame(community, solver="highs")
    lp_only = CoalitionGame(community, solver="cbc", closed_form=False)
    for members in _mixed_coalitions(cbc, 5, np.random.default_rng(2)):
        assert cbc.solve(members).gain == pytest.approx(highs.solve(members).gain, abs=1e-6)
    bal = cbc.balance
    hub = int(np.flatnonzero(bal > 0)[0])
    star = [hub] + np.flatnonzero(bal < 0)[:6].tolist()
    assert cbc.solve(star).gain == pytest.approx(lp_only.solve(star).gain, abs=1e-6)


def test_dual_prices_certify_optimality():
    """Strong duality: Σ|E_i^bal|·price = G(S), and u_i + v_j ≥ g_ij for every seller-buyer pair."""
    community = random_community(40, "lognormal", np.random.default_rng(5))
    game = CoalitionGame(community, solver="highs")
    for members in _mixed_coalitions(game, 5, np.random.default_rng(4)):
        solution = game.solve(members)
        assert sum(abs(game.balance[i]) * solution.shadow[i] for i in members) == pytest.approx(solution.gain, abs=1e-7)
        for i, j in itertools.product(members, members):
            if game.balance[i] > 0 > game.balance[j]:
                assert solution.shadow[i] + solution.shadow[j] >= game.gain[i, j] - 1e-7


@pytest.mark.parametrize("seed", range(4))
def test_final_partition_admits_no_profitable_merge_or_split(seed):
    community = random_community(12, "uniform", np.random.default_rng(seed))
    formation = form_coalitions(community)
    game = CoalitionGame(community)
    partition = [frozenset(c) for c in formation.partition]
    assert sorted(i for c in partition for i in c) == list(range(12))
    assert profitable_merge(game, partition) is None
    assert all(profitable_split(game, c) is None for c in partition if len(c) > 1)


def test_rounds_never_lower_a_member_score_below_acting_alone():
    """Table 3.2: every round is a Pareto improvement, starting from the singleton scores (3.4, 3.10)."""
    community = random_community(30, "normal", np.random.default_rng(11))
    formation = form_coalitions(community)
    game = CoalitionGame(community)
    first = formation.rounds[0].member_scores
    assert first == pytest.approx([singleton_score(game.losses, i) for i in range(30)])
    for before, after in itertools.pairwise(formation.rounds):
        assert all(b >= a - 1e-9 for a, b in zip(before.member_scores, after.member_scores))
    assert formation.rounds[-1].partition == formation.rounds[-2].partition == formation.partition


def test_formation_is_deterministic():
    community = random_community(25, "lognormal", np.random.default_rng(9))
    assert form_coalitions(community).partition == form_coalitions(community).partition


def test_gridnode_sim_coalition_prints_the_required_json():
    output = subprocess.run(
        [sys.executable, "-m", "cli.main", "sim", "coalition", "--json", "--prosumers", "10,20",
         "--dist", "normal,uniform", "--trials", "2", "--iterations"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    result = json.loads(output)
    assert [(r["prosumers"], r["dist"]) for r in result["runs"]] == [(10, "normal"), (20, "normal"),
                                                                    (10, "uniform"), (20, "uniform")]
    for r in result["runs"]:
        assert 0 < r["traded_in_coalitions"] <= 1 and 0 < r["loss_saved"] < 1 and r["seconds"] >= 0
    rounds = result["log"]["rounds"]
    assert rounds[0]["partition"] == [[i] for i in range(10)] and rounds[-1]["partition"] == rounds[-2]["partition"]
