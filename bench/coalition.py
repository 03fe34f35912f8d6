"""Coalition formation and Shapley timings (paper 003 ch. 3).

    python bench/coalition.py [--max-prosumers 1000] [--max-players 14] [--solver highs,cbc]

Prints the formation time of a stable partition for 10, 50, 200 and 1,000 prosumers
(normal profiles), per PuLP solver (HiGHS in-process, CBC as a subprocess per LP), with the
number of coalition optimisations (LPs and closed forms); then the
time of exact and sampled Shapley values of the coalition game by coalition size.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
import time

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]  # the repository's `market`, not bench/market.py

from market.economics.coalition import CoalitionGame, Solver, form_coalitions
from market.economics.community import random_community
from market.economics.shapley import EXACT_MAX_PLAYERS, samples_for, shapley_exact, shapley_sampled

SIZES = (10, 50, 200, 1000)


def formation(max_prosumers: int, solvers: list[Solver]) -> None:
    print(f"{'prosumers':>9} {'solver':>6} {'seconds':>8} {'coalitions':>10} {'optimisations':>13}")
    for n in (s for s in SIZES if s <= max_prosumers):
        community = random_community(n, "normal", np.random.default_rng(n))
        for solver in solvers:
            start = time.perf_counter()
            result = form_coalitions(community, solver=solver)
            seconds = time.perf_counter() - start
            print(f"{n:>9} {solver:>6} {seconds:>8.2f} {len(result.partition):>10} {result.optimiser_calls:>13}")


def shapley(max_players: int) -> None:
    """Players are the first k prosumers of a dense community that contains k/2 sellers and
    k/2 buyers, so every sub-coalition needs the LP."""
    community = random_community(400, "uniform", np.random.default_rng(1))
    bal = np.asarray(community.balance_wh)
    sellers, buyers = np.flatnonzero(bal > 0), np.flatnonzero(bal < 0)
    print(f"\n{'players':>7} {'exact s':>8} {'sampled s':>9} {'orders':>7} {'bound kWh':>9} {'max |err| kWh':>13}")
    for k in range(4, max_players + 1, 2):
        members = sorted(sellers[:k // 2].tolist() + buyers[:k - k // 2].tolist())
        game = CoalitionGame(community)
        worth = lambda mask: sum(game.solve([m for b, m in enumerate(members) if mask >> b & 1]).scores.values())
        exact, exact_s = None, float("nan")
        if k <= EXACT_MAX_PLAYERS:
            start = time.perf_counter()
            exact = shapley_exact(k, worth)
            exact_s = time.perf_counter() - start
        width = float((np.abs(game.balance[members]) * np.clip(game.gain[np.ix_(members, members)], 0, None).max(1)).max())
        orders = samples_for(width, 0.05, k, 0.05)
        game = CoalitionGame(community)  # fresh cache: time the sampled path on its own
        start = time.perf_counter()
        estimate = shapley_sampled(k, worth, width, orders, np.random.default_rng(0))
        sampled_s = time.perf_counter() - start
        error = f"{np.abs(estimate.values - exact).max():.4f}" if exact is not None else "-"
        print(f"{k:>7} {exact_s:>8.2f} {sampled_s:>9.2f} {orders:>7} {estimate.half_width:>9.3f} {error:>13}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-prosumers", type=int, default=1000, help="largest community to form (default 1000)")
    parser.add_argument("--max-players", type=int, default=14, help="largest coalition for Shapley (default 14)")
    parser.add_argument("--solver", default="highs,cbc", help="comma-separated LP solvers (default highs,cbc)")
    args = parser.parse_args()
    formation(args.max_prosumers, args.solver.split(","))
    shapley(args.max_players)


if __name__ == "__main__":
    main()
