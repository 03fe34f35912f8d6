"""`gridnode sim stackelberg`: flags and summary table of `market.experiments.stackelberg`."""
from __future__ import annotations

import argparse

from cli.sim import floats, integers
from market.experiments.stackelberg import FIGURES, Settings, run as experiment

DEFAULTS = Settings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--figure", choices=FIGURES, default=DEFAULTS.figure,
                        help="which of the paper's figures to reproduce besides the N = 8 setting; 4a/4b and "
                             "4c/4d are one sweep each (default all)")
    parser.add_argument("--episodes", type=int, default=DEFAULTS.episodes,
                        help=f"DMA-UBRL episodes per run (default {DEFAULTS.episodes}, as in the paper)")
    parser.add_argument("--follower-steps", type=int, default=DEFAULTS.follower_steps,
                        help=f"trading rounds the prosumers play per posted price (default {DEFAULTS.follower_steps})")
    parser.add_argument("--prosumers", type=int, default=DEFAULTS.prosumers,
                        help=f"prosumers in the main setting (default {DEFAULTS.prosumers})")
    parser.add_argument("--spread", type=float, default=DEFAULTS.spread,
                        help=f"spread of the prosumers' intentions, ± fraction of Q/w (default {DEFAULTS.spread})")
    parser.add_argument("--counts", type=integers, default=list(DEFAULTS.counts),
                        help="prosumer counts for Fig. 4(a)-(b) (default 2,4,...,16)")
    parser.add_argument("--unit-prices", type=floats, default=list(DEFAULTS.unit_prices),
                        help="values of Q for Fig. 4(c)-(d) (default 0.4,0.45,...,0.8)")


def run(args: argparse.Namespace, progress: bool) -> dict:
    settings = Settings(figure=args.figure, episodes=args.episodes, follower_steps=args.follower_steps,
                        prosumers=args.prosumers, spread=args.spread, counts=tuple(args.counts),
                        unit_prices=tuple(args.unit_prices), seed=args.seed)
    result = experiment(settings, plot=args.plot, progress=progress)
    if not args.json:
        _print(result)
    return result


def _demands(values: list[float]) -> str:
    return " ".join(f"{v:5.1f}" for v in values)


def _print(result: dict) -> None:
    p = result["params"]
    print(f"Stackelberg equilibrium vs DMA-UBRL: N = {p['prosumers']}, {p['episodes']} episodes "
          f"x {p['follower_steps']} rounds, theta = {p['theta']:g}, mean w = {p['mean_intention']:g}")
    print(f"{'':<14} {'price':>6} {'U_server':>9} {'mean U_i':>9}  demands")
    for key, label in (("analytic", "analytic"), ("grid", "best on grid"), ("learned", "DMA-UBRL")):
        row = result[key]
        print(f"{label:<14} {row['price']:>6.2f} {row['server_utility']:>9.1f} {row['prosumer_utility']:>9.2f}  "
              f"{_demands(row['demands'])}")
    print(f"gap to analytic: price {result['gap']['price']:.2%}, demands (worst) {result['gap']['demands']:.2%}")
    if "figure3" in result:
        print("\nFig. 3, four prosumers: prices | demands")
        for name, rows in result["figure3"].items():
            for key in ("analytic", "grid", "learned"):
                row = rows[key]
                prices = " ".join(f"{v:5.2f}" for v in row["prices"])
                print(f"  {name:<13} {key:<9} {prices} | {_demands(row['demands'])}")
    for key, label in (("figure4_prosumers", "prosumers"), ("figure4_unit_price", "unit_price")):
        if key not in result:
            continue
        print(f"\nFig. 4, utilities against {label}: U_server / mean U_i")
        names = ("analytic", "dma_ubrl", "ga_server", "ga_prosumers", "random")
        print(f"{label:>10} " + " ".join(f"{n:>17}" for n in names))
        for row in result[key]:
            print(f"{row[label]:>10g} " + " ".join(f"{row[n]['server']:>9.1f}/{row[n]['prosumers']:<7.2f}"
                                                  for n in names))
