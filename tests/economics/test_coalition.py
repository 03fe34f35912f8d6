"""Coalition LP (eqs. 3.11–3.15) and merge-and-split (Algorithm 3)."""
import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from market.economics.coalition import (CoalitionGame, form_coalitions, profitable_merge, profitable_split)
from market.economics.community import random_community
from consensus.rules.line_loss import FLOOR_PPM, PPM, LossModel
from consensus.rules.poeg import alone_loss, edc_residuals, member_losses, singleton_score
from market.experiments.coalition import THESIS_LOSS_SAVED, Settings, run


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


def _loss_saved(community, model):
    formation = form_coalitions(community, model)
    game = CoalitionGame(community, model)
    alone = sum(alone_loss(game.losses, i) for i in range(community.size))
    return formation.partition, sum(s.gain for s in formation.solutions) / alone


def test_under_eq_3_11_the_share_saved_does_not_depend_on_c():
    """C·dist_ij scales every loss, alone or together, by C: below the cap the coalitions and the
    share of loss saved are the same whatever C the DSO estimates. The floor breaks that."""
    community = random_community(20, "normal", np.random.default_rng(21))
    partition, saved = _loss_saved(community, LossModel(per_km_ppm=2_700, cap_ppm=PPM))
    for per_km in (1_350, 5_400):
        other_partition, other_saved = _loss_saved(community, LossModel(per_km_ppm=per_km, cap_ppm=PPM))
        assert other_partition == partition and other_saved == pytest.approx(saved, rel=1e-9)
    floored = [_loss_saved(community, LossModel(base_ppm=FLOOR_PPM, per_km_ppm=c, cap_ppm=PPM))[1] for c in (1_350, 5_400)]
    assert floored[0] != pytest.approx(floored[1], rel=1e-3)


def test_more_prosumers_save_more_loss_as_fig_3_9b_says():
    """§3.4.4: loss saved rises from 22.5 % at 10 prosumers to 38 % at 50 (mean over distributions)."""
    result = run(Settings(prosumers=(10, 50), trials=10))
    small, large = result["by_prosumers"]
    assert (small["prosumers"], large["prosumers"]) == (10, 50) and small["distributions"] == 3
    rise = large["loss_saved"] - small["loss_saved"]
    assert rise > 2 * (small["loss_saved_se"] ** 2 + large["loss_saved_se"] ** 2) ** 0.5
    assert (small["thesis_loss_saved"], large["thesis_loss_saved"]) == (THESIS_LOSS_SAVED[10], THESIS_LOSS_SAVED[50])
    assert result["loss_model"]["base_ppm"] == 0


def test_gridnode_sim_coalition_prints_the_required_json(tmp_path):
    figure = tmp_path / "coalition.png"
    output = subprocess.run(
        [sys.executable, "-m", "cli.main", "sim", "coalition", "--json", "--prosumers", "10,20",
         "--dist", "normal,uniform", "--trials", "2", "--iterations", "--floor-ppm", str(FLOOR_PPM),
         "--plot", str(figure)],
        capture_output=True, text=True, check=True, timeout=120).stdout
    result = json.loads(output)
    assert [(r["prosumers"], r["dist"]) for r in result["runs"]] == [(10, "normal"), (20, "normal"),
                                                                    (10, "uniform"), (20, "uniform")]
    for r in result["runs"]:
        assert 0 < r["traded_in_coalitions"] <= 1 and 0 < r["loss_saved"] < 1 and r["seconds"] >= 0
        assert r["loss_saved_se"] >= 0 and r["traded_in_coalitions_se"] >= 0
    assert result["loss_model"]["base_ppm"] == FLOOR_PPM and result["loss_model"]["reading"] == "floored"
    same = run(Settings(prosumers=(10, 20), dist=("normal", "uniform"), trials=2, loss=LossModel(base_ppm=FLOOR_PPM)))
    assert [r["loss_saved"] for r in result["runs"]] == [r["loss_saved"] for r in same["runs"]]
    rounds = result["log"]["rounds"]
    assert rounds[0]["partition"] == [[i] for i in range(10)] and rounds[-1]["partition"] == rounds[-2]["partition"]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gridnode_sim_coalition_rejects_a_rate_that_is_not_ppm(capsys):
    from cli.main import build_parser, main

    argv = ["sim", "coalition", "--floor-ppm", "1.8"]
    with pytest.raises(SystemExit) as exit:
        build_parser(argv).parse_args(argv)
    assert exit.value.code == 2 and "expected an integer number of ppm" in capsys.readouterr().err
    assert main(["sim", "coalition", "--floor-ppm", "60000", "--trials", "1"]) == 1  # above the 5.6 % cap
    assert "base_ppm (60000) exceeds cap_ppm (56000)" in capsys.readouterr().err
