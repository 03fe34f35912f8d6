"""`gridnode sim coalition`: flags and summary table of `market.experiments.coalition`."""
from __future__ import annotations

import argparse

from cli.sim import integers
from market.economics.coalition import SOLVERS
from market.economics.community import DISTRIBUTIONS
from market.experiments.coalition import Settings, run as experiment

DEFAULTS = Settings()


def _dists(text: str) -> list[str]:
    names = [v for v in text.split(",") if v]
    for name in names:
        if name not in DISTRIBUTIONS:
            raise argparse.ArgumentTypeError(f"unknown distribution {name!r}; choose from {','.join(DISTRIBUTIONS)}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prosumers", type=integers, default=list(DEFAULTS.prosumers),
                        help="comma-separated community sizes (default 10,20,30,40,50)")
    parser.add_argument("--dist", type=_dists, default=list(DEFAULTS.dist),
                        help="comma-separated energy distributions: normal, uniform, lognormal (default all)")
    parser.add_argument("--trials", type=int, default=DEFAULTS.trials,
                        help=f"random communities averaged per point (default {DEFAULTS.trials})")
    parser.add_argument("--solver", choices=SOLVERS, default=DEFAULTS.solver,
                        help="PuLP's LP solver for coalitions with several sellers and buyers: highs "
                             "(in-process, default) or cbc (a subprocess per LP)")
    parser.add_argument("--iterations", action="store_true",
                        help="also print the Table 3.2 iteration log and the reward split of a 10-prosumer case")


def run(args: argparse.Namespace, progress: bool) -> dict:
    settings = Settings(prosumers=tuple(args.prosumers), dist=tuple(args.dist), trials=args.trials,
                        solver=args.solver, iterations=args.iterations, seed=args.seed)
    result = experiment(settings, plot=args.plot, progress=progress)
    if not args.json:
        _print(result)
    return result


def _print(result: dict) -> None:
    print(f"{'dist':<10} {'prosumers':>9} {'traded in coalitions':>21} {'loss saved ± s.e.':>18} {'seconds':>8}")
    for r in result["runs"]:
        print(f"{r['dist']:<10} {r['prosumers']:>9} {r['traded_in_coalitions']:>21.1%} "
              f"{r['loss_saved']:>10.1%} ± {r['loss_saved_se']:>4.1%} {r['seconds']:>8.3f}")
    if "log" in result:
        log = result["log"]
        print("\nIteration log, 10 prosumers (Table 3.2): partition | coalition 𝒫𝒮 | 𝒫𝒮 of P0..P9 (kWh)")
        for itr, r in enumerate(log["rounds"], start=1):
            print(f"{itr:>2}  {r['partition']}  {r['coalition_scores']}  {r['member_scores']}")
        print(f"miner coalition {log['miner']}, ℳ_r = {log['reward_kwh']} kWh, Shapley shares {log['shares_kwh']}")
