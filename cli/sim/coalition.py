"""`gridnode sim coalition`: flags and summary table of `market.experiments.coalition`."""
from __future__ import annotations

import argparse

from cli.errors import CommandError
from cli.sim import integers
from market.economics.coalition import SOLVERS
from market.economics.community import DISTRIBUTIONS
from market.economics.rules.line_loss import FLOOR_PPM, PPM, LossModel
from market.experiments.coalition import Settings, run as experiment

DEFAULTS = Settings()


def _dists(text: str) -> list[str]:
    names = [v for v in text.split(",") if v]
    for name in names:
        if name not in DISTRIBUTIONS:
            raise argparse.ArgumentTypeError(f"unknown distribution {name!r}; choose from {','.join(DISTRIBUTIONS)}")
    return names


def _ppm(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer number of ppm, got {text!r}") from None
    if not 0 <= value <= PPM:
        raise argparse.ArgumentTypeError(f"expected ppm between 0 and {PPM}, got {value}")
    return value


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
    loss = DEFAULTS.loss
    parser.add_argument("--floor-ppm", type=_ppm, default=loss.base_ppm, metavar="PPM",
                        help="distance-independent line loss every transfer pays, in ppm (default "
                             f"{loss.base_ppm}: eq. 3.11's C·dist_ij alone; {FLOOR_PPM} = the 1.8 %% floor "
                             "of the earlier reading)")
    parser.add_argument("--loss-floor", dest="floor_ppm", action="store_const", const=FLOOR_PPM,
                        help=f"shorthand for --floor-ppm {FLOOR_PPM}")
    parser.add_argument("--per-km-ppm", type=_ppm, default=loss.per_km_ppm, metavar="PPM",
                        help=f"C of eq. 3.11, line loss per km in ppm (default {loss.per_km_ppm} = "
                             f"{loss.per_km_ppm / 10_000:g} %%/km)")
    parser.add_argument("--cap-ppm", type=_ppm, default=loss.cap_ppm, metavar="PPM",
                        help=f"largest loss of any transfer in ppm (default {loss.cap_ppm} = "
                             f"{loss.cap_ppm / 10_000:g} %%, the top of the thesis's range)")
    parser.add_argument("--iterations", action="store_true",
                        help="also print the Table 3.2 iteration log and the reward split of a 10-prosumer case")


def run(args: argparse.Namespace, progress: bool) -> dict:
    if args.trials < 1:
        raise CommandError("--trials must be at least 1")
    try:
        loss = LossModel(base_ppm=args.floor_ppm, per_km_ppm=args.per_km_ppm, cap_ppm=args.cap_ppm)
    except ValueError as error:
        raise CommandError(str(error)) from None
    settings = Settings(prosumers=tuple(args.prosumers), dist=tuple(args.dist), trials=args.trials,
                        solver=args.solver, loss=loss, iterations=args.iterations, seed=args.seed)
    result = experiment(settings, plot=args.plot, progress=progress)
    if not args.json:
        _print(result)
    return result


def _print(result: dict) -> None:
    model = result["loss_model"]
    print(f"loss model: {model['reading']}: floor {model['base_ppm']} ppm, C = {model['per_km_ppm']} ppm/km, "
          f"cap {model['cap_ppm']} ppm; {result['trials']} communities per point")
    print(f"{'dist':<10} {'prosumers':>9} {'traded in coalitions':>21} {'loss saved ± s.e.':>18} {'seconds':>8}")
    for r in result["runs"]:
        print(f"{r['dist']:<10} {r['prosumers']:>9} {r['traded_in_coalitions']:>21.1%} "
              f"{r['loss_saved']:>10.1%} ± {r['loss_saved_se']:>4.1%} {r['seconds']:>8.3f}")
    print(f"\nmean over distributions against the thesis (Fig. 3.9(b); (a) ≈{result['thesis']['traded_in_coalitions']:.0%}):")
    print(f"{'prosumers':>9} {'traded in coalitions':>21} {'loss saved ± s.e.':>18} {'thesis':>7}")
    for r in result["by_prosumers"]:
        thesis = f"{r['thesis_loss_saved']:.1%}" if r["thesis_loss_saved"] is not None else "-"
        print(f"{r['prosumers']:>9} {r['traded_in_coalitions']:>21.1%} "
              f"{r['loss_saved']:>10.1%} ± {r['loss_saved_se']:>4.1%} {thesis:>7}")
    if "log" in result:
        log = result["log"]
        print("\nIteration log, 10 prosumers (Table 3.2): partition | coalition 𝒫𝒮 | 𝒫𝒮 of P0..P9 (kWh)")
        for itr, r in enumerate(log["rounds"], start=1):
            print(f"{itr:>2}  {r['partition']}  {r['coalition_scores']}  {r['member_scores']}")
        print(f"miner coalition {log['miner']}, ℳ_r = {log['reward_kwh']} kWh, Shapley shares {log['shares_kwh']}")
